package task

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultQuiesceTimeout is QuiesceAll's deadline when none is given: the
// budget for every task to reach its safe point, which clients see as part
// of the update's pause.
const DefaultQuiesceTimeout = 200 * time.Millisecond

// status is where a task is in its life cycle.
type status uint8

const (
	statusNew       status = iota // registered, never started
	statusRunning                 // started or resumed
	statusQuiescing               // Quiesce called and not returned (it overran)
	statusQuiesced                // Quiesce returned (successfully or not); Resume undoes it
	statusRestored                // Restore succeeded; Resume starts it
	statusFresh                   // its state was lost; Start(sockets) starts it
	statusStopped                 // not running, by policy or after a failed Start
)

func (s status) String() string {
	return [...]string{"new", "running", "quiescing", "quiesced", "restored", "fresh", "stopped"}[s]
}

type entry struct {
	spec    Spec
	task    Task
	status  status
	sockets []SocketID // for a fresh start: what the previous kernel listed
}

// Table is the process table: the tasks of this kernel, in registration
// order, and the update steps applied to all of them. Its methods are safe
// for concurrent use; they run one at a time.
type Table struct {
	mu sync.Mutex
	// +checklocks:mu
	tasks []*entry
	// +checklocks:mu
	prev *ProcessTable
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{} }

// Register adds a task. Spec zero fields take their defaults (Oldest =
// Version, Policy = PolicyFresh). It fails on an invalid spec or a name or
// ID already registered.
func (t *Table) Register(spec Spec, tk Task) error {
	if spec.Oldest == 0 {
		spec.Oldest = spec.Version
	}
	if spec.Policy == 0 {
		spec.Policy = PolicyFresh
	}
	if err := spec.check(); err != nil {
		return fmt.Errorf("task: register: %w", err)
	}
	if tk == nil {
		return fmt.Errorf("task: register %q: nil Task", spec.Name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.tasks {
		if e.spec.Name == spec.Name || e.spec.ID == spec.ID {
			return fmt.Errorf("task: register %q (ID %d): clashes with %q (ID %d)", spec.Name, spec.ID, e.spec.Name, e.spec.ID)
		}
	}
	if len(t.tasks) == MaxTasks {
		return fmt.Errorf("task: register %q: the table holds its maximum of %d tasks", spec.Name, MaxTasks)
	}
	t.tasks = append(t.tasks, &entry{spec: spec, task: tk})
	return nil
}

// Specs returns the registered specs, in order.
func (t *Table) Specs() []Spec {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Spec, len(t.tasks))
	for i, e := range t.tasks {
		out[i] = e.spec
	}
	return out
}

// Previous returns the process table the previous kernel handed over, as
// read by Restore; nil after a cold boot. Its Targets are what a rollback
// must save in.
func (t *Table) Previous() *ProcessTable {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.prev
}

// Error is an error of one task in one step.
type Error struct {
	Task string // the task's name
	Op   string // "start", "quiesce", "resume", "save", "restore"
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("task %q: %s: %v", e.Task, e.Op, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// StepResult is one task's outcome in Start, QuiesceAll or ResumeAll.
type StepResult struct {
	Name     string
	ID       uint32
	Op       string // "start", "resume", "quiesce"
	Duration time.Duration
	Err      error // nil on success
}

// Start starts every task that is not running: Start(nil) for a new one
// (a cold boot), Resume for a restored one, Start(its sockets) for one whose
// state was lost and whose policy is PolicyFresh. Stopped tasks stay
// stopped. A task whose Start or Resume fails is left stopped; the error
// joins every failure.
func (t *Table) Start() ([]StepResult, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []StepResult
	var errs []error
	for _, e := range t.tasks {
		var op string
		var call func() error
		switch e.status {
		case statusNew:
			op, call = "start", func() error { return e.task.Start(nil) }
		case statusFresh:
			socks := e.sockets
			op, call = "start", func() error { return e.task.Start(socks) }
		case statusRestored, statusQuiesced:
			op, call = "resume", e.task.Resume
		default:
			continue
		}
		start := time.Now()
		err := call()
		r := StepResult{Name: e.spec.Name, ID: e.spec.ID, Op: op, Duration: time.Since(start)}
		if err != nil {
			r.Err = &Error{Task: e.spec.Name, Op: op, Err: err}
			errs = append(errs, r.Err)
			e.status = statusStopped
		} else {
			e.status = statusRunning
			e.sockets = nil
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// QuiesceReport is the outcome of QuiesceAll, as plain data for the update
// report.
type QuiesceReport struct {
	Timeout time.Duration // the deadline every task had
	Elapsed time.Duration // from the first Quiesce call to the last return (or giving up)
	Tasks   []StepResult  // one per running task, in table order; Duration is its quiesce time
	// Aborted is set when a task failed or missed the deadline: every
	// task was then resumed (Resumed lists those resume calls).
	Aborted bool
	Resumed []StepResult
}

// quiesceDone is what one task's Quiesce returned, and how long it took.
type quiesceDone struct {
	d   time.Duration
	err error
}

// deadlineError says a task missed the quiesce deadline.
type deadlineError struct {
	timeout time.Duration
	detail  string
}

func (e *deadlineError) Error() string {
	return fmt.Sprintf("deadline %v exceeded%s", e.timeout, e.detail)
}
func (e *deadlineError) Unwrap() error { return context.DeadlineExceeded }

// QuiesceAll quiesces every running task concurrently under one deadline
// (timeout; 0 means DefaultQuiesceTimeout), measuring each task's time.
//
// If every task reaches its safe point in time, they are all quiesced and
// the caller goes on to Save. Otherwise (a task failed, missed the
// deadline, or ctx ended) the remaining ones are cancelled at once, every
// task whose Quiesce returned is resumed, and the error names each task
// that failed and why, e.g. `task "kv": quiesce: deadline 200ms exceeded`.
// The caller then keeps serving: the update is refused, not half-done.
//
// A task whose Quiesce ignores its context is waited for a grace period
// (half the timeout, at least 20 ms) and then reported; it is resumed in
// the background once its Quiesce finally returns.
func (t *Table) QuiesceAll(ctx context.Context, timeout time.Duration) (*QuiesceReport, error) {
	if timeout <= 0 {
		timeout = DefaultQuiesceTimeout
	}
	grace := max(timeout/2, 20*time.Millisecond)
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := &QuiesceReport{Timeout: timeout}

	var run []*entry
	var errs []error
	for _, e := range t.tasks {
		switch e.status {
		case statusRunning:
			run = append(run, e)
		case statusQuiescing, statusQuiesced:
			// An earlier attempt has not been undone yet.
			err := &Error{Task: e.spec.Name, Op: "quiesce", Err: fmt.Errorf("still %v from an earlier update attempt", e.status)}
			rep.Tasks = append(rep.Tasks, StepResult{Name: e.spec.Name, ID: e.spec.ID, Op: "quiesce", Err: err})
			errs = append(errs, err)
		}
	}

	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Each task reports on its own channel, so that a task that overran
	// can be waited for on its own after QuiesceAll has given up on it.
	dones := make([]chan quiesceDone, len(run))
	notify := make(chan int, len(run))
	begin := time.Now()
	for i, e := range run {
		e.status = statusQuiescing
		dones[i] = make(chan quiesceDone, 1)
		go func() {
			start := time.Now()
			err := e.task.Quiesce(qctx)
			dones[i] <- quiesceDone{time.Since(start), err}
			notify <- i
		}()
	}
	results := make([]StepResult, len(run))
	returned := make([]bool, len(run))
	var graceC <-chan time.Time
	ctxDone := qctx.Done()
	for pending := len(run); pending > 0; {
		select {
		case i := <-notify:
			pending--
			r := <-dones[i]
			returned[i] = true
			e := run[i]
			e.status = statusQuiesced
			res := StepResult{Name: e.spec.Name, ID: e.spec.ID, Op: "quiesce", Duration: r.d}
			switch {
			case r.err != nil && errors.Is(r.err, context.DeadlineExceeded) || r.err == nil && r.d > timeout:
				detail := ""
				if r.err != nil && r.err.Error() != context.DeadlineExceeded.Error() {
					detail = ": " + r.err.Error()
				}
				res.Err = &Error{Task: e.spec.Name, Op: "quiesce", Err: &deadlineError{timeout: timeout, detail: detail}}
			case r.err != nil:
				res.Err = &Error{Task: e.spec.Name, Op: "quiesce", Err: r.err}
			}
			if res.Err != nil {
				cancel() // no point in the others going on
			}
			results[i] = res
		case <-ctxDone:
			ctxDone = nil
			graceC = time.After(grace)
		case <-graceC:
			pending = 0
		}
	}
	rep.Elapsed = time.Since(begin)
	for i, e := range run {
		if !returned[i] {
			results[i] = StepResult{Name: e.spec.Name, ID: e.spec.ID, Op: "quiesce", Duration: rep.Elapsed,
				Err: &Error{Task: e.spec.Name, Op: "quiesce", Err: &deadlineError{timeout: timeout,
					detail: fmt.Sprintf("; Quiesce had not returned %v after it", grace)}}}
		}
		if results[i].Err != nil {
			errs = append(errs, results[i].Err)
		}
	}
	rep.Tasks = append(rep.Tasks, results...)
	if len(errs) == 0 {
		return rep, nil
	}

	// Abort: every task serves again.
	rep.Aborted = true
	for i, e := range run {
		if !returned[i] {
			go t.resumeLate(e, dones[i])
			continue
		}
		r := t.resumeLocked(e)
		rep.Resumed = append(rep.Resumed, r)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return rep, fmt.Errorf("task: quiesce aborted: %w", errors.Join(errs...))
}

// resumeLate resumes a task whose Quiesce overran, once it returns.
func (t *Table) resumeLate(e *entry, done <-chan quiesceDone) {
	<-done
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.status == statusQuiescing {
		t.resumeLocked(e)
	}
}

func (t *Table) resumeLocked(e *entry) StepResult {
	start := time.Now()
	err := e.task.Resume()
	r := StepResult{Name: e.spec.Name, ID: e.spec.ID, Op: "resume", Duration: time.Since(start)}
	if err != nil {
		r.Err = &Error{Task: e.spec.Name, Op: "resume", Err: err}
		e.status = statusStopped
	} else {
		e.status = statusRunning
	}
	return r
}

// ResumeAll resumes every quiesced task: the undo of a successful
// QuiesceAll when a later step of the update (Save, the jump's
// preparation) fails.
func (t *Table) ResumeAll() ([]StepResult, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []StepResult
	var errs []error
	for _, e := range t.tasks {
		if e.status != statusQuiesced {
			continue
		}
		r := t.resumeLocked(e)
		out = append(out, r)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return out, errors.Join(errs...)
}

// Items sums the items of the tasks that count them (ItemCounter).
func (t *Table) Items() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n uint64
	for _, e := range t.tasks {
		if c, ok := e.task.(ItemCounter); ok {
			n += c.Items()
		}
	}
	return n
}
