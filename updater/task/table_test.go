package task

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRegisterValidation(t *testing.T) {
	tab := NewTable()
	mustRegister(t, tab, Spec{Name: "kv", ID: 1, Version: 2, Oldest: 1}, &fakeTask{})
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "", ID: 2, Version: 1}, "length 0"},
		{Spec{Name: "Bad Name", ID: 2, Version: 1}, "only a-z"},
		{Spec{Name: "x", ID: 0, Version: 1}, "ID 0"},
		{Spec{Name: "x", ID: 2, Version: 0}, "versions"},
		{Spec{Name: "x", ID: 2, Version: 1, Oldest: 2}, "versions 2..1"},
		{Spec{Name: "x", ID: 2, Version: 1, Policy: 9}, "policy(9)"},
		{Spec{Name: "kv", ID: 2, Version: 1}, "clashes"},
		{Spec{Name: "y", ID: 1, Version: 1}, "clashes"},
	} {
		wantErrContains(t, tab.Register(tt.spec, &fakeTask{}), tt.want)
	}
	if got := tab.Specs(); len(got) != 1 || got[0].Policy != PolicyFresh {
		t.Errorf("Specs = %+v; want the one kv spec with the default policy", got)
	}
}

func TestColdStart(t *testing.T) {
	tab := NewTable()
	a, b := &fakeTask{}, &fakeTask{startErr: errors.New("no port")}
	mustRegister(t, tab, Spec{Name: "a", ID: 1, Version: 1}, a)
	mustRegister(t, tab, Spec{Name: "b", ID: 2, Version: 1}, b)
	res, err := tab.Start()
	wantErrContains(t, err, `task "b": start: no port`)
	if len(res) != 2 || res[0].Err != nil || res[1].Err == nil {
		t.Errorf("Start results = %+v", res)
	}
	if !a.isRunning() || b.isRunning() {
		t.Errorf("running: a %v, b %v; want a only", a.isRunning(), b.isRunning())
	}
	// b is stopped: a later update leaves it out of the quiesce.
	if _, err := tab.QuiesceAll(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got := b.Calls(); slices.Contains(got, "quiesce") {
		t.Errorf("stopped task was quiesced: %v", got)
	}
}

func TestQuiesceAllConcurrentAndTimed(t *testing.T) {
	tab := NewTable()
	var tasks []*fakeTask
	for i, d := range []time.Duration{40 * time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond} {
		f := &fakeTask{quiesceDelay: d}
		tasks = append(tasks, f)
		mustRegister(t, tab, Spec{Name: string(rune('a' + i)), ID: uint32(i + 1), Version: 1}, f)
	}
	tab.Start()
	rep, err := tab.QuiesceAll(context.Background(), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Aborted || len(rep.Tasks) != 3 || rep.Timeout != 500*time.Millisecond {
		t.Fatalf("report = %+v", rep)
	}
	for i, r := range rep.Tasks {
		if r.Err != nil || r.Duration < tasks[i].quiesceDelay {
			t.Errorf("task %s: %+v; want no error and at least %v", r.Name, r, tasks[i].quiesceDelay)
		}
	}
	// Concurrent: the whole took about the longest, not the sum.
	if rep.Elapsed >= 85*time.Millisecond {
		t.Errorf("Elapsed %v; the tasks were not quiesced concurrently", rep.Elapsed)
	}
	for _, f := range tasks {
		if f.isRunning() {
			t.Error("a task still runs after QuiesceAll")
		}
	}
	res, err := tab.ResumeAll()
	if err != nil || len(res) != 3 {
		t.Fatalf("ResumeAll = %+v, %v", res, err)
	}
	for _, f := range tasks {
		if !f.isRunning() {
			t.Error("a task is not running after ResumeAll")
		}
	}
}

func TestQuiesceDefaultDeadline(t *testing.T) {
	tab := NewTable()
	mustRegister(t, tab, Spec{Name: "stuck", ID: 1, Version: 1}, &fakeTask{stuck: true})
	tab.Start()
	start := time.Now()
	rep, err := tab.QuiesceAll(context.Background(), 0)
	wantErrContains(t, err, `task "stuck": quiesce: deadline 200ms exceeded: fake: 1 request in flight`)
	if d := time.Since(start); d < DefaultQuiesceTimeout || d > DefaultQuiesceTimeout+time.Second {
		t.Errorf("QuiesceAll took %v; want about %v", d, DefaultQuiesceTimeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if !rep.Aborted || rep.Timeout != DefaultQuiesceTimeout {
		t.Errorf("report = %+v", rep)
	}
}

// TestQuiesceDeadlineAbort: one task never reaches its safe point. The
// update is aborted at the deadline, the error names that task only, and
// every other task is resumed and serving again.
func TestQuiesceDeadlineAbort(t *testing.T) {
	tab := NewTable()
	good1, stuck, good2 := &fakeTask{}, &fakeTask{stuck: true}, &fakeTask{quiesceDelay: 5 * time.Millisecond}
	mustRegister(t, tab, Spec{Name: "kv", ID: 1, Version: 1}, stuck)
	mustRegister(t, tab, Spec{Name: "echo", ID: 2, Version: 1}, good1)
	mustRegister(t, tab, Spec{Name: "quake", ID: 3, Version: 1}, good2)
	tab.Start()
	rep, err := tab.QuiesceAll(context.Background(), 50*time.Millisecond)
	wantErrContains(t, err, `task "kv": quiesce: deadline 50ms exceeded`)
	if strings.Contains(err.Error(), `"echo"`) || strings.Contains(err.Error(), `"quake"`) {
		t.Errorf("error %q names tasks that quiesced in time", err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Task != "kv" || te.Op != "quiesce" {
		t.Errorf("errors.As(*Error) = %+v", te)
	}
	if !rep.Aborted || len(rep.Resumed) != 3 {
		t.Fatalf("report = %+v; want aborted with 3 resumes", rep)
	}
	for _, f := range []*fakeTask{good1, stuck, good2} {
		if !f.isRunning() {
			t.Errorf("task not running after the abort: %v", f.Calls())
		}
		if c := f.Calls(); c[len(c)-1] != "resume" {
			t.Errorf("last call %v; want resume", c)
		}
	}
	// The table is consistent: a second attempt can run (and here succeed).
	stuck.stuck = false
	if _, err := tab.QuiesceAll(context.Background(), time.Second); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
}

// TestQuiesceFailureCancelsOthers: a task that fails at once aborts the
// round without waiting for the deadline.
func TestQuiesceFailureCancelsOthers(t *testing.T) {
	tab := NewTable()
	slow, bad := &fakeTask{quiesceDelay: 10 * time.Second}, &fakeTask{quiesceErr: errors.New("device busy")}
	mustRegister(t, tab, Spec{Name: "slow", ID: 1, Version: 1}, slow)
	mustRegister(t, tab, Spec{Name: "bad", ID: 2, Version: 1}, bad)
	tab.Start()
	start := time.Now()
	_, err := tab.QuiesceAll(context.Background(), 5*time.Second)
	wantErrContains(t, err, `task "bad": quiesce: device busy`)
	if d := time.Since(start); d > time.Second {
		t.Errorf("abort took %v; the failure should cancel the others at once", d)
	}
	if !slow.isRunning() || !bad.isRunning() {
		t.Error("tasks not resumed")
	}
}

// TestQuiesceHungTask: a task that ignores its context is reported after
// the grace period and resumed once its Quiesce returns.
func TestQuiesceHungTask(t *testing.T) {
	tab := NewTable()
	hung := &fakeTask{hang: make(chan struct{})}
	ok := &fakeTask{}
	mustRegister(t, tab, Spec{Name: "hung", ID: 1, Version: 1}, hung)
	mustRegister(t, tab, Spec{Name: "ok", ID: 2, Version: 1}, ok)
	tab.Start()
	start := time.Now()
	_, err := tab.QuiesceAll(context.Background(), 40*time.Millisecond)
	wantErrContains(t, err, `task "hung": quiesce: deadline 40ms exceeded; Quiesce had not returned`)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("QuiesceAll took %v with a hung task", d)
	}
	if !ok.isRunning() {
		t.Error("the healthy task was not resumed")
	}
	// Still quiescing: another attempt is refused rather than piling up.
	_, err = tab.QuiesceAll(context.Background(), 40*time.Millisecond)
	wantErrContains(t, err, `task "hung": quiesce: still quiescing`)
	close(hung.hang)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(hung.Calls(), "resume") {
		if time.Now().After(deadline) {
			t.Fatal("hung task never resumed after its Quiesce returned")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQuiesceParentContext(t *testing.T) {
	tab := NewTable()
	mustRegister(t, tab, Spec{Name: "a", ID: 1, Version: 1}, &fakeTask{stuck: true})
	tab.Start()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err := tab.QuiesceAll(ctx, 10*time.Second)
	wantErrContains(t, err, `task "a": quiesce: fake: 1 request in flight: context canceled`)
}
