package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/image/imagetest"
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/qemu"
)

// Tests of build, run and debug. The commands never read the real
// standard input here.
func init() { stdin = nil }

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		args []string
		want string
	}{
		{"build unknown flag", "build", []string{"-x"}, "-x"},
		{"build two packages", "build", []string{"./a", "./b"}, "at most one package"},
		{"run unknown flag", "run", []string{"-nope"}, "-nope"},
		{"run bad accel", "run", []string{"-accel", "xen"}, `-accel "xen"`},
		{"run small memory", "run", []string{"-m", "64"}, fmt.Sprintf("at least %d MiB", layout.MinRAM>>20)},
		{"run bad timeout", "run", []string{"-timeout", "soon"}, "soon"},
		{"run negative timeout", "run", []string{"-timeout", "-1s"}, "negative"},
		{"run two images", "run", []string{"a.elf", "b.elf"}, "at most one image"},
		{"run bad net", "run", []string{"-net", "tap"}, `-net "tap"`},
		{"run bad kv port", "run", []string{"-kv-port", "70000"}, "-kv-port 70000 out of range"},
		{"run negative echo port", "run", []string{"-echo-port", "-1"}, "-echo-port -1 out of range"},
		{"run update port too big", "run", []string{"-update-port", "70000"}, "-update-port 70000 out of range"},
		{"debug unknown flag", "debug", []string{"-accel", "kvm"}, "-accel"},
		{"debug two images", "debug", []string{"a.elf", "b.elf"}, "at most one image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append([]string{tt.cmd}, tt.args...), &stdout, &stderr)
			if !errors.Is(err, errUsage) {
				t.Fatalf("molt %s %q: error = %v; want a usage error", tt.cmd, tt.args, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("molt %s %q: error = %q; want it to contain %q", tt.cmd, tt.args, err, tt.want)
			}
			if !strings.Contains(stderr.String(), "usage: molt "+tt.cmd) {
				t.Errorf("molt %s %q: no usage on stderr: %q", tt.cmd, tt.args, stderr.String())
			}
		})
	}
	// -help is not an error to report, but exits with status 2 like flag's.
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"run", "-help"}, &stderr, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("molt run -help: %v; want flag.ErrHelp", err)
	}
}

func TestMissingImage(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, cmd := range []string{"run", "debug"} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{cmd}, &stdout, &stderr)
		if err == nil || errors.Is(err, errUsage) {
			t.Fatalf("molt %s without an image: error = %v; want a non-usage error", cmd, err)
		}
		for _, want := range []string{"build/molt.elf not found", "make image"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("molt %s: error = %q; want it to contain %q", cmd, err, want)
			}
		}
	}
	bad := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"run", bad}, &out, &out); !errors.Is(err, image.ErrFormat) {
		t.Errorf("molt run %s: error = %v; want image.ErrFormat", bad, err)
	}
}

func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
}

func TestUnpatchedImage(t *testing.T) {
	needGo(t)
	img := imagetest.Build(t, imagetest.Kernel{})
	rep, err := image.Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	text := rep.Segments[0]
	b[text.Off+rep.Entry-text.Vaddr] ^= 0xff // the build ID no longer matches
	if err := os.WriteFile(img, b, 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(t.Context(), []string{"run", img}, &out, &out)
	if !errors.Is(err, image.ErrNotPatched) || !strings.Contains(err.Error(), "make image") {
		t.Errorf("molt run (changed image): error = %v; want ErrNotPatched with advice", err)
	}
}

// fakeQEMU installs, through MOLT_QEMU, a QEMU that records its arguments
// and exits with status. It returns the file holding the arguments.
func fakeQEMU(t *testing.T, status int) string {
	t.Helper()
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\necho 'console output'\nexit %d\n", args, status)
	bin := filepath.Join(dir, "qemu")
	// Under syscall.ForkLock, so that no child forked meanwhile inherits
	// the write descriptor and makes running the script fail with ETXTBSY.
	syscall.ForkLock.Lock()
	err := os.WriteFile(bin, []byte(script), 0o755)
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MOLT_QEMU", bin)
	t.Setenv("MOLT_ACCEL", "tcg") // no probe boot
	return args
}

func readArgs(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func TestRunExitStatus(t *testing.T) {
	needGo(t)
	img := imagetest.Build(t, imagetest.Kernel{})
	tests := []struct {
		status int
		errs   string // "" for success
	}{
		{layout.QEMUStatus(0), ""},
		{0, ""}, // poweroff
		{layout.QEMUStatus(3), "program exit 3"},
		{layout.QEMUStatus(layout.ExitFault), "CPU fault"},
		{layout.QEMUStatus(layout.ExitKernelPanic), "kernel panic"},
	}
	for _, tt := range tests {
		argsFile := fakeQEMU(t, tt.status)
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"run", "-m", "256", "-append", "a=1 b", "-timeout", "1m", "-echo-port", "17007", img}, &stdout, &stderr)
		switch {
		case tt.errs == "" && err != nil:
			t.Errorf("status %d: error %v; want success", tt.status, err)
		case tt.errs != "" && (err == nil || !strings.Contains(err.Error(), tt.errs)):
			t.Errorf("status %d: error %v; want one containing %q", tt.status, err, tt.errs)
		}
		if stdout.String() != "console output\n" {
			t.Errorf("status %d: stdout = %q; want the console", tt.status, stdout.String())
		}
		args := readArgs(t, argsFile)
		for _, want := range []string{"-m 256", "-kernel " + img, "-append a=1 b", "-accel tcg",
			"-device virtio-net-device,netdev=user0,mac=52:54:00:12:34:56",
			"-netdev user,id=user0,hostfwd=tcp:127.0.0.1:11211-:11211,hostfwd=tcp:127.0.0.1:17007-:7007,hostfwd=udp:127.0.0.1:17007-:7007,hostfwd=tcp:127.0.0.1:7100-:7100"} {
			if !strings.Contains(args, want) {
				t.Errorf("QEMU arguments %q lack %q", args, want)
			}
		}
		for _, want := range []string{"molt: accel tcg (MOLT_ACCEL=tcg)", "molt: " + os.Getenv("MOLT_QEMU") + " -M microvm",
			"molt: kv: tcp 127.0.0.1:11211 -> guest :11211", "molt: echo: tcp+udp 127.0.0.1:17007 -> guest :7007",
			"molt: update: tcp 127.0.0.1:7100 -> guest :7100"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), want)
			}
		}
	}
}

func TestDebug(t *testing.T) {
	needGo(t)
	img := imagetest.Build(t, imagetest.Kernel{})
	rep, err := image.Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	argsFile := fakeQEMU(t, layout.QEMUStatus(0))
	t.Setenv("MOLT_ACCEL", "kvm") // debug forces TCG regardless
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"debug", img}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"gdb " + img + " -ex 'target remote 127.0.0.1:1234'\n",
		fmt.Sprintf("(gdb) hbreak *%#x", rep.Entry),
		"32-bit protected mode",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if args := readArgs(t, argsFile); !strings.HasSuffix(args, "-kernel "+img+" -accel tcg -gdb tcp:127.0.0.1:1234 -S") {
		t.Errorf("QEMU arguments %q; want TCG and the gdbstub", args)
	}

	fakeQEMU(t, layout.QEMUStatus(0))
	stderr.Reset()
	if err := run(t.Context(), []string{"debug", "-gdb", "localhost:9999", img}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "gdb " + img + " -ex 'target remote localhost:9999'"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q", want)
	}
}

func TestBuildCommand(t *testing.T) {
	needGo(t)
	dir := t.TempDir()
	if err := imagetest.WriteModule(dir, imagetest.Kernel{}); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("GOWORK", "off")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"build", "-version", "v1.0.0"}, &stdout, &stderr); err != nil {
		t.Fatalf("molt build: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"build/molt.elf\n", "version   v1.0.0\n", "build ID  ", "headroom  "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("molt build output lacks %q:\n%s", want, stdout.String())
		}
	}
	if _, err := image.Verify(filepath.Join(dir, "build/molt.elf")); err != nil {
		t.Error(err)
	}
	// The tiny kernel declares no handoff formats: built, not signed.
	if !strings.Contains(stderr.String(), "not signing build/molt.elf") {
		t.Errorf("stderr lacks the signing warning:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "build/molt.img")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("build/molt.img: %v; want no bundle", err)
	}
	err := run(t.Context(), []string{"build", "-o", "other.elf", "./nosuchpkg"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "build ./nosuchpkg") {
		t.Errorf("molt build ./nosuchpkg: error = %v", err)
	}
	err = run(t.Context(), []string{"build", "-version", "has space"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "white space") {
		t.Errorf("molt build -version 'has space': error = %v", err)
	}
}

// TestRunQEMU boots tiny kernels on the real QEMU.
func TestRunQEMU(t *testing.T) {
	needGo(t)
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	if err := qemu.Available(); err != nil {
		t.Skip(err)
	}
	t.Setenv("MOLT_ACCEL", "")
	for _, tc := range []struct {
		exit int
		err  string
	}{
		{0, ""},
		{layout.ExitFault, "CPU fault"},
	} {
		img := imagetest.Build(t, imagetest.Kernel{Banner: "hi\n", Exit: tc.exit})
		var stdout, stderr bytes.Buffer
		// -net none: the host ports of the default forwards may be taken
		// by other tests running at the same time.
		err := run(t.Context(), []string{"run", "-accel", "tcg", "-timeout", "1m", "-net", "none", img}, &stdout, &stderr)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("exit %#x: error = %v; want %q\n%s", tc.exit, err, tc.err, stderr.String())
		}
		if stdout.String() != "hi\n" {
			t.Errorf("exit %#x: console = %q; want \"hi\\n\"", tc.exit, stdout.String())
		}
	}
}
