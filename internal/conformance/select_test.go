package conformance

import (
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeTree creates files (path relative to root -> content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// prog returns a test program with the given first line, header lines
// (before package), imports and body of main.
func prog(first, header string, imports []string, body string) string {
	var b strings.Builder
	b.WriteString(first + "\n\n// Copyright line.\n\n")
	if header != "" {
		b.WriteString(header + "\n\n")
	}
	b.WriteString("package main\n\n")
	for _, im := range imports {
		b.WriteString("import " + im + "\n")
	}
	b.WriteString("\nfunc main() {\n" + body + "\n}\n")
	return b.String()
}

// syntheticGOROOT is a GOROOT whose test/ holds one file per rule and
// case Select must tell apart.
var syntheticGOROOT = map[string]string{
	"test/plain.go":       prog("// run", "", nil, `println("hi")`),
	"test/golden.go":      prog("// run", "", []string{`"fmt"`}, `fmt.Println("hi")`),
	"test/golden.out":     "hi\n",
	"test/crlf.go":        strings.ReplaceAll(prog("// run", "", nil, ""), "\n", "\r\n"),
	"test/flags.go":       prog("// run -gcflags=-l=4", "", nil, ""),
	"test/args.go":        prog("// run arg1 arg2", "", nil, ""),
	"test/compile.go":     prog("// compile", "", nil, ""),
	"test/runspace.go":    prog("// run ", "", nil, ""),
	"test/notfirst.go":    "// Copyright.\n" + prog("// run", "", nil, ""),
	"test/exec.go":        prog("// run", "", []string{`"os/exec"`}, `_ = exec.Command`),
	"test/nethttp.go":     prog("// run", "", []string{`"net/http"`}, `_ = http.Get`),
	"test/netip.go":       prog("// run", "", []string{`"net/netip"`}, `_ = netip.Addr{}`),
	"test/network.go":     prog("// run", "", []string{`"network"`}, ``),
	"test/ioutil.go":      prog("// run", "", []string{`"io/ioutil"`}, `_ = ioutil.Discard`),
	"test/readfile.go":    prog("// run", "", []string{`"os"`}, `os.ReadFile("x")`),
	"test/renamed.go":     prog("// run", "", []string{`myos "os"`}, `myos.Open("x")`),
	"test/osok.go":        prog("// run", "", []string{`"os"`}, `if os.Getenv("X") != "" { os.Exit(1) }`),
	"test/fieldopen.go":   prog("// run", "", nil, `var s struct{ Open func() }; _ = s.Open`),
	"test/pprof.go":       prog("// run", "", []string{`"runtime/pprof"`}, `_ = pprof.Profiles`),
	"test/signal.go":      prog("// run", "", []string{`"os/signal"`}, `_ = signal.Notify`),
	"test/kill.go":        prog("// run", "", []string{`"syscall"`}, `syscall.Kill(1, syscall.SIGCHLD)`),
	"test/getpid.go":      prog("// run", "", []string{`"syscall"`}, `_ = syscall.Getpid()`),
	"test/mprotect.go":    prog("// run", "", []string{`"syscall"`}, `syscall.Mprotect(nil, 0)`),
	"test/plugin.go":      prog("// run", "", []string{`"plugin"`}, `_ = plugin.Open`),
	"test/testing.go":     prog("// run", "", []string{`"testing"`}, `_ = testing.Short`),
	"test/cgo.go":         prog("// run", "", []string{`"C"`}, ``),
	"test/aix.go":         prog("// run", "//go:build aix", nil, ""),
	"test/linux.go":       prog("// run", "//go:build linux && amd64 && gc && !cgo", nil, ""),
	"test/tagged.go":      prog("// run", "//go:build !gcflags_noopt", nil, ""),
	"test/plus.go":        prog("// run", "// +build linux", nil, ""),
	"test/x_windows.go":   prog("// run", "", nil, ""),
	"test/x_linux.go":     prog("// run", "", nil, ""),
	"test/known.go":       prog("// run", "", nil, ""),
	"test/chan/a.go":      prog("// run", "", nil, ""),
	"test/chan/a.out":     "",
	"test/ken/b.go":       prog("// run", "", nil, ""),
	"test/fixedbugs/c.go": prog("// run", "", nil, ""),
	"test/notgo.txt":      "// run\n",
}

func TestSelect(t *testing.T) {
	goroot := t.TempDir()
	writeTree(t, goroot, syntheticGOROOT)
	known := map[string]string{"known.go": "a known reason", "chan/absent.go": "stale entry"}
	progs, skipped, err := Select(goroot, known, nil)
	if err != nil {
		t.Fatalf("Select: %v", err)
	}

	var names []string
	for _, p := range progs {
		names = append(names, p.Name)
		if want := filepath.Join(goroot, "test", filepath.FromSlash(p.Name)); p.Path != want {
			t.Errorf("%s: Path = %q; want %q", p.Name, p.Path, want)
		}
	}
	wantNames := []string{"chan/a.go", "crlf.go", "fieldopen.go", "getpid.go", "golden.go", "ken/b.go", "linux.go", "network.go", "osok.go", "plain.go", "tagged.go", "x_linux.go"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("selected %q;\nwant %q", names, wantNames)
	}

	golden := map[string]string{}
	for _, p := range progs {
		golden[p.Name] = p.Golden
	}
	if g, want := golden["golden.go"], filepath.Join(goroot, "test", "golden.out"); g != want {
		t.Errorf("golden.go: Golden = %q; want %q", g, want)
	}
	if g, want := golden["chan/a.go"], filepath.Join(goroot, "test", "chan", "a.out"); g != want {
		t.Errorf("chan/a.go: Golden = %q; want %q (an empty .out file still counts)", g, want)
	}
	if g := golden["plain.go"]; g != "" {
		t.Errorf("plain.go: Golden = %q; want none", g)
	}

	// Each skipped program, with a word its reason must contain.
	wantSkip := map[string]string{
		"exec.go":      "os/exec",
		"nethttp.go":   "network",
		"netip.go":     "network",
		"network.go":   "", // "network" is not "net"; see below
		"ioutil.go":    "io/ioutil",
		"readfile.go":  "file system",
		"renamed.go":   "file system",
		"pprof.go":     "runtime/pprof",
		"signal.go":    "signals",
		"kill.go":      "signals",
		"mprotect.go":  "Mprotect",
		"plugin.go":    "plugin",
		"testing.go":   "testing",
		"cgo.go":       `cgo (import "C")`,
		"aix.go":       "//go:build aix",
		"plus.go":      "+build",
		"x_windows.go": "file name",
		"known.go":     "a known reason",
	}
	got := map[string]string{}
	for _, s := range skipped {
		got[s.Name] = s.Reason
		if s.Reason == "" {
			t.Errorf("%s skipped without a reason", s.Name)
		}
	}
	for name, word := range wantSkip {
		reason, ok := got[name]
		switch {
		case name == "network.go":
			// Imports a made-up package: "net" must match by path element.
			if ok {
				t.Errorf("network.go skipped (%q); the import path \"network\" is not under net/", reason)
			}
			continue
		case !ok:
			t.Errorf("%s not skipped; want a reason containing %q", name, word)
		case !strings.Contains(reason, word):
			t.Errorf("%s: reason %q; want it to contain %q", name, reason, word)
		}
		delete(got, name)
	}
	for name, reason := range got {
		t.Errorf("%s skipped (%q); want it selected or ignored", name, reason)
	}
}

func TestSelectRun(t *testing.T) {
	goroot := t.TempDir()
	writeTree(t, goroot, syntheticGOROOT)
	progs, skipped, err := Select(goroot, nil, regexp.MustCompile(`^chan/|^exec\.go$`))
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) != 1 || progs[0].Name != "chan/a.go" {
		t.Errorf("Select(-run) programs = %v; want only chan/a.go", progs)
	}
	if len(skipped) != 1 || skipped[0].Name != "exec.go" {
		t.Errorf("Select(-run) skipped = %v; want only exec.go", skipped)
	}
}

func TestSelectErrors(t *testing.T) {
	if _, _, err := Select(t.TempDir(), nil, nil); err == nil || !strings.Contains(err.Error(), "test directory") {
		t.Errorf("Select without test/ = %v; want an error about the test directory", err)
	}
	goroot := t.TempDir()
	writeTree(t, goroot, map[string]string{"test/bad.go": "// run\n\npackage main\n\nfunc main() {\n"})
	if _, _, err := Select(goroot, nil, nil); err == nil || !strings.Contains(err.Error(), "bad.go") {
		t.Errorf("Select with a file that does not parse = %v; want an error naming bad.go", err)
	}
}

func TestFirstLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"// run\npackage main", "// run"},
		{"// run\r\npackage main", "// run"},
		{"// run", "// run"},
		{"", ""},
		{"\n// run\n", ""},
	} {
		if got := firstLine([]byte(c.in)); got != c.want {
			t.Errorf("firstLine(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestRulesHaveReasons(t *testing.T) {
	for i, r := range Rules {
		if r.reason == "" || r.match == nil {
			t.Errorf("Rules[%d] = %+v; want a reason and a match", i, r)
		}
	}
	for name, reason := range Known {
		if reason == "" || !strings.HasSuffix(name, ".go") {
			t.Errorf("Known[%q] = %q; want a program name and a reason", name, reason)
		}
	}
}

// TestKnownAreCurrent checks the explicit skip list against the installed
// Go distribution: every entry must name a program that Select considers
// and that no rule skips already, so that stale entries show up when Go is
// upgraded.
func TestKnownAreCurrent(t *testing.T) {
	goroot := build.Default.GOROOT
	if _, err := os.Stat(filepath.Join(goroot, "test")); err != nil {
		t.Skipf("no test/ in GOROOT %s: %v", goroot, err)
	}
	progs, skipped, err := Select(goroot, map[string]string{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	selected := map[string]bool{}
	for _, p := range progs {
		selected[p.Name] = true
	}
	ruled := map[string]string{}
	for _, s := range skipped {
		ruled[s.Name] = s.Reason
	}
	for name := range Known {
		switch {
		case ruled[name] != "":
			t.Errorf("Known[%q] is redundant: the rules skip it already (%s)", name, ruled[name])
		case !selected[name]:
			t.Errorf("Known[%q] names no \"// run\" program in %s/test", name, goroot)
		}
	}
	if len(progs) < 100 {
		t.Errorf("Select found %d programs in %s/test; want the ~190 of a Go release", len(progs), goroot)
	}
}
