package task

import (
	"encoding/binary"
	"fmt"

	"github.com/molt-os/molt/updater/handoff"
)

var le = binary.LittleEndian

// Section versions of the two payloads this package defines. They version
// the envelope (the process table's layout, the task-state header), not a
// task's own state, whose schema version is in the process table.
const (
	ProcessTableVersion = 1
	TaskStateVersion    = 1
)

// Caps of the process-table payload. A decoder checks every count against
// them and against the bytes it has before allocating.
const (
	// MaxTasks caps the entries of a process table.
	MaxTasks = 256
	// MaxNameLen caps a task name.
	MaxNameLen = 64
	// MaxSockets caps the sockets one task may own.
	MaxSockets = 16384
	// processTableMaxLen caps the payload: far above any real table
	// (256 tasks × 1024 sockets ≈ 1 MiB), far below the region.
	processTableMaxLen = 4 << 20

	ptHeader   = 8
	entryFixed = 0x18
	tsHeader   = 8
)

// ProcessTable is the process-table section (handoff.TypeProcessTable,
// critical): one entry per task of the writing kernel, in registration
// order. It tells the reading kernel which task-state section belongs to
// which task and in which schema version it is written, which sockets each
// task owns (so that sockets of a task that cannot be restored are not
// leaked), and what the writer itself reads (so that a rollback to the
// writer can save state in a version it understands).
//
// Payload, version 1 (docs/tasks.md has the same table):
//
//	0x00  uint32  entry count (at most MaxTasks)
//	0x04  uint32  reserved, zero
//	0x08  entries, each 8-byte aligned:
//	      +0x00 uint32 task ID (nonzero, unique)
//	      +0x04 uint32 schema version the writer's task writes (its newest readable)
//	      +0x08 uint32 oldest schema version the writer's task reads (1..+0x04)
//	      +0x0c uint32 version of the saved state (1..+0x04; 0 = no task-state section)
//	      +0x10 uint8  restart policy (1 fresh, 2 stop, 3 rollback)
//	      +0x11 uint8  reserved, zero
//	      +0x12 uint16 name length (1..MaxNameLen)
//	      +0x14 uint32 socket count (at most MaxSockets)
//	      +0x18 name, zero padding to a multiple of 8,
//	            socket IDs (uint32 each, nonzero, strictly increasing),
//	            zero padding to a multiple of 8
type ProcessTable struct {
	Entries []Entry
}

// Entry is one task of a process table.
type Entry struct {
	Spec
	// Saved is the schema version of the task-state section written for
	// this task, 0 if none was written.
	Saved uint32
	// Sockets are the socket IDs the task owned at Save, ascending.
	Sockets []SocketID
}

// Find returns the entry with the given ID.
func (pt *ProcessTable) Find(id uint32) (Entry, bool) {
	for _, e := range pt.Entries {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// Targets returns what the tasks of pt's writer read: the version ranges a
// rollback to that writer must save in.
func (pt *ProcessTable) Targets() Targets {
	t := make(Targets, len(pt.Entries))
	for _, e := range pt.Entries {
		t[e.Name] = Range{Oldest: e.Oldest, Newest: e.Version}
	}
	return t
}

func pad8(n int) int { return (n + 7) &^ 7 }

// Size returns the length of the v1 payload.
func (pt *ProcessTable) Size() int {
	n := ptHeader
	for _, e := range pt.Entries {
		n += entryFixed + pad8(len(e.Name)) + pad8(4*len(e.Sockets))
	}
	return n
}

func (pt *ProcessTable) check() error {
	if len(pt.Entries) > MaxTasks {
		return fmt.Errorf("process-table: %d entries exceed the cap of %d: %w", len(pt.Entries), MaxTasks, handoff.ErrTooLarge)
	}
	ids := make(map[uint32]bool, len(pt.Entries))
	names := make(map[string]bool, len(pt.Entries))
	for i, e := range pt.Entries {
		if err := e.check(); err != nil {
			return fmt.Errorf("process-table entry %d: %w", i, err)
		}
		if ids[e.ID] || names[e.Name] {
			return fmt.Errorf("process-table entry %d: task %q (ID %d) repeats an ID or name: %w", i, e.Name, e.ID, handoff.ErrInvalid)
		}
		ids[e.ID], names[e.Name] = true, true
	}
	return nil
}

func (e *Entry) check() error {
	if err := e.Spec.check(); err != nil {
		return err
	}
	if e.Saved != 0 && (e.Saved < e.Oldest || e.Saved > e.Version) {
		// A writer saves only versions it reads itself; anything else is
		// corruption (or a bug), never a version skew.
		return fmt.Errorf("task %q: saved state v%d outside the versions it reads (%d..%d): %w", e.Name, e.Saved, e.Oldest, e.Version, handoff.ErrInvalid)
	}
	if len(e.Sockets) > MaxSockets {
		return fmt.Errorf("task %q: %d sockets exceed the cap of %d: %w", e.Name, len(e.Sockets), MaxSockets, handoff.ErrTooLarge)
	}
	for i, s := range e.Sockets {
		if s == 0 || (i > 0 && s <= e.Sockets[i-1]) {
			return fmt.Errorf("task %q: socket %d (ID %d) is zero or not above the previous one: %w", e.Name, i, s, handoff.ErrInvalid)
		}
	}
	return nil
}

// Append appends the v1 payload to dst. It refuses a table that
// DecodeProcessTable would refuse.
func (pt *ProcessTable) Append(dst []byte) ([]byte, error) {
	if err := pt.check(); err != nil {
		return dst, err
	}
	dst = le.AppendUint32(dst, uint32(len(pt.Entries)))
	dst = le.AppendUint32(dst, 0)
	for _, e := range pt.Entries {
		dst = le.AppendUint32(dst, e.ID)
		dst = le.AppendUint32(dst, e.Version)
		dst = le.AppendUint32(dst, e.Oldest)
		dst = le.AppendUint32(dst, e.Saved)
		dst = append(dst, byte(e.Policy), 0)
		dst = le.AppendUint16(dst, uint16(len(e.Name)))
		dst = le.AppendUint32(dst, uint32(len(e.Sockets)))
		dst = append(dst, e.Name...)
		dst = append(dst, make([]byte, pad8(len(e.Name))-len(e.Name))...)
		for _, s := range e.Sockets {
			dst = le.AppendUint32(dst, uint32(s))
		}
		if len(e.Sockets)%2 == 1 {
			dst = le.AppendUint32(dst, 0)
		}
	}
	return dst, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// DecodeProcessTable parses a v1 payload. Errors wrap handoff's sentinels
// (ErrTruncated, ErrTooLarge, ErrReserved, ErrInvalid) and name the entry
// and payload offset.
func DecodeProcessTable(p []byte) (ProcessTable, error) {
	if len(p) < ptHeader {
		return ProcessTable{}, fmt.Errorf("process-table payload of %d bytes cannot hold its %d-byte header: %w", len(p), ptHeader, handoff.ErrTruncated)
	}
	n := le.Uint32(p[0:])
	if v := le.Uint32(p[4:]); v != 0 {
		return ProcessTable{}, fmt.Errorf("process-table reserved field at payload offset 0x4 holds %#x: %w", v, handoff.ErrReserved)
	}
	if n > MaxTasks {
		return ProcessTable{}, fmt.Errorf("process-table: %d entries exceed the cap of %d: %w", n, MaxTasks, handoff.ErrTooLarge)
	}
	if need := int(n) * entryFixed; need > len(p)-ptHeader {
		return ProcessTable{}, fmt.Errorf("process-table: %d entries need at least %d bytes, payload has %d after its header: %w", n, need, len(p)-ptHeader, handoff.ErrTruncated)
	}
	pt := ProcessTable{Entries: make([]Entry, 0, n)}
	off := ptHeader
	for i := 0; i < int(n); i++ {
		fail := func(format string, args ...any) (ProcessTable, error) {
			return ProcessTable{}, fmt.Errorf("process-table entry %d at payload offset %#x: "+format, append([]any{i, off}, args...)...)
		}
		if len(p)-off < entryFixed {
			return fail("%d bytes left, an entry needs %d: %w", len(p)-off, entryFixed, handoff.ErrTruncated)
		}
		q := p[off:]
		e := Entry{
			Spec: Spec{
				ID:      le.Uint32(q[0x00:]),
				Version: le.Uint32(q[0x04:]),
				Oldest:  le.Uint32(q[0x08:]),
				Policy:  Policy(q[0x10]),
			},
			Saved: le.Uint32(q[0x0c:]),
		}
		if q[0x11] != 0 {
			return fail("reserved byte at +0x11 holds %#x: %w", q[0x11], handoff.ErrReserved)
		}
		nameLen, nsock := int(le.Uint16(q[0x12:])), int(le.Uint32(q[0x14:]))
		if nameLen == 0 || nameLen > MaxNameLen {
			return fail("name length %d outside 1..%d: %w", nameLen, MaxNameLen, handoff.ErrInvalid)
		}
		if nsock > MaxSockets {
			return fail("%d sockets exceed the cap of %d: %w", nsock, MaxSockets, handoff.ErrTooLarge)
		}
		name := off + entryFixed
		socks := name + pad8(nameLen)
		next := socks + pad8(4*nsock)
		if next > len(p) {
			return fail("name and %d sockets end at %#x, past the payload end %#x: %w", nsock, next, len(p), handoff.ErrTruncated)
		}
		if !allZero(p[name+nameLen:socks]) || !allZero(p[socks+4*nsock:next]) {
			return fail("nonzero padding: %w", handoff.ErrReserved)
		}
		e.Name = string(p[name : name+nameLen])
		if nsock > 0 {
			e.Sockets = make([]SocketID, nsock)
			for j := range e.Sockets {
				e.Sockets[j] = SocketID(le.Uint32(p[socks+4*j:]))
			}
		}
		if err := e.check(); err != nil {
			return fail("%w", err)
		}
		for _, prev := range pt.Entries {
			if prev.ID == e.ID || prev.Name == e.Name {
				return fail("task %q (ID %d) repeats an earlier entry's ID or name: %w", e.Name, e.ID, handoff.ErrInvalid)
			}
		}
		pt.Entries = append(pt.Entries, e)
		off = next
	}
	if off != len(p) {
		return ProcessTable{}, fmt.Errorf("process-table: %d bytes follow the last entry at payload offset %#x: %w", len(p)-off, off, handoff.ErrInvalid)
	}
	return pt, nil
}

// State is a task-state section (handoff.TypeTaskState): one task's saved
// bytes. The schema version of Data is the Saved field of the task's
// process-table entry; this envelope only says whose bytes they are.
//
// Payload, version 1:
//
//	0x00  uint32  task ID (nonzero)
//	0x04  uint32  reserved, zero
//	0x08  the task's own bytes, to the end of the payload
type State struct {
	ID uint32
	// Data aliases the decoded payload.
	Data []byte
}

// Append appends the v1 payload to dst.
func (s State) Append(dst []byte) []byte {
	dst = le.AppendUint32(dst, s.ID)
	dst = le.AppendUint32(dst, 0)
	return append(dst, s.Data...)
}

// DecodeState parses a v1 task-state payload. Data aliases p.
func DecodeState(p []byte) (State, error) {
	if len(p) < tsHeader {
		return State{}, fmt.Errorf("task-state payload of %d bytes cannot hold its %d-byte header: %w", len(p), tsHeader, handoff.ErrTruncated)
	}
	s := State{ID: le.Uint32(p[0:]), Data: p[tsHeader:len(p):len(p)]}
	if s.ID == 0 {
		return State{}, fmt.Errorf("task-state: task ID 0: %w", handoff.ErrInvalid)
	}
	if v := le.Uint32(p[4:]); v != 0 {
		return State{}, fmt.Errorf("task-state reserved field at payload offset 0x4 holds %#x: %w", v, handoff.ErrReserved)
	}
	return s, nil
}

// SectionTypes returns the two section types this package defines, for
// handoff.Registry.Register.
func SectionTypes() []handoff.SectionType {
	return []handoff.SectionType{
		{
			Type:   handoff.TypeProcessTable,
			MaxLen: processTableMaxLen,
			Codecs: []handoff.Codec{{Version: ProcessTableVersion, Decode: func(p []byte) (any, error) { return DecodeProcessTable(p) }}},
		},
		{
			Type:   handoff.TypeTaskState,
			Codecs: []handoff.Codec{{Version: TaskStateVersion, Decode: func(p []byte) (any, error) { return DecodeState(p) }}},
		},
	}
}

// RegisterSections registers SectionTypes with reg.
func RegisterSections(reg *handoff.Registry) error {
	for _, st := range SectionTypes() {
		if err := reg.Register(st); err != nil {
			return fmt.Errorf("task: %w", err)
		}
	}
	return nil
}
