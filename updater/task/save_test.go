package task

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/molt-os/molt/updater/handoff"
)

// TestSaveRestore: the whole path through a real handoff region: two tasks
// saved by one table, restored by another, resumed with their sockets.
func TestSaveRestore(t *testing.T) {
	old := NewTable()
	kv := &fakeTask{state: "items", version: 2, sockets: []SocketID{7, 3, 5, 3}}
	echo := &fakeTask{state: "", version: 1, sockets: []SocketID{4}}
	mustRegister(t, old, Spec{Name: "kv", ID: 1, Version: 2, Oldest: 1}, kv)
	mustRegister(t, old, Spec{Name: "echo", ID: 2, Version: 1, Policy: PolicyStop}, echo)
	old.Start()
	ds, srep := handOff(t, old, nil)
	if len(srep.Tasks) != 2 || srep.Tasks[0].Version != 2 || srep.Tasks[0].Sockets != 3 || srep.Tasks[0].Bytes != len("v2:items") {
		t.Errorf("save report = %+v", srep.Tasks)
	}
	if got := srep.ProcessTable.Entries[0].Sockets; !slices.Equal(got, []SocketID{3, 5, 7}) {
		t.Errorf("kv sockets in the table = %v; want sorted and deduplicated", got)
	}

	nt := NewTable()
	kv2, echo2 := &fakeTask{}, &fakeTask{}
	mustRegister(t, nt, Spec{Name: "kv", ID: 1, Version: 2, Oldest: 1}, kv2)
	mustRegister(t, nt, Spec{Name: "echo", ID: 2, Version: 1}, echo2)
	rep := nt.Restore(ds)
	if rep.Err != nil || rep.Restored != 2 || len(rep.Orphans) != 0 || rep.Rollback {
		t.Fatalf("restore report = %+v", rep)
	}
	if r := rep.Tasks[0]; r.Outcome != Restored || r.FromVersion != 2 || r.Bytes != 8 || !slices.Equal(r.Sockets, []SocketID{3, 5, 7}) {
		t.Errorf("kv result = %+v", r)
	}
	if kv2.restored != "v2:items" || kv2.restoredFrom != 2 || echo2.restored != "v1:" {
		t.Errorf("restored %q v%d, %q", kv2.restored, kv2.restoredFrom, echo2.restored)
	}
	if slices.Contains(kv2.Calls(), "resume") {
		t.Error("Restore resumed the task; Start should")
	}
	res, err := nt.Start()
	if err != nil || len(res) != 2 || res[0].Op != "resume" {
		t.Fatalf("Start = %+v, %v", res, err)
	}
	if !kv2.isRunning() || !echo2.isRunning() {
		t.Error("restored tasks not running")
	}
	if p := nt.Previous(); p == nil || len(p.Entries) != 2 || p.Entries[1].Policy != PolicyStop {
		t.Errorf("Previous = %+v", p)
	}
}

// TestVersionSkew: a saved state newer or older than the reader reads is
// refused with a clear error and the task starts fresh with its sockets;
// an older one it reads is passed to Restore with its version (migration).
func TestVersionSkew(t *testing.T) {
	old := NewTable()
	mustRegister(t, old, Spec{Name: "kv", ID: 1, Version: 3, Oldest: 1}, &fakeTask{state: "s", version: 3, sockets: []SocketID{9}})
	mustRegister(t, old, Spec{Name: "echo", ID: 2, Version: 1}, &fakeTask{state: "e", version: 1})
	mustRegister(t, old, Spec{Name: "quake", ID: 3, Version: 1}, &fakeTask{state: "q", version: 1})
	old.Start()
	ds, _ := handOff(t, old, nil)

	nt := NewTable()
	kv, echo, quake := &fakeTask{}, &fakeTask{}, &fakeTask{}
	mustRegister(t, nt, Spec{Name: "kv", ID: 1, Version: 2, Oldest: 1}, kv)     // behind the writer
	mustRegister(t, nt, Spec{Name: "echo", ID: 2, Version: 2, Oldest: 2}, echo) // dropped v1
	mustRegister(t, nt, Spec{Name: "quake", ID: 3, Version: 2, Oldest: 1}, quake)
	rep := nt.Restore(ds)
	wantErrContains(t, rep.Err,
		`task "kv": restore: saved state v3 is newer than this kernel reads (v1..v2)`,
		`task "echo": restore: saved state v1 is older than this kernel reads (v2)`)
	if rep.Restored != 1 || rep.Fresh != 2 {
		t.Errorf("report = %+v", rep)
	}
	if quake.restoredFrom != 1 || quake.restored != "v1:q" {
		t.Errorf("quake restored from v%d %q; want v1 (the task migrates)", quake.restoredFrom, quake.restored)
	}
	if slices.Contains(kv.Calls(), "restore v3") {
		t.Error("Restore was called with a version the task does not read")
	}
	nt.Start()
	if !slices.Equal(kv.started, []SocketID{9}) || !kv.isRunning() {
		t.Errorf("kv started fresh with %v; want its sockets [9]", kv.started)
	}
}

// TestSaveOlderVersion: for a target that reads only an older schema the
// table asks the task for that version, and says clearly when it cannot.
func TestSaveOlderVersion(t *testing.T) {
	mk := func(older bool) (*Table, *fakeTask) {
		tab := NewTable()
		f := &fakeTask{state: "s", version: 2}
		var tk Task = f
		if older {
			tk = olderTask{f}
		}
		mustRegister(t, tab, Spec{Name: "kv", ID: 1, Version: 2, Oldest: 1}, tk)
		tab.Start()
		return tab, f
	}
	// A target that reads v1 only: SaveVersion(1).
	tab, f := mk(true)
	ds, rep := handOff(t, tab, Targets{"kv": {1, 1}})
	if rep.Tasks[0].Version != 1 || !slices.Contains(f.Calls(), "save v1") {
		t.Errorf("saved v%d, calls %v; want SaveVersion(1)", rep.Tasks[0].Version, f.Calls())
	}
	nt := NewTable()
	v1 := &fakeTask{}
	mustRegister(t, nt, Spec{Name: "kv", ID: 1, Version: 1}, v1)
	if r := nt.Restore(ds); r.Err != nil || v1.restored != "v1:s" {
		t.Errorf("the v1 reader got %q, %v", v1.restored, r.Err)
	}
	// Reading newer than we write: the current version.
	tab, f = mk(true)
	if _, rep := handOff(t, tab, Targets{"kv": {1, 5}, "other": {1, 1}}); rep.Tasks[0].Version != 2 || !slices.Contains(f.Calls(), "save") {
		t.Errorf("saved v%d; want v2", rep.Tasks[0].Version)
	}
	// No SaveVersion: refused, encoder untouched.
	tab, _ = mk(false)
	tab.QuiesceAll(t.Context(), 0)
	enc, _ := registry(t).NewEncoder(make([]byte, 4096), handoff.Header{Generation: 1})
	_, err := tab.Save(enc, Targets{"kv": {1, 1}})
	wantErrContains(t, err, `task "kv": save: v1: the target reads v1 and this task writes only v2 (it has no SaveVersion)`)
	if enc.Len() != handoff.HeaderSize {
		t.Errorf("a failed Save wrote %d bytes into the encoder", enc.Len()-handoff.HeaderSize)
	}
	// No common version.
	_, err = tab.Save(enc, Targets{"kv": {3, 4}})
	wantErrContains(t, err, `task "kv": save: the target reads v3..v4, this task writes v2: no version in common`)
	// Not quiesced.
	tab.ResumeAll()
	_, err = tab.Save(enc, nil)
	wantErrContains(t, err, `task "kv": save: task is running, not quiesced`)
}

func TestSaveSocketConflict(t *testing.T) {
	tab := NewTable()
	mustRegister(t, tab, Spec{Name: "a", ID: 1, Version: 1}, &fakeTask{version: 1, sockets: []SocketID{4}})
	mustRegister(t, tab, Spec{Name: "b", ID: 2, Version: 1}, &fakeTask{version: 1, sockets: []SocketID{5, 4}})
	tab.Start()
	tab.QuiesceAll(t.Context(), 0)
	enc, _ := registry(t).NewEncoder(make([]byte, 4096), handoff.Header{Generation: 1})
	_, err := tab.Save(enc, nil)
	wantErrContains(t, err, `task "b": save: socket 4 is also owned by task "a"`)
}

// TestRestoreOutcomes covers every way a task's state can be unusable, and
// what each policy makes of it.
func TestRestoreOutcomes(t *testing.T) {
	old := NewTable()
	mustRegister(t, old, Spec{Name: "broken", ID: 1, Version: 1}, &fakeTask{version: 1, sockets: []SocketID{1, 2}})
	mustRegister(t, old, Spec{Name: "stop", ID: 2, Version: 1}, &fakeTask{version: 1, sockets: []SocketID{3}})
	mustRegister(t, old, Spec{Name: "crit", ID: 3, Version: 1}, &fakeTask{version: 1})
	mustRegister(t, old, Spec{Name: "gone", ID: 4, Version: 1}, &fakeTask{version: 1, sockets: []SocketID{8}})
	mustRegister(t, old, Spec{Name: "renamed", ID: 5, Version: 1}, &fakeTask{version: 1})
	mustRegister(t, old, Spec{Name: "lost", ID: 6, Version: 1}, &fakeTask{version: 1})
	old.Start()
	ds, _ := handOff(t, old, nil)
	// Drop lost's task-state section (the last one).
	ds = ds[:len(ds)-1]

	nt := NewTable()
	bad := errors.New("checksum mismatch")
	broken, stop, crit, fresh, renamed, lost := &fakeTask{restoreErr: bad}, &fakeTask{restoreErr: bad},
		&fakeTask{restoreErr: bad}, &fakeTask{}, &fakeTask{}, &fakeTask{}
	mustRegister(t, nt, Spec{Name: "broken", ID: 1, Version: 1}, broken)
	mustRegister(t, nt, Spec{Name: "stop", ID: 2, Version: 1, Policy: PolicyStop}, stop)
	mustRegister(t, nt, Spec{Name: "crit", ID: 3, Version: 1, Policy: PolicyRollback}, crit)
	mustRegister(t, nt, Spec{Name: "newtask", ID: 9, Version: 1}, fresh)
	mustRegister(t, nt, Spec{Name: "other", ID: 5, Version: 1}, renamed)
	mustRegister(t, nt, Spec{Name: "lost", ID: 6, Version: 1}, lost)
	rep := nt.Restore(ds)
	wantErrContains(t, rep.Err,
		`task "broken": restore: v1, 3 bytes: checksum mismatch`,
		`task "stop": restore: v1, 3 bytes: checksum mismatch`,
		`task "other": restore: the previous kernel's task "renamed" has ID 5, this kernel's "other" has ID 5; not the same task`,
		`task "lost": restore: its task-state section (v1) is missing`)
	want := map[string]Outcome{"broken": Fresh, "stop": Stopped, "crit": Stopped, "newtask": New, "other": Fresh, "lost": Fresh}
	for _, r := range rep.Tasks {
		if r.Outcome != want[r.Name] {
			t.Errorf("%s: outcome %v; want %v (%v)", r.Name, r.Outcome, want[r.Name], r.Err)
		}
		if r.Name == "newtask" && r.Err != nil {
			t.Errorf("a task new in this kernel is not an error: %v", r.Err)
		}
	}
	if !rep.Rollback || rep.Fresh != 3 || rep.Stopped != 2 || rep.New != 1 || rep.Restored != 0 {
		t.Errorf("report = %+v", rep)
	}
	if len(rep.Orphans) != 1 || rep.Orphans[0].Name != "gone" || !slices.Equal(rep.Orphans[0].Sockets, []SocketID{8}) {
		t.Errorf("orphans = %+v; want gone with socket 8", rep.Orphans)
	}
	nt.Start()
	if !slices.Equal(broken.started, []SocketID{1, 2}) || !broken.isRunning() {
		t.Errorf("broken started with %v; want its sockets", broken.started)
	}
	if stop.isRunning() || crit.isRunning() {
		t.Error("a task with PolicyStop/PolicyRollback was started")
	}
	if !fresh.isRunning() || fresh.started != nil {
		t.Errorf("new task: running %v, sockets %v", fresh.isRunning(), fresh.started)
	}
}

func TestRestoreWithoutProcessTable(t *testing.T) {
	nt := NewTable()
	f := &fakeTask{}
	mustRegister(t, nt, Spec{Name: "kv", ID: 1, Version: 1}, f)
	state := handoff.Decoded{Section: handoff.Section{Type: handoff.TypeTaskState}, Value: State{ID: 1, Data: []byte("x")}}
	rep := nt.Restore([]handoff.Decoded{state})
	wantErrContains(t, rep.Err, "the handoff has no process-table section", `task "kv": restore: no usable process table`)
	if rep.Fresh != 1 || slices.ContainsFunc(f.Calls(), func(c string) bool { return c == "restore v1" }) {
		t.Errorf("report %+v, calls %v", rep, f.Calls())
	}
	// A corrupt process table, as DecodeAll reports it.
	nt = NewTable()
	mustRegister(t, nt, Spec{Name: "kv", ID: 1, Version: 1}, &fakeTask{})
	bad := handoff.Decoded{Section: handoff.Section{Type: handoff.TypeProcessTable}, Err: handoff.ErrPayload}
	rep = nt.Restore([]handoff.Decoded{bad, state})
	wantErrContains(t, rep.Err, "process table unusable: malformed payload")
}

func TestRestoreUnknownStateSection(t *testing.T) {
	var pt ProcessTable
	p, _ := pt.Append(nil)
	ds := []handoff.Decoded{
		{Section: handoff.Section{Type: handoff.TypeProcessTable}, Value: mustDecodePT(t, p)},
		{Section: handoff.Section{Type: handoff.TypeTaskState}, Value: State{ID: 42}},
	}
	rep := NewTable().Restore(ds)
	wantErrContains(t, rep.Err, "a task-state section for ID 42, which the process table does not list")
}

func mustDecodePT(t *testing.T, p []byte) ProcessTable {
	t.Helper()
	pt, err := DecodeProcessTable(p)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

func TestSaveDoesNotFit(t *testing.T) {
	tab := NewTable()
	mustRegister(t, tab, Spec{Name: "big", ID: 1, Version: 1}, &fakeTask{version: 1, state: string(bytes.Repeat([]byte("x"), 8000))})
	tab.Start()
	tab.QuiesceAll(t.Context(), 0)
	enc, _ := registry(t).NewEncoder(make([]byte, 4096), handoff.Header{Generation: 1})
	_, err := tab.Save(enc, nil)
	if !errors.Is(err, handoff.ErrTooLarge) {
		t.Fatalf("Save = %v; want ErrTooLarge", err)
	}
	wantErrContains(t, err, `task "big": save:`, "does not fit")
}
