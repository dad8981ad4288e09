package echo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	"github.com/molt-os/molt/updater/task"
)

// The echo service as a task (updater/task). It has no state beyond its
// sockets: the state is which sockets it serves and, per TCP connection,
// the bytes read and not yet echoed.
//
// Task state, schema version 1 (docs/tasks.md):
//
//	0x00  8  magic "MOLTECHO"
//	0x08  4  TCP listener count L
//	0x0c  4  UDP socket count U
//	0x10  4  connection count C
//	0x14  4  reserved, zero
//	0x18  4L listener socket IDs, then 4U UDP socket IDs
//	then C records: +0x0 4 socket ID, +0x4 4 pending length P, +0x8 P bytes
//	nothing follows the last record
//
// Every socket ID is nonzero and appears once.

// Task identity in the process table.
const (
	TaskName    = "echo"
	TaskID      = 2
	TaskVersion = 1

	stateMagic = "MOLTECHO"
)

// ManifestLine is the echo task's line in an image's task manifest
// (task.ManifestLine of TaskSpec, as a constant; a test keeps them equal).
const ManifestLine = TaskName + " 2 1 1\n"

// TaskSpec returns the echo task's process-table spec.
func TaskSpec() task.Spec {
	return task.Spec{Name: TaskName, ID: TaskID, Version: TaskVersion, Oldest: TaskVersion, Policy: task.PolicyFresh}
}

// TaskConfig configures a Task.
type TaskConfig struct {
	Config
	// Sockets names sockets by ID (the kernel's socket table). Required.
	Sockets task.SocketTable
	// ListenTCP and ListenUDP open the service's sockets when none is
	// handed over (cold boot, or lost).
	ListenTCP func() (net.Listener, error)
	ListenUDP func() (net.PacketConn, error)
}

// Task runs an echo Server as an updatable task.
type Task struct {
	cfg TaskConfig
	srv *Server

	mu sync.Mutex
	// +checklocks:mu
	restored *State
	// +checklocks:mu
	sockets []task.SocketID
}

// NewTask returns a task, not yet serving.
func NewTask(cfg TaskConfig) (*Task, error) {
	if cfg.Sockets == nil {
		return nil, errors.New("echo: task: no socket table")
	}
	return &Task{cfg: cfg, srv: NewServer(cfg.Config)}, nil
}

// Server returns the task's server.
func (t *Task) Server() *Server { return t.srv }

// State is the echo task state.
type State struct {
	Listeners []task.SocketID
	UDP       []task.SocketID
	Conns     []ConnRecord
}

// ConnRecord is one TCP connection's state.
type ConnRecord struct {
	ID      task.SocketID
	Pending []byte
}

func (t *Task) serve(ls []net.Listener, pcs []net.PacketConn, conns []ParkedConn) error {
	if len(ls) == 0 && t.cfg.ListenTCP != nil {
		l, err := t.cfg.ListenTCP()
		if err != nil {
			return fmt.Errorf("echo: listen tcp: %w", err)
		}
		ls = append(ls, l)
	}
	if len(pcs) == 0 && t.cfg.ListenUDP != nil {
		pc, err := t.cfg.ListenUDP()
		if err != nil {
			return fmt.Errorf("echo: listen udp: %w", err)
		}
		pcs = append(pcs, pc)
	}
	t.srv.Adopt(conns)
	for _, l := range ls {
		go func() {
			if err := t.srv.ServeTCP(l); !errors.Is(err, ErrServerClosed) {
				t.srv.logf("echo: %v", err)
			}
		}()
	}
	for _, pc := range pcs {
		go func() {
			if err := t.srv.ServeUDP(pc); !errors.Is(err, ErrServerClosed) {
				t.srv.logf("echo: %v", err)
			}
		}()
	}
	return nil
}

// lookup sorts sockets by kind. A UDP socket can also be a net.Conn, so
// PacketConn is tested first.
func (t *Task) lookup(ids []task.SocketID) (ls []net.Listener, pcs []net.PacketConn, conns []net.Conn) {
	for _, id := range ids {
		s, ok := t.cfg.Sockets.Lookup(id)
		switch s := s.(type) {
		case net.Listener:
			ls = append(ls, s)
		case net.PacketConn:
			pcs = append(pcs, s)
		case net.Conn:
			conns = append(conns, s)
		default:
			t.srv.logf("echo: socket %d is gone or unknown (%T, %v); ignored", id, s, ok)
		}
	}
	return
}

// Start implements task.Task.
func (t *Task) Start(sockets []task.SocketID) error {
	ls, pcs, cs := t.lookup(sockets)
	conns := make([]ParkedConn, len(cs))
	for i, c := range cs {
		conns[i] = ParkedConn{Conn: c}
	}
	return t.serve(ls, pcs, conns)
}

// Quiesce implements task.Task.
func (t *Task) Quiesce(ctx context.Context) error { return t.srv.Quiesce(ctx) }

// Resume implements task.Task.
func (t *Task) Resume() error {
	t.mu.Lock()
	st := t.restored
	t.restored = nil
	t.mu.Unlock()
	if st == nil {
		return t.srv.Resume()
	}
	ls, pcs, _ := t.lookup(st.Listeners)
	_, upcs, _ := t.lookup(st.UDP)
	pcs = append(pcs, upcs...)
	var conns []ParkedConn
	for _, c := range st.Conns {
		s, _ := t.cfg.Sockets.Lookup(c.ID)
		nc, ok := s.(net.Conn)
		if !ok {
			t.srv.logf("echo: resume: connection %d is gone; %d pending bytes dropped", c.ID, len(c.Pending))
			continue
		}
		conns = append(conns, ParkedConn{Conn: nc, Pending: c.Pending})
	}
	return t.serve(ls, pcs, conns)
}

// Save implements task.Task.
func (t *Task) Save(w io.Writer) error {
	ls, pcs, parked, err := t.srv.Parked()
	if err != nil {
		return err
	}
	st := &State{}
	id := func(s any) (task.SocketID, error) {
		i, ok := t.cfg.Sockets.ID(s)
		if !ok {
			return 0, fmt.Errorf("echo: socket %T has no ID", s)
		}
		return i, nil
	}
	for _, l := range ls {
		i, err := id(l)
		if err != nil {
			return err
		}
		st.Listeners = append(st.Listeners, i)
	}
	for _, pc := range pcs {
		i, err := id(pc)
		if err != nil {
			return err
		}
		st.UDP = append(st.UDP, i)
	}
	for _, p := range parked {
		i, err := id(p.Conn)
		if err != nil {
			return err
		}
		st.Conns = append(st.Conns, ConnRecord{ID: i, Pending: p.Pending})
	}
	slices.Sort(st.Listeners)
	slices.Sort(st.UDP)
	slices.SortFunc(st.Conns, func(a, b ConnRecord) int { return int(a.ID) - int(b.ID) })
	if _, err := w.Write(st.Append(nil)); err != nil {
		return err
	}
	socks := append(slices.Clone(st.Listeners), st.UDP...)
	for _, c := range st.Conns {
		socks = append(socks, c.ID)
	}
	t.mu.Lock()
	t.sockets = socks
	t.mu.Unlock()
	return nil
}

// Sockets implements task.SocketOwner.
func (t *Task) Sockets() []task.SocketID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.sockets)
}

// Restore implements task.Task.
func (t *Task) Restore(r io.Reader, from uint32) error {
	if from != TaskVersion {
		return fmt.Errorf("echo: task state v%d (this image reads %d)", from, TaskVersion)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	st, err := DecodeState(b)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.restored = st
	t.mu.Unlock()
	return nil
}

// ErrState is wrapped by every DecodeState error.
var ErrState = errors.New("echo: malformed task state")

// Append appends the v1 encoding of st to dst.
func (st *State) Append(dst []byte) []byte {
	le := binary.LittleEndian
	dst = append(dst, stateMagic...)
	dst = le.AppendUint32(dst, uint32(len(st.Listeners)))
	dst = le.AppendUint32(dst, uint32(len(st.UDP)))
	dst = le.AppendUint32(dst, uint32(len(st.Conns)))
	dst = le.AppendUint32(dst, 0)
	for _, id := range append(slices.Clone(st.Listeners), st.UDP...) {
		dst = le.AppendUint32(dst, uint32(id))
	}
	for _, c := range st.Conns {
		dst = le.AppendUint32(dst, uint32(c.ID))
		dst = le.AppendUint32(dst, uint32(len(c.Pending)))
		dst = append(dst, c.Pending...)
	}
	return dst
}

// DecodeState parses a v1 echo task state; p must hold exactly one.
// Pending slices alias p.
func DecodeState(p []byte) (*State, error) {
	le := binary.LittleEndian
	if len(p) < 0x18 {
		return nil, fmt.Errorf("%w: %d bytes, the header needs 24", ErrState, len(p))
	}
	if string(p[:8]) != stateMagic {
		return nil, fmt.Errorf("%w: magic %q", ErrState, p[:8])
	}
	nl, nu, nc := uint64(le.Uint32(p[8:])), uint64(le.Uint32(p[12:])), uint64(le.Uint32(p[16:]))
	if v := le.Uint32(p[20:]); v != 0 {
		return nil, fmt.Errorf("%w: reserved field %#x", ErrState, v)
	}
	if 4*(nl+nu)+8*nc > uint64(len(p)-0x18) {
		return nil, fmt.Errorf("%w: %d listeners, %d UDP sockets and %d connections do not fit in %d bytes", ErrState, nl, nu, nc, len(p))
	}
	st := &State{}
	seen := map[task.SocketID]bool{}
	off := 0x18
	next := func() (task.SocketID, error) {
		id := task.SocketID(le.Uint32(p[off:]))
		if id == 0 || seen[id] {
			return 0, fmt.Errorf("%w: socket ID %d at offset %#x is zero or repeated", ErrState, id, off)
		}
		seen[id] = true
		off += 4
		return id, nil
	}
	for i := uint64(0); i < nl+nu; i++ {
		id, err := next()
		if err != nil {
			return nil, err
		}
		if i < nl {
			st.Listeners = append(st.Listeners, id)
		} else {
			st.UDP = append(st.UDP, id)
		}
	}
	for i := uint64(0); i < nc; i++ {
		if len(p)-off < 8 {
			return nil, fmt.Errorf("%w: connection %d at offset %#x is truncated", ErrState, i, off)
		}
		id, err := next()
		if err != nil {
			return nil, err
		}
		n := uint64(le.Uint32(p[off:]))
		off += 4
		if n > uint64(len(p)-off) {
			return nil, fmt.Errorf("%w: connection %d: %d pending bytes, %d left", ErrState, i, n, len(p)-off)
		}
		c := ConnRecord{ID: id}
		if n > 0 {
			c.Pending = p[off : off+int(n) : off+int(n)]
		}
		st.Conns = append(st.Conns, c)
		off += int(n)
	}
	if off != len(p) {
		return nil, fmt.Errorf("%w: %d bytes after the last connection", ErrState, len(p)-off)
	}
	return st, nil
}
