package qemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/molt-os/molt/boot/layout"
)

// Result is how a VM ended.
type Result struct {
	// Status is QEMU's exit status, or -1 if a signal ended it.
	Status int
	// Code is the kernel's exit code: (Status-1)/2 when QEMU exited because
	// the kernel wrote to isa-debug-exit, else -1. QEMU's own failures also
	// exit with status 1; they are told apart by QEMU's error message and
	// give Code -1 and ErrQEMU.
	Code int
	// Accel is the accelerator QEMU ran with: "kvm" or "tcg".
	Accel    string
	Elapsed  time.Duration
	TimedOut bool
}

// Describe names the outcome, using the exit codes of package layout.
func (r Result) Describe() string {
	switch {
	case r.TimedOut:
		return fmt.Sprintf("timed out after %v", r.Elapsed.Round(time.Millisecond))
	case r.Code == -1 && r.Status == 0:
		return "powered off (QEMU exited with status 0)"
	case r.Code == -1 && r.Status == -1:
		return "QEMU was killed by a signal"
	case r.Code == -1:
		return fmt.Sprintf("QEMU exited with status %d (not an exit code from the kernel)", r.Status)
	case r.Code == 0:
		return "program exit 0"
	case r.Code <= layout.ExitProgramMax:
		return fmt.Sprintf("program exit %d", r.Code)
	case r.Code == layout.ExitFault:
		return fmt.Sprintf("kernel stopped on a CPU fault (exit code %#x)", r.Code)
	case r.Code == layout.ExitKernelPanic:
		return fmt.Sprintf("kernel panic (exit code %#x)", r.Code)
	case r.Code == layout.ExitProbe:
		return fmt.Sprintf("accelerator probe passed (exit code %#x)", r.Code)
	}
	return fmt.Sprintf("unknown kernel exit code %#x", r.Code)
}

// OK reports whether the run ended well: a program exit 0, or a poweroff.
func (r Result) OK() bool {
	return !r.TimedOut && (r.Code == 0 || r.Code == -1 && r.Status == 0)
}

// VM is a running QEMU. Always call Wait, also after Kill: it reaps QEMU and
// returns the result (any number of times, from any goroutine).
type VM struct {
	cfg   *Config
	argv  []string // binary and arguments
	accel accelChoice
	cmd   *exec.Cmd
	start time.Time

	con    *console
	errs   *stderrSink
	stdinW *os.File // nil without Stdin
	copies sync.WaitGroup

	stop     chan struct{} // closed by Kill or fail
	stopOnce sync.Once
	timedOut atomic.Bool
	waited   atomic.Bool

	failMu  sync.Mutex
	failErr error // set by fail; +checklocks:failMu

	done   chan struct{} // closed when QEMU is reaped and output delivered
	result Result        // valid after done
	err    error         // valid after done
}

// Start launches QEMU with the options and returns at once. The accelerator
// probe (Accel "auto") runs first, before Start returns. QEMU is killed when
// ctx is done or the Timeout expires.
func Start(ctx context.Context, opts ...Option) (*VM, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	if err := lookBinary(c.Binary); err != nil {
		return nil, err
	}
	if _, err := os.Stat(c.Kernel); err != nil {
		return nil, fmt.Errorf("qemu: kernel image: %w", err)
	}
	choice, err := resolveAccel(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("qemu: choosing the accelerator: %w", err)
	}
	c.logf("qemu: accel %s, cpu %s (%s)", choice.accel, choice.cpu, choice.why)
	return start(ctx, c, choice)
}

// Run starts a VM and waits for it.
func Run(ctx context.Context, opts ...Option) (Result, error) {
	v, err := Start(ctx, opts...)
	if err != nil {
		return Result{Status: -1, Code: -1}, err
	}
	return v.Wait()
}

// start launches QEMU with a resolved accelerator.
func start(ctx context.Context, c *Config, choice accelChoice) (_ *VM, err error) {
	v := &VM{
		cfg:   c,
		argv:  append([]string{c.Binary}, c.args(choice.accel, choice.cpu)...),
		accel: choice,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	v.cmd = exec.Command(v.argv[0], v.argv[1:]...)
	v.cmd.SysProcAttr = sysProcAttr()

	// Pipes are made here rather than by os/exec so that the launcher
	// decides when output is complete (see wait) and stdin never blocks Wait.
	var parentEnds, childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
		if err != nil {
			for _, f := range parentEnds {
				f.Close()
			}
		}
	}()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	parentEnds, childEnds = append(parentEnds, outR), append(childEnds, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	parentEnds, childEnds = append(parentEnds, errR), append(childEnds, errW)
	v.cmd.Stdout, v.cmd.Stderr = outW, errW
	if c.Stdin != nil {
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		parentEnds, childEnds = append(parentEnds, inW), append(childEnds, inR)
		v.cmd.Stdin, v.stdinW = inR, inW
	}

	c.logf("qemu: %s", v.CommandLine())
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	v.con = newConsole(c.Console, c.Logf, v.start)
	v.errs = newStderrSink(c.Stderr, c.Logf, func(line string) {
		if c.onStderr != nil {
			c.onStderr(line, v)
		}
	})
	v.copies.Add(2)
	go func() { defer v.copies.Done(); v.con.copyFrom(outR) }()
	go func() { defer v.copies.Done(); v.errs.copyFrom(errR) }()
	if v.stdinW != nil {
		go func() {
			// Ends at the end of Stdin, or when wait closes the pipe.
			io.Copy(v.stdinW, c.Stdin)
			v.stdinW.Close()
		}()
	}
	go v.wait(ctx)
	return v, nil
}

// wait runs in its own goroutine from Start until QEMU is reaped.
func (v *VM) wait(ctx context.Context) {
	pid := v.cmd.Process.Pid
	exited := make(chan error, 1)
	go func() {
		if canSweep {
			exited <- waitExited(pid)
		} else {
			exited <- v.cmd.Wait()
		}
	}()
	var timeout <-chan time.Time
	if v.cfg.Timeout > 0 {
		t := time.NewTimer(v.cfg.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var stopErr, waitErr error
	select {
	case waitErr = <-exited:
	case <-timeout:
		v.timedOut.Store(true)
		stopErr = fmt.Errorf("%w after %v", ErrTimeout, v.cfg.Timeout)
	case <-ctx.Done():
		stopErr = fmt.Errorf("qemu: %w", ctxErr(ctx))
	case <-v.stop:
		stopErr = ErrKilled
		v.failMu.Lock()
		if v.failErr != nil {
			stopErr = v.failErr
		}
		v.failMu.Unlock()
	}
	if stopErr != nil {
		killGroup(pid)
		waitErr = <-exited
	}
	elapsed := time.Since(v.start)
	if canSweep {
		// QEMU is a zombie: its pid still names its process group. Kill
		// what it left behind so that no stray holds the console pipes,
		// then reap it.
		killGroup(pid)
		waitErr = v.cmd.Wait()
	}
	if v.stdinW != nil {
		v.stdinW.Close()
	}
	v.copies.Wait()

	ps := v.cmd.ProcessState
	r := Result{Status: -1, Code: -1, Accel: v.accel.accel, Elapsed: elapsed, TimedOut: v.timedOut.Load()}
	if ps != nil {
		r.Status = ps.ExitCode()
	}
	qemuFailed := v.errs.failed()
	if r.Status > 0 && r.Status%2 == 1 && !(r.Status == 1 && qemuFailed) {
		r.Code = (r.Status - 1) / 2
	}
	err := stopErr
	switch {
	case err != nil:
	case ps == nil:
		err = fmt.Errorf("qemu: wait: %v", waitErr)
	case r.Status == 1 && qemuFailed:
		err = fmt.Errorf("%w (exit status 1): %s", ErrQEMU, v.errs.tail())
	case r.Status == -1:
		err = fmt.Errorf("%w: %v", ErrQEMU, ps)
	}
	v.result, v.err = r, err
	close(v.done)
}

// ctxErr is ctx's error, joined with its cause when that says more (for
// example "interrupt signal received" from signal.NotifyContext), so that
// errors.Is(err, context.Canceled) holds either way.
func ctxErr(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// Wait blocks until QEMU has exited and all its console output has been
// delivered, and returns the result. The error is nil when QEMU ran until
// it exited on its own, whatever the kernel's exit code (see Result); it
// wraps ErrTimeout, ErrKilled, ErrQEMU or the context's error otherwise.
func (v *VM) Wait() (Result, error) {
	v.waited.Store(true)
	<-v.done
	return v.result, v.err
}

// Kill stops QEMU (and its process group). Wait then returns ErrKilled.
func (v *VM) Kill() { v.fail(nil) }

// fail kills QEMU; Wait then returns err (ErrKilled if err is nil).
func (v *VM) fail(err error) {
	v.stopOnce.Do(func() {
		v.failMu.Lock()
		v.failErr = err
		v.failMu.Unlock()
		close(v.stop)
	})
}

// CommandLine returns the QEMU command, quoted for a POSIX shell, to
// reproduce this run by hand.
func (v *VM) CommandLine() string { return commandLine(v.argv) }

// Accel returns the accelerator QEMU runs with ("kvm" or "tcg") and why it
// was chosen.
func (v *VM) Accel() (accel, why string) { return v.accel.accel, v.accel.why }

// Expect waits until the console output after the previous match contains
// s. It fails with ErrExited if QEMU exits first, or with ctx's error.
func (v *VM) Expect(ctx context.Context, s string) error {
	return v.con.expect(ctx, s)
}

// console receives QEMU's standard output: the serial port.
type console struct {
	w     io.Writer
	lines *lineLogger

	mu      sync.Mutex
	buf     []byte        // output not yet consumed by Expect; +checklocks:mu
	changed chan struct{} // closed and replaced on each write; +checklocks:mu
	closed  bool          // +checklocks:mu
}

// maxExpectBuffer bounds the output kept for Expect.
const maxExpectBuffer = 4 << 20

func newConsole(w io.Writer, logf func(string, ...any), start time.Time) *console {
	c := &console{w: w, changed: make(chan struct{})}
	if logf != nil {
		c.lines = &lineLogger{logf: func(line string) {
			logf("[%8.3fs] %s", time.Since(start).Seconds(), line)
		}}
	}
	return c
}

func (c *console) copyFrom(r io.ReadCloser) {
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	if c.lines != nil {
		c.lines.flush()
	}
	c.mu.Lock()
	c.closed = true
	close(c.changed)
	c.mu.Unlock()
}

func (c *console) write(p []byte) {
	// A failing console writer must not stop the VM or the other sinks.
	c.w.Write(p)
	if c.lines != nil {
		c.lines.Write(p)
	}
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	if len(c.buf) > maxExpectBuffer {
		c.buf = append(c.buf[:0], c.buf[len(c.buf)-maxExpectBuffer/2:]...)
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *console) expect(ctx context.Context, s string) error {
	for {
		c.mu.Lock()
		i := bytes.Index(c.buf, []byte(s))
		if i >= 0 {
			c.buf = c.buf[i+len(s):]
		}
		changed, closed := c.changed, c.closed
		c.mu.Unlock()
		switch {
		case i >= 0:
			return nil
		case closed:
			return fmt.Errorf("waiting for %q on the console: %w", s, ErrExited)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q on the console: %w", s, ctx.Err())
		}
	}
}

// stderrSink receives QEMU's standard error.
type stderrSink struct {
	w      io.Writer
	lines  *lineLogger
	mu     sync.Mutex
	last   []byte // last maxTail bytes; +checklocks:mu
	errors bool   // a line other than a warning was seen; +checklocks:mu
}

const maxTail = 4 << 10

func newStderrSink(w io.Writer, logf func(string, ...any), hook func(string)) *stderrSink {
	s := &stderrSink{w: w}
	s.lines = &lineLogger{logf: func(line string) {
		if logf != nil {
			logf("qemu: %s", line)
		}
		if strings.TrimSpace(line) != "" && !strings.Contains(line, "warning:") {
			s.mu.Lock()
			s.errors = true
			s.mu.Unlock()
		}
		hook(line)
	}}
	return s
}

func (s *stderrSink) copyFrom(r io.ReadCloser) {
	defer r.Close()
	buf := make([]byte, 4<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p := buf[:n]
			s.w.Write(p)
			s.mu.Lock()
			s.last = append(s.last, p...)
			if len(s.last) > maxTail {
				s.last = append(s.last[:0], s.last[len(s.last)-maxTail:]...)
			}
			s.mu.Unlock()
			s.lines.Write(p)
		}
		if err != nil {
			break
		}
	}
	s.lines.flush()
}

// failed reports whether QEMU printed an error (not just a warning).
func (s *stderrSink) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errors
}

func (s *stderrSink) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(string(s.last))
}

// lineLogger splits a byte stream into lines (dropping "\r") and hands each
// to logf. It is used by one goroutine.
type lineLogger struct {
	logf    func(line string)
	partial []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			// A console that never sends a newline must not grow this
			// without bound.
			if len(l.partial) >= 4<<10 {
				l.emit()
			}
			break
		}
		l.partial = append(l.partial, p[:i]...)
		l.emit()
		p = p[i+1:]
	}
	return n, nil
}

// flush emits a final line that has no newline.
func (l *lineLogger) flush() {
	if len(l.partial) > 0 {
		l.emit()
	}
}

func (l *lineLogger) emit() {
	l.logf(strings.TrimRight(string(l.partial), "\r"))
	l.partial = l.partial[:0]
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}
