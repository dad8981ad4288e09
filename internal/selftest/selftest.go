// Package selftest is molt's in-VM self-test suite: a small test framework
// and a set of checks of the services the kernel gives the Go runtime
// (goroutines, GC and memory return, timers, sync, crypto/rand, preemption,
// panics) and of the standard library on top of them.
//
// The same checks run in two places:
//
//   - on a host, as subtests under `go test -race ./internal/selftest`
//     (selftest_test.go), so the race detector covers them;
//   - inside a VM, from the image main in cmd/selftest, which calls RunAll
//     and exits 0 only if every check passed. `molt selftest` boots it and
//     parses the summary line.
//
// Why not package testing in the VM: a `go test` binary's -timeout kills the
// whole process, while a self-test of a kernel must report a hung check as a
// failure and go on to the next; RunAll does that with a per-check timer.
// The output imitates `go test -v` so it reads the same in both places.
//
// Check functions must not let panics escape goroutines they start (only the
// check's own goroutine is recovered), and must call Fatalf only from the
// check's own goroutine, as with testing.T.
package selftest

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/molt-os/molt/kernel"
)

// DefaultTimeout is the per-check time limit when Check.Timeout is zero. It
// is generous because QEMU TCG runs 5-20× slower than native; it only has to
// be short enough that a hung check fails instead of wedging the run.
const DefaultTimeout = 2 * time.Minute

// stackDumpLimit caps the goroutine dump printed for a timed-out check, so a
// check that leaves 10,000 goroutines behind does not flood the console.
const stackDumpLimit = 16 << 10

// Check is one named self-test.
type Check struct {
	Name string
	Run  func(*T)
	// VMOnly checks need a booted molt kernel; RunAll skips them on a host.
	VMOnly bool
	// HostOnly checks depend on something molt does not provide yet (for
	// example signal delivery for hardware faults); RunAll skips them in a VM.
	HostOnly bool
	// Timeout overrides DefaultTimeout when nonzero.
	Timeout time.Duration
}

// T is passed to a check to report failures and log measurements. Its
// methods are safe to call from any goroutine, except Fatalf.
type T struct {
	name string

	mu sync.Mutex
	// +checklocks:mu
	failed bool
	// +checklocks:mu
	closed bool // the runner has reported the check; further logs are dropped
	// +checklocks:mu
	logs []string
}

// Name returns the name of the running check.
func (t *T) Name() string { return t.name }

// Logf records a line shown under the check's result.
func (t *T) Logf(format string, args ...any) { t.record(caller(fmt.Sprintf(format, args...)), false) }

// Errorf records a line and marks the check failed; the check goes on.
func (t *T) Errorf(format string, args ...any) { t.record(caller(fmt.Sprintf(format, args...)), true) }

// Fatalf records a line, marks the check failed and stops it by calling
// runtime.Goexit, so it must be called from the check's own goroutine.
func (t *T) Fatalf(format string, args ...any) {
	t.record(caller(fmt.Sprintf(format, args...)), true)
	runtime.Goexit()
}

// Failed reports whether the check has failed so far.
func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// caller prefixes msg with the file:line of the check code that called
// Logf, Errorf or Fatalf, as testing.T does.
func caller(msg string) string {
	if _, file, line, ok := runtime.Caller(2); ok {
		return fmt.Sprintf("%s:%d: %s", filepath.Base(file), line, msg)
	}
	return msg
}

// record appends msg to the check's log and, if fail, marks it failed.
func (t *T) record(msg string, fail bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if fail {
		t.failed = true
	}
	t.logs = append(t.logs, msg)
}

// result is the outcome of one check.
type result struct {
	failed   bool
	timedOut bool
	elapsed  time.Duration
	logs     []string
}

// runCheck runs c in its own goroutine, converts a panic into a failure and
// gives up after the check's timeout. A timed-out check's goroutine is left
// running: there is no way to stop a goroutine from outside.
func runCheck(c Check) result {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	t := &T{name: c.Name}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		defer func() {
			// A Fatalf (runtime.Goexit) also runs this, with r == nil.
			if r := recover(); r != nil {
				t.record(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()), true)
			}
		}()
		c.Run(t)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var res result
	select {
	case <-done:
	case <-timer.C:
		res.timedOut = true
		t.record(fmt.Sprintf("timed out after %v; goroutines:\n%s", timeout, stackDump()), true)
	}
	res.elapsed = time.Since(start)

	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	res.failed = t.failed
	res.logs = t.logs
	return res
}

// stackDump returns all goroutines' stacks, cut to stackDumpLimit bytes.
func stackDump() string {
	buf := make([]byte, stackDumpLimit)
	n := runtime.Stack(buf, true)
	s := string(buf[:n])
	if n == len(buf) {
		s += "\n... (truncated)"
	}
	return s
}

// RunAll runs the checks whose names match the regular expression filter
// (all when filter is empty), one at a time, and writes one result line per
// check to w in the style of `go test -v`, each check's log lines indented
// below it. It ends with exactly one line "N passed, N failed". Checks that
// cannot run here (VMOnly on a host, HostOnly in a VM) are reported as SKIP
// and counted in neither number. A filter that is not a valid regexp counts
// as one failure.
func RunAll(w io.Writer, checks []Check, filter string) (passed, failed int) {
	defer func() { fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed) }()
	var re *regexp.Regexp
	if filter != "" {
		var err error
		if re, err = regexp.Compile(filter); err != nil {
			fmt.Fprintf(w, "--- FAIL: selftest: bad filter: %v\n", err)
			return 0, 1
		}
	}
	booted := kernel.Booted()
	for _, c := range checks {
		if re != nil && !re.MatchString(c.Name) {
			continue
		}
		switch {
		case c.VMOnly && !booted:
			fmt.Fprintf(w, "--- SKIP: %s (needs a molt VM)\n", c.Name)
			continue
		case c.HostOnly && booted:
			fmt.Fprintf(w, "--- SKIP: %s (host only)\n", c.Name)
			continue
		}
		// Announce the check first: if it wedges the VM, the console
		// shows which one did.
		fmt.Fprintf(w, "=== RUN   %s\n", c.Name)
		r := runCheck(c)
		verdict := "PASS"
		if r.failed {
			verdict = "FAIL"
			failed++
		} else {
			passed++
		}
		fmt.Fprintf(w, "--- %s: %s (%.2fs)\n", verdict, c.Name, r.elapsed.Seconds())
		for _, l := range r.logs {
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(l, "\n", "\n        "))
		}
	}
	return passed, failed
}
