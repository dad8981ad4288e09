package kv

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Server defaults, used where a ServerConfig field is zero.
const (
	DefaultMaxConns     = 1024
	DefaultMaxLineLen   = 2048
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	// DefaultVersion is what the version command reports. The 1.6 prefix
	// tells clients which dialect of the text protocol to expect
	// (memcapable, for one, relaxes its version/quit checks for >= 1.6).
	DefaultVersion = "1.6.0-molt"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("kv: server closed")

// ServerConfig configures a Server. Zero fields take the defaults above; a
// negative timeout disables that timeout.
type ServerConfig struct {
	// MaxConns bounds concurrent connections. A connection past it gets
	// "SERVER_ERROR too many open connections" and is closed.
	MaxConns int
	// MaxLineLen bounds a command line, "\r\n" included. Retrieval commands
	// (get, gets, gat, gats) are exempt: their keys are streamed, so a
	// multi-get of many keys works as with memcached. A longer line of any
	// other command gets "CLIENT_ERROR line too long" and the connection
	// is closed, since the stream cannot be resynchronised safely.
	MaxLineLen int
	// IdleTimeout closes a connection that sends no command for this long.
	IdleTimeout time.Duration
	// ReadTimeout bounds the wait for a data block once its command line
	// arrived.
	ReadTimeout time.Duration
	// WriteTimeout bounds each command's reply write: a client that does
	// not read its replies is disconnected instead of holding a
	// goroutine and buffers forever.
	WriteTimeout time.Duration
	// MaxInflightBytes bounds the memory held by data blocks being
	// received, summed over all connections, so that many clients
	// announcing large values at once cannot exhaust memory. A storage
	// command that would exceed it gets "SERVER_ERROR out of memory
	// storing object" and its data block is swallowed. Default: the
	// store's MaxBytes.
	MaxInflightBytes int64
	// Version is the version command's reply.
	Version string
	// Logf, if set, receives one line per unusual event (accept errors,
	// rejected connections). It must be safe for concurrent use.
	Logf func(format string, args ...any)
}

func (c *ServerConfig) setDefaults() {
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxLineLen <= 0 {
		c.MaxLineLen = DefaultMaxLineLen
	}
	if c.MaxLineLen < 64 {
		c.MaxLineLen = 64
	}
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0
		}
	}
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Server serves the memcached text protocol for a Store on any number of
// net.Listeners. Each connection runs in its own goroutine; the store's
// lock is never held during network I/O, so a slow client delays only
// itself.
//
// Lock order: Server.mu, then (never nested today) Store.mu. Connection
// goroutines do not take Server.mu except to unregister.
type Server struct {
	store *Store
	cfg   ServerConfig // immutable after NewServer
	pid   int          // immutable
	// start is when the server started (stats uptime): set by NewServer,
	// moved back by a task restore that carries the old kernel's uptime.
	start atomic.Pointer[time.Time]

	inShutdown atomic.Bool

	// Quiesce state (quiesce.go). q mirrors quiescing for the lock-free
	// checks of the connection goroutines; epoch counts Quiesce and
	// Resume calls, so that a goroutine woken by a quiesce that has since
	// been aborted can tell that apart from a real timeout; cutoff is the
	// write deadline while quiescing (Unix ns).
	q      atomic.Bool
	epoch  atomic.Uint64
	cutoff atomic.Int64

	mu sync.Mutex
	// +checklocks:mu
	listeners map[net.Listener]struct{}
	// +checklocks:mu
	conns map[*conn]struct{}
	// +checklocks:mu
	done chan struct{} // closed when conns becomes empty during shutdown
	// +checklocks:mu
	quiescing bool
	// +checklocks:mu
	parked []ParkedConn // connections stopped at a safe point
	// +checklocks:mu
	parkedLn map[net.Listener]struct{} // listeners whose Serve waits for Resume
	// +checklocks:mu
	resumeCh chan struct{} // closed by Resume or Detach
	// +checklocks:mu
	quiesced chan struct{} // closed once every connection and listener is parked
	// +checklocks:mu
	detached bool

	currConns     atomic.Int64
	totalConns    atomic.Uint64
	rejectedConns atomic.Uint64
	inflight      atomic.Int64 // bytes of data blocks being received
	bytesRead     atomic.Uint64
	bytesWritten  atomic.Uint64
	verbosity     atomic.Uint32
}

// NewServer returns a server for store.
func NewServer(store *Store, cfg ServerConfig) *Server {
	cfg.setDefaults()
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = store.maxBytes
	}
	s := &Server{
		store:     store,
		cfg:       cfg,
		pid:       os.Getpid(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		parkedLn:  make(map[net.Listener]struct{}),
	}
	now := time.Now()
	s.start.Store(&now)
	return s
}

// startTime reports when the server started, for uptime.
func (s *Server) startTime() time.Time { return *s.start.Load() }

// Store returns the server's store.
func (s *Server) Store() *Store { return s.store }

// Serve accepts connections on l and serves each in a new goroutine. It
// returns ErrServerClosed after Shutdown or Close, or the listener's error.
// Serve closes l before it returns, except after Detach.
//
// While the server is quiesced, Serve stops accepting (if l has a
// SetDeadline method, as *net.TCPListener does; otherwise connections
// accepted meanwhile are parked unserved) and waits for Resume.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(l, false)
	keep := false // Detach hands l on open
	defer func() {
		if !keep {
			l.Close()
		}
	}()
	if d, ok := l.(deadliner); ok && !s.q.Load() {
		d.SetDeadline(time.Time{}) // a quiesce's deadline, if l was handed over
	}
	var backoff time.Duration
	for {
		e := s.epoch.Load()
		nc, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			if isTimeout(err) && (s.q.Load() || s.epoch.Load() != e) {
				if s.parkListener(l) {
					keep = true
					return ErrServerClosed
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logf("kv: accept: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc)
		switch s.admit(c) {
		case admitServe:
			go c.serve()
		case admitReject:
			s.rejectedConns.Add(1)
			go s.reject(nc)
		}
	}
}

// isTemporary reports accept errors that a later Accept may not repeat.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	var se *os.SyscallError
	return errors.As(err, &se)
}

// reject answers a connection over MaxConns, as memcached does, and closes it.
func (s *Server) reject(nc net.Conn) {
	s.cfg.Logf("kv: rejecting %v: too many open connections", nc.RemoteAddr())
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	nc.Write([]byte("SERVER_ERROR too many open connections\r\n"))
	nc.Close()
}

func (s *Server) trackListener(l net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
		delete(s.parkedLn, l)
		s.checkQuiescedLocked()
	}
	return true
}

// trackConn registers or unregisters c. Registration fails when the server
// is shutting down or MaxConns connections are open.
func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() || len(s.conns) >= s.cfg.MaxConns {
			return false
		}
		s.conns[c] = struct{}{}
		s.currConns.Add(1)
		s.totalConns.Add(1)
		return true
	}
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.currConns.Add(-1)
		if len(s.conns) == 0 && s.done != nil {
			close(s.done)
			s.done = nil
		}
		s.checkQuiescedLocked()
	}
	return true
}

// reserve accounts n bytes of a data block about to be received against
// MaxInflightBytes. One block is always allowed when none is in flight.
func (s *Server) reserve(n int64) bool {
	for {
		cur := s.inflight.Load()
		if cur > 0 && cur+n > s.cfg.MaxInflightBytes {
			return false
		}
		if s.inflight.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (s *Server) release(n int64) { s.inflight.Add(-n) }

// Shutdown stops the server gracefully: it closes the listeners, then
// closes each connection once it is idle (between commands), and waits for
// all of them to finish. If ctx ends first, the remaining connections are
// closed at once and ctx's error is returned.
//
// Effects: Serve returns ErrServerClosed; the Store is untouched (save it
// afterwards for a self-update).
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	s.closeListeners()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		done := s.closeIdle()
		if done == nil {
			return nil
		}
		select {
		case <-done:
			return nil
		case <-tick.C:
		case <-ctx.Done():
			s.closeAll()
			return ctx.Err()
		}
	}
}

// Close stops the server at once, closing listeners and connections.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	s.closeListeners()
	s.closeAll()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		l.Close()
	}
}

// closeIdle wakes every idle connection so it sees the shutdown and exits.
// It returns a channel closed when no connection is left, or nil if none
// is left now.
func (s *Server) closeIdle() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		return nil
	}
	for c := range s.conns {
		if c.idle.Load() {
			// Unblock its read; it re-checks inShutdown and exits.
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}
