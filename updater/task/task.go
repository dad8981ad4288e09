package task

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/molt-os/molt/updater/handoff"
)

// Task is a long-lived service whose state survives a kernel update
// (DESIGN §4). The table calls its methods from one goroutine at a time,
// in one of these orders:
//
//	cold boot:        Start(nil)
//	update, old side: Quiesce → Save (or SaveVersion) → the jump
//	update aborted:   Quiesce → [Save] → Resume (the task serves again)
//	update, new side: Restore → Resume, or Start(sockets) when its state is
//	                  missing or unusable and its policy says start fresh
type Task interface {
	// Start starts the task without saved state. sockets are the sockets
	// the previous kernel's process table lists for it (nil on a cold
	// boot): the task adopts them (serves its listeners, serves or closes
	// its connections) so that none is left orphaned, and opens what it
	// still lacks.
	Start(sockets []SocketID) error
	// Quiesce brings the task to a safe point: it stops mutating its state
	// and stops consuming input, and returns once it is there. It must
	// return soon after ctx ends, with an error. Whatever Quiesce returns,
	// Resume undoes it.
	Quiesce(ctx context.Context) error
	// Save writes the task's state, in the schema version its Spec says it
	// writes. It is called only after Quiesce succeeded.
	Save(w io.Writer) error
	// Restore reads state that a task of the same name wrote in schema
	// version fromVersion (between the Spec's Oldest and Version),
	// migrating it if it is older. On error the task must be as before
	// the call, so that it can still Start fresh.
	Restore(r io.Reader, fromVersion uint32) error
	// Resume makes the task serve again: after Restore (with the restored
	// state and its sockets, which it looks up by ID), or after Quiesce
	// when the update was aborted (with its state as it was).
	Resume() error
}

// VersionSaver is implemented by a task that can also write an older schema
// version of its state than its current one, for an update to an image that
// reads only that version (alternating updates, rollback). The table calls
// it instead of Save when the target reads nothing newer.
type VersionSaver interface {
	// SaveVersion writes the state in schema version v (< the current
	// one). It fails, naming the version, if it cannot; what an older
	// version cannot represent is dropped and must be documented.
	SaveVersion(w io.Writer, v uint32) error
}

// ItemCounter is implemented by a task that keeps application items (kv
// entries, say): the update report says how many it carried on with.
type ItemCounter interface {
	Items() uint64
}

// SocketOwner is implemented by a task that owns sockets. The table asks it
// at Save time, after Save, and records the IDs in the process table.
type SocketOwner interface {
	Sockets() []SocketID
}

// SocketID is a socket's stable ID in the kernel's socket table: the same
// number as netstack.SocketID, which this package does not import (it stays
// free of kernel and gVisor code so that it is tested on the host).
type SocketID uint32

// SocketTable is how a task names its sockets across an update: it keeps
// IDs, never live objects, in its saved state, and looks the objects up
// again in the new kernel. In the kernel it is a thin adapter over
// netstack.Stack (Lookup, and the ID() method of netstack's sockets).
type SocketTable interface {
	// Lookup returns the live socket with the given ID in this kernel: a
	// net.Listener, net.Conn or net.PacketConn.
	Lookup(id SocketID) (any, bool)
	// ID returns the ID of a live socket.
	ID(sock any) (SocketID, bool)
}

// SocketMap is an in-memory SocketTable for host tests: it plays the
// kernel's socket table around sockets of package net. ID registers a
// socket it has not seen (as the netstack registers every accepted
// connection), so IDs are assigned from 1 up in order of first sight.
// Safe for concurrent use.
type SocketMap struct {
	mu   sync.Mutex
	next SocketID
	byID map[SocketID]any
	ids  map[any]SocketID
}

// NewSocketMap returns an empty map.
func NewSocketMap() *SocketMap {
	return &SocketMap{next: 1, byID: map[SocketID]any{}, ids: map[any]SocketID{}}
}

// Lookup implements SocketTable.
func (m *SocketMap) Lookup(id SocketID) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	return s, ok
}

// ID implements SocketTable; it registers sock if it is new.
func (m *SocketMap) ID(sock any) (SocketID, bool) {
	if sock == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.ids[sock]; ok {
		return id, true
	}
	id := m.next
	m.next++
	m.byID[id], m.ids[sock] = sock, id
	return id, true
}

// Forget removes a socket, as closing it in the kernel would.
func (m *SocketMap) Forget(id SocketID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.byID[id]; ok {
		delete(m.ids, s)
		delete(m.byID, id)
	}
}

// Policy says what the new kernel does with a task whose state cannot be
// restored (missing, too new, malformed, or its Restore failed).
type Policy uint8

// The policies. The values are part of the process-table payload.
const (
	// PolicyFresh starts the task fresh, with its sockets: it keeps its
	// connections but loses its state.
	PolicyFresh Policy = 1
	// PolicyStop leaves the task stopped; its sockets are reported so the
	// caller can close them.
	PolicyStop Policy = 2
	// PolicyRollback asks for a rollback to the previous image (whose
	// state is still in the handoff). The table only reports it
	// (RestoreReport.Rollback); the task is left stopped.
	PolicyRollback Policy = 3
)

func (p Policy) String() string {
	switch p {
	case PolicyFresh:
		return "fresh"
	case PolicyStop:
		return "stop"
	case PolicyRollback:
		return "rollback"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// Spec describes a task to the process table.
type Spec struct {
	// Name identifies the task across images: 1 to MaxNameLen bytes of
	// [a-z0-9._-].
	Name string
	// ID is the task's stable number, nonzero, never reused for another
	// task. Restore matches a saved task by ID and name together.
	ID uint32
	// Version is the state schema version the task writes, and the newest
	// it reads. At least 1.
	Version uint32
	// Oldest is the oldest schema version the task reads (1..Version);
	// 0 means Version.
	Oldest uint32
	// Policy applies when the task's state cannot be restored; 0 means
	// PolicyFresh.
	Policy Policy
}

func (s *Spec) check() error {
	switch {
	case len(s.Name) == 0 || len(s.Name) > MaxNameLen:
		return fmt.Errorf("task name %q: length %d outside 1..%d: %w", s.Name, len(s.Name), MaxNameLen, handoff.ErrInvalid)
	case !validName(s.Name):
		return fmt.Errorf("task name %q: only a-z, 0-9, '.', '_' and '-' are allowed: %w", s.Name, handoff.ErrInvalid)
	case s.ID == 0:
		return fmt.Errorf("task %q: ID 0: %w", s.Name, handoff.ErrInvalid)
	case s.Version == 0 || s.Oldest == 0 || s.Oldest > s.Version:
		return fmt.Errorf("task %q: versions %d..%d: want 1 <= oldest <= version: %w", s.Name, s.Oldest, s.Version, handoff.ErrInvalid)
	case s.Policy < PolicyFresh || s.Policy > PolicyRollback:
		return fmt.Errorf("task %q: unknown %v: %w", s.Name, s.Policy, handoff.ErrInvalid)
	}
	return nil
}

func validName(n string) bool {
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Range is a range of schema versions, both ends included.
type Range struct{ Oldest, Newest uint32 }

func (r Range) String() string {
	if r.Oldest == r.Newest {
		return fmt.Sprintf("v%d", r.Newest)
	}
	return fmt.Sprintf("v%d..v%d", r.Oldest, r.Newest)
}

// Targets says, per task name, which schema versions the image being
// updated to reads. A nil Targets, or a task absent from it, means "save
// the current version". For a rollback it comes from the previous kernel's
// process table (ProcessTable.Targets, Table.Previous); for a forward
// update, from the new image's manifest.
type Targets map[string]Range
