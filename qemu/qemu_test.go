package qemu

import (
	"context"
	"errors"
	"fmt"
	"github.com/molt-os/molt/internal/syncbuf"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/molt-os/molt/boot/layout"
)

// The tests in this file run against a fake QEMU: a shell script that
// records its arguments in the file "args" next to itself and then does
// what the test says. No real QEMU is needed.

// fake writes a fake QEMU running script and returns its path. The script
// sees $D, the directory it lives in.
func fake(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "qemu")
	body := fmt.Sprintf("#!/bin/sh\nD='%s'\nprintf '%%s\\n' \"$@\" > \"$D/args\"\necho run >> \"$D/runs\"\n%s\n", dir, script)
	writeExecutable(t, bin, body)
	return bin
}

// writeExecutable writes an executable file while no fork can happen: a
// child forked by a parallel test between open and close would inherit the
// write descriptor until its exec, and running the file then fails with
// ETXTBSY ("text file busy"). os/exec forks under syscall.ForkLock.
func writeExecutable(t *testing.T, path, body string) {
	t.Helper()
	syscall.ForkLock.Lock()
	err := os.WriteFile(path, []byte(body), 0o755)
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// fakeArgs returns the arguments of the last run of the fake at bin.
func fakeArgs(t *testing.T, bin string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "args"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// fakeRuns returns how often the fake at bin ran.
func fakeRuns(t *testing.T, bin string) int {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "runs"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

// kernelFile returns the path of a file that stands in for a kernel image.
func kernelFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "molt.elf")
	if err := os.WriteFile(p, []byte("not really a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// withKVM replaces the /dev/kvm check.
func withKVM(err error) Option {
	return func(c *Config) { c.kvmCheck = func(string) error { return err } }
}

func withProbeTimeout(d time.Duration) Option {
	return func(c *Config) { c.probeTimeout = d }
}

const base = "-M microvm,acpi=off,pit=on,pic=off,rtc=on -cpu max -m 512 -nodefaults -no-user-config -nographic -no-reboot " +
	"-serial stdio -monitor none -device isa-debug-exit,iobase=0x501,iosize=2 -global virtio-mmio.force-legacy=false"

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"defaults", nil, base + " -kernel k.elf -accel tcg"},
		{"memory", []Option{Memory(256)}, strings.Replace(base, "-m 512", "-m 256", 1) + " -kernel k.elf -accel tcg"},
		{"cpu", []Option{CPU("qemu64")}, base + " -kernel k.elf -accel tcg"}, // the CPU is passed to args by the accel choice
		{"append", []Option{Append("a=1"), Append(" b ")}, base + " -kernel k.elf -append a=1 b -accel tcg"},
		{"gdb", []Option{GDB("127.0.0.1:1234")}, base + " -kernel k.elf -accel tcg -gdb tcp:127.0.0.1:1234 -S"},
		{"devices", []Option{Device("virtio-rng-device"), Device("virtio-net-device,netdev=n0")},
			base + " -device virtio-rng-device -device virtio-net-device,netdev=n0 -kernel k.elf -accel tcg"},
		{"extra", []Option{Extra("-netdev", "user,id=n0"), Extra("-d", "int")},
			base + " -kernel k.elf -accel tcg -netdev user,id=n0 -d int"},
		{"usernet", []Option{UserNet("52:54:00:00:00:01", Forward{Proto: "tcp", HostPort: 1, GuestPort: 2}, Forward{Proto: "udp", HostAddr: "::1", HostPort: 3, GuestPort: 4})},
			base + " -device virtio-net-device,netdev=user0,mac=52:54:00:00:00:01 -kernel k.elf -accel tcg -netdev user,id=user0,hostfwd=tcp:127.0.0.1:1-:2,hostfwd=udp:[::1]:3-:4"},
		{"tap", []Option{TAP("mtap0", "52:54:00:00:00:02")},
			base + " -device virtio-net-device,netdev=tap-mtap0,mac=52:54:00:00:00:02 -kernel k.elf -accel tcg -netdev tap,id=tap-mtap0,ifname=mtap0,script=no,downscript=no"},
		{"all", []Option{GDB(":1"), Extra("-s"), Append("x"), Device("d")},
			base + " -device d -kernel k.elf -append x -accel tcg -gdb tcp::1 -S -s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConfig(append([]Option{Kernel("k.elf")}, tt.opts...))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.args("tcg", "max"), " "); got != tt.want {
				t.Errorf("args =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	c, err := newConfig([]Option{Kernel("k.elf")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(c.args("kvm", "host"), " "), strings.Replace(base, "-cpu max", "-cpu host", 1)+" -kernel k.elf -accel kvm"; got != want {
		t.Errorf("args(kvm, host) =\n%s\nwant\n%s", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"no kernel", nil, "no kernel"},
		{"small memory", []Option{Kernel("k"), Memory(64)}, fmt.Sprintf("below the %d MiB", layout.MinRAM>>20)},
		{"bad accel", []Option{Kernel("k"), Accel("xen")}, `accelerator "xen"`},
		{"negative timeout", []Option{Kernel("k"), Timeout(-1)}, "negative timeout"},
	}
	for _, tt := range tests {
		if _, err := newConfig(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: newConfig() error = %v; want one containing %q", tt.name, err, tt.want)
		}
	}
	// Start reports a missing kernel file before running anything.
	bin := fake(t, "exit 1")
	_, err := Start(t.Context(), Binary(bin), Kernel(filepath.Join(t.TempDir(), "missing.elf")), Accel("tcg"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start(missing kernel) error = %v; want one wrapping os.ErrNotExist", err)
	}
	if n := fakeRuns(t, bin); n != 0 {
		t.Errorf("fake QEMU ran %d times; want 0", n)
	}
}

func TestCommandLineQuoting(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain-arg,x=1", "plain-arg,x=1"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"tcp:127.0.0.1:1234", "tcp:127.0.0.1:1234"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
	bin := fake(t, "exit 1")
	k := kernelFile(t)
	v, err := Start(t.Context(), Binary(bin), Kernel(k), Accel("tcg"), Append("console=x quiet"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Wait(); err != nil {
		t.Fatal(err)
	}
	want := bin + " " + base + " -kernel " + k + " -append 'console=x quiet' -accel tcg"
	if got := v.CommandLine(); got != want {
		t.Errorf("CommandLine() =\n%s\nwant\n%s", got, want)
	}
	// The fake received exactly these arguments.
	if got, want := strings.Join(fakeArgs(t, bin), " "), strings.Join(v.argv[1:], " "); got != want {
		t.Errorf("QEMU got arguments\n%s\nwant\n%s", got, want)
	}
}

func TestExitDecoding(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		status   int
		code     int
		err      error
		describe string
		ok       bool
	}{
		{"program exit 0", "exit 1", 1, 0, nil, "program exit 0", true},
		{"program exit 3", "exit 7", 7, 3, nil, "program exit 3", false},
		{"fault", fmt.Sprintf("exit %d", layout.QEMUStatus(layout.ExitFault)), 225, layout.ExitFault, nil, "CPU fault", false},
		{"panic", fmt.Sprintf("exit %d", layout.QEMUStatus(layout.ExitKernelPanic)), 227, layout.ExitKernelPanic, nil, "kernel panic", false},
		{"probe", fmt.Sprintf("exit %d", layout.QEMUStatus(layout.ExitProbe)), 229, layout.ExitProbe, nil, "probe passed", false},
		{"poweroff", "exit 0", 0, -1, nil, "powered off", true},
		{"even status", "exit 4", 4, -1, nil, "status 4", false},
		{"qemu error", "echo 'qemu-system-x86_64: -kernel x: no such file' >&2; exit 1", 1, -1, ErrQEMU, "status 1", false},
		{"qemu warning only", "echo 'qemu-system-x86_64: warning: host lacks a feature' >&2; exit 1", 1, 0, nil, "program exit 0", true},
		{"signal", "kill -9 $$", -1, -1, ErrQEMU, "killed by a signal", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Run(t.Context(), Binary(fake(t, tt.script)), Kernel(kernelFile(t)), Accel("tcg"))
			if !errors.Is(err, tt.err) || (err != nil) != (tt.err != nil) {
				t.Fatalf("Run() error = %v; want %v", err, tt.err)
			}
			if r.Status != tt.status || r.Code != tt.code {
				t.Errorf("Run() = status %d code %d; want status %d code %d", r.Status, r.Code, tt.status, tt.code)
			}
			if d := r.Describe(); !strings.Contains(d, tt.describe) {
				t.Errorf("Describe() = %q; want it to contain %q", d, tt.describe)
			}
			if r.OK() != tt.ok {
				t.Errorf("OK() = %v; want %v", r.OK(), tt.ok)
			}
			if r.Accel != "tcg" {
				t.Errorf("Accel = %q; want tcg", r.Accel)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Status: -1, Code: -1, TimedOut: true, Elapsed: 1500 * time.Millisecond}, "timed out after 1.5s"},
		{Result{Status: 1, Code: 0}, "program exit 0"},
		{Result{Status: 2*layout.ExitProgramMax + 1, Code: layout.ExitProgramMax}, "program exit 111"},
		{Result{Status: 2*0x7f + 1, Code: 0x7f}, "unknown kernel exit code 0x7f"},
		{Result{Status: 0, Code: -1}, "powered off (QEMU exited with status 0)"},
	}
	for _, tt := range tests {
		if got := tt.r.Describe(); got != tt.want {
			t.Errorf("%+v.Describe() = %q; want %q", tt.r, got, tt.want)
		}
	}
}

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) matching(re string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if regexp.MustCompile(re).MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

func TestConsoleAndLogf(t *testing.T) {
	t.Parallel()
	script := `printf 'molt booting\r\n'
printf 'second line\n\n'
echo 'qemu-system-x86_64: warning: something' >&2
printf 'no newline at the end'
exit 1`
	var con, errs syncbuf.Buffer
	var log logRecorder
	r, err := Run(t.Context(), Binary(fake(t, script)), Kernel(kernelFile(t)), Accel("tcg"),
		Console(&con), Stderr(&errs), Logf(log.logf))
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 {
		t.Errorf("Code = %d; want 0", r.Code)
	}
	if got, want := con.String(), "molt booting\r\nsecond line\n\nno newline at the end"; got != want {
		t.Errorf("console = %q; want %q", got, want)
	}
	if got, want := errs.String(), "qemu-system-x86_64: warning: something\n"; got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
	// Console lines reach Logf one by one with a timestamp, "\r" dropped.
	lines := log.matching(`^\[ *\d+\.\d{3}s\] `)
	var text []string
	for _, l := range lines {
		text = append(text, regexp.MustCompile(`^\[ *\d+\.\d{3}s\] `).ReplaceAllString(l, ""))
	}
	if got, want := strings.Join(text, "|"), "molt booting|second line||no newline at the end"; got != want {
		t.Errorf("Logf console lines = %q; want %q", got, want)
	}
	if got := log.matching(`^qemu: qemu-system-x86_64: warning: something$`); len(got) != 1 {
		t.Errorf("Logf has no QEMU stderr line; got %q", log.lines)
	}
	if got := log.matching(`^qemu: .* -kernel .* -accel tcg$`); len(got) != 1 {
		t.Errorf("Logf has no command line; got %q", log.lines)
	}
	if got := log.matching(`^qemu: accel tcg, cpu max \(requested\)$`); len(got) != 1 {
		t.Errorf("Logf has no accelerator line; got %q", log.lines)
	}
}

func TestStdin(t *testing.T) {
	t.Parallel()
	var con syncbuf.Buffer
	r, err := Run(t.Context(), Binary(fake(t, `read line; echo "got:$line"; exit 5`)), Kernel(kernelFile(t)), Accel("tcg"),
		Console(&con), Stdin(strings.NewReader("ping\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := con.String(), "got:ping\n"; got != want {
		t.Errorf("console = %q; want %q", got, want)
	}
	if r.Code != 2 {
		t.Errorf("Code = %d; want 2", r.Code)
	}
}

// TestStdinNeverEnds checks that Wait does not wait for a Stdin that has
// no end (a terminal).
func TestStdinNeverEnds(t *testing.T) {
	t.Parallel()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), Binary(fake(t, "exit 1")), Kernel(kernelFile(t)), Accel("tcg"), Stdin(pr))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return while Stdin stayed open")
	}
}

// processGone reports whether pid has exited (a zombie waiting for a
// reaper counts as exited).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// hanging is a fake QEMU that starts a child holding the console pipe, the
// way a helper process would, and then hangs.
const hanging = `sleep 300 & echo $! > "$D/child"; echo $$ > "$D/pid"; echo started; exec sleep 300`

func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	bin := fake(t, hanging)
	start := time.Now()
	r, err := Run(t.Context(), Binary(bin), Kernel(kernelFile(t)), Accel("tcg"), Timeout(300*time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run() error = %v; want ErrTimeout", err)
	}
	if !r.TimedOut || r.Code != -1 || r.Status != -1 {
		t.Errorf("Run() = %+v; want TimedOut, status -1, code -1", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v after a 300ms timeout", d)
	}
	if !strings.HasPrefix(r.Describe(), "timed out after") {
		t.Errorf("Describe() = %q", r.Describe())
	}
	dir := filepath.Dir(bin)
	waitGone(t, "QEMU", readPID(t, filepath.Join(dir, "pid")))
	waitGone(t, "QEMU's child", readPID(t, filepath.Join(dir, "child")))
}

func TestContextCancelKills(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	bin := fake(t, hanging)
	v, err := Start(ctx, Binary(bin), Kernel(kernelFile(t)), Accel("tcg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Expect(t.Context(), "started"); err != nil {
		t.Fatal(err)
	}
	cancel()
	r, err := v.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait() error = %v; want context.Canceled", err)
	}
	if r.TimedOut || r.Status != -1 {
		t.Errorf("Wait() = %+v; want status -1, not timed out", r)
	}
	waitGone(t, "QEMU's child", readPID(t, filepath.Join(filepath.Dir(bin), "child")))
}

func TestContextCause(t *testing.T) {
	t.Parallel()
	cause := errors.New("interrupt signal received")
	ctx, cancel := context.WithCancelCause(t.Context())
	v, err := Start(ctx, Binary(fake(t, hanging)), Kernel(kernelFile(t)), Accel("tcg"))
	if err != nil {
		t.Fatal(err)
	}
	cancel(cause)
	_, err = v.Wait()
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("Wait() error = %v; want both context.Canceled and the cause", err)
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	bin := fake(t, hanging)
	v, err := Start(t.Context(), Binary(bin), Kernel(kernelFile(t)), Accel("tcg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Expect(t.Context(), "started"); err != nil {
		t.Fatal(err)
	}
	v.Kill()
	v.Kill() // idempotent
	if _, err := v.Wait(); !errors.Is(err, ErrKilled) {
		t.Fatalf("Wait() error = %v; want ErrKilled", err)
	}
	waitGone(t, "QEMU's child", readPID(t, filepath.Join(filepath.Dir(bin), "child")))
}

// TestExitSweepsChildren checks that a helper QEMU leaves behind is killed
// and does not keep Wait waiting on the console pipe.
func TestExitSweepsChildren(t *testing.T) {
	if !canSweep {
		t.Skip("no waitid(WNOWAIT) on this system")
	}
	t.Parallel()
	bin := fake(t, `sleep 300 & echo $! > "$D/child"; exit 1`)
	start := time.Now()
	if _, err := Run(t.Context(), Binary(bin), Kernel(kernelFile(t)), Accel("tcg")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v; the leftover child held it up", d)
	}
	waitGone(t, "QEMU's child", readPID(t, filepath.Join(filepath.Dir(bin), "child")))
}

func TestExpect(t *testing.T) {
	t.Parallel()
	v, err := Start(t.Context(), Binary(fake(t, `echo "booting"; echo "ready: 1"; sleep 0.2; echo "done"; exit 1`)),
		Kernel(kernelFile(t)), Accel("tcg"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, s := range []string{"booting", "ready:", "done"} {
		if err := v.Expect(ctx, s); err != nil {
			t.Fatalf("Expect(%q) = %v", s, err)
		}
	}
	// "booting" was consumed by the first match.
	if err := v.Expect(ctx, "booting"); !errors.Is(err, ErrExited) {
		t.Errorf("Expect(consumed text) = %v; want ErrExited", err)
	}
	if _, err := v.Wait(); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel2()
	if err := v.Expect(short, "never"); !errors.Is(err, ErrExited) {
		t.Errorf("Expect after exit = %v; want ErrExited", err)
	}
}

func TestExpectContext(t *testing.T) {
	t.Parallel()
	v, err := Start(t.Context(), Binary(fake(t, "exec sleep 300")), Kernel(kernelFile(t)), Accel("tcg"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Wait()
	defer v.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := v.Expect(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Expect = %v; want context.DeadlineExceeded", err)
	}
}

func TestAvailable(t *testing.T) {
	t.Setenv("MOLT_QEMU", filepath.Join(t.TempDir(), "qemu-system-x86_64"))
	err := Available()
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "qemu-system-x86") {
		t.Errorf("Available() = %v; want ErrNotFound naming the package qemu-system-x86", err)
	}
	t.Setenv("MOLT_QEMU", fake(t, "exit 0"))
	if err := Available(); err != nil {
		t.Errorf("Available() with a fake QEMU = %v", err)
	}
	_, err = Start(t.Context(), Binary(filepath.Join(t.TempDir(), "nope")), Kernel(kernelFile(t)))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Start(missing binary) = %v; want ErrNotFound", err)
	}
}

func TestBinaryFromEnvironment(t *testing.T) {
	bin := fake(t, "exit 1")
	t.Setenv("MOLT_QEMU", bin)
	t.Setenv("MOLT_ACCEL", "")
	v, err := Start(t.Context(), Kernel(kernelFile(t)), Accel("tcg"))
	if err != nil {
		t.Fatal(err)
	}
	v.Wait()
	if !strings.HasPrefix(v.CommandLine(), bin+" ") {
		t.Errorf("CommandLine() = %s; want it to start with %s", v.CommandLine(), bin)
	}
}

// probeScript answers the probe boot (KVM and molt.probe) with kvmAnswer
// and every other boot with exit code 0.
func probeScript(kvmAnswer string) string {
	return `kvm= probe=
for a in "$@"; do
	case "$a" in
	kvm) kvm=1;;
	molt.probe|*" molt.probe"|"molt.probe "*|*" molt.probe "*) probe=1;;
	esac
done
if [ -n "$kvm" ] && [ -n "$probe" ]; then
	echo probe >> "$D/probes"
	` + kvmAnswer + `
fi
exit 1`
}

func probeCount(t *testing.T, bin string) int {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(bin), "probes"))
	return strings.Count(string(b), "probe\n")
}

func runAuto(t *testing.T, bin string, opts ...Option) (*VM, Result) {
	t.Helper()
	v, err := Start(t.Context(), append([]Option{Binary(bin), Kernel(kernelFile(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return v, r
}

func TestAccelOverride(t *testing.T) {
	kvmNotAsked := func(c *Config) {
		c.kvmCheck = func(string) error { t.Error("KVM check ran despite an explicit accelerator"); return nil }
	}
	tests := []struct {
		env, accel, want string
	}{
		{"tcg", "auto", "tcg"},
		{"kvm", "auto", "kvm"},
		{"kvm", "", "kvm"},
		{"tcg", "kvm", "kvm"}, // an explicit choice beats the environment
		{"kvm", "tcg", "tcg"},
		{"", "kvm", "kvm"},
	}
	for _, tt := range tests {
		t.Setenv("MOLT_ACCEL", tt.env)
		bin := fake(t, "exit 1")
		v, r := runAuto(t, bin, Accel(tt.accel), kvmNotAsked)
		args := strings.Join(fakeArgs(t, bin), " ")
		if !strings.Contains(args, " -accel "+tt.want) || r.Accel != tt.want {
			t.Errorf("MOLT_ACCEL=%q Accel(%q): ran %q, Result.Accel %q; want -accel %s", tt.env, tt.accel, args, r.Accel, tt.want)
		}
		if a, _ := v.Accel(); a != tt.want {
			t.Errorf("MOLT_ACCEL=%q Accel(%q): VM.Accel() = %q; want %q", tt.env, tt.accel, a, tt.want)
		}
		if strings.Contains(args, ProbeArg) {
			t.Errorf("MOLT_ACCEL=%q Accel(%q): the run had %s: %q", tt.env, tt.accel, ProbeArg, args)
		}
	}
	t.Setenv("MOLT_ACCEL", "hvf")
	_, err := Start(t.Context(), Binary(fake(t, "exit 1")), Kernel(kernelFile(t)))
	if err == nil || !strings.Contains(err.Error(), "MOLT_ACCEL") {
		t.Errorf("Start with MOLT_ACCEL=hvf: error = %v; want one naming MOLT_ACCEL", err)
	}
}

func TestProbe(t *testing.T) {
	t.Setenv("MOLT_ACCEL", "")
	tests := []struct {
		name      string
		kvm       error  // result of the /dev/kvm check
		answer    string // the fake's answer to the probe boot
		opts      []Option
		wantAccel string
		wantCPU   string
		wantWhy   string
		probes    int
		maxTime   time.Duration
	}{
		{name: "kvm works", answer: fmt.Sprintf("exit %d", layout.QEMUStatus(layout.ExitProbe)),
			wantAccel: "kvm", wantCPU: "max", wantWhy: "probe boot passed", probes: 1},
		{name: "no kvm device", kvm: os.ErrPermission, answer: "exit 229",
			wantAccel: "tcg", wantCPU: "max", wantWhy: "KVM unusable: permission denied", probes: 0},
		{name: "kvm internal error", answer: `echo "KVM internal error. Suberror: 1" >&2; echo "emulation failure" >&2; exec sleep 300`,
			opts:      []Option{withProbeTimeout(time.Minute)},
			wantAccel: "tcg", wantCPU: "max", wantWhy: "KVM internal error", probes: 1, maxTime: 10 * time.Second},
		{name: "probe hangs", answer: "exec sleep 300", opts: []Option{withProbeTimeout(200 * time.Millisecond)},
			wantAccel: "tcg", wantCPU: "max", wantWhy: "timed out", probes: 1, maxTime: 10 * time.Second},
		{name: "probe dies", answer: "kill -9 $$",
			wantAccel: "tcg", wantCPU: "max", wantWhy: "signal", probes: 1},
		{name: "wrong answer", answer: "exit 3",
			wantAccel: "tcg", wantCPU: "max", wantWhy: "program exit 1, want exit code 0x72", probes: 1},
		{name: "cpu max refused", answer: `case " $* " in *" -cpu max "*) echo "qemu-system-x86_64: kvm: cpu max unsupported" >&2; exit 1;; esac; exit 229`,
			wantAccel: "kvm", wantCPU: "host", wantWhy: "probe boot passed", probes: 2},
		{name: "explicit cpu, no fallback", answer: `echo "qemu-system-x86_64: bad cpu" >&2; exit 1`, opts: []Option{CPU("Haswell")},
			wantAccel: "tcg", wantCPU: "Haswell", wantWhy: "bad cpu", probes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := fake(t, probeScript(tt.answer))
			start := time.Now()
			opts := append([]Option{withKVM(tt.kvm), Append("console=1")}, tt.opts...)
			v, r := runAuto(t, bin, opts...)
			accel, why := v.Accel()
			if accel != tt.wantAccel || r.Accel != tt.wantAccel || v.accel.cpu != tt.wantCPU || !strings.Contains(why, tt.wantWhy) {
				t.Errorf("chose %s/%s (Result %s) because %q; want %s/%s because ...%q...", accel, v.accel.cpu, r.Accel, why, tt.wantAccel, tt.wantCPU, tt.wantWhy)
			}
			if n := probeCount(t, bin); n != tt.probes {
				t.Errorf("%d probe boots; want %d", n, tt.probes)
			}
			if tt.maxTime > 0 && time.Since(start) > tt.maxTime {
				t.Errorf("took %v; want at most %v", time.Since(start), tt.maxTime)
			}
			// The real run has neither the probe word nor lost the user's command line.
			args := strings.Join(fakeArgs(t, bin), " ")
			if strings.Contains(args, ProbeArg) || !strings.Contains(args, "-append console=1 ") || !strings.Contains(args, "-accel "+tt.wantAccel) {
				t.Errorf("real run arguments %q", args)
			}
			// The outcome is cached: a second VM does not probe again.
			runAuto(t, bin, opts...)
			if n := probeCount(t, bin); n != tt.probes {
				t.Errorf("%d probe boots after a second Start; want %d (cached)", n, tt.probes)
			}
		})
	}
}

func TestProbeBootArguments(t *testing.T) {
	t.Setenv("MOLT_ACCEL", "")
	bin := fake(t, probeScript(`cp "$D/args" "$D/probe-args"; exit 229`))
	runAuto(t, bin, withKVM(nil), Append("a=b"), GDB("127.0.0.1:1"), Device("virtio-rng-device"), Extra("-S"), Memory(256))
	b, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "probe-args"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(strings.Fields(string(b)), " ")
	want := strings.Replace(base, "-m 512", "-m 256", 1) + " -kernel "
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, " -append a=b molt.probe -accel kvm") {
		t.Errorf("probe boot arguments %q; want the base arguments, the user's command line plus %s, -accel kvm, and nothing else", got, ProbeArg)
	}
}

func TestProbeCanceledIsNotCached(t *testing.T) {
	t.Setenv("MOLT_ACCEL", "")
	bin := fake(t, probeScript("exec sleep 300"))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		// Cancel once the probe boot is running.
		for probeCount(t, bin) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err := Start(ctx, Binary(bin), Kernel(kernelFile(t)), withKVM(nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start() error = %v; want context.Canceled", err)
	}
	probes.mu.Lock()
	_, cached := probes.done[bin+"\x00"]
	probes.mu.Unlock()
	if cached {
		t.Error("a canceled probe was cached")
	}
}

// fakeTB records what StartT does with a test.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	errors   []string
	cleanups []func()
	ctx      context.Context
}

func (f *fakeTB) Helper()                  {}
func (f *fakeTB) Context() context.Context { return f.ctx }
func (f *fakeTB) Cleanup(fn func())        { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Logf(string, ...any)      {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestStartT(t *testing.T) {
	bin := fake(t, "exit 1")
	k := kernelFile(t)

	ok := &fakeTB{TB: t, ctx: t.Context()}
	v := StartT(ok, Binary(bin), Kernel(k), Accel("tcg"))
	if _, err := v.Wait(); err != nil {
		t.Fatal(err)
	}
	ok.cleanup()
	if len(ok.errors) != 0 {
		t.Errorf("StartT with Wait reported %q", ok.errors)
	}

	forgot := &fakeTB{TB: t, ctx: t.Context()}
	StartT(forgot, Binary(fake(t, "exec sleep 300")), Kernel(k), Accel("tcg"))
	forgot.cleanup()
	if len(forgot.errors) != 1 || !strings.Contains(forgot.errors[0], "never called Wait") {
		t.Errorf("StartT without Wait reported %q; want a missing-Wait error", forgot.errors)
	}
}
