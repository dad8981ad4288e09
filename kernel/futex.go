package kernel

// futex: the Go runtime uses only FUTEX_WAIT_PRIVATE with a relative
// timeout and FUTEX_WAKE_PRIVATE, on 32-bit words. Waiters are found by
// scanning the thread table (there are only a handful of threads).

const (
	futexWait        = 0
	futexWake        = 1
	futexPrivateFlag = 128
)

//go:nosplit
func futex(f *Frame, addr, op, val, timeout uintptr) (uint64, bool) {
	if addr&3 != 0 {
		return errno(eINVAL), false
	}
	switch op &^ futexPrivateFlag {
	case futexWait:
		if *u32(addr) != uint32(val) {
			return errno(eAGAIN), false
		}
		block(f, wFutex, addr, 0, timespecNs(timeout))
		return 0, true
	case futexWake:
		var n uint64
		for i := range threads {
			t := &threads[i]
			if n < uint64(val) && t.state == tBlocked && t.wait == wFutex && t.waitAddr == addr {
				wake(t, 0)
				n++
			}
		}
		return n, false
	}
	return errno(eNOSYS), false
}
