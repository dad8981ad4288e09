package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/molt-os/molt/boot/layout"
)

// ProbeArg is the kernel command-line word that asks the kernel to answer
// an accelerator probe: exit with layout.ExitProbe right after it has
// entered 64-bit mode and run SSE code.
const ProbeArg = "molt.probe"

// KVMDevice is the device the KVM check opens.
const KVMDevice = "/dev/kvm"

// accelChoice is a resolved accelerator.
type accelChoice struct {
	accel string // "kvm" or "tcg"
	cpu   string // -cpu model
	why   string // for logs and molt run
}

// probes caches the outcome of the auto probe per QEMU binary and CPU
// option for the life of the process. A mutex rather than a sync.Once: a
// probe cut short by its caller's context is not an outcome and must not
// be cached, and concurrent callers should wait for one probe, not start
// their own.
var probes struct {
	mu   sync.Mutex
	done map[string]accelChoice // +checklocks:mu
}

// resolveAccel turns c.Accel (and MOLT_ACCEL) into an accelerator and CPU
// model, probing KVM for "auto".
func resolveAccel(ctx context.Context, c *Config) (accelChoice, error) {
	mode, why := c.Accel, "requested"
	if mode == "auto" {
		if env := os.Getenv("MOLT_ACCEL"); env != "" {
			if err := validAccel(env); err != nil {
				return accelChoice{}, fmt.Errorf("MOLT_ACCEL: %w", err)
			}
			mode, why = env, "MOLT_ACCEL="+env
		}
	}
	if mode != "auto" {
		return accelChoice{accel: mode, cpu: cpuOr(c.CPU, DefaultCPU), why: why}, nil
	}
	key := c.Binary + "\x00" + c.CPU
	probes.mu.Lock()
	defer probes.mu.Unlock()
	if ch, ok := probes.done[key]; ok {
		ch.why += ", cached"
		return ch, nil
	}
	ch, err := probeKVM(ctx, c)
	if err != nil {
		return accelChoice{}, err
	}
	if probes.done == nil {
		probes.done = make(map[string]accelChoice)
	}
	probes.done[key] = ch
	return ch, nil
}

// probeKVM decides between KVM and TCG for "auto". It returns an error only
// when ctx ends during the probe.
func probeKVM(ctx context.Context, c *Config) (accelChoice, error) {
	tcg := func(why string) accelChoice {
		return accelChoice{accel: "tcg", cpu: cpuOr(c.CPU, DefaultCPU), why: why}
	}
	if err := c.kvmCheck(KVMDevice); err != nil {
		return tcg(fmt.Sprintf("auto: KVM unusable: %v", err)), nil
	}
	cpus := []string{DefaultCPU, "host"}
	if c.CPU != "" {
		cpus = []string{c.CPU}
	}
	var why string
	for i, cpu := range cpus {
		r, err := probeBoot(ctx, c, cpu)
		if ctx.Err() != nil {
			return accelChoice{}, ctxErr(ctx)
		}
		if err == nil && r.Code == layout.ExitProbe {
			return accelChoice{accel: "kvm", cpu: cpu, why: fmt.Sprintf("auto: KVM probe boot passed in %v", r.Elapsed.Round(time.Millisecond))}, nil
		}
		switch {
		case err != nil:
			why = fmt.Sprintf("auto: KVM probe boot with -cpu %s failed: %v", cpu, err)
		default:
			why = fmt.Sprintf("auto: KVM probe boot with -cpu %s: %s, want exit code %#x", cpu, r.Describe(), layout.ExitProbe)
		}
		// QEMU refused to start (status 1 with an error message, for
		// example a CPU model KVM cannot provide): the next model may do.
		if errors.Is(err, ErrQEMU) && r.Status == 1 && i+1 < len(cpus) {
			continue
		}
		break
	}
	return tcg(why + "; using TCG"), nil
}

// probeBoot boots c's kernel once under KVM with ProbeArg appended. Only
// what the kernel needs to reach 64-bit mode is kept: no devices, no extra
// arguments, no gdbstub, no console input.
func probeBoot(ctx context.Context, c *Config, cpu string) (Result, error) {
	p := &Config{
		Binary:       c.Binary,
		Kernel:       c.Kernel,
		Memory:       c.Memory,
		Accel:        "kvm",
		Append:       joinWords(c.Append, ProbeArg),
		Console:      io.Discard,
		Stderr:       io.Discard,
		Timeout:      c.probeTimeout,
		kvmCheck:     c.kvmCheck,
		probeTimeout: c.probeTimeout,
		onStderr: func(line string, v *VM) {
			// QEMU stops the guest after a KVM internal error and waits
			// for the monitor, which is disabled: it would sit there until
			// the timeout.
			if strings.Contains(line, "KVM internal error") || strings.Contains(line, "emulation failure") {
				v.fail(fmt.Errorf("%w: %s", ErrQEMU, strings.TrimSpace(line)))
			}
		},
	}
	if c.Logf != nil {
		p.Logf = func(format string, args ...any) { c.Logf("kvm probe: "+format, args...) }
	}
	v, err := start(ctx, p, accelChoice{accel: "kvm", cpu: cpu, why: "probe"})
	if err != nil {
		return Result{Status: -1, Code: -1}, err
	}
	return v.Wait()
}

func cpuOr(cpu, def string) string {
	if cpu != "" {
		return cpu
	}
	return def
}
