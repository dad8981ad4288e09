package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/build"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Dirs are the directories of $GOROOT/test whose programs are candidates,
// relative to it; "." is the top level. Subdirectories of these are not
// searched (they hold multi-file tests with other actions).
var Dirs = []string{".", "chan", "ken"}

// Action is the exact first line that makes a file a candidate: Go's test
// driver (cmd/internal/testdir) builds it, runs it, and wants exit status 0
// and the output of the .out file next to it, or no output. Files whose
// first line adds flags or arguments ("// run -gcflags=...", "// run arg1")
// are left out: the image cannot be built or started the same way.
const Action = "// run"

// Program is one selected test program.
type Program struct {
	// Name is the path relative to $GOROOT/test with forward slashes, for
	// example "chan/select3.go". -run matches it and results carry it.
	Name string
	// Path is the absolute path of the source file.
	Path string
	// Golden is the absolute path of the .out file next to the source, or
	// empty if there is none (the expected output is then empty).
	Golden string
}

// Skipped is a candidate that is not run, and why.
type Skipped struct {
	Name   string
	Reason string
}

// facts is what the skip rules look at in one source file.
type facts struct {
	imports    map[string]bool // import paths
	uses       map[string]bool // "importpath.Name" for each qualified identifier
	plusBuild  bool            // has a "// +build" line
	constraint string          // the //go:build expression, if any
	matches    bool            // go/build says the file builds for Target
}

// skipRule skips candidates that need what molt does not provide by design.
type skipRule struct {
	reason string
	match  func(*facts) bool
	detail func(*facts) string // optional, appended to reason
}

// Rules is the table of skip rules, checked in order; the first that
// matches gives the reason. They look only at the source, so they also hold
// for programs added to the Go distribution later.
var Rules = []skipRule{
	{reason: "// +build line: legacy build constraint, the suite evaluates only //go:build",
		match: func(f *facts) bool { return f.plusBuild }},
	{reason: "build constraint excludes linux/amd64 (gc, CGO_ENABLED=0)",
		match: func(f *facts) bool { return !f.matches },
		detail: func(f *facts) string {
			if f.constraint == "" {
				return " (file name)"
			}
			return ": //go:build " + f.constraint
		}},
	{reason: "cgo (import \"C\"): images are built with CGO_ENABLED=0",
		match: imports("C")},
	{reason: "starts subprocesses (os/exec, fork/exec): molt runs one program and has no exec",
		match: either(imports("os/exec"), uses("os.StartProcess", "os.FindProcess",
			"syscall.ForkExec", "syscall.Exec", "syscall.Wait4"))},
	{reason: "network (net): molt has no network stack",
		match: importsPrefix("net")},
	{reason: "plugin: needs the dynamic loader; images are static",
		match: imports("plugin")},
	{reason: "testing package: needs the go test driver (flags, temporary files)",
		match: imports("testing")},
	{reason: "file system (io/ioutil): molt has no file system",
		match: imports("io/ioutil")},
	{reason: "file system (os file calls): molt has no file system",
		match: uses("os.ReadFile", "os.WriteFile", "os.Open", "os.OpenFile", "os.Create",
			"os.CreateTemp", "os.MkdirTemp", "os.TempDir", "os.Mkdir", "os.MkdirAll",
			"os.Remove", "os.RemoveAll", "os.Rename", "os.Stat", "os.Lstat",
			"os.ReadDir", "os.Chdir", "os.DirFS", "os.Executable", "os.Pipe")},
	{reason: "profiling (runtime/pprof): needs SIGPROF and files",
		match: imports("runtime/pprof")},
	{reason: "signals (os/signal, kill): molt delivers no signals",
		match: either(imports("os/signal"), uses("syscall.Kill", "syscall.Tgkill", "syscall.Tkill"))},
	{reason: "memory protection (syscall.Mmap/Mprotect): molt maps anonymous memory only and does not enforce protections",
		match: uses("syscall.Mmap", "syscall.Munmap", "syscall.Mprotect")},
}

func imports(paths ...string) func(*facts) bool {
	return func(f *facts) bool {
		for _, p := range paths {
			if f.imports[p] {
				return true
			}
		}
		return false
	}
}

// importsPrefix matches path and everything under it ("net", "net/http").
func importsPrefix(path string) func(*facts) bool {
	return func(f *facts) bool {
		for p := range f.imports {
			if p == path || strings.HasPrefix(p, path+"/") {
				return true
			}
		}
		return false
	}
}

func uses(names ...string) func(*facts) bool {
	return func(f *facts) bool {
		for _, n := range names {
			if f.uses[n] {
				return true
			}
		}
		return false
	}
}

func either(a, b func(*facts) bool) func(*facts) bool {
	return func(f *facts) bool { return a(f) || b(f) }
}

// Target is the build context of both the image and the host reference
// build: linux/amd64, gc, without cgo. Release tags (go1.N) and tool tags
// (goexperiment.*) are those of the installed go/build.
func Target() build.Context {
	c := build.Default
	c.GOOS, c.GOARCH, c.Compiler = "linux", "amd64", "gc"
	c.CgoEnabled = false
	c.BuildTags = nil
	return c
}

// Select lists the candidates under goroot/test (see Dirs and Action),
// sorted by name, and splits them into programs to run and skipped ones.
// A candidate is skipped by the first matching entry of Rules, or else if
// known names it (name -> reason). Candidates whose name run does not match
// are left out entirely; run may be nil.
func Select(goroot string, known map[string]string, run *regexp.Regexp) ([]Program, []Skipped, error) {
	root := filepath.Join(goroot, "test")
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("no test directory in GOROOT %s (the Go distribution's test/ is needed): %v", goroot, err)
	}
	ctx := Target()
	var progs []Program
	var skipped []Skipped
	for _, dir := range Dirs {
		paths, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return nil, nil, err
		}
		slices.Sort(paths)
		for _, path := range paths {
			name := filepath.ToSlash(filepath.Join(dir, filepath.Base(path)))
			if run != nil && !run.MatchString(name) {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, nil, err
			}
			if firstLine(src) != Action {
				continue
			}
			reason, err := skipReason(&ctx, path, src)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			if reason == "" {
				reason = known[name]
			}
			if reason != "" {
				skipped = append(skipped, Skipped{name, reason})
				continue
			}
			p := Program{Name: name, Path: path}
			golden := strings.TrimSuffix(path, ".go") + ".out"
			if _, err := os.Stat(golden); err == nil {
				p.Golden = golden
			}
			progs = append(progs, p)
		}
	}
	slices.SortFunc(progs, func(a, b Program) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(skipped, func(a, b Skipped) int { return strings.Compare(a.Name, b.Name) })
	return progs, skipped, nil
}

// firstLine returns the first line of src without its line ending.
func firstLine(src []byte) string {
	line, _, _ := bytes.Cut(src, []byte("\n"))
	return string(bytes.TrimSuffix(line, []byte("\r")))
}

// skipReason returns the reason of the first rule that matches the file,
// or "" if none does.
func skipReason(ctx *build.Context, path string, src []byte) (string, error) {
	f, err := gather(ctx, path, src)
	if err != nil {
		return "", err
	}
	for _, r := range Rules {
		if r.match(f) {
			if r.detail != nil {
				return r.reason + r.detail(f), nil
			}
			return r.reason, nil
		}
	}
	return "", nil
}

// gather parses src and collects its facts. A file that does not parse is
// an error: every "// run" program of a Go release parses.
func gather(ctx *build.Context, path string, src []byte) (*facts, error) {
	f := &facts{imports: map[string]bool{}, uses: map[string]bool{}}

	// Build constraints, the way go/build reads them: lines before the
	// package clause.
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "package ") {
			break
		}
		if constraint.IsPlusBuild(line) {
			f.plusBuild = true
		}
		if constraint.IsGoBuild(line) {
			f.constraint = strings.TrimSpace(strings.TrimPrefix(line, "//go:build"))
		}
	}
	dir, base := filepath.Split(path)
	ok, err := ctx.MatchFile(dir, base)
	if err != nil {
		return nil, err
	}
	f.matches = ok

	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	local := map[string]string{} // local name -> import path
	for _, im := range file.Imports {
		p, err := strconv.Unquote(im.Path.Value)
		if err != nil {
			return nil, err
		}
		f.imports[p] = true
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		if name != "_" && name != "." {
			local[name] = p
		}
	}
	// A selector x.Sel counts as a use of package x unless x is also
	// declared locally somewhere in the file; the test programs do not
	// shadow package names, and a rare false match only skips a program.
	ast.Inspect(file, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok {
				if p, ok := local[x.Name]; ok {
					f.uses[p+"."+sel.Sel.Name] = true
				}
			}
		}
		return true
	})
	return f, nil
}
