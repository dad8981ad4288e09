// Package testtool finds the Debian tools that molt's tests use as real
// peers (memcapable, memcslap, ping, qstat, ...).
//
// A test whose tool is missing is skipped with the command that installs
// it, unless the environment has MOLT_REQUIRE_TOOLS=1 (set by `make test`,
// which installs them), in which case it fails: CI must never turn green by
// skipping.
package testtool

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Find returns the path of the first of names on $PATH, or skips (fails
// under MOLT_REQUIRE_TOOLS=1) the test, naming pkg as the Debian package
// that provides it.
func Find(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "none of " + strings.Join(names, ", ") + " found on $PATH; install them with `apt-get install -y " + pkg + "`"
	if os.Getenv("MOLT_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s (MOLT_REQUIRE_TOOLS=1)", msg)
	}
	t.Skip(msg)
	return ""
}

// FindFile returns the first of paths that exists, or skips (fails under
// MOLT_REQUIRE_TOOLS=1) the test, naming pkg as the Debian package that
// provides it: for peers that are not commands (a game library, a data
// file).
func FindFile(t testing.TB, pkg string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "none of " + strings.Join(paths, ", ") + " exists; install them with `apt-get install -y " + pkg + "`"
	if os.Getenv("MOLT_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s (MOLT_REQUIRE_TOOLS=1)", msg)
	}
	t.Skip(msg)
	return ""
}

// Run runs the command that mk builds for a context bounded by timeout (so
// that a wedged peer or server cannot hang the test), and returns its
// stdout, stderr and exit error. A command still running at the deadline
// fails the test with what it printed.
func Run(t testing.TB, timeout time.Duration, mk func(ctx context.Context) *exec.Cmd) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := mk(ctx)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = time.Second
	t.Logf("running %s", strings.Join(cmd.Args, " "))
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v; stdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), timeout, o.String(), e.String())
	}
	return o.String(), e.String(), err
}
