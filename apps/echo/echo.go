// Package echo is molt's echo service (RFC 862 style, on any port): every
// byte a TCP client sends comes back on the same connection, and every UDP
// datagram goes back to its sender. Integrity tests stream checksummed data
// through it, so it must never lose, reorder or duplicate a byte, and one
// slow client must never hold up another.
//
// Synopsis:
//
//	srv := echo.NewServer(echo.Config{})
//	go srv.ServeTCP(listener)     // any net.Listener (gonet in the kernel)
//	go srv.ServeUDP(packetConn)   // any net.PacketConn
//	...
//	srv.Shutdown(ctx)             // stop accepting; close once connections end or ctx expires
//
// Each TCP connection gets one goroutine and one buffer: it reads, then
// writes everything it read before reading again, so flow control reaches
// the client through TCP's own window when the client does not read its
// echo. An idle connection (no byte from the client for Config.IdleTimeout)
// is closed; a client that stops reading while the server still has bytes
// to give back is closed once no byte could be written for
// Config.WriteTimeout.
package echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Config fields.
const (
	DefaultBufferSize   = 32 << 10
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxConns     = 4096
	// MaxDatagram is the largest UDP datagram echoed whole; longer ones are
	// truncated by the socket and counted in Stats.UDPTruncated.
	MaxDatagram = 65535
)

// ErrServerClosed is returned by ServeTCP and ServeUDP after Shutdown.
var ErrServerClosed = errors.New("echo: server closed")

// Config configures a Server. Zero fields take the defaults above; a
// negative timeout disables it.
type Config struct {
	BufferSize   int           // per-connection buffer
	IdleTimeout  time.Duration // close a TCP connection idle this long
	WriteTimeout time.Duration // close when writing back makes no progress this long
	MaxConns     int           // concurrent TCP connections; past it new ones are closed at once
	// Logf, if set, receives one line per unusual event. It must be safe
	// for concurrent use.
	Logf func(format string, args ...any)
}

// Stats are the service's counters.
type Stats struct {
	Accepted     uint64 // TCP connections accepted
	Rejected     uint64 // TCP connections closed at once (MaxConns)
	Open         int64  // TCP connections open now
	TCPBytes     uint64 // bytes echoed over TCP
	Datagrams    uint64 // UDP datagrams echoed
	UDPBytes     uint64 // bytes echoed over UDP
	UDPTruncated uint64 // datagrams longer than MaxDatagram
	Errors       uint64 // connections that ended with an error other than EOF, idle timeout or Shutdown
}

// Server is an echo service. It may serve any number of listeners and
// packet connections at once; it is safe for concurrent use.
type Server struct {
	cfg Config

	accepted, rejected, tcpBytes  atomic.Uint64
	datagrams, udpBytes, udpTrunc atomic.Uint64
	errs                          atomic.Uint64
	open                          atomic.Int64

	// Quiesce state (quiesce.go); as in package kv.
	q      atomic.Bool
	epoch  atomic.Uint64
	cutoff atomic.Int64

	mu sync.Mutex
	// +checklocks:mu
	quiescing bool
	// +checklocks:mu
	parked []ParkedConn
	// +checklocks:mu
	parkedSock map[any]struct{} // listeners and packet conns waiting for Resume
	// +checklocks:mu
	resumeCh chan struct{}
	// +checklocks:mu
	quiesced chan struct{}
	// +checklocks:mu
	detached bool
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	listeners map[net.Listener]struct{}
	// +checklocks:mu
	packetConns map[net.PacketConn]struct{}
	// +checklocks:mu
	conns map[net.Conn]struct{}

	wg sync.WaitGroup // connection goroutines
}

// NewServer returns a server with cfg's zero fields set to the defaults.
func NewServer(cfg Config) *Server {
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&cfg.IdleTimeout, DefaultIdleTimeout}, {&cfg.WriteTimeout, DefaultWriteTimeout}} {
		switch {
		case *d.p == 0:
			*d.p = d.def
		case *d.p < 0:
			*d.p = 0
		}
	}
	return &Server{
		cfg:         cfg,
		listeners:   map[net.Listener]struct{}{},
		packetConns: map[net.PacketConn]struct{}{},
		conns:       map[net.Conn]struct{}{},
		parkedSock:  map[any]struct{}{},
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted: s.accepted.Load(), Rejected: s.rejected.Load(), Open: s.open.Load(),
		TCPBytes: s.tcpBytes.Load(), Datagrams: s.datagrams.Load(), UDPBytes: s.udpBytes.Load(),
		UDPTruncated: s.udpTrunc.Load(), Errors: s.errs.Load(),
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// ServeTCP accepts connections on l and echoes each until it ends. It
// returns ErrServerClosed after Shutdown, or the listener's error.
func (s *Server) ServeTCP(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		delete(s.parkedSock, l)
		s.checkQuiescedLocked()
		s.mu.Unlock()
	}()
	if d, ok := l.(deadliner); ok && !s.q.Load() {
		d.SetDeadline(time.Time{}) // a quiesce's deadline, if l was handed over
	}
	for {
		e := s.epoch.Load()
		c, err := l.Accept()
		if err != nil {
			if isTimeout(err) && (s.q.Load() || s.epoch.Load() != e) {
				if s.parkSocket(l, func(t time.Time) {
					if d, ok := l.(deadliner); ok {
						d.SetDeadline(t)
					}
				}) {
					return ErrServerClosed
				}
				continue
			}
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("echo: accept on %v: %w", l.Addr(), err)
		}
		if !s.track(c) {
			continue
		}
		s.accepted.Add(1)
		go s.serveConn(c, nil)
	}
}

// track registers c, or closes it when the server is closed or full, or
// parks it unserved while the server is quiesced (then it reports false
// too: the caller does nothing more with it).
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quiescing && !s.detached {
		s.parked = append(s.parked, ParkedConn{Conn: c})
		s.accepted.Add(1)
		return false
	}
	if s.closed || len(s.conns) >= s.cfg.MaxConns {
		// Count before closing: whoever sees the close also sees the
		// count.
		if !s.closed {
			s.rejected.Add(1)
			s.logf("echo: %v: too many connections (%d), closed", c.RemoteAddr(), s.cfg.MaxConns)
		}
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.open.Add(1)
	s.wg.Add(1)
	return true
}

// serveConn echoes c, starting with pending (bytes read before a
// handover and not yet echoed). Its safe point is between a write that
// completed and the next read: parked there, no byte read is lost.
func (s *Server) serveConn(c net.Conn, pending []byte) {
	defer s.wg.Done()
	parked := false
	defer func() {
		if parked {
			return // park did the bookkeeping; c stays open
		}
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.checkQuiescedLocked()
		s.mu.Unlock()
		s.open.Add(-1)
	}()
	buf := make([]byte, s.cfg.BufferSize)
	if len(pending) > 0 {
		c.SetReadDeadline(time.Time{}) // a stale quiesce deadline, if handed over
		c.SetWriteDeadline(time.Time{})
	}
	for {
		for len(pending) > 0 {
			rest, werr := s.writeAll(c, pending)
			if werr != nil {
				s.endWith(c, werr)
				return
			}
			pending = rest
			if len(rest) > 0 && s.park(c, rest) {
				parked = true
				return
			}
		}
		if s.q.Load() && s.park(c, nil) {
			parked = true
			return
		}
		e := s.epoch.Load()
		if s.cfg.IdleTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		} else {
			c.SetReadDeadline(time.Time{})
		}
		if s.q.Load() {
			c.SetReadDeadline(aLongTimeAgo)
		}
		n, rerr := c.Read(buf)
		if n > 0 {
			// Echoed (or kept, if a quiesce cuts the write) at the top
			// of the loop. buf is reused only after pending is empty.
			pending = buf[:n]
		}
		if rerr != nil {
			if isTimeout(rerr) && (s.q.Load() || s.epoch.Load() != e) {
				continue
			}
			for len(pending) > 0 {
				rest, werr := s.writeAll(c, pending)
				if werr != nil || len(rest) == len(pending) {
					break
				}
				pending = rest
			}
			s.endWith(c, rerr)
			return
		}
	}
}

// writeAll writes p to c and returns what is left unwritten: nothing,
// unless a quiesce's cutoff stopped the write (the caller keeps the rest in
// the parked state). The write timeout bounds a wait without progress, not
// the whole write: a client that reads slowly (a loaded peer, a long
// retransmission backoff) keeps its connection as long as bytes keep
// moving, and one that stops reading is closed.
func (s *Server) writeAll(c net.Conn, p []byte) ([]byte, error) {
	for len(p) > 0 {
		e := s.epoch.Load()
		switch {
		case s.q.Load():
			c.SetWriteDeadline(time.Unix(0, s.cutoff.Load()))
		case s.cfg.WriteTimeout > 0:
			c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		default:
			c.SetWriteDeadline(time.Time{})
		}
		w, err := c.Write(p)
		s.tcpBytes.Add(uint64(w))
		p = p[w:]
		switch {
		case err == nil:
		case isTimeout(err) && s.q.Load():
			return p, nil
		case isTimeout(err) && s.epoch.Load() != e:
			// Cut by a quiesce aborted since: go on.
		case w > 0 && isTimeout(err):
			// Progress before the deadline: go on with the rest.
		default:
			return p, err
		}
	}
	return nil, nil
}

// endWith counts how a connection ended. EOF (the client closed) is the
// normal end; after the read side ends the echo is complete, so the
// connection is closed in full.
func (s *Server) endWith(c net.Conn, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, net.ErrClosed) && s.isClosed():
	case errors.Is(err, io.EOF):
	case errors.As(err, &ne) && ne.Timeout():
		s.logf("echo: %v: timed out, closed", c.RemoteAddr())
	default:
		s.errs.Add(1)
		s.logf("echo: %v: %v", c.RemoteAddr(), err)
	}
}

// ServeUDP echoes every datagram that arrives on pc to its sender until
// Shutdown or a read error.
func (s *Server) ServeUDP(pc net.PacketConn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.packetConns[pc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.packetConns, pc)
		delete(s.parkedSock, pc)
		s.checkQuiescedLocked()
		s.mu.Unlock()
	}()
	if !s.q.Load() {
		pc.SetReadDeadline(time.Time{}) // a quiesce's deadline, if pc was handed over
	}
	// One byte more than the largest datagram tells a truncated one apart.
	buf := make([]byte, MaxDatagram+1)
	for {
		// The safe point: a datagram read has been answered.
		e := s.epoch.Load()
		if s.q.Load() {
			pc.SetReadDeadline(aLongTimeAgo)
		}
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if isTimeout(err) && (s.q.Load() || s.epoch.Load() != e) {
				if s.parkSocket(pc, func(t time.Time) { pc.SetReadDeadline(t) }) {
					return ErrServerClosed
				}
				continue
			}
			if s.isClosed() {
				return ErrServerClosed
			}
			return fmt.Errorf("echo: read on %v: %w", pc.LocalAddr(), err)
		}
		if n > MaxDatagram {
			s.udpTrunc.Add(1)
			n = MaxDatagram
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil {
			// A datagram that cannot be sent (no route, buffer full) is
			// lost the way UDP loses it; the socket keeps serving.
			s.errs.Add(1)
			s.logf("echo: udp reply to %v: %v", from, err)
			continue
		}
		s.datagrams.Add(1)
		s.udpBytes.Add(uint64(n))
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops the server: listeners and packet connections are closed at
// once, open TCP connections go on until their clients close them or ctx
// expires, when they are closed. It returns ctx's error in that case.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for pc := range s.packetConns {
		pc.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
