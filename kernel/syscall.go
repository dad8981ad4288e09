package kernel

// The system-call layer: the Go runtime issues SYSCALL at CPL0 and lands in
// dosyscall with interrupts off on the syscall stack. syscalls_table.go
// lists every call and what molt answers; this switch implements it.

var sysCounts [512]uint64

// unknownSeen remembers which unknown syscall numbers were already
// reported, so each is printed once.
var unknownSeen [512 / 64]uint64

//go:nosplit
func dosyscall(f *Frame) {
	no := f.AX
	a0, a1, a2, a3, a4 := uintptr(f.DI), uintptr(f.SI), uintptr(f.DX), uintptr(f.R10), uintptr(f.R8)
	if no < uint64(len(sysCounts)) {
		sysCounts[no]++
	}
	var r uint64
	switch no {
	case sysRead:
		res, blocked := fdRead(f, a0, a1, a2)
		if blocked {
			return // f now holds another thread's context
		}
		r = res
	case sysWrite:
		r = fdWrite(a0, a1, a2)
	case sysClose:
		r = fdClose(a0)
	case sysMmap:
		r = vmMmap(a0, a1, a2, a3)
	case sysMprotect:
		r = 0 // protections are not enforced (Go uses mprotect only in debug modes)
	case sysMunmap:
		r = vmMunmap(a0, a1)
	case sysRtSigaction:
		if a2 != 0 {
			zero(a2, 32) // old action: SIG_DFL
		}
	case sysRtSigprocmask:
		if a2 != 0 {
			*u64(a2) = 0
		}
	case sysSchedYield:
		f.AX = 0
		reschedule(f)
		return
	case sysMadvise:
		r = vmMadvise(a0, a1, a2)
	case sysNanosleep, sysClockNanosleep:
		ts := a0
		if no == sysClockNanosleep {
			if a1&1 != 0 { // TIMER_ABSTIME
				block(f, wSleep, 0, 0, timespecNs(a2)-clockNow(a0))
				return
			}
			ts = a2
		}
		block(f, wSleep, 0, 0, timespecNs(ts))
		return
	case sysGetpid:
		r = 1
	case sysClone:
		const cloneThread = 0x10000 | 0x100 // CLONE_THREAD | CLONE_VM
		if a0&cloneThread != cloneThread {
			r = errno(eNOSYS) // no processes, only threads
			break
		}
		r = newThread(f, a1, a4)
	case sysExit:
		exitThread(f)
		return
	case sysExitGroup:
		exitGroup(int(a0))
	case sysFcntl:
		r = fdFcntl(a0, a1)
	case sysGetcwd:
		if a1 < 2 {
			r = errno(eRANGE)
			break
		}
		*u8(a0) = '/'
		*u8(a0 + 1) = 0
		r = 2
	case sysGetuid, sysGetgid, sysGeteuid, sysGetegid:
		r = 0
	case sysSigaltstack:
		if a1 != 0 {
			zero(a1, 24)
			*u32(a1 + 8) = 2 // SS_DISABLE
		}
	case sysPrctl:
		r = errno(eINVAL)
	case sysArchPrctl:
		const archSetFS = 0x1002
		if a0 != archSetFS {
			r = errno(eINVAL)
			break
		}
		current().fs = uint64(a1)
		wrmsr(msrFSBase, uint64(a1))
	case sysGettid:
		r = uint64(current().tid)
	case sysTkill, sysTgkill, sysKill:
		r = 0 // signals are not delivered; Go only sends SIGURG (preemption off)
	case sysFutex:
		res, blocked := futex(f, a0, a1, a2, a3)
		if blocked {
			return
		}
		r = res
	case sysSchedGetaffinity:
		if a1 < 8 {
			r = errno(eINVAL)
			break
		}
		zero(a2, 8)
		*u8(a2) = 1
		r = 8
	case sysClockGettime:
		ns, ok := clockRead(a0)
		if !ok {
			r = errno(eINVAL)
			break
		}
		*u64(a1) = uint64(ns / 1e9)
		*u64(a1 + 8) = uint64(ns % 1e9)
	case sysClockGetres:
		if a1 != 0 {
			*u64(a1) = 0
			*u64(a1 + 8) = 1
		}
	case sysGettimeofday:
		if a0 != 0 {
			ns := walltime()
			*u64(a0) = uint64(ns / 1e9)
			*u64(a0 + 8) = uint64(ns % 1e9 / 1000)
		}
	case sysEpollWait, sysEpollPwait:
		res, blocked := epollWait(f, a0, a1, a2, int64(int32(a3)))
		if blocked {
			return
		}
		r = res
	case sysEpollCtl:
		r = epollCtl(a0, a1, a2, a3)
	case sysEpollCreate, sysEpollCreate1:
		r = fdAlloc(fdEpoll)
	case sysEventfd2:
		r = fdAlloc(fdEvent)
		if int64(r) >= 0 {
			fds[r].count = uint64(a0)
		}
	case sysOpenat:
		r = errno(eNOENT) // no file system
	case sysPrlimit64:
		r = errno(eNOSYS)
	case sysGetrandom:
		r = getrandom(a0, a1)
	case sysMoltIRQOpen:
		r = irqOpen(a0)
	default:
		reportUnknown(no)
		r = errno(eNOSYS)
	}
	f.AX = r
	finishSyscall()
}

// finishSyscall re-arms the timer if the call changed what is runnable.
//
//go:nosplit
func finishSyscall() {
	if timerDirty {
		armTimer(nanotime())
	}
}

//go:nosplit
func reportUnknown(no uint64) {
	if no < 512 {
		if unknownSeen[no/64]&(1<<(no%64)) != 0 {
			return
		}
		unknownSeen[no/64] |= 1 << (no % 64)
	}
	kerr("unsupported syscall ")
	putdec(no)
	puts(" (returns ENOSYS; reported once)\n")
}

//go:nosplit
func zero(p, n uintptr) {
	for i := uintptr(0); i < n; i++ {
		*u8(p + i) = 0
	}
}

// timespecNs reads a struct timespec; a nil pointer means "no timeout".
//
//go:nosplit
func timespecNs(p uintptr) int64 {
	if p == 0 {
		return -1
	}
	return int64(*u64(p))*1e9 + int64(*u64(p + 8))
}

// Clock IDs (linux/time.h).
const (
	clockRealtime       = 0
	clockMonotonic      = 1
	clockProcessCPU     = 2
	clockThreadCPU      = 3
	clockMonotonicRaw   = 4
	clockRealtimeCoarse = 5
	clockMonotonicCoar  = 6
	clockBoottime       = 7
)

//go:nosplit
func clockRead(id uintptr) (int64, bool) {
	switch id {
	case clockRealtime, clockRealtimeCoarse:
		return walltime(), true
	case clockMonotonic, clockMonotonicRaw, clockMonotonicCoar, clockBoottime:
		return nanotime(), true
	case clockProcessCPU:
		return nanotime() - clock.bootNs - schedStats.idleNs, true
	case clockThreadCPU:
		t := current()
		return t.cpuNs + nanotime() - t.ranAt, true
	}
	return 0, false
}

//go:nosplit
func clockNow(id uintptr) int64 {
	ns, _ := clockRead(id)
	return ns
}
