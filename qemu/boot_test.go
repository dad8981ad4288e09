package qemu_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/boot/image/imagetest"
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/qemu"
)

// These tests boot tiny kernels (package imagetest) on the real QEMU. They
// are skipped with -short or when QEMU is not installed.

func needQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	if err := qemu.Available(); err != nil {
		t.Skip(err)
	}
}

// TestBootConsole checks the command line end to end on QEMU microvm: the
// PVH entry runs, COM1 output reaches the console, console input reaches the
// guest unaltered (Ctrl-A included: the monitor is not multiplexed on
// stdio), and the exit code comes back through isa-debug-exit.
func TestBootConsole(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	k := imagetest.Build(t, imagetest.Kernel{Banner: "tiny kernel\n", SSE: true, Echo: 'q', Exit: 42})
	var con strings.Builder
	v := qemu.StartT(t, qemu.Kernel(k), qemu.Accel("tcg"), qemu.Console(&con),
		qemu.Stdin(strings.NewReader("hello\x01x\x01c world q")), qemu.Timeout(time.Minute))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := v.Expect(ctx, "tiny kernel\n"); err != nil {
		t.Fatal(err)
	}
	r, err := v.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 42 || r.Status != layout.QEMUStatus(42) || r.Accel != "tcg" {
		t.Errorf("Wait() = %+v; want code 42, status %d, tcg", r, layout.QEMUStatus(42))
	}
	if got, want := con.String(), "tiny kernel\nhello\x01x\x01c world q"; got != want {
		t.Errorf("console = %q; want %q", got, want)
	}
}

// TestBootExitCodes checks that the layout exit codes decode as such.
func TestBootExitCodes(t *testing.T) {
	needQEMU(t)
	t.Parallel()
	for _, tc := range []struct {
		code int
		want string
	}{
		{layout.ExitFault, "CPU fault"},
		{layout.ExitKernelPanic, "kernel panic"},
		{0, "program exit 0"},
	} {
		k := imagetest.Build(t, imagetest.Kernel{Exit: tc.code})
		r, err := qemu.Run(t.Context(), qemu.Kernel(k), qemu.Accel("tcg"), qemu.Timeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != tc.code || !strings.Contains(r.Describe(), tc.want) {
			t.Errorf("exit %#x: Run() = %+v (%s); want code %#x, %q", tc.code, r, r.Describe(), tc.code, tc.want)
		}
	}
}

// TestBootAutoAccel runs the real probe. On a host where KVM can run SSE
// code the kernel answers under KVM; where it cannot (KVM-PVM, as in molt's
// development sandbox) or there is no KVM, auto must fall back to TCG
// quickly and the boot must still succeed.
func TestBootAutoAccel(t *testing.T) {
	needQEMU(t)
	t.Setenv("MOLT_ACCEL", "")
	k := imagetest.Build(t, imagetest.Kernel{SSE: true, Exit: layout.ExitProbe})
	start := time.Now()
	v := qemu.StartT(t, qemu.Kernel(k), qemu.Timeout(time.Minute))
	r, err := v.Wait()
	if err != nil {
		t.Fatal(err)
	}
	accel, why := v.Accel()
	t.Logf("auto chose %s: %s (%v)", accel, why, time.Since(start))
	if r.Code != layout.ExitProbe {
		t.Errorf("Wait() = %+v; want exit code %#x", r, layout.ExitProbe)
	}
	if accel == "tcg" && time.Since(start) > 3*qemu.ProbeTimeout {
		t.Errorf("falling back to TCG took %v", time.Since(start))
	}
}
