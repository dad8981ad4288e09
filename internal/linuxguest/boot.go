package linuxguest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/molt-os/molt/qemu"
)

// BootConfig says how to boot a Guest.
type BootConfig struct {
	// HostPort is the port on 127.0.0.1 that QEMU forwards to the guest's
	// memcached (required).
	HostPort int
	// Accel is "tcg" or "kvm" (required). Package qemu's "auto" probes
	// KVM by booting the kernel and waiting for molt's probe exit code,
	// which Linux never gives: it would waste the 5 s probe timeout and
	// fall back to TCG. Pass the accelerator molt's VM ran with
	// (qemu.VM.Accel) to compare like with like.
	Accel string
	// Memory is guest RAM in MiB; default qemu.DefaultMemory, molt's.
	Memory int
	// TSCkHz is the guest's TSC frequency for tsc_early_khz=; default
	// HostTSCkHz(). Without it the kernel calibrates the TSC against
	// timers microvm does not have and can hang.
	TSCkHz int
}

// Options returns the qemu options that boot g: package qemu's fixed
// microvm command line, g's kernel and initramfs, and a virtio-net device
// on user networking with hostfwd=tcp:127.0.0.1:HostPort-:11211. The
// caller adds Console, Logf, Timeout and the like.
//
// One setting differs from molt's: ACPI. Package qemu passes
// "-M microvm,acpi=off,...", under which microvm describes virtio-mmio
// devices only by virtio_mmio.device= words on the kernel command line.
// Debian's kernel is built without CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES and
// ignores them ("virtio_mmio: unknown parameter 'device' ignored"), so it
// would never see its NIC. Options therefore appends "-M microvm,acpi=on";
// QEMU merges repeated -machine options, the later value winning, and
// microvm then puts the devices in its ACPI tables (DSDT), where
// virtio_mmio finds them. Everything else (PIT, no PIC, RTC, -cpu, one
// vCPU, -no-reboot, the devices) is molt's command line unchanged.
func (g Guest) Options(c BootConfig) ([]qemu.Option, error) {
	if c.HostPort <= 0 || c.HostPort > 65535 {
		return nil, fmt.Errorf("linuxguest: host port %d out of range", c.HostPort)
	}
	switch c.Accel {
	case "tcg", "kvm":
	default:
		return nil, fmt.Errorf("linuxguest: accelerator %q: want tcg or kvm (qemu's auto probe only understands molt)", c.Accel)
	}
	if c.Memory == 0 {
		c.Memory = qemu.DefaultMemory
	}
	if c.TSCkHz == 0 {
		khz, err := HostTSCkHz()
		if err != nil {
			return nil, fmt.Errorf("linuxguest: %w (set BootConfig.TSCkHz)", err)
		}
		c.TSCkHz = khz
	}
	return []qemu.Option{
		qemu.Kernel(g.Kernel),
		qemu.Accel(c.Accel),
		qemu.Memory(c.Memory),
		// reboot=t: a reboot is a triple fault, which -no-reboot turns
		// into QEMU exiting; panic=-1 reboots at once on a panic. So a
		// guest that goes wrong ends QEMU rather than hanging.
		qemu.Append("console=ttyS0 reboot=t panic=-1 tsc_early_khz=" + strconv.Itoa(c.TSCkHz)),
		// The same card and forward as molt's kv target.
		qemu.UserNet(GuestMAC, qemu.Forward{Proto: "tcp", HostPort: c.HostPort, GuestPort: GuestPort}),
		qemu.Extra("-initrd", g.Initrd, "-M", "microvm,acpi=on"),
	}, nil
}

// GuestMAC is the guest's MAC, the one molt's benchmarks give molt.
const GuestMAC = "52:54:00:12:34:56"

// VM is a booted guest whose memcached answers on Addr.
type VM struct {
	*qemu.VM
	Addr string // 127.0.0.1:HostPort
	// Ready is the time from starting QEMU to ReadyMarker on the console.
	Ready time.Duration
}

// Boot starts g with g.Options(c) and extra (added last), and returns once
// /init has printed ReadyMarker. It fails, with QEMU killed and reaped,
// if the guest ends first or ctx is done. The caller must Kill and Wait
// the VM. Whether memcached answers through the forward is the caller's
// to check (memcload.WaitReady), so that this package does not depend on
// the load runner.
func Boot(ctx context.Context, g Guest, c BootConfig, extra ...qemu.Option) (*VM, error) {
	opts, err := g.Options(c)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	v, err := qemu.Start(ctx, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("linuxguest: %w", err)
	}
	if err := v.Expect(ctx, ReadyMarker); err != nil {
		v.Kill()
		r, werr := v.Wait()
		if errors.Is(err, qemu.ErrExited) {
			return nil, fmt.Errorf("linuxguest: guest ended before memcached was ready: %s (%v); reproduce with: %s", r.Describe(), werr, v.CommandLine())
		}
		return nil, fmt.Errorf("linuxguest: %w after %v; reproduce with: %s", err, time.Since(start).Round(time.Millisecond), v.CommandLine())
	}
	return &VM{VM: v, Addr: fmt.Sprintf("127.0.0.1:%d", c.HostPort), Ready: time.Since(start)}, nil
}
