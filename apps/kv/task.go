package kv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/molt-os/molt/updater/task"
)

// The kv service as a task (updater/task): its state is the store plus
// the stream state of every connection, keyed by socket ID.
//
// Task state, schema version N (N = 1 or 2, docs/kv.md): a store snapshot
// in snapshot version N, followed by the connection block, then the stats
// block (stats_state.go), which a state written before it existed lacks.
// The connection block:
//
//	0x00  8  magic "MOLTKVC\n"
//	0x08  4  listener count L
//	0x0c  4  connection count C
//	0x10  4L listener socket IDs
//	then C records, back to back:
//	      +0x00 4 socket ID (nonzero)
//	      +0x04 4 reserved, zero
//	      +0x08 8 discard: bytes of a refused data block still to skip
//	      +0x10 4 pending length P: input received, not yet executed
//	      +0x14 4 unwritten length U: replies not yet sent
//	      +0x18 P pending bytes, then U unwritten bytes
//	then the stats block, or nothing
//
// The blocks have no checksum of their own: the handoff region's SHA-256
// covers them. Their layout is the same in both schema versions.

// Task identity in the process table.
const (
	TaskName = "kv"
	TaskID   = 1
)

const (
	connMagic      = "MOLTKVC\n"
	connHeaderLen  = 16
	connRecordLen  = 24
	maxConnPending = 1 << 30
)

// ManifestLine is the kv task's line in an image's task manifest
// (task.ManifestLine of TaskSpec, as a constant; a test keeps them equal).
const ManifestLine = TaskName + " 1 1 " + writeSchemaText + "\n"

// TaskSpec returns the kv task's process-table spec for this image: it
// writes SchemaVersion and reads from OldestSchema up to it.
func TaskSpec() task.Spec { return taskSpec(SchemaVersion()) }

func taskSpec(schema uint32) task.Spec {
	return task.Spec{Name: TaskName, ID: TaskID, Version: schema, Oldest: OldestSchema, Policy: task.PolicyFresh}
}

// TaskConfig configures a Task.
type TaskConfig struct {
	Store  Config
	Server ServerConfig
	// Sockets names sockets by ID (the kernel's socket table). Required.
	Sockets task.SocketTable
	// Listen opens the service's listener when the task starts without
	// one handed over (cold boot, or its listener was lost).
	Listen func() (net.Listener, error)
	// Schema is the task-state schema this task writes and the newest it
	// reads; 0 means SchemaVersion. Tests set 1 to play a
	// v1 image in the same process.
	Schema uint32
}

// Task runs a Store and its Server as an updatable task.
type Task struct {
	cfg   TaskConfig
	store *Store
	srv   *Server

	mu sync.Mutex
	// +checklocks:mu
	restored *ConnState // from Restore, served by Resume
	// +checklocks:mu
	sockets []task.SocketID // as of the last Save
	// lastRestored is what the last Restore read (for reports and tests).
	lastRestored *ConnState
}

// NewTask returns a task with an empty store, not yet serving.
func NewTask(cfg TaskConfig) (*Task, error) {
	if cfg.Sockets == nil {
		return nil, errors.New("kv: task: no socket table")
	}
	if cfg.Schema == 0 {
		cfg.Schema = SchemaVersion()
	}
	if cfg.Schema < OldestSchema || cfg.Schema > CurrentSchema {
		return nil, fmt.Errorf("kv: task: schema %d outside %d..%d", cfg.Schema, OldestSchema, CurrentSchema)
	}
	st, err := NewStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	return &Task{cfg: cfg, store: st, srv: NewServer(st, cfg.Server)}, nil
}

// Spec returns the task's process-table spec (TaskSpec, with the
// configured schema).
func (t *Task) Spec() task.Spec { return taskSpec(t.cfg.Schema) }

// Items returns the number of live items (task.ItemCounter).
func (t *Task) Items() uint64 { return t.store.Stats().CurrItems }

// Server returns the task's server (for stats and shutdown).
func (t *Task) Server() *Server { return t.srv }

// Store returns the task's store.
func (t *Task) Store() *Store { return t.store }

func (t *Task) logf(format string, args ...any) { t.srv.cfg.Logf(format, args...) }

// serve runs Serve on l in the background, logging why it ends unless the
// server was closed or detached.
func (t *Task) serve(l net.Listener) {
	go func() {
		if err := t.srv.Serve(l); !errors.Is(err, ErrServerClosed) {
			t.logf("kv: serving %v stopped: %v", l.Addr(), err)
		}
	}()
}

// serveSockets serves the listeners and connections given by ID, opening
// a listener with cfg.Listen if none of them is one.
func (t *Task) serveSockets(lns []task.SocketID, conns []ParkedConn) error {
	var ls []net.Listener
	for _, id := range lns {
		s, ok := t.cfg.Sockets.Lookup(id)
		l, isL := s.(net.Listener)
		if !ok || !isL {
			t.logf("kv: listener socket %d is gone (%T); opening a new one", id, s)
			continue
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		if t.cfg.Listen == nil {
			return errors.New("kv: no listener handed over and no Listen function")
		}
		l, err := t.cfg.Listen()
		if err != nil {
			return fmt.Errorf("kv: listen: %w", err)
		}
		ls = append(ls, l)
	}
	t.srv.Adopt(conns)
	for _, l := range ls {
		t.serve(l)
	}
	return nil
}

// Start implements task.Task: serve with an empty store, adopting the
// sockets handed over (listeners are served; connections are served from
// a clean stream state, since theirs was lost).
func (t *Task) Start(sockets []task.SocketID) error {
	var lns []task.SocketID
	var conns []ParkedConn
	for _, id := range sockets {
		switch s, _ := t.cfg.Sockets.Lookup(id); s := s.(type) {
		case net.Listener:
			lns = append(lns, id)
		case net.Conn:
			conns = append(conns, ParkedConn{Conn: s})
		default:
			t.logf("kv: start: socket %d is %T, not a listener or connection; ignored", id, s)
		}
	}
	return t.serveSockets(lns, conns)
}

// Quiesce implements task.Task (Server.Quiesce).
func (t *Task) Quiesce(ctx context.Context) error { return t.srv.Quiesce(ctx) }

// Resume implements task.Task: after Restore it serves the restored
// connections and listeners, which it looks up by ID; after an aborted
// update it resumes the server where it stopped.
func (t *Task) Resume() error {
	t.mu.Lock()
	cs := t.restored
	t.restored = nil
	t.mu.Unlock()
	if cs == nil {
		return t.srv.Resume()
	}
	conns := make([]ParkedConn, 0, len(cs.Conns))
	for _, c := range cs.Conns {
		s, ok := t.cfg.Sockets.Lookup(c.ID)
		nc, isC := s.(net.Conn)
		if !ok || !isC {
			t.logf("kv: resume: connection socket %d is gone (%T); its stream state is dropped", c.ID, s)
			continue
		}
		conns = append(conns, ParkedConn{Conn: nc, Pending: c.Pending, Unwritten: c.Unwritten, Discard: c.Discard})
	}
	return t.serveSockets(cs.Listeners, conns)
}

// Save implements task.Task: the state in the task's schema.
func (t *Task) Save(w io.Writer) error { return t.SaveVersion(w, t.cfg.Schema) }

// SaveVersion implements task.VersionSaver: version 1 drops the items'
// LastAccess.
func (t *Task) SaveVersion(w io.Writer, v uint32) error {
	if v < OldestSchema || v > t.cfg.Schema {
		return fmt.Errorf("%w: cannot write task state v%d (this image writes %d..%d)", ErrVersion, v, OldestSchema, t.cfg.Schema)
	}
	lns, parked, err := t.srv.Parked()
	if err != nil {
		return err
	}
	cs := &ConnState{}
	for _, l := range lns {
		id, ok := t.cfg.Sockets.ID(l)
		if !ok {
			return fmt.Errorf("kv: listener %v has no socket ID", l.Addr())
		}
		cs.Listeners = append(cs.Listeners, id)
	}
	for _, p := range parked {
		id, ok := t.cfg.Sockets.ID(p.Conn)
		if !ok {
			return fmt.Errorf("kv: connection %v has no socket ID", p.Conn.RemoteAddr())
		}
		cs.Conns = append(cs.Conns, ConnRecord{ID: id, Pending: p.Pending, Unwritten: p.Unwritten, Discard: p.Discard})
	}
	slices.Sort(cs.Listeners)
	slices.SortFunc(cs.Conns, func(a, b ConnRecord) int { return int(a.ID) - int(b.ID) })
	// Quiesced (Parked succeeded): the counters stand still, and match
	// the snapshot taken next.
	ss := t.srv.statsState()
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := t.store.SaveVersion(bw, v); err != nil {
		return err
	}
	// Written in both schemas: a v1 image built from this source reads
	// it, so an update v1→v2 (or back) keeps the counters.
	if _, err := bw.Write(ss.Append(cs.Append(nil))); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	socks := slices.Clone(cs.Listeners)
	for _, c := range cs.Conns {
		socks = append(socks, c.ID)
	}
	t.mu.Lock()
	t.sockets = socks
	t.mu.Unlock()
	return nil
}

// Sockets implements task.SocketOwner: the sockets of the last Save.
func (t *Task) Sockets() []task.SocketID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.sockets)
}

// Restore implements task.Task: it decodes the store snapshot (migrating
// version 1), the connection block and the stats block, replaces the
// store's contents and the counters (left as they are if the state has no
// stats block), and keeps the connection state for Resume. Everything is
// decoded before anything is replaced: on error nothing changes.
func (t *Task) Restore(r io.Reader, from uint32) error {
	if from < OldestSchema || from > t.cfg.Schema {
		return fmt.Errorf("%w: task state v%d (this image reads %d..%d)", ErrVersion, from, OldestSchema, t.cfg.Schema)
	}
	ts, err := DecodeTaskState(r)
	if err != nil {
		return err
	}
	if ts.Store.Version != from {
		return fmt.Errorf("%w: the process table says v%d, the snapshot is v%d", ErrCorrupt, from, ts.Store.Version)
	}
	var counters *Stats
	if ts.Stats != nil {
		counters = &ts.Stats.Store
	}
	t.store.restoreState(ts.Store, counters)
	if ts.Stats != nil {
		t.srv.restoreCounters(ts.Stats, time.Now())
	}
	t.mu.Lock()
	t.restored, t.lastRestored = ts.Conns, ts.Conns
	t.mu.Unlock()
	return nil
}

// TaskState is a decoded kv task state.
type TaskState struct {
	Store *State
	Conns *ConnState
	// Stats is nil if the state has no stats block (an image from before
	// the block wrote it): the counters then start at zero.
	Stats *StatsState
}

// DecodeTaskState decodes a task state (snapshot, connection block,
// optional stats block) from r, reading it to the end.
func DecodeTaskState(r io.Reader) (*TaskState, error) {
	st, err := DecodeState(r)
	if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("kv: task state: reading the connection block: %w", err)
	}
	cs, n, err := decodeConnBlock(rest)
	if err != nil {
		return nil, err
	}
	ts := &TaskState{Store: st, Conns: cs}
	if n < len(rest) {
		if ts.Stats, err = DecodeStatsState(rest[n:]); err != nil {
			return nil, fmt.Errorf("kv: task state: %d bytes after the connection block: %w", len(rest)-n, err)
		}
	}
	return ts, nil
}

// ConnState is the connection block of a task state: which sockets the
// task serves, and where each connection's stream stands.
type ConnState struct {
	Listeners []task.SocketID
	Conns     []ConnRecord
}

// ConnRecord is one connection's stream state (ParkedConn by socket ID).
type ConnRecord struct {
	ID        task.SocketID
	Discard   int64
	Pending   []byte
	Unwritten []byte
}

// Append appends the connection block to dst.
func (cs *ConnState) Append(dst []byte) []byte {
	le := binary.LittleEndian
	dst = append(dst, connMagic...)
	dst = le.AppendUint32(dst, uint32(len(cs.Listeners)))
	dst = le.AppendUint32(dst, uint32(len(cs.Conns)))
	for _, id := range cs.Listeners {
		dst = le.AppendUint32(dst, uint32(id))
	}
	for _, c := range cs.Conns {
		dst = le.AppendUint32(dst, uint32(c.ID))
		dst = le.AppendUint32(dst, 0)
		dst = le.AppendUint64(dst, uint64(c.Discard))
		dst = le.AppendUint32(dst, uint32(len(c.Pending)))
		dst = le.AppendUint32(dst, uint32(len(c.Unwritten)))
		dst = append(append(dst, c.Pending...), c.Unwritten...)
	}
	return dst
}

// DecodeConnState parses a connection block; p must hold exactly one.
// Errors wrap ErrCorrupt or ErrBadMagic. Slices alias p.
func DecodeConnState(p []byte) (*ConnState, error) {
	cs, n, err := decodeConnBlock(p)
	if err != nil {
		return nil, err
	}
	if n != len(p) {
		return nil, fmt.Errorf("%w: %d bytes after the connection block", ErrCorrupt, len(p)-n)
	}
	return cs, nil
}

// decodeConnBlock parses the connection block at the start of p and
// returns its length: what follows it is the stats block's.
func decodeConnBlock(p []byte) (*ConnState, int, error) {
	le := binary.LittleEndian
	if len(p) < connHeaderLen {
		return nil, 0, fmt.Errorf("%w: connection block of %d bytes, its header needs %d", ErrCorrupt, len(p), connHeaderLen)
	}
	if string(p[:8]) != connMagic {
		return nil, 0, fmt.Errorf("%w: connection block magic %q", ErrBadMagic, p[:8])
	}
	nl, nc := uint64(le.Uint32(p[8:])), uint64(le.Uint32(p[12:]))
	if nl*4+nc*connRecordLen > uint64(len(p)-connHeaderLen) {
		return nil, 0, fmt.Errorf("%w: %d listeners and %d connections do not fit in %d bytes", ErrCorrupt, nl, nc, len(p))
	}
	cs := &ConnState{}
	off := connHeaderLen
	seen := map[task.SocketID]bool{}
	id := func(v uint32) (task.SocketID, error) {
		s := task.SocketID(v)
		if s == 0 || seen[s] {
			return 0, fmt.Errorf("%w: socket ID %d at offset %#x is zero or repeated", ErrCorrupt, v, off)
		}
		seen[s] = true
		return s, nil
	}
	for i := uint64(0); i < nl; i++ {
		s, err := id(le.Uint32(p[off:]))
		if err != nil {
			return nil, 0, err
		}
		if i > 0 && s <= cs.Listeners[i-1] {
			return nil, 0, fmt.Errorf("%w: listener IDs not ascending at offset %#x", ErrCorrupt, off)
		}
		cs.Listeners = append(cs.Listeners, s)
		off += 4
	}
	for i := uint64(0); i < nc; i++ {
		if len(p)-off < connRecordLen {
			return nil, 0, fmt.Errorf("%w: connection %d at offset %#x: %d bytes left, a record needs %d", ErrCorrupt, i, off, len(p)-off, connRecordLen)
		}
		q := p[off:]
		s, err := id(le.Uint32(q))
		if err != nil {
			return nil, 0, err
		}
		if i > 0 && s <= cs.Conns[i-1].ID {
			return nil, 0, fmt.Errorf("%w: connection IDs not ascending at offset %#x", ErrCorrupt, off)
		}
		if v := le.Uint32(q[4:]); v != 0 {
			return nil, 0, fmt.Errorf("%w: connection %d: reserved field %#x", ErrCorrupt, i, v)
		}
		discard := int64(le.Uint64(q[8:]))
		np, nu := uint64(le.Uint32(q[16:])), uint64(le.Uint32(q[20:]))
		if discard < 0 || discard > maxDataLen+2 || np > maxConnPending || nu > maxConnPending || np+nu > uint64(len(q)-connRecordLen) {
			return nil, 0, fmt.Errorf("%w: connection %d at offset %#x: discard %d, pending %d, unwritten %d (%d bytes left)",
				ErrCorrupt, i, off, discard, np, nu, len(q)-connRecordLen)
		}
		b := connRecordLen
		c := ConnRecord{ID: s, Discard: discard}
		if np > 0 {
			c.Pending = q[b : b+int(np) : b+int(np)]
		}
		if nu > 0 {
			c.Unwritten = q[b+int(np) : b+int(np+nu) : b+int(np+nu)]
		}
		cs.Conns = append(cs.Conns, c)
		off += connRecordLen + int(np+nu)
	}
	return cs, off, nil
}
