package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/molt-os/molt/boot/layout"
)

// BuildOptions says what Build links and where.
type BuildOptions struct {
	// Dir is the directory go build runs in: the module root or a package
	// directory. Empty means the current directory.
	Dir string
	// Package is the main package to build, as go build takes it, relative
	// to Dir (for example "./cmd/kernel").
	Package string
	// Output is the image file to write. A relative path is relative to the
	// current directory of the caller, not to Dir. Missing parent
	// directories are created.
	Output string
	// Version, when not empty, is stamped into layout.VersionVar with -X.
	// It must not contain white space or quotes.
	Version string
	// Vars are more string variables to stamp with -X, each "name=value"
	// (for example the trusted keys, layout.TrustedKeysVar). The same
	// characters as in Version are refused.
	Vars []string
	// Env holds extra environment variables for go build, after the
	// caller's environment. GOOS, GOARCH and CGO_ENABLED cannot be
	// overridden; a GOEXPERIMENT here is extended, not replaced; GOAMD64
	// is v1 unless given here (the caller's GOAMD64 does not count).
	Env []string
	// Stdout and Stderr receive go build's output (nil discards it); they
	// may be the same writer. The last part of its standard error is also
	// carried in the error.
	Stdout, Stderr io.Writer
}

// goExperiment turns off Go 1.26's randomised heap base: the runtime then
// asks for its heap arenas at the fixed hint 0xc000000000 instead of random
// 47-bit addresses, so the kernel's mmap can honour the first hint and
// addresses in crash reports repeat from boot to boot.
const goExperiment = "norandomizedheapbase64"

// Build links a kernel image with the stock go command and post-links it
// with Patch. It runs "go" from PATH with GOOS=linux GOARCH=amd64
// GOAMD64=v1 CGO_ENABLED=0, GOEXPERIMENT extended by norandomizedheapbase64,
// and
//
//	-ldflags '-E <layout.EntrySymbol> -T <layout.ImageText> [-X <layout.VersionVar>=<Version>]'
//
// without -trimpath, so that crash reports carry full file paths.
func Build(ctx context.Context, o BuildOptions) (*Report, error) {
	r, err := build(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", o.Package, err)
	}
	return r, nil
}

func build(ctx context.Context, o BuildOptions) (*Report, error) {
	if o.Package == "" {
		return nil, errors.New("no package given")
	}
	if o.Output == "" {
		return nil, errors.New("no output file given")
	}
	out, err := filepath.Abs(o.Output)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	args, err := buildArgs(o.Package, out, o.Version, o.Vars...)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = o.Dir
	cmd.Env = buildEnv(os.Environ(), o.Env)
	// os/exec copies the two streams in two goroutines; one lock lets the
	// caller pass the same writer for both.
	var mu sync.Mutex
	tail := &tailBuffer{max: 16 << 10}
	cmd.Stdout = &lockedWriter{mu: &mu, w: writerOrDiscard(o.Stdout)}
	cmd.Stderr = &lockedWriter{mu: &mu, w: io.MultiWriter(writerOrDiscard(o.Stderr), tail)}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(tail.String())
		if msg != "" {
			return nil, fmt.Errorf("go build: %w\n%s", err, msg)
		}
		return nil, fmt.Errorf("go build: %w", err)
	}
	return Patch(out)
}

// buildArgs returns the arguments of the go command; vars are more -X
// settings ("name=value").
func buildArgs(pkg, out, version string, vars ...string) ([]string, error) {
	ldflags := fmt.Sprintf("-E %s -T %#x", layout.EntrySymbol, layout.ImageText)
	if version != "" {
		// go build splits -ldflags on spaces and honours quotes; refusing
		// those characters keeps the version a single, literal word.
		if strings.ContainsAny(version, " \t\n\r'\"\\") {
			return nil, fmt.Errorf("version %q contains white space, a quote or a backslash", version)
		}
		ldflags += fmt.Sprintf(" -X %s=%s", layout.VersionVar, version)
	}
	for _, v := range vars {
		if strings.ContainsAny(v, " \t\n\r'\"\\") || !strings.Contains(v, "=") {
			return nil, fmt.Errorf("-X setting %q is not name=value without white space, quotes or backslashes", v)
		}
		ldflags += " -X " + v
	}
	return []string{"build", "-o", out, "-ldflags", ldflags, pkg}, nil
}

// buildEnv returns the environment of go build: base (the caller's
// environment), then extra, then the target settings, which nothing
// overrides. The last GOEXPERIMENT of base and extra is kept and extended.
// GOAMD64 is taken from extra only, else v1: a host's GOAMD64=v3 (in the
// environment or in go env) would build an image whose runtime refuses to
// start without AVX, which the kernel does not enable (it saves only FXSAVE
// state).
func buildEnv(base, extra []string) []string {
	env := make([]string, 0, len(base)+len(extra)+5)
	exp, amd64 := "", "v1"
	add := func(kv string, fromBase bool) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GOEXPERIMENT":
			exp = v
		case "GOOS", "GOARCH", "CGO_ENABLED":
		case "GOAMD64":
			if !fromBase {
				amd64 = v
			}
		default:
			env = append(env, kv)
		}
	}
	for _, kv := range base {
		add(kv, true)
	}
	for _, kv := range extra {
		add(kv, false)
	}
	has := false
	for _, e := range strings.Split(exp, ",") {
		if e == goExperiment {
			has = true
		}
	}
	switch {
	case exp == "":
		exp = goExperiment
	case !has:
		exp += "," + goExperiment
	}
	return append(env, "GOOS=linux", "GOARCH=amd64", "GOAMD64="+amd64, "CGO_ENABLED=0", "GOEXPERIMENT="+exp)
}

func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// lockedWriter serialises writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
