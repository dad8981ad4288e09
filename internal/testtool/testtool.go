// Package testtool finds the Debian tools that molt's tests use as real
// peers (memcapable, memcslap, ping, qstat, ...).
//
// A test whose tool is missing is skipped with the command that installs
// it, unless the environment has MOLT_REQUIRE_TOOLS=1 (set by `make test`,
// which installs them), in which case it fails: CI must never turn green by
// skipping.
package testtool

import (
	"os"
	"os/exec"
	"strings"
	"testing"
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
