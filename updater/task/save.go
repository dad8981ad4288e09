package task

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/molt-os/molt/updater/handoff"
)

// SaveResult is one task's part of a Save.
type SaveResult struct {
	Name     string
	ID       uint32
	Version  uint32 // the schema version written
	Bytes    int    // the task's own bytes (without the 8-byte envelope)
	Sockets  int
	Duration time.Duration
}

// SaveReport is the outcome of Save, as plain data for the update report.
type SaveReport struct {
	Tasks        []SaveResult
	TableBytes   int // the process-table payload
	StateBytes   int // all task-state payloads
	Elapsed      time.Duration
	ProcessTable ProcessTable // what was written
}

// chooseVersion picks the schema version to write for a task: its current
// one, or the newest the target reads if that is older.
func chooseVersion(spec Spec, targets Targets) (uint32, error) {
	v := spec.Version
	r, ok := targets[spec.Name]
	if !ok {
		return v, nil
	}
	if r.Newest < v {
		v = r.Newest
	}
	if v < r.Oldest || v < 1 {
		return 0, fmt.Errorf("the target reads %v, this task writes v%d: no version in common", r, spec.Version)
	}
	return v, nil
}

// Save writes the process table (a critical process-table section) and one
// task-state section per task into enc. Every task must be quiesced
// (QuiesceAll) or stopped; stopped tasks get an entry without state.
//
// Each task writes its current schema version, or, when targets says the
// image being updated to reads only older ones, the newest of those through
// VersionSaver.SaveVersion; a task that cannot write a version the target
// reads fails the Save with an error naming both.
//
// All states are gathered before anything is added to enc, so a task's
// failure leaves enc untouched. An error from enc itself (a section does
// not fit) leaves it partly written: abandon it (its header has no magic
// until Finish). Either way the caller aborts the update and calls
// ResumeAll.
func (t *Table) Save(enc *handoff.Encoder, targets Targets) (*SaveReport, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	begin := time.Now()
	rep := &SaveReport{}
	type saved struct {
		payload []byte
	}
	states := make([]saved, 0, len(t.tasks))
	owner := map[SocketID]string{}
	for _, e := range t.tasks {
		ent := Entry{Spec: e.spec}
		switch e.status {
		case statusQuiesced:
		case statusStopped, statusNew, statusFresh:
			rep.ProcessTable.Entries = append(rep.ProcessTable.Entries, ent)
			continue
		default:
			return nil, &Error{Task: e.spec.Name, Op: "save", Err: fmt.Errorf("task is %v, not quiesced", e.status)}
		}
		v, err := chooseVersion(e.spec, targets)
		if err != nil {
			return nil, &Error{Task: e.spec.Name, Op: "save", Err: err}
		}
		var buf bytes.Buffer
		buf.Write(make([]byte, tsHeader))
		start := time.Now()
		if v == e.spec.Version {
			err = e.task.Save(&buf)
		} else if vs, ok := e.task.(VersionSaver); ok {
			err = vs.SaveVersion(&buf, v)
		} else {
			err = fmt.Errorf("the target reads %v and this task writes only v%d (it has no SaveVersion)", targets[e.spec.Name], e.spec.Version)
		}
		d := time.Since(start)
		if err != nil {
			return nil, &Error{Task: e.spec.Name, Op: "save", Err: fmt.Errorf("v%d: %w", v, err)}
		}
		if so, ok := e.task.(SocketOwner); ok {
			ent.Sockets = slices.Compact(slices.Sorted(slices.Values(so.Sockets())))
		}
		for _, s := range ent.Sockets {
			if s == 0 {
				return nil, &Error{Task: e.spec.Name, Op: "save", Err: errors.New("reports socket ID 0")}
			}
			if o, dup := owner[s]; dup {
				return nil, &Error{Task: e.spec.Name, Op: "save", Err: fmt.Errorf("socket %d is also owned by task %q", s, o)}
			}
			owner[s] = e.spec.Name
		}
		ent.Saved = v
		p := buf.Bytes()
		le.PutUint32(p[0:], e.spec.ID)
		states = append(states, saved{payload: p})
		rep.ProcessTable.Entries = append(rep.ProcessTable.Entries, ent)
		rep.Tasks = append(rep.Tasks, SaveResult{Name: e.spec.Name, ID: e.spec.ID, Version: v,
			Bytes: len(p) - tsHeader, Sockets: len(ent.Sockets), Duration: d})
	}
	pt, err := rep.ProcessTable.Append(nil)
	if err != nil {
		return nil, fmt.Errorf("task: save: %w", err)
	}
	if err := enc.Add(handoff.TypeProcessTable, ProcessTableVersion, handoff.SectionCritical, pt); err != nil {
		return nil, fmt.Errorf("task: save: %w", err)
	}
	rep.TableBytes = len(pt)
	for i, s := range states {
		if err := enc.Add(handoff.TypeTaskState, TaskStateVersion, 0, s.payload); err != nil {
			return nil, &Error{Task: rep.Tasks[i].Name, Op: "save", Err: err}
		}
		rep.StateBytes += len(s.payload)
	}
	rep.Elapsed = time.Since(begin)
	return rep, nil
}

// Outcome says what became of one task in Restore.
type Outcome uint8

// The outcomes.
const (
	// Restored: its state was restored; Start resumes it.
	Restored Outcome = iota + 1
	// New: the previous kernel had no such task; Start starts it fresh.
	// Not an error.
	New
	// Fresh: its state could not be restored (Err says why) and its policy
	// is PolicyFresh: Start starts it fresh with its sockets.
	Fresh
	// Stopped: its state could not be restored and its policy is
	// PolicyStop or PolicyRollback: it stays stopped.
	Stopped
)

func (o Outcome) String() string {
	switch o {
	case Restored:
		return "restored"
	case New:
		return "new"
	case Fresh:
		return "fresh"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// RestoreResult is one task's part of a Restore.
type RestoreResult struct {
	Name        string
	ID          uint32
	Outcome     Outcome
	FromVersion uint32 // the saved schema version (0 if none)
	Bytes       int    // the saved state's size
	Sockets     []SocketID
	Duration    time.Duration // the task's Restore call
	Err         error         // why the state was not restored (Fresh, Stopped)
}

// RestoreReport is the outcome of Restore, as plain data for the update
// report.
type RestoreReport struct {
	Tasks                         []RestoreResult // one per registered task, in order
	Restored, New, Fresh, Stopped int
	// Orphans are tasks of the previous kernel that this one does not
	// have. Their sockets belong to nobody now: the caller closes them.
	Orphans []Entry
	// Rollback is set when a task with PolicyRollback lost its state: the
	// caller should roll back to the previous image.
	Rollback bool
	// Err joins every problem: process-table errors and each task's Err.
	Err     error
	Elapsed time.Duration
}

// Restore restores the tasks from the sections of a handoff (the output of
// Registry.DecodeAll, with RegisterSections registered). It matches every
// registered task with the previous kernel's entry of the same ID and
// name, checks the saved schema version against the task's Spec, and
// calls Restore with it. A task whose state is missing, newer or older than
// it reads, or refused by its Restore, is handled by its policy and its
// result says why. Call Start afterwards to run them.
//
// Restore applies only to tasks not started yet; call it once, before
// Start, in the new kernel.
func (t *Table) Restore(sections []handoff.Decoded) *RestoreReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	begin := time.Now()
	rep := &RestoreReport{}
	var errs []error

	var pt *ProcessTable
	var ptErr error
	tables := 0
	states := map[uint32][]byte{}
	dup := map[uint32]bool{}
	for _, d := range sections {
		switch d.Section.Type {
		case handoff.TypeProcessTable:
			tables++
			switch {
			case tables > 1:
				ptErr = fmt.Errorf("task: restore: more than one process-table section (another at %v)", d.Section)
				pt = nil
			case d.Err != nil:
				ptErr = fmt.Errorf("task: restore: process table unusable: %w", d.Err)
			default:
				v, ok := d.Value.(ProcessTable)
				if !ok {
					ptErr = fmt.Errorf("task: restore: %v decoded to %T, not a ProcessTable (is RegisterSections registered?)", d.Section, d.Value)
					break
				}
				pt = &v
			}
		case handoff.TypeTaskState:
			if d.Err != nil {
				errs = append(errs, fmt.Errorf("task: restore: %w", d.Err))
				continue
			}
			s, ok := d.Value.(State)
			if !ok {
				errs = append(errs, fmt.Errorf("task: restore: %v decoded to %T, not a State", d.Section, d.Value))
				continue
			}
			if _, seen := states[s.ID]; seen {
				dup[s.ID] = true
			}
			states[s.ID] = s.Data
		}
	}
	if pt == nil && ptErr == nil {
		ptErr = errNoTable
	}
	if ptErr != nil {
		errs = append(errs, ptErr)
	}
	t.prev = pt

	matched := map[uint32]bool{}
	for _, e := range t.tasks {
		if e.status != statusNew {
			continue
		}
		r := RestoreResult{Name: e.spec.Name, ID: e.spec.ID}
		fail := func(err error) {
			r.Err = &Error{Task: e.spec.Name, Op: "restore", Err: err}
		}
		var ent Entry
		found := false
		if pt != nil {
			for _, pe := range pt.Entries {
				if pe.ID == e.spec.ID || pe.Name == e.spec.Name {
					ent, found = pe, true
					break
				}
			}
		}
		switch {
		case ptErr != nil:
			fail(fmt.Errorf("no usable process table"))
		case !found:
			r.Outcome = New
		case ent.ID != e.spec.ID || ent.Name != e.spec.Name:
			matched[ent.ID] = true
			fail(fmt.Errorf("the previous kernel's task %q has ID %d, this kernel's %q has ID %d; not the same task", ent.Name, ent.ID, e.spec.Name, e.spec.ID))
			r.Sockets = ent.Sockets
		default:
			matched[ent.ID] = true
			r.Sockets, r.FromVersion = ent.Sockets, ent.Saved
			data, have := states[ent.ID]
			r.Bytes = len(data)
			switch {
			case ent.Saved == 0:
				fail(errors.New("the previous kernel saved no state for it"))
			case ent.Saved > e.spec.Version:
				fail(fmt.Errorf("saved state v%d is newer than this kernel reads (%v)", ent.Saved, Range{e.spec.Oldest, e.spec.Version}))
			case ent.Saved < e.spec.Oldest:
				fail(fmt.Errorf("saved state v%d is older than this kernel reads (%v)", ent.Saved, Range{e.spec.Oldest, e.spec.Version}))
			case dup[ent.ID]:
				fail(fmt.Errorf("more than one task-state section for ID %d", ent.ID))
			case !have:
				fail(fmt.Errorf("its task-state section (v%d) is missing", ent.Saved))
			default:
				start := time.Now()
				err := e.task.Restore(bytes.NewReader(data), ent.Saved)
				r.Duration = time.Since(start)
				if err != nil {
					fail(fmt.Errorf("v%d, %d bytes: %w", ent.Saved, len(data), err))
				} else {
					r.Outcome = Restored
				}
			}
		}
		switch {
		case r.Outcome == Restored:
			e.status = statusRestored
			rep.Restored++
		case r.Outcome == New:
			rep.New++ // stays statusNew: Start(nil)
		case e.spec.Policy == PolicyFresh:
			r.Outcome = Fresh
			e.status, e.sockets = statusFresh, r.Sockets
			rep.Fresh++
		default:
			r.Outcome = Stopped
			e.status = statusStopped
			rep.Stopped++
			if e.spec.Policy == PolicyRollback {
				rep.Rollback = true
			}
		}
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
		rep.Tasks = append(rep.Tasks, r)
	}
	if pt != nil {
		for _, pe := range pt.Entries {
			if !matched[pe.ID] {
				rep.Orphans = append(rep.Orphans, pe)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(states)) {
		if pt == nil {
			break
		}
		if _, ok := pt.Find(id); !ok {
			errs = append(errs, fmt.Errorf("task: restore: a task-state section for ID %d, which the process table does not list", id))
		}
	}
	rep.Err = errors.Join(errs...)
	rep.Elapsed = time.Since(begin)
	return rep
}

var errNoTable = errors.New("task: restore: the handoff has no process-table section")
