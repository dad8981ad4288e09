package kernel

import (
	"fmt"
	"os"
	"strings"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/boot/pvh"
)

// Go-level start-up: this init runs after the runtime is up and before the
// image's own packages initialise, so "ready" below means the kernel can run
// the image's code.

var readyNs int64

func init() {
	if !booted {
		return
	}
	readyNs = nanotime() - clock.bootNs
	if !quiet {
		os.Stdout.WriteString(Banner())
	}
}

// Banner describes the running kernel: version, build ID, memory, CPU,
// clock source and the time from entry to ready.
func Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "molt: molt %s (build %s)\n", Version(), shortID(BuildID()))
	fmt.Fprintf(&b, "molt: cmdline %q\n", bootInfo.Cmdline())
	fmt.Fprintf(&b, "molt: memory map (PVH start info at %#x):\n", bootInfo.Addr)
	for i := 0; i < bootInfo.NRegions; i++ {
		r := bootInfo.Regions[i]
		fmt.Fprintf(&b, "molt:   %#010x-%#010x %8d KiB %s\n", r.Addr, r.Addr+r.Size, r.Size>>10, regionType(r.Type))
	}
	ms := readMemStats()
	fmt.Fprintf(&b, "molt: image %#x-%#x (%.1f MiB), handoff %#x-%#x, DMA %#x-%#x, frame pool %#x-%#x (%d MiB)\n",
		layout.ImageBase, imageEnd, float64(ms.ImageBytes)/(1<<20),
		layout.HandoffBase, layout.HandoffBase+layout.HandoffSize,
		layout.DMABase, layout.DMABase+layout.DMASize,
		frames.base, frames.end, ms.FramePool>>20)
	fmt.Fprintf(&b, "molt: cpu %s\n", CPUDescription())
	fmt.Fprintf(&b, "molt: clock %s\n", ClockDescription())
	fmt.Fprintf(&b, "molt: ready in %.2f ms from entry (kinit %.2f ms), %d KiB of frames in use\n",
		float64(readyNs)/1e6, float64(kinitDoneNs)/1e6, ms.FramesInUse*4)
	return b.String()
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

func regionType(t uint32) string {
	switch t {
	case pvh.TypeRAM:
		return "RAM"
	case pvh.TypeReserved:
		return "reserved"
	case pvh.TypeACPI:
		return "ACPI"
	case pvh.TypeNVS:
		return "ACPI NVS"
	}
	return fmt.Sprintf("type %d", t)
}

// CPUDescription names the CPU and the features molt cares about.
func CPUDescription() string {
	var vendor [12]byte
	_, b, c, d := cpuid(0, 0)
	put32(vendor[0:], b)
	put32(vendor[4:], d)
	put32(vendor[8:], c)
	var brand [48]byte
	if max, _, _, _ := cpuid(0x80000000, 0); max >= 0x80000004 {
		for i := uint32(0); i < 3; i++ {
			a, b, c, d := cpuid(0x80000002+i, 0)
			put32(brand[i*16:], a)
			put32(brand[i*16+4:], b)
			put32(brand[i*16+8:], c)
			put32(brand[i*16+12:], d)
		}
	}
	_, _, c1, d1 := cpuid(1, 0)
	var feats []string
	add := func(ok bool, name string) {
		if ok {
			feats = append(feats, name)
		}
	}
	add(d1&(1<<26) != 0, "sse2")
	add(c1&(1<<0) != 0, "sse3")
	add(c1&(1<<19) != 0, "sse4.1")
	add(c1&(1<<28) != 0, "avx(off)")
	add(c1&(1<<30) != 0, "rdrand")
	add(rng.rdseed, "rdseed")
	add(c1&(1<<24) != 0, "tsc-deadline")
	add(c1&(1<<21) != 0, "x2apic")
	add(c1&(1<<31) != 0, "hypervisor")
	if max, _, _, _ := cpuid(0x80000000, 0); max >= 0x80000007 {
		_, _, _, d := cpuid(0x80000007, 0)
		add(d&(1<<8) != 0, "invariant-tsc")
	}
	return fmt.Sprintf("%s %q [%s]", strings.TrimRight(string(vendor[:]), "\x00"),
		strings.TrimSpace(strings.TrimRight(string(brand[:]), "\x00")), strings.Join(feats, " "))
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// ClockDescription says which clock backs CLOCK_MONOTONIC and how the
// rates were obtained.
func ClockDescription() string {
	src := "tsc"
	if clock.source == clockKVMClock {
		src = "kvmclock"
	}
	how := "calibrated against the PIT"
	if !clock.calibrated {
		how = "NOT calibrated (no PIT answer; assumed)"
	}
	wall := "RTC"
	if !clock.rtcOK {
		wall = "no RTC, wall clock starts 2026-01-01"
	}
	return fmt.Sprintf("%s, TSC %.1f MHz and LAPIC timer %.1f MHz %s, wall time from %s",
		src, float64(clock.tscHz)/1e6, float64(clock.lapicHz)/1e6, how, wall)
}

func readMemStats() MemStats {
	return MemStats{
		RAMBytes:      bootInfo.RAMBytes(),
		ImageBytes:    uint64(imageEnd - layout.ImageBase),
		FramePool:     uint64(frames.end - frames.base),
		FramesInUse:   frames.inUse,
		PageFaults:    pagingStats.demandFaults,
		DontneedPages: pagingStats.dontneedPages,
	}
}

// ThreadInfo describes one kernel thread (one Go runtime M).
type ThreadInfo struct {
	TID      int
	State    string
	CPU      int64 // nanoseconds on the CPU
	Switches uint64
}

// Threads lists the live threads. The snapshot is taken with interrupts
// off so it is consistent.
func Threads() []ThreadInfo {
	var out []ThreadInfo
	if !booted {
		return out
	}
	snap := snapshotThreads()
	for i := range snap {
		t := &snap[i]
		if t.state == tFree {
			continue
		}
		st := "runnable"
		if t.state == tBlocked {
			st = [...]string{"blocked", "futex", "sleep", "epoll", "console"}[t.wait]
		}
		out = append(out, ThreadInfo{TID: int(t.tid), State: st, CPU: t.cpuNs, Switches: t.switches})
	}
	return out
}

func snapshotThreads() [maxThreads]thread {
	fl := disableInterrupts()
	snap := threads
	restoreInterrupts(fl)
	return snap
}

// Poweroff stops the machine; code reaches the host as QEMU's exit status
// (see layout.QEMUStatus). On a host it exits the process.
func Poweroff(code int) {
	if !booted {
		os.Exit(code)
	}
	if code < 0 || code > layout.ExitProgramMax {
		code = layout.ExitProgramMax
	}
	if opts.stats {
		dumpStats()
	}
	if !quiet {
		os.Stdout.WriteString("molt: power off\n")
	}
	DisarmRollback() // a deliberate stop, not a failure to roll back from
	stop(uint8(code))
}
