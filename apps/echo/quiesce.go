package echo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Quiescing for a self-update. A TCP connection's safe point is between a
// completed echo and the next read: a connection blocked in Read is woken
// by a read deadline in the past, one writing finishes its write (or, past
// half the quiesce budget, keeps the rest as pending bytes). A UDP socket's
// safe point is after answering a datagram; a listener's, between Accepts
// (for listeners with SetDeadline; others park what they accept). No byte
// read from a socket is lost: bytes read and not yet echoed are the
// connection's state, written first after resume.

// ParkedConn is a TCP connection stopped at its safe point.
type ParkedConn struct {
	Conn net.Conn
	// Pending are bytes read from the client and not yet echoed.
	Pending []byte
}

type deadliner interface{ SetDeadline(time.Time) error }

var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Quiesce stops the server at its safe point and returns once every
// connection, listener and UDP socket is parked, or with an error when ctx
// ends first (call Resume either way). Sockets stay open.
func (s *Server) Quiesce(ctx context.Context) error {
	budget := 200 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	cutoff := time.Now().Add(budget / 2)
	s.mu.Lock()
	if s.quiescing || s.closed {
		s.mu.Unlock()
		return errors.New("echo: quiesce: already quiesced or closed")
	}
	s.cutoff.Store(cutoff.UnixNano())
	s.quiescing = true
	s.epoch.Add(1)
	s.q.Store(true)
	s.resumeCh = make(chan struct{})
	s.quiesced = make(chan struct{})
	for c := range s.conns {
		c.SetReadDeadline(aLongTimeAgo)
		c.SetWriteDeadline(cutoff)
	}
	for l := range s.listeners {
		if d, ok := l.(deadliner); ok {
			d.SetDeadline(aLongTimeAgo)
		}
	}
	for pc := range s.packetConns {
		pc.SetReadDeadline(aLongTimeAgo)
	}
	done := s.quiesced
	s.checkQuiescedLocked()
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		return fmt.Errorf("echo: quiesce: %d connections not at a safe point: %w", n, ctx.Err())
	}
}

// +checklocks:s.mu
func (s *Server) checkQuiescedLocked() {
	if !s.quiescing || s.quiesced == nil || len(s.conns) > 0 {
		return
	}
	for l := range s.listeners {
		if _, ok := s.parkedSock[l]; !ok {
			if _, ok := l.(deadliner); ok {
				return
			}
		}
	}
	for pc := range s.packetConns {
		if _, ok := s.parkedSock[pc]; !ok {
			return
		}
	}
	close(s.quiesced)
	s.quiesced = nil
}

// park parks c with pending (copied) if the server quiesces; false means
// go on serving.
func (s *Server) park(c net.Conn, pending []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.quiescing || s.detached {
		return false
	}
	s.parked = append(s.parked, ParkedConn{Conn: c, Pending: append([]byte(nil), pending...)})
	delete(s.conns, c)
	s.open.Add(-1)
	s.checkQuiescedLocked()
	return true
}

// parkSocket waits, in ServeTCP or ServeUDP, for the end of a quiesce;
// setDeadline clears the socket's wake-up deadline afterwards. It reports
// true if the server was detached (the Serve call returns, the socket
// stays open).
func (s *Server) parkSocket(sock any, setDeadline func(time.Time)) bool {
	s.mu.Lock()
	if s.quiescing {
		s.parkedSock[sock] = struct{}{}
		ch := s.resumeCh
		s.checkQuiescedLocked()
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	detached := s.detached
	s.mu.Unlock()
	if detached {
		return true
	}
	setDeadline(time.Time{})
	if s.q.Load() {
		setDeadline(aLongTimeAgo) // a new quiesce began meanwhile
	}
	return false
}

// Parked returns, while quiesced, the server's listeners, UDP sockets and
// parked connections.
func (s *Server) Parked() ([]net.Listener, []net.PacketConn, []ParkedConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.quiescing {
		return nil, nil, nil, errors.New("echo: not quiesced")
	}
	var ls []net.Listener
	for l := range s.listeners {
		ls = append(ls, l)
	}
	var pcs []net.PacketConn
	for pc := range s.packetConns {
		pcs = append(pcs, pc)
	}
	return ls, pcs, append([]ParkedConn(nil), s.parked...), nil
}

// Resume undoes Quiesce: everything is served again from where it stopped.
func (s *Server) Resume() error {
	s.mu.Lock()
	if !s.quiescing || s.detached {
		s.mu.Unlock()
		return nil
	}
	s.quiescing = false
	s.q.Store(false)
	s.epoch.Add(1)
	parked := s.parked
	s.parked = nil
	clear(s.parkedSock)
	close(s.resumeCh)
	s.quiesced = nil
	s.mu.Unlock()
	s.Adopt(parked)
	return nil
}

// Detach makes a quiesced server let go of its sockets without closing
// them (for handing them to another Server in the same process); the
// server cannot be used afterwards.
func (s *Server) Detach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.quiescing || s.detached {
		return errors.New("echo: detach: not quiesced")
	}
	s.detached, s.closed = true, true
	s.parked = nil
	close(s.resumeCh)
	return nil
}

// Adopt serves parked connections (of this or another server), each
// starting with its pending bytes.
func (s *Server) Adopt(conns []ParkedConn) {
	for _, p := range conns {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			p.Conn.Close()
			continue
		}
		s.conns[p.Conn] = struct{}{}
		s.open.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(p.Conn, p.Pending)
	}
}
