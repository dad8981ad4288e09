package kv

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/internal/memcapable"
	"github.com/molt-os/molt/internal/testtool"
)

// The real-peer tests run Debian's libmemcached-tools against the server:
// memcapable (Debian installs it as memccapable) checks protocol
// conformance command by command, memcslap (memslap) puts concurrent load
// on it. Both talk to a Server on 127.0.0.1 in this process.
//
// They are skipped when the tools are missing, unless MOLT_REQUIRE_TOOLS=1,
// in which case a missing tool fails the test.
//
// memcapableExempt lists the ASCII tests that cannot pass, with the reason.
// It must stay empty unless a test is genuinely impossible to pass; keep it
// in sync with docs/kv.md.
var memcapableExempt = map[string]string{}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("SplitHostPort(%q) = %v", addr, err)
	}
	return h, p
}

// runTool runs a tool with a deadline and returns its stdout and stderr.
func runTool(t *testing.T, timeout time.Duration, path string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return testtool.Run(t, timeout, func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, path, args...) })
}

func TestMemcapable(t *testing.T) {
	tool := testtool.Find(t, "libmemcached-tools", "memcapable", "memccapable")
	st := newTestStore(t, Config{})
	_, addr := startServer(t, st, ServerConfig{})
	host, port := hostPort(t, addr)
	// -t: seconds memcapable waits for each read; a wedged server fails
	// the test instead of hanging it.
	stdout, stderr, err := runTool(t, 2*time.Minute, tool, "-a", "-v", "-t", "5", "-h", host, "-p", port)
	t.Logf("memcapable stdout:\n%s", stdout)
	if stderr != "" {
		t.Logf("memcapable stderr:\n%s", stderr)
	}

	for _, p := range memcapable.Problems(stdout, memcapableExempt) {
		t.Errorf("memcapable: %s", p)
	}
	if err != nil && !t.Failed() {
		t.Errorf("memcapable exited with %v; want success", err)
	}
}

// memslapKeys matches memslap's summary of keys processed by the threads:
// "Time to <test>  <count> keys by <threads> threads: ...".
var memslapKeys = regexp.MustCompile(`Time to (set|get|mget)\s+(\d+) keys by\s+(\d+) threads`)

func TestMemcslap(t *testing.T) {
	tool := testtool.Find(t, "libmemcached-tools", "memcslap", "memslap")
	st := newTestStore(t, Config{})
	_, addr := startServer(t, st, ServerConfig{})
	const (
		concurrency = 4
		execute     = 2000
	)
	for _, tc := range []struct {
		name, test string
		extra      []string
	}{
		{"set", "set", nil},
		{"set-noreply", "set", []string{"--noreply"}},
		{"get", "get", nil},
		{"mget", "mget", nil}, // one "get" line of all 2000 keys (~80 KB) per thread
	} {
		test := tc.test
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{
				"--servers=" + addr,
				"--concurrency=" + strconv.Itoa(concurrency),
				"--execute-number=" + strconv.Itoa(execute),
				"--test=" + test,
				"--flush",
			}, tc.extra...)
			stdout, stderr, err := runTool(t, 2*time.Minute, tool, args...)
			t.Logf("memslap stdout:\n%s", stdout)
			// memslap exits 0 even when requests fail; it reports
			// failures on stderr ("Fatal error ...", "Failed ...").
			if err != nil {
				t.Errorf("memslap --test=%s exited with %v", test, err)
			}
			if strings.TrimSpace(stderr) != "" {
				t.Errorf("memslap --test=%s reported errors:\n%s", test, stderr)
			}
			m := memslapKeys.FindStringSubmatch(stdout)
			if m == nil {
				t.Fatalf("memslap --test=%s: no summary line in output", test)
			}
			n, _ := strconv.Atoi(m[2])
			// Each thread runs execute operations; set and get count one
			// key each, mget counts keys retrieved (all were loaded).
			if want := concurrency * execute; n != want {
				t.Errorf("memslap --test=%s processed %d keys; want %d", test, n, want)
			}
			// The threads share one set of keys: after the flush, each
			// test leaves exactly those stored (with noreply too, once
			// the server has drained the connections).
			waitFor(t, func() bool { return st.Stats().CurrItems == execute })
		})
	}
	s := st.Stats()
	if s.Evictions != 0 {
		t.Errorf("evictions = %d after memslap; want 0 (the data set fits)", s.Evictions)
	}
}
