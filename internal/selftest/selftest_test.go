package selftest

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// summaryRE is the line `molt selftest` parses from the VM console.
var summaryRE = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed$`)

func runAll(t *testing.T, checks []Check, filter string) (passed, failed int, out string) {
	t.Helper()
	var b strings.Builder
	passed, failed = RunAll(&b, checks, filter)
	out = b.String()
	t.Logf("RunAll output:\n%s", out)
	m := summaryRE.FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("output has %d summary lines; want exactly 1", len(m))
	}
	if !strings.HasSuffix(out, m[0][0]+"\n") {
		t.Errorf("summary line %q is not the last line", m[0][0])
	}
	return passed, failed, out
}

func TestRunAllCounts(t *testing.T) {
	reachedAfterFatal := false
	checks := []Check{
		{Name: "ok", Run: func(t *T) { t.Logf("measured %d", 42) }},
		{Name: "errorf", Run: func(t *T) { t.Errorf("bad value %d", 7); t.Logf("still running") }},
		{Name: "fatalf", Run: func(t *T) { t.Fatalf("stop"); reachedAfterFatal = true }},
		{Name: "ok2", Run: func(t *T) {
			if t.Name() != "ok2" {
				t.Errorf("Name() = %q", t.Name())
			}
		}},
	}
	passed, failed, out := runAll(t, checks, "")
	if passed != 2 || failed != 2 {
		t.Errorf("RunAll = %d passed, %d failed; want 2, 2", passed, failed)
	}
	if reachedAfterFatal {
		t.Errorf("code after Fatalf ran")
	}
	for _, want := range []string{
		"=== RUN   ok\n", "--- PASS: ok (", "    selftest_test.go:", ": measured 42\n",
		"--- FAIL: errorf (", ": bad value 7\n", ": still running\n",
		"--- FAIL: fatalf (", "--- PASS: ok2 (", "2 passed, 2 failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestRunAllRecoversPanic(t *testing.T) {
	checks := []Check{
		{Name: "panics", Run: func(t *T) { var m map[int]int; m[1] = 1 }},
		{Name: "after", Run: func(t *T) {}},
	}
	passed, failed, out := runAll(t, checks, "")
	if passed != 1 || failed != 1 {
		t.Errorf("RunAll = %d passed, %d failed; want 1, 1", passed, failed)
	}
	if !strings.Contains(out, "--- FAIL: panics") || !strings.Contains(out, "panic: assignment to entry in nil map") {
		t.Errorf("panic not reported as a failure with its value")
	}
}

func TestRunAllTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // let the abandoned check goroutine finish
	checks := []Check{
		{Name: "hangs", Timeout: 100 * time.Millisecond, Run: func(t *T) {
			t.Logf("before hang")
			<-release
			t.Errorf("logged after the timeout") // must be dropped
		}},
		{Name: "next", Run: func(t *T) {}},
	}
	start := time.Now()
	passed, failed, out := runAll(t, checks, "")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("RunAll took %v with a 100ms check timeout", d)
	}
	if passed != 1 || failed != 1 {
		t.Errorf("RunAll = %d passed, %d failed; want 1, 1", passed, failed)
	}
	if !strings.Contains(out, "--- FAIL: hangs") || !strings.Contains(out, "timed out after 100ms") ||
		!strings.Contains(out, "before hang") {
		t.Errorf("timeout not reported as a failure with the check's log")
	}
}

func TestRunAllFilterAndSkips(t *testing.T) {
	ran := map[string]bool{}
	mk := func(name string) func(*T) { return func(*T) { ran[name] = true } }
	checks := []Check{
		{Name: "alpha", Run: mk("alpha")},
		{Name: "beta", Run: mk("beta")},
		{Name: "alpha_vm", Run: mk("alpha_vm"), VMOnly: true},
		{Name: "alpha_host", Run: mk("alpha_host"), HostOnly: true},
	}
	passed, failed, out := runAll(t, checks, "^alpha")
	// On a host kernel.Booted() is false: VMOnly checks are skipped.
	if passed != 2 || failed != 0 || !ran["alpha"] || !ran["alpha_host"] || ran["beta"] || ran["alpha_vm"] {
		t.Errorf("RunAll(^alpha) = %d, %d, ran %v; want 2, 0, alpha and alpha_host", passed, failed, ran)
	}
	if !strings.Contains(out, "--- SKIP: alpha_vm") {
		t.Errorf("VMOnly check not reported as skipped")
	}

	passed, failed, _ = runAll(t, checks, "(")
	if passed != 0 || failed != 1 {
		t.Errorf("RunAll with a bad regexp = %d, %d; want 0, 1", passed, failed)
	}
}

// TestChecksAreWellFormed guards what `molt selftest` and the -run filter
// rely on: unique names that are one cmdline-safe word.
func TestChecksAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range All() {
		if !regexp.MustCompile(`^[a-z0-9_]+$`).MatchString(c.Name) || seen[c.Name] || c.Run == nil {
			t.Errorf("check %q: names must be unique [a-z0-9_]+ and Run set", c.Name)
		}
		if c.VMOnly && c.HostOnly {
			t.Errorf("check %q is both VMOnly and HostOnly", c.Name)
		}
		seen[c.Name] = true
	}
}

// TestChecks runs every check that can run on a host as a subtest, so
// `go test -race` covers the checks themselves.
func TestChecks(t *testing.T) {
	for _, c := range All() {
		t.Run(c.Name, func(t *testing.T) {
			if c.VMOnly {
				t.Skip("needs a molt VM")
			}
			r := runCheck(c)
			for _, l := range r.logs {
				t.Log(l)
			}
			if r.failed {
				t.Errorf("check %s failed (timed out: %v) after %v", c.Name, r.timedOut, r.elapsed)
			}
		})
	}
}

// TestChurnDetectsCorruption shows gc_churn's verification can fail: a
// changed byte in a blob or a changed list node is reported.
func TestChurnDetectsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(o *churnObj)
	}{
		{"blob byte", func(o *churnObj) { o.data[4097] ^= 1 }},
		{"list value", func(o *churnObj) { o.list.next.next.val++ }},
		{"list cut short", func(o *churnObj) { o.list.next.next = nil }},
	} {
		st := &T{name: "gc_churn"}
		c := &churn{t: st}
		c.objects = 1 // newObj makes objects%8 == 0 lists
		if strings.HasPrefix(tc.name, "list") {
			c.objects = 7
		}
		o := c.newObj(64 << 10)
		c.verify(0, o)
		if st.Failed() {
			t.Fatalf("%s: intact object reported corrupt: %v", tc.name, st.logs)
		}
		tc.corrupt(o)
		c.verify(0, o)
		if !st.Failed() {
			t.Errorf("%s: corruption not detected", tc.name)
		}
	}
}
