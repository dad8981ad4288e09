package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/qemu"
)

// Defaults of Options.
const (
	DefaultTimeout = 60 * time.Second
	DefaultMemory  = 512 // MiB
)

// Options configure Run.
type Options struct {
	GOROOT   string         // Go distribution whose test/ is run (required)
	RepoRoot string         // the molt module the images are built from (required)
	Run      *regexp.Regexp // only programs whose name matches; nil means all
	// Known is the explicit skip list, name -> reason; nil means the
	// package's Known, an empty map skips only by Rules.
	Known map[string]string
	// Jobs is how many programs are built and run at once; 0 means
	// runtime.NumCPU().
	Jobs int
	// Timeout bounds each program's host run and its VM boot separately;
	// 0 means DefaultTimeout. Builds are bounded only by the context.
	Timeout time.Duration
	Accel   string // QEMU accelerator; "" means qemu.DefaultAccel
	Memory  int    // guest RAM in MiB; 0 means DefaultMemory
	// Keep leaves the temporary module, with sources and binaries, in place
	// and prints its path.
	Keep bool
	// Verbose prints, after each failure, the lines around the first
	// difference between the molt and the expected output.
	Verbose bool
	Stdout  io.Writer // progress and summary; nil discards

	// tools does the building and running; nil means the real ones.
	// Tests of this package replace it.
	tools *tools
}

// tools are the steps of one program that touch the outside world.
type tools struct {
	buildImage func(ctx context.Context, dir, out string) error
	buildHost  func(ctx context.Context, dir, out string) error
	runHost    func(ctx context.Context, exe string, timeout time.Duration) hostRun
	boot       func(ctx context.Context, elf string, o *Options) moltRun
}

// hostRun is how the reference binary ran on the host.
type hostRun struct {
	Output   []byte // standard output and error, interleaved
	ExitCode int    // -1 if it did not exit on its own
	TimedOut bool
	Err      error // could not be started, or killed
}

// moltRun is how the image ran on molt.
type moltRun struct {
	Console []byte // raw serial output
	Result  qemu.Result
	Err     error // from qemu.Run: QEMU failed, timed out, or was stopped
}

// Summary counts the outcome of Run.
type Summary struct {
	Passed, Failed, Skipped int
	Elapsed                 time.Duration
}

// Run selects the programs, builds and runs each on the host and on molt,
// and prints one line per program, as it finishes:
//
//	PASS chan/select3.go (0.41s)    the time is the VM's, boot to exit
//	FAIL ken/cplx0.go: reason
//	SKIP env.go: reason             printed first, in name order
//
// then "conformance: N skipped" if any were, and last "N passed, N failed"
// alone on its line. The error is non-nil when a program failed, when the
// suite could not be set up, or when ctx ended early.
func Run(ctx context.Context, o Options) (Summary, error) {
	start := time.Now()
	o.defaults()
	var sum Summary
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return sum, fmt.Errorf("conformance: the host reference runs need linux/amd64, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	if o.GOROOT == "" || o.RepoRoot == "" {
		return sum, errors.New("conformance: GOROOT and RepoRoot are required")
	}
	progs, skipped, err := Select(o.GOROOT, o.Known, o.Run)
	if err != nil {
		return sum, fmt.Errorf("conformance: %w", err)
	}
	if len(progs) == 0 && len(skipped) == 0 {
		fmt.Fprintln(o.Stdout, "0 passed, 0 failed")
		return sum, fmt.Errorf("conformance: no %q program in %s matches -run %v", Action, filepath.Join(o.GOROOT, "test"), o.Run)
	}
	for _, s := range skipped {
		fmt.Fprintf(o.Stdout, "SKIP %s: %s\n", s.Name, s.Reason)
	}
	sum.Skipped = len(skipped)

	root, err := os.MkdirTemp("", "molt-conformance-")
	if err != nil {
		return sum, fmt.Errorf("conformance: %w", err)
	}
	if o.Keep {
		fmt.Fprintf(o.Stdout, "conformance: building in %s (kept)\n", root)
	} else {
		defer os.RemoveAll(root)
	}
	if err := writeModule(root, o.RepoRoot); err != nil {
		return sum, fmt.Errorf("conformance: %w", err)
	}

	var (
		mu   sync.Mutex // serialises output and sum
		wg   sync.WaitGroup
		next = make(chan Program)
	)
	for range min(o.Jobs, max(len(progs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				r := o.runOne(ctx, root, p)
				mu.Lock()
				o.report(p, r)
				if r.ok {
					sum.Passed++
				} else {
					sum.Failed++
				}
				mu.Unlock()
			}
		}()
	}
	notRun := 0
feed:
	for i, p := range progs {
		if ctx.Err() == nil {
			select {
			case next <- p:
				continue
			case <-ctx.Done():
			}
		}
		notRun = len(progs) - i
		break feed
	}
	close(next)
	wg.Wait()

	if sum.Skipped > 0 {
		fmt.Fprintf(o.Stdout, "conformance: %d skipped\n", sum.Skipped)
	}
	if notRun > 0 {
		fmt.Fprintf(o.Stdout, "conformance: %d not run\n", notRun)
	}
	fmt.Fprintf(o.Stdout, "%d passed, %d failed\n", sum.Passed, sum.Failed)
	sum.Elapsed = time.Since(start)
	switch {
	case ctx.Err() != nil:
		return sum, fmt.Errorf("conformance: stopped: %w", context.Cause(ctx))
	case sum.Failed > 0:
		return sum, fmt.Errorf("conformance: %d of %d programs failed", sum.Failed, sum.Passed+sum.Failed)
	}
	return sum, nil
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Accel == "" {
		o.Accel = qemu.DefaultAccel
	}
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	if o.Known == nil {
		o.Known = Known
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.tools == nil {
		o.tools = &realTools
	}
}

// result is the verdict on one program.
type result struct {
	ok     bool
	reason string        // why it failed
	detail string        // more for -v
	vmTime time.Duration // boot to exit
}

func (o *Options) report(p Program, r result) {
	if r.ok {
		fmt.Fprintf(o.Stdout, "PASS %s (%.2fs)\n", p.Name, r.vmTime.Seconds())
		return
	}
	fmt.Fprintf(o.Stdout, "FAIL %s: %s\n", p.Name, r.reason)
	if o.Verbose && r.detail != "" {
		fmt.Fprint(o.Stdout, r.detail)
	}
}

// runOne builds and runs p on the host, then on molt, and judges it.
func (o *Options) runOne(ctx context.Context, root string, p Program) result {
	fail := func(format string, args ...any) result {
		return result{reason: fmt.Sprintf(format, args...)}
	}
	want := []byte{}
	if p.Golden != "" {
		b, err := os.ReadFile(p.Golden)
		if err != nil {
			return fail("%v", err)
		}
		want = b
	}
	dir, err := writeProgram(root, p)
	if err != nil {
		return fail("%v", err)
	}
	hostExe, elf := filepath.Join(dir, "host.exe"), filepath.Join(dir, "molt.elf")
	if !o.Keep {
		defer os.Remove(hostExe)
		defer os.Remove(elf)
	}

	if err := o.tools.buildHost(ctx, dir, hostExe); err != nil {
		return fail("host build: %s", firstLines(err.Error(), 3))
	}
	host := o.tools.runHost(ctx, hostExe, o.Timeout)
	if r := judgeHost(p, want, host, o.Timeout); !r.ok {
		return r
	}
	if err := o.tools.buildImage(ctx, dir, elf); err != nil {
		return fail("image build: %s", firstLines(err.Error(), 3))
	}
	return judgeMolt(p, want, o.tools.boot(ctx, elf, o), o.Timeout)
}

// judgeHost checks the reference run: it must exit 0 with the expected
// output, want (the .out file, or nothing, as Go's test driver requires).
// A program that fails on the host says nothing about molt.
func judgeHost(p Program, want []byte, host hostRun, timeout time.Duration) result {
	var r result
	switch {
	case host.Err != nil:
		r.reason = fmt.Sprintf("host run: %v", host.Err)
	case host.TimedOut:
		r.reason = fmt.Sprintf("host run timed out after %v", timeout)
	case host.ExitCode != 0:
		r.reason = fmt.Sprintf("host run: exit status %d", host.ExitCode)
	}
	if d, same := FirstDiff(host.Output, want); !same {
		if r.reason == "" {
			r.reason = fmt.Sprintf("host output differs from %s", expectedName(p))
		}
		r.reason += ": " + d.String()
		r.detail = Context(host.Output, want, d, "host", "want")
	}
	r.ok = r.reason == ""
	return r
}

// judgeMolt checks the molt run: exit 0 and the expected output, which the
// host run has already produced.
func judgeMolt(p Program, want []byte, molt moltRun, timeout time.Duration) result {
	got := NormalizeConsole(molt.Console)
	r := result{vmTime: molt.Result.Elapsed}
	d, same := FirstDiff(got, want)
	if !same {
		r.detail = Context(got, want, d, "molt", "want")
	}
	switch res := molt.Result; {
	case res.TimedOut:
		r.reason = fmt.Sprintf("timed out after %v", timeout)
	case molt.Err != nil:
		r.reason = molt.Err.Error()
	case res.Code != 0:
		r.reason = res.Describe()
	case !same:
		r.reason = fmt.Sprintf("output differs from %s: %s", expectedName(p), d)
		return r
	default:
		r.ok = true
		return r
	}
	// The run did not end well: name the kernel's complaint if there is
	// one, else what the program said that it should not have.
	if k := KernelLine(got); k != "" {
		r.reason += "; kernel: " + quoteLine(k, false)
	} else if !same {
		r.reason += "; output " + d.String()
	}
	return r
}

// expectedName names the expected output of p in results.
func expectedName(p Program) string {
	if p.Golden != "" {
		return filepath.Base(p.Golden)
	}
	return "the expected empty output"
}

// firstLines returns up to n lines of s, joined with " | ".
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, " | ")
}

var realTools = tools{
	buildImage: func(ctx context.Context, dir, out string) error {
		var log bytes.Buffer
		_, err := image.Build(ctx, image.BuildOptions{
			Dir: dir, Package: ".", Output: out, Env: []string{"GOWORK=off"},
			Stdout: &log, Stderr: &log,
		})
		return err
	},
	buildHost: func(ctx context.Context, dir, out string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v: %s", err, bytes.TrimSpace(msg))
		}
		return nil
	},
	runHost: func(ctx context.Context, exe string, timeout time.Duration) hostRun {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, exe)
		cmd.Dir = filepath.Dir(exe)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		r := hostRun{Output: out.Bytes(), ExitCode: -1}
		if cmd.ProcessState != nil {
			r.ExitCode = cmd.ProcessState.ExitCode()
		}
		var exit *exec.ExitError
		switch {
		case ctx.Err() == context.DeadlineExceeded:
			r.TimedOut = true
		case err != nil && !errors.As(err, &exit):
			r.Err = err
		case r.ExitCode == -1:
			r.Err = fmt.Errorf("%v", cmd.ProcessState)
		}
		return r
	},
	boot: func(ctx context.Context, elf string, o *Options) moltRun {
		var console bytes.Buffer
		res, err := qemu.Run(ctx,
			qemu.Kernel(elf), qemu.Append("molt.quiet"), qemu.Console(&console),
			qemu.Memory(o.Memory), qemu.Accel(o.Accel), qemu.Timeout(o.Timeout))
		return moltRun{Console: console.Bytes(), Result: res, Err: err}
	},
}
