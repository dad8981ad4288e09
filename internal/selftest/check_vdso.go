package selftest

import (
	"syscall"
	"time"
	"unsafe"

	"github.com/molt-os/molt/kernel"
)

const sysClockGettime = 228

// rawClock reads a clock with the clock_gettime system call, bypassing the
// vDSO.
func rawClock(id int) int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(sysClockGettime, uintptr(id), uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// checkVDSO checks that the runtime reads its clocks through the kernel's
// vDSO (no clock_gettime system calls for time.Now and timers) and that
// the vDSO's clocks agree with the system call's. It is VMOnly; under TCG
// the TSC is the clock source, where the vDSO is always offered.
func checkVDSO(t *T) {
	if !kernel.VDSO() {
		t.Fatalf("kernel.VDSO() = false; the TSC clock source offers a vDSO")
	}
	before := kernel.SyscallCount(sysClockGettime)
	var last time.Time
	for i := 0; i < 10000; i++ {
		now := time.Now()
		if now.Before(last) {
			t.Fatalf("time.Now went backwards: %v after %v", now, last)
		}
		last = now
	}
	if n := kernel.SyscallCount(sysClockGettime) - before; n > 10 {
		t.Errorf("10,000 time.Now calls made %d clock_gettime system calls; want none (the vDSO serves them)", n)
	}

	// CLOCK_REALTIME from the vDSO lies between two system-call readings.
	const realtime, monotonic = 0, 1
	r1 := rawClock(realtime)
	v := time.Now().UnixNano()
	r2 := rawClock(realtime)
	if v < r1 || v > r2 {
		t.Errorf("vDSO realtime %d is outside the system call's [%d, %d]", v, r1, r2)
	}

	// CLOCK_MONOTONIC: time.Since (the runtime's monotonic reading, from
	// the vDSO) and the system call measure the same sleep.
	m1 := rawClock(monotonic)
	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	d := time.Since(start)
	m2 := rawClock(monotonic)
	if sys := time.Duration(m2 - m1); d > sys || sys-d > 2*time.Millisecond {
		t.Errorf("a sleep took %v by the vDSO and %v by the system call", d, sys)
	}
	t.Logf("vDSO in use; 10,000 time.Now calls, realtime within [%d, %d], sleep %v", r1, r2, d)
}
