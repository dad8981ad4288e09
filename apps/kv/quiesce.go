package kv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Quiescing a Server for a self-update.
//
// Quiesce stops every connection at a request boundary without closing
// it: a connection waiting for its next command is woken (a read deadline
// in the past) and parks with whatever bytes it has received but not
// executed; one executing a command finishes it and parks after; one
// waiting for the rest of a storage command's data block parks with the
// command line and the part of the block it has (so it re-parses the whole
// request after resume); one swallowing a refused data block parks with
// the count still to skip. Replies are flushed on the way; what the client
// does not take before half the quiesce budget is kept as unwritten bytes.
// The only wait a quiesce cannot cut short is a multi-get line arriving in
// pieces, whose reply is already half written: it waits for the line's end
// (bounded by ReadTimeout and the caller's deadline).
//
// A parked connection is plain data (ParkedConn); Resume serves the same
// connections again on this server, or Adopt serves them on another one
// (the next kernel's, after the task state went through the handoff).

// ParkedConn is a connection stopped at a safe point, with the stream
// state a server needs to carry on exactly where it stopped.
type ParkedConn struct {
	Conn net.Conn
	// Pending are bytes received from the client and not executed yet
	// (whole requests, or the start of one): they are read again before
	// anything new from the socket.
	Pending []byte
	// Unwritten are replies not yet sent: they are sent first.
	Unwritten []byte
	// Discard counts bytes of a refused data block still to be skipped
	// in the input (after Pending).
	Discard int64
}

// deadliner is a listener whose Accept can be woken by a deadline, as
// *net.TCPListener's.
type deadliner interface{ SetDeadline(time.Time) error }

// aLongTimeAgo is a deadline that has passed: setting it wakes a blocked
// read at once.
var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// defaultQuiesceBudget is Quiesce's budget when ctx has no deadline.
const defaultQuiesceBudget = 200 * time.Millisecond

// Quiesce stops the server at a safe point: no connection executes a
// request or reads input, no listener accepts, and the store is no longer
// modified through this server. It returns once every connection is parked,
// or with an error when ctx ends first (call Resume either way to undo it).
// Connections stay open.
func (s *Server) Quiesce(ctx context.Context) error {
	budget := defaultQuiesceBudget
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	cutoff := time.Now().Add(budget / 2)
	s.mu.Lock()
	if s.quiescing {
		s.mu.Unlock()
		return errors.New("kv: quiesce: already quiesced")
	}
	if s.inShutdown.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.cutoff.Store(cutoff.UnixNano())
	s.quiescing = true
	s.epoch.Add(1)
	s.q.Store(true)
	s.resumeCh = make(chan struct{})
	s.quiesced = make(chan struct{})
	for c := range s.conns {
		c.nc.SetReadDeadline(aLongTimeAgo)
		c.nc.SetWriteDeadline(cutoff)
	}
	for l := range s.listeners {
		if d, ok := l.(deadliner); ok {
			d.SetDeadline(aLongTimeAgo)
		}
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
		return fmt.Errorf("kv: quiesce: %d connections not at a request boundary: %w", n, ctx.Err())
	}
}

// checkQuiescedLocked closes s.quiesced once nothing is left running.
//
// +checklocks:s.mu
func (s *Server) checkQuiescedLocked() {
	if !s.quiescing || s.quiesced == nil || len(s.conns) > 0 {
		return
	}
	for l := range s.listeners {
		if _, ok := s.parkedLn[l]; ok {
			continue
		}
		if _, ok := l.(deadliner); ok {
			return
		}
	}
	close(s.quiesced)
	s.quiesced = nil
}

// Parked returns, while the server is quiesced, its listeners and its
// parked connections: the state a task saves.
func (s *Server) Parked() ([]net.Listener, []ParkedConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.quiescing {
		return nil, nil, errors.New("kv: not quiesced")
	}
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	return ls, append([]ParkedConn(nil), s.parked...), nil
}

// Resume undoes Quiesce: the listeners accept again and the parked
// connections are served again from where they stopped. It does nothing
// if the server is not quiesced.
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
	clear(s.parkedLn)
	close(s.resumeCh)
	s.quiesced = nil
	s.mu.Unlock()
	s.Adopt(parked)
	return nil
}

// Detach makes a quiesced server let go of its sockets without closing
// them, so that another Server (restored from the saved state) can take
// them over in the same process: Serve calls return ErrServerClosed and
// leave their listeners open, parked connections are forgotten. The server
// cannot be used afterwards. (In a kernel update the old kernel simply
// stops; Detach is for tests and in-process hand-overs.)
func (s *Server) Detach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.quiescing || s.detached {
		return errors.New("kv: detach: not quiesced")
	}
	s.detached = true
	s.inShutdown.Store(true)
	s.parked = nil
	close(s.resumeCh)
	return nil
}

// Adopt serves connections parked by this or another server, each from
// where it stopped. Connections adopted while the server is quiesced park
// again at once.
func (s *Server) Adopt(conns []ParkedConn) {
	for _, p := range conns {
		c := newConn(s, p.Conn)
		c.replay, c.out, c.discard, c.resumed = p.Pending, p.Unwritten, p.Discard, true
		s.mu.Lock()
		if s.inShutdown.Load() {
			s.mu.Unlock()
			p.Conn.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.currConns.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

type admission uint8

const (
	admitServe admission = iota
	admitReject
	admitParked
)

// admit registers a newly accepted connection: to serve, to reject (the
// server is shutting down or full), or, while quiesced, parked unserved so
// that it is part of the saved state.
func (s *Server) admit(c *conn) admission {
	s.mu.Lock()
	if s.quiescing && !s.detached {
		s.parked = append(s.parked, ParkedConn{Conn: c.nc})
		s.totalConns.Add(1)
		s.mu.Unlock()
		return admitParked
	}
	s.mu.Unlock()
	if !s.trackConn(c, true) {
		return admitReject
	}
	return admitServe
}

// parkListener waits, in Serve, for the end of a quiesce. It reports true
// if the server was detached (Serve returns, leaving l open).
func (s *Server) parkListener(l net.Listener) bool {
	s.mu.Lock()
	if s.quiescing {
		s.parkedLn[l] = struct{}{}
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
	if d, ok := l.(deadliner); ok {
		d.SetDeadline(time.Time{})
		if s.q.Load() {
			// A new quiesce began meanwhile; its wake-up may have come
			// before the line above.
			d.SetDeadline(aLongTimeAgo)
		}
	}
	return false
}

// byQuiesce reports whether err is a read timeout caused by a quiesce:
// one in progress, or one begun and aborted since epoch e (read before the
// deadline was armed). Such a read is retried or parked, never taken as the
// client's fault.
func (c *conn) byQuiesce(err error, e uint64) bool {
	return isTimeout(err) && (c.srv.q.Load() || c.srv.epoch.Load() != e)
}

// park hands the connection over to the server's parked set, at a safe
// point while quiescing. pending are input bytes already consumed from the
// read buffer but not executed (an interrupted request), discard the rest
// of a refused data block. It reports false if the quiesce ended meanwhile:
// go on serving. After true, the goroutine must not touch the connection.
func (c *conn) park(pending []byte, discard int64) bool {
	if c.bw.Flush() != nil {
		c.quit = true // broken for real (the quiesce cutoff is absorbed by connWriter)
		return false
	}
	s := c.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.quiescing || s.detached {
		return false
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	in := make([]byte, 0, len(pending)+len(buffered)+len(c.replay))
	in = append(append(append(in, pending...), buffered...), c.replay...)
	s.parked = append(s.parked, ParkedConn{Conn: c.nc, Pending: in, Unwritten: c.unwritten, Discard: discard})
	c.unwritten = nil
	delete(s.conns, c)
	s.currConns.Add(-1)
	c.parked, c.quit = true, true
	s.checkQuiescedLocked()
	return true
}
