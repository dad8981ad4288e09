// Package memcapable reads the report of Debian's memcapable (installed as
// memccapable; libmemcached-awesome 1.1.4 in Debian 12), the memcached
// protocol conformance checker that molt's kv tests run against the
// service, on a host and inside the kernel.
//
// memcapable prints each test's name padded to 40 columns on stdout, runs
// it, then prints "[pass]" or "[skip]" on stdout, or "[FAIL]" on stderr
// (with -v, the failed assertions come first, on stdout), and finally "All
// tests passed" when none failed.
package memcapable

import (
	"fmt"
	"strings"
)

// ASCIITests is every ASCII test of memcapable 1.1.4, in the order it runs
// them (memcapable -a).
var ASCIITests = []string{
	"ascii version", "ascii quit", "ascii verbosity", "ascii set", "ascii set noreply",
	"ascii get", "ascii gets", "ascii mget", "ascii flush", "ascii flush noreply",
	"ascii add", "ascii add noreply", "ascii replace", "ascii replace noreply",
	"ascii cas", "ascii cas noreply", "ascii delete", "ascii delete noreply",
	"ascii incr", "ascii incr noreply", "ascii decr", "ascii decr noreply",
	"ascii append", "ascii append noreply", "ascii prepend", "ascii prepend noreply",
	"ascii stat",
}

// Results maps a test name to "pass", "skip" or "FAIL"; a test that did not
// run is absent.
type Results map[string]string

// Parse reads memcapable's stdout.
func Parse(stdout string) Results {
	r := Results{}
	for _, name := range ASCIITests {
		field := fmt.Sprintf("%-40s", name)
		i := strings.Index(stdout, field)
		switch {
		case i < 0:
			continue
		case strings.HasPrefix(stdout[i+len(field):], "[pass]"):
			r[name] = "pass"
		case strings.HasPrefix(stdout[i+len(field):], "[skip]"):
			r[name] = "skip"
		default:
			r[name] = "FAIL"
		}
	}
	return r
}

// Problems lists, one sentence each, every ASCII test that did not pass and
// is not in exempt (test name → why it cannot pass), every exempt test that
// passes (the exemption is stale), and a missing "All tests passed" when
// nothing is exempt. None means the service conforms.
func Problems(stdout string, exempt map[string]string) []string {
	r := Parse(stdout)
	var out []string
	for _, name := range ASCIITests {
		got, ran := r[name]
		reason, isExempt := exempt[name]
		switch {
		case !ran:
			out = append(out, fmt.Sprintf("%q did not run", name))
		case got == "pass" && isExempt:
			out = append(out, fmt.Sprintf("%q passes but is listed as exempt (%s)", name, reason))
		case got != "pass" && !isExempt:
			out = append(out, fmt.Sprintf("%q = %s; want pass", name, got))
		}
	}
	if len(out) == 0 && len(exempt) == 0 && !strings.Contains(stdout, "All tests passed") {
		out = append(out, `no "All tests passed" line`)
	}
	return out
}
