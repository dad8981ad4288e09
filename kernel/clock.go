package kernel

import (
	"math/bits"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/drivers/lapic"
	"github.com/molt-os/molt/drivers/pit"
	"github.com/molt-os/molt/drivers/rtc"
)

// Time. CLOCK_MONOTONIC counts nanoseconds since the kernel's entry point
// from kvmclock when the hypervisor offers it, else from the TSC calibrated
// against the 8254 PIT at boot. CLOCK_REALTIME adds the CMOS RTC reading
// taken at boot. The LAPIC timer, calibrated in the same window, drives
// scheduling (timer.go).
//
// Monotonic time never goes backwards: nanotime clamps to the last value it
// returned (single CPU, interrupts off in every caller that matters).

const (
	clockTSC      = 1
	clockKVMClock = 2
)

var clock struct {
	source     int
	tscHz      uint64
	tscMult    uint64 // ns = (ticks * tscMult) >> 32
	tscEntry   uint64 // TSC at monotonic 0: this kernel's entry, or earlier on a warm boot
	tscEntry0  uint64 // TSC at this kernel's PVH entry point (stamped by the stub)
	bootNs     int64  // monotonic ns at this kernel's entry: 0, or the continued clock
	lapicHz    uint64
	lapicMult  uint64 // lapic ticks = (ns * lapicMult) >> 32
	wallAtBoot int64  // Unix ns at monotonic 0
	rtcOK      bool
	last       int64
	kvmOffset  uint64 // kvmclock system time at entry
	calibrated bool
}

// kvmclock's pvclock_vcpu_time_info; must not cross a page boundary, so it
// is placed in the boot TLS page.
const pvclockArea = layout.BootTLS + 0x200

const entryTSCAddr = layout.BootTLS + 0x100 // written by pvhEntry

var lapicDev = lapic.LAPIC{Base: lapic.DefaultBase}

// calibrateWindow is the PIT interval used to measure the TSC and LAPIC
// timer rates: 10 ms keeps the error well under 0.1% while adding little
// to boot time.
const calibrateWindow = pit.Hz / 100

//go:nosplit
func clockInit() {
	clock.tscEntry = *u64(entryTSCAddr)
	if clock.tscEntry == 0 {
		clock.tscEntry = rdtsc()
	}
	clock.tscEntry0 = clock.tscEntry
	calibrate()
	continueClock()
	if hasKVMClock() {
		wrmsr(msrKVMSystemTim, uint64(pvclockArea)|1)
		clock.source = clockKVMClock
		// anchor monotonic 0 at the entry TSC
		clock.kvmOffset = pvclockNs() - tscToNs(rdtsc()-clock.tscEntry)
	} else {
		clock.source = clockTSC
	}
	if t, ok := rtc.Read(); ok {
		clock.wallAtBoot = t.Unix()*1e9 - nanotime()
		clock.rtcOK = true
	} else {
		clock.wallAtBoot = 1767225600 * 1e9 // 2026-01-01: no RTC
	}
}

// continueClock makes monotonic time continue from the previous kernel's
// after a jump: the previous kernel stamped its monotonic time and the TSC
// together (kernel/jump.go), and the TSC kept counting through the jump.
// So that nanotime (and the vDSO, which computes the same formula) needs
// no extra term, monotonic 0 moves back to the TSC value at which it would
// have been: tscEntry = entry − ticks(previous mono + time since stamp).
// That value can lie "before" TSC 0 (the kernels' calibrations differ a
// little, and the first kernel started soon after the TSC did): the
// subtraction wraps, and rdtsc − tscEntry, computed in the same unsigned
// arithmetic by nanotime and the vDSO, is still the right tick count.
//
//go:nosplit
func continueClock() {
	if !warm.times {
		return
	}
	s := &warm.stamps
	since := tscToNs(clock.tscEntry0 - s[jtDecide/8])
	boot := s[jtMonoNs/8] + since
	hi, lo := bits.Mul64(boot, clock.tscHz)
	if hi >= 1_000_000_000 {
		return // absurd (centuries of uptime): start from 0 instead
	}
	ticks, _ := bits.Div64(hi, lo, 1_000_000_000)
	clock.tscEntry = clock.tscEntry0 - ticks
	clock.bootNs = int64(tscToNs(ticks))
}

// calibrate measures the TSC and LAPIC timer against the PIT.
//
//go:nosplit
func calibrate() {
	pit.Start()
	lapicDev.StartCount()
	c0 := pit.Count()
	t0 := rdtsc()
	l0 := lapicDev.Count()
	var ticks uint32
	c := c0
	for spins := 0; ticks < calibrateWindow && spins < 200_000; spins++ {
		n := pit.Count()
		ticks += pit.Elapsed(c, n)
		c = n
	}
	t1 := rdtsc()
	l1 := lapicDev.Count()
	lapicDev.Stop()
	if ticks >= calibrateWindow && t1 > t0 {
		clock.tscHz = (t1 - t0) * pit.Hz / uint64(ticks)
		clock.lapicHz = uint64(l0-l1) * pit.Hz / uint64(ticks)
		clock.calibrated = true
	}
	if clock.tscHz == 0 {
		clock.tscHz = cpuidTSCHz()
	}
	if clock.lapicHz == 0 {
		clock.lapicHz = 1_000_000_000 / 16 // QEMU's APIC clock with divide-by-16
	}
	clock.tscMult = (1_000_000_000 << 32) / clock.tscHz
	hi, lo := bits.Mul64(clock.lapicHz, 1<<32)
	clock.lapicMult, _ = bits.Div64(hi, lo, 1_000_000_000)
}

// cpuidTSCHz is the fallback when the PIT does not answer: CPUID leaf 0x16
// (base frequency in MHz), else an assumed 2 GHz.
//
//go:nosplit
func cpuidTSCHz() uint64 {
	if max, _, _, _ := cpuid(0, 0); max >= 0x16 {
		if mhz, _, _, _ := cpuid(0x16, 0); mhz&0xffff != 0 {
			return uint64(mhz&0xffff) * 1_000_000
		}
	}
	return 2_000_000_000
}

//go:nosplit
func hasKVMClock() bool {
	_, b, c, d := cpuid(0x40000000, 0)
	if b != 0x4b4d564b || c != 0x564b4d56 || d != 0x4d { // "KVMKVMKVM\0\0\0"
		return false
	}
	f, _, _, _ := cpuid(0x40000001, 0)
	return f&(1<<3) != 0 // KVM_FEATURE_CLOCKSOURCE2
}

//go:nosplit
func tscToNs(ticks uint64) uint64 {
	hi, lo := bits.Mul64(ticks, clock.tscMult)
	return hi<<32 | lo>>32
}

// pvclockNs reads kvmclock's system time (pvclock ABI, version-protected).
//
//go:nosplit
func pvclockNs() uint64 {
	p := uintptr(pvclockArea)
	for {
		ver := *u32(p)
		tscTS := *u64(p + 8)
		sys := *u64(p + 16)
		mul := *u32(p + 24)
		shift := int8(*u8(p + 28))
		d := rdtsc() - tscTS
		if shift < 0 {
			d >>= uint(-shift)
		} else {
			d <<= uint(shift)
		}
		hi, lo := bits.Mul64(d, uint64(mul))
		ns := sys + (hi<<32 | lo>>32)
		if ver&1 == 0 && *u32(p) == ver {
			return ns
		}
	}
}

// nanotime returns monotonic nanoseconds since the kernel's entry point.
//
//go:nosplit
func nanotime() int64 {
	var ns int64
	if clock.source == clockKVMClock {
		ns = int64(pvclockNs() - clock.kvmOffset)
	} else {
		ns = int64(tscToNs(rdtsc() - clock.tscEntry))
	}
	if ns < clock.last {
		return clock.last
	}
	clock.last = ns
	return ns
}

//go:nosplit
func walltime() int64 { return clock.wallAtBoot + nanotime() }

// lapicTicks converts a duration to LAPIC timer counts, clamped to the
// 32-bit counter and to at least one tick.
//
//go:nosplit
func lapicTicks(ns int64) uint32 {
	if ns <= 0 {
		return 1
	}
	hi, lo := bits.Mul64(uint64(ns), clock.lapicMult)
	t := hi<<32 | lo>>32
	if t == 0 {
		return 1
	}
	if t > 0xffffffff {
		return 0xffffffff
	}
	return uint32(t)
}
