package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/qemu"
)

func TestJudgeHost(t *testing.T) {
	p := Program{Name: "x.go"}
	g := Program{Name: "g.go", Golden: "/goroot/test/g.out"}
	for _, c := range []struct {
		name string
		p    Program
		want string
		host hostRun
		ok   bool
		says string // the reason contains this
	}{
		{"pass, no .out", p, "", hostRun{}, true, ""},
		{"pass, .out", g, "ok\n", hostRun{Output: []byte("ok\n")}, true, ""},
		{"exit status", p, "", hostRun{ExitCode: 2, Output: []byte("panic: x\n")}, false, `host run: exit status 2: line 1: got "panic: x\n"`},
		{"timeout", p, "", hostRun{ExitCode: -1, TimedOut: true}, false, "host run timed out after 1m0s"},
		{"error", p, "", hostRun{ExitCode: -1, Err: errors.New("exec format error")}, false, "host run: exec format error"},
		{"output without .out", p, "", hostRun{Output: []byte("BUG\n")}, false, `host output differs from the expected empty output: line 1: got "BUG\n", want end of output`},
		{"output differs from .out", g, "ok\n", hostRun{Output: []byte("no\n")}, false, `host output differs from g.out: line 1: got "no\n", want "ok\n"`},
	} {
		r := judgeHost(c.p, []byte(c.want), c.host, time.Minute)
		if r.ok != c.ok || !strings.Contains(r.reason, c.says) {
			t.Errorf("%s: judgeHost = ok %v, reason %q; want ok %v, reason containing %q", c.name, r.ok, r.reason, c.ok, c.says)
		}
	}
}

func TestJudgeMolt(t *testing.T) {
	p := Program{Name: "x.go"}
	g := Program{Name: "g.go", Golden: "/goroot/test/g.out"}
	exit := func(code int) qemu.Result {
		return qemu.Result{Status: layout.QEMUStatus(code), Code: code, Elapsed: time.Second}
	}
	fault := "molt: fault: #PF page fault (vector 14) error 0x0 address 0x0 (not present, read)\r\nmolt:   RAX 0x0\r\n"
	for _, c := range []struct {
		name string
		p    Program
		want string
		molt moltRun
		ok   bool
		says string
	}{
		{"pass, empty", p, "", moltRun{Result: exit(0)}, true, ""},
		{"pass, CRLF console", g, "a\nb\n", moltRun{Console: []byte("a\r\nb\r\n"), Result: exit(0)}, true, ""},
		{"output differs", g, "a\nb\n", moltRun{Console: []byte("a\r\nc\r\n"), Result: exit(0)},
			false, `output differs from g.out: line 2: got "c\n", want "b\n"`},
		{"missing final newline", g, "a\n", moltRun{Console: []byte("a"), Result: exit(0)},
			false, `line 1: got "a", want "a\n"`},
		{"program exit", p, "", moltRun{Console: []byte("panic: boom\r\n"), Result: exit(2)},
			false, `program exit 2; output line 1: got "panic: boom\n", want end of output`},
		{"program exit, output right", g, "a\n", moltRun{Console: []byte("a\r\n"), Result: exit(1)},
			false, "program exit 1"},
		{"fault", p, "", moltRun{Console: []byte(fault), Result: exit(layout.ExitFault)},
			false, `kernel stopped on a CPU fault (exit code 0x70); kernel: "molt: fault: #PF page fault`},
		{"kernel panic", p, "", moltRun{Console: []byte("molt: panic: out of frames\r\n"), Result: exit(layout.ExitKernelPanic)},
			false, `kernel panic (exit code 0x71); kernel: "molt: panic: out of frames"`},
		{"kernel note on a clean exit", p, "", moltRun{Console: []byte("molt: syscall 999 not implemented\r\n"), Result: exit(0)},
			false, `output differs from the expected empty output: line 1: got "molt: syscall 999`},
		{"timeout", p, "", moltRun{Result: qemu.Result{Status: -1, Code: -1, TimedOut: true}, Err: qemu.ErrTimeout},
			false, "timed out after 1m0s"},
		{"qemu failed", p, "", moltRun{Result: qemu.Result{Status: 1, Code: -1}, Err: fmt.Errorf("%w: bad option", qemu.ErrQEMU)},
			false, "qemu failed: bad option"},
		{"poweroff is not an exit", p, "", moltRun{Result: qemu.Result{Status: 0, Code: -1}},
			false, "powered off"},
	} {
		r := judgeMolt(c.p, []byte(c.want), c.molt, time.Minute)
		if r.ok != c.ok || !strings.Contains(r.reason, c.says) {
			t.Errorf("%s: judgeMolt = ok %v, reason %q; want ok %v, reason containing %q", c.name, r.ok, r.reason, c.ok, c.says)
		}
		if !r.ok && !bytes.Equal(NormalizeConsole(c.molt.Console), []byte(c.want)) && r.detail == "" {
			t.Errorf("%s: judgeMolt gave no detail for differing output", c.name)
		}
	}
}

// fakeTools answers for programs by their directory's base name: hosts
// and moltOuts give the runs' output; a missing entry means "no output,
// exit 0". It records the directories it built in.
type fakeTools struct {
	host map[string]hostRun
	molt map[string]moltRun
	fail map[string]string // base name -> image build error

	mu   sync.Mutex
	dirs []string
}

func (f *fakeTools) tools() *tools {
	name := func(path string) string { return filepath.Base(filepath.Dir(path)) }
	return &tools{
		buildHost: func(ctx context.Context, dir, out string) error {
			f.mu.Lock()
			f.dirs = append(f.dirs, dir)
			f.mu.Unlock()
			if _, err := os.Stat(filepath.Join(dir, KernelFile)); err != nil {
				return err
			}
			return os.WriteFile(out, nil, 0o755)
		},
		buildImage: func(ctx context.Context, dir, out string) error {
			if msg := f.fail[filepath.Base(dir)]; msg != "" {
				return errors.New(msg)
			}
			return os.WriteFile(out, nil, 0o644)
		},
		runHost: func(ctx context.Context, exe string, timeout time.Duration) hostRun {
			return f.host[name(exe)]
		},
		boot: func(ctx context.Context, elf string, o *Options) moltRun {
			if r, ok := f.molt[name(elf)]; ok {
				return r
			}
			return moltRun{Result: qemu.Result{Status: 1, Code: 0, Elapsed: 250 * time.Millisecond}}
		},
	}
}

func TestRun(t *testing.T) {
	goroot := t.TempDir()
	writeTree(t, goroot, map[string]string{
		"test/good.go":      prog("// run", "", nil, ""),
		"test/golden.go":    prog("// run", "", nil, ""),
		"test/golden.out":   "out\n",
		"test/chan/bad.go":  prog("// run", "", nil, ""),
		"test/badhost.go":   prog("// run", "", nil, ""),
		"test/nobuild.go":   prog("// run", "", nil, ""),
		"test/exec.go":      prog("// run", "", []string{`"os/exec"`}, "_ = exec.Command"),
		"test/known.go":     prog("// run", "", nil, ""),
		"test/compile.go":   prog("// compile", "", nil, ""),
		"test/filtered.go":  prog("// run", "", nil, ""),
		"test/ken/other.go": prog("// run", "", nil, ""),
	})
	f := &fakeTools{
		host: map[string]hostRun{
			"golden":  {Output: []byte("out\n")},
			"badhost": {ExitCode: 1, Output: []byte("fails on the host too\n")},
		},
		molt: map[string]moltRun{
			"golden": {Console: []byte("out\r\n"), Result: qemu.Result{Status: 1, Code: 0, Elapsed: 1500 * time.Millisecond}},
			"bad":    {Console: []byte("molt: fault: #PF\r\n"), Result: qemu.Result{Status: layout.QEMUStatus(layout.ExitFault), Code: layout.ExitFault}},
		},
		fail: map[string]string{"nobuild": "build .: go build: exit status 1\nline two\nline three\nline four"},
	}
	var out bytes.Buffer
	sum, err := Run(t.Context(), Options{
		GOROOT: goroot, RepoRoot: repoRootForTest(t), Jobs: 3, Verbose: true, Stdout: &out,
		Known: map[string]string{"known.go": "known reason"},
		Run:   regexp.MustCompile(`^(?:good|golden|badhost|nobuild|exec|known|compile)\.go$|^chan/`),
		tools: f.tools(),
	})
	text := out.String()
	if err == nil || !strings.Contains(err.Error(), "3 of 5 programs failed") {
		t.Errorf("Run error = %v; want \"3 of 5 programs failed\"", err)
	}
	if want := (Summary{Passed: 2, Failed: 3, Skipped: 2}); sum.Passed != want.Passed || sum.Failed != want.Failed || sum.Skipped != want.Skipped {
		t.Errorf("Run summary = %+v; want %+v", sum, want)
	}
	for _, line := range []string{
		"SKIP exec.go: starts subprocesses",
		"SKIP known.go: known reason",
		"PASS good.go (0.25s)",
		"PASS golden.go (1.50s)",
		`FAIL chan/bad.go: kernel stopped on a CPU fault (exit code 0x70); kernel: "molt: fault: #PF"`,
		"\tmolt>   1| molt: fault: #PF", // -v detail
		`FAIL badhost.go: host run: exit status 1: line 1: got "fails on the host too\n", want end of output`,
		"FAIL nobuild.go: image build: build .: go build: exit status 1 | line two | line three | ...",
		"conformance: 2 skipped",
	} {
		if !strings.Contains(text, line+"\n") && !strings.Contains(text, line) {
			t.Errorf("output lacks %q:\n%s", line, text)
		}
	}
	if strings.Contains(text, "filtered") || strings.Contains(text, "other.go") || strings.Contains(text, "compile.go") {
		t.Errorf("output mentions a program that -run or the action excludes:\n%s", text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "2 passed, 3 failed" {
		t.Errorf("last line = %q; want \"2 passed, 3 failed\"", last)
	}
	// SKIP lines come first.
	if !strings.HasPrefix(text, "SKIP exec.go") {
		t.Errorf("output does not start with the SKIP lines:\n%s", text)
	}
	// The temporary module is gone, and it was never in the repository.
	if len(f.dirs) != 5 {
		t.Errorf("built in %d directories; want 5", len(f.dirs))
	}
	for _, d := range f.dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("build directory %s still exists after Run (err %v)", d, err)
		}
		if strings.HasPrefix(d, repoRootForTest(t)) {
			t.Errorf("built in %s, inside the repository", d)
		}
	}
}

func TestRunKeep(t *testing.T) {
	goroot := t.TempDir()
	writeTree(t, goroot, map[string]string{"test/good.go": prog("// run", "", nil, "")})
	f := &fakeTools{}
	var out bytes.Buffer
	sum, err := Run(t.Context(), Options{GOROOT: goroot, RepoRoot: repoRootForTest(t), Keep: true, Stdout: &out, tools: f.tools()})
	if err != nil || sum.Passed != 1 {
		t.Fatalf("Run = %+v, %v; want 1 passed\n%s", sum, err, out.String())
	}
	m := regexp.MustCompile(`conformance: building in (\S+) \(kept\)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("Run -keep did not print the directory:\n%s", out.String())
	}
	t.Cleanup(func() { os.RemoveAll(m[1]) })
	for _, name := range []string{"go.mod", "go.sum", "prog/good/good.go", "prog/good/" + KernelFile, "prog/good/molt.elf", "prog/good/host.exe"} {
		if _, err := os.Stat(filepath.Join(m[1], name)); err != nil {
			t.Errorf("kept module lacks %s: %v", name, err)
		}
	}
	if !strings.HasSuffix(out.String(), "\n1 passed, 0 failed\n") {
		t.Errorf("output does not end with the summary:\n%s", out.String())
	}
}

func TestRunCanceled(t *testing.T) {
	goroot := t.TempDir()
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("test/p%02d.go", i)] = prog("// run", "", nil, "")
	}
	writeTree(t, goroot, files)
	ctx, cancel := context.WithCancel(t.Context())
	f := &fakeTools{}
	tl := f.tools()
	var boots int
	var mu sync.Mutex
	boot := tl.boot
	tl.boot = func(c context.Context, elf string, o *Options) moltRun {
		mu.Lock()
		boots++
		if boots == 3 {
			cancel()
		}
		mu.Unlock()
		return boot(c, elf, o)
	}
	var out bytes.Buffer
	sum, err := Run(ctx, Options{GOROOT: goroot, RepoRoot: repoRootForTest(t), Jobs: 1, Stdout: &out, tools: tl})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v; want context.Canceled", err)
	}
	if sum.Passed+sum.Failed >= 20 || !strings.Contains(out.String(), "not run") {
		t.Errorf("Run after cancel ran %d programs; want it to stop and say how many were not run:\n%s", sum.Passed+sum.Failed, out.String())
	}
}

func TestRunSetupErrors(t *testing.T) {
	if _, err := Run(t.Context(), Options{RepoRoot: "/x"}); err == nil {
		t.Error("Run without GOROOT succeeded")
	}
	if _, err := Run(t.Context(), Options{GOROOT: t.TempDir(), RepoRoot: "/x"}); err == nil || !strings.Contains(err.Error(), "test directory") {
		t.Errorf("Run with an empty GOROOT = %v; want an error about the test directory", err)
	}
	goroot := t.TempDir()
	writeTree(t, goroot, map[string]string{"test/good.go": prog("// run", "", nil, "")})
	if _, err := Run(t.Context(), Options{GOROOT: goroot, RepoRoot: t.TempDir(), tools: (&fakeTools{}).tools()}); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Errorf("Run with a RepoRoot without go.mod = %v; want an error naming go.mod", err)
	}
}

// repoRootForTest is the molt module this test runs in; Run only reads
// its go.mod and go.sum.
func repoRootForTest(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestRunNoMatch(t *testing.T) {
	goroot := t.TempDir()
	writeTree(t, goroot, map[string]string{"test/good.go": prog("// run", "", nil, "")})
	var out bytes.Buffer
	_, err := Run(t.Context(), Options{GOROOT: goroot, RepoRoot: repoRootForTest(t), Run: regexp.MustCompile("nothing"), Stdout: &out, tools: (&fakeTools{}).tools()})
	if err == nil || !strings.Contains(err.Error(), "matches -run nothing") {
		t.Errorf("Run with a -run that matches nothing = %v; want an error", err)
	}
	if out.String() != "0 passed, 0 failed\n" {
		t.Errorf("output = %q; want only the summary", out.String())
	}
}
