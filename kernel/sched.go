package kernel

import "github.com/molt-os/molt/boot/layout"

// Threads and scheduling.
//
// A thread is what clone creates: one Go runtime M. There are few of them
// (3-6 in practice), so a fixed table and linear scans are enough. Kernel
// code never blocks in the middle of a call: a blocking syscall saves the
// caller's Frame in its slot and the handler returns into another thread
// by rewriting the Frame the entry stub will IRETQ from. So there is one
// kernel stack per trap kind, not per thread.
//
// Scheduling is round-robin and tickless: the LAPIC timer is armed only for
// the earliest sleeper's deadline, plus a time slice while more than one
// thread is runnable (sysmon needs that to preempt a goroutine that never
// blocks). With nothing runnable the idle thread halts the CPU.
//
// Synchronization: every function here runs with interrupts off on one
// CPU; no locks.

const (
	maxThreads = 64
	timeSlice  = 10_000_000 // ns
)

// Thread states.
const (
	tFree = iota
	tRunnable
	tBlocked
)

// What a blocked thread waits for.
const (
	wNone = iota
	wFutex
	wSleep
	wEpoll
	wConsole
)

type thread struct {
	state    uint8
	wait     uint8
	tid      int32
	ctx      Frame
	fs       uint64  // FS base (TLS)
	fx       uintptr // 512-byte FXSAVE area, one frame
	waitAddr uintptr // futex word, or epoll/console buffer
	waitLen  uintptr // epoll maxevents / console buffer length
	deadline int64   // 0: none
	cpuNs    int64   // time spent running
	ranAt    int64   // when it last got the CPU
	switches uint64
}

var (
	threads    [maxThreads]thread
	cur        int     = -1 // running thread, -1: the idle thread
	curFX      uintptr      // FXSAVE area of the running thread (used by entry stubs)
	nextTID    int32   = 1
	schedStats struct {
		switches, idleEntries uint64
		idleNs                int64
	}
	idleSince int64
	idleFX    uintptr
)

// schedInit makes the boot context thread 1 (it becomes the runtime's m0).
//
//go:nosplit
func schedInit() {
	t := &threads[0]
	t.state = tRunnable
	t.tid = nextTID
	nextTID++
	t.fx = mustAllocFrame()
	t.fs = layout.BootTLS
	t.ranAt = nanotime()
	cur = 0
	curFX = t.fx
	idleFX = mustAllocFrame()
}

//go:nosplit
func current() *thread { return &threads[cur] }

// newThread implements clone for threads: the child resumes from the same
// syscall return with RAX=0, its own stack and TLS, and a copy of the
// parent's FPU state.
//
//go:nosplit
func newThread(f *Frame, stack, tls uintptr) uint64 {
	id := -1
	for i := range threads {
		if threads[i].state == tFree {
			id = i
			break
		}
	}
	if id < 0 {
		return errno(eAGAIN)
	}
	t := &threads[id]
	if t.fx == 0 {
		t.fx = allocFrame()
		if t.fx == 0 {
			return errno(eNOMEM)
		}
	}
	t.ctx = *f
	t.ctx.AX = 0
	t.ctx.RSP = uint64(stack)
	t.fs = uint64(tls)
	for i := uintptr(0); i < 512; i += 8 {
		*u64(t.fx + i) = *u64(curFX + i)
	}
	t.state = tRunnable
	t.wait = wNone
	t.deadline = 0
	t.cpuNs = 0
	t.switches = 0
	t.tid = nextTID
	nextTID++
	timerDirty = true
	return uint64(t.tid)
}

// exitThread frees the current thread's slot. Its stack belongs to Go.
//
//go:nosplit
func exitThread(f *Frame) {
	current().state = tFree
	reschedule(f)
}

// block suspends the current thread; a waker (or the deadline) makes it
// runnable and sets its syscall result. timeout < 0 means no deadline.
//
//go:nosplit
func block(f *Frame, kind uint8, addr, n uintptr, timeout int64) {
	t := current()
	t.state = tBlocked
	t.wait = kind
	t.waitAddr = addr
	t.waitLen = n
	t.deadline = 0
	if timeout >= 0 {
		t.deadline = nanotime() + timeout
		if t.deadline == 0 {
			t.deadline = 1
		}
	}
	f.AX = 0
	reschedule(f)
}

// wake makes a blocked thread runnable with the given syscall result.
//
//go:nosplit
func wake(t *thread, result uint64) {
	t.state = tRunnable
	t.wait = wNone
	t.ctx.AX = result
	timerDirty = true
}

// wakeExpired makes runnable every thread whose deadline has passed.
//
//go:nosplit
func wakeExpired(now int64) {
	for i := range threads {
		t := &threads[i]
		if t.state != tBlocked || t.deadline == 0 || now < t.deadline {
			continue
		}
		switch t.wait {
		case wFutex:
			wake(t, errno(eTIMEDOUT))
		default:
			wake(t, 0) // nanosleep done; epoll_pwait timed out with 0 events
		}
	}
}

// reschedule saves the running thread's Frame (f) and loads the next
// runnable thread's into f, round-robin. With nothing runnable it loads the
// idle thread.
//
//go:nosplit
func reschedule(f *Frame) {
	now := nanotime()
	prev := cur
	if cur >= 0 {
		t := current()
		t.ctx = *f
		t.cpuNs += now - t.ranAt
	} else {
		schedStats.idleNs += now - idleSince
	}
	wakeExpired(now)
	next := -1
	start := prev
	if start < 0 {
		start = maxThreads - 1
	}
	for i := 1; i <= maxThreads; i++ {
		j := (start + i) % maxThreads
		if threads[j].state == tRunnable {
			next = j
			break
		}
	}
	if next != prev {
		schedStats.switches++
	}
	cur = next
	if next < 0 {
		enterIdle(f, now)
	} else {
		t := &threads[next]
		*f = t.ctx
		t.ranAt = now
		t.switches++
		wrmsr(msrFSBase, t.fs)
		curFX = t.fx
	}
	armTimer(now)
}

// enterIdle loads the idle thread: a loop of STI; HLT on its own stack.
//
//go:nosplit
func enterIdle(f *Frame, now int64) {
	if !anyWakeSource() {
		deadlock()
	}
	schedStats.idleEntries++
	idleSince = now
	// Only the IRET part matters: the idle loop uses no registers.
	f.RIP = uint64(idleLoopPC)
	f.CS = kernelCS
	f.RFLAGS = rflagsIF | rflagsRsv
	f.RSP = layout.IdleStackTop
	f.SS = kernelDS
	wrmsr(msrFSBase, layout.BootTLS)
	curFX = idleFX
}

// anyWakeSource reports whether something can still make a thread
// runnable: a deadline, or a thread waiting for an interrupt-driven event.
//
//go:nosplit
func anyWakeSource() bool {
	for i := range threads {
		t := &threads[i]
		if t.state == tBlocked && (t.deadline != 0 || t.wait == wConsole || t.wait == wEpoll && interruptSources > 0) {
			return true
		}
	}
	return crash.active
}

// interruptSources counts enabled device interrupts that can wake a thread
// blocked in epoll (a future device driver's IRQ file descriptors).
var interruptSources int

//go:nosplit
func deadlock() {
	kerr("deadlock: every thread is blocked and no timer or interrupt can wake one\n")
	dumpThreads()
	stop(exitKernelPanic)
}

//go:nosplit
func dumpThreads() {
	for i := range threads {
		t := &threads[i]
		if t.state == tFree {
			continue
		}
		puts("molt:   thread ")
		putdec(uint64(t.tid))
		puts(" state ")
		putdec(uint64(t.state))
		puts(" wait ")
		putdec(uint64(t.wait))
		puts(" addr ")
		puthex(uint64(t.waitAddr))
		puts(" rip ")
		puthex(t.ctx.RIP)
		puts("\n")
	}
}

// timerDirty records that the set of runnable threads or deadlines changed
// outside reschedule, so the timer must be re-armed before returning.
var timerDirty bool

// armTimer programs the LAPIC one-shot timer for the next event: the
// earliest deadline, or the end of the time slice if another thread is
// waiting for the CPU. No event, no timer: the CPU sleeps until an
// interrupt.
//
//go:nosplit
func armTimer(now int64) {
	timerDirty = false
	var next int64
	runnable := 0
	for i := range threads {
		t := &threads[i]
		switch t.state {
		case tRunnable:
			runnable++
		case tBlocked:
			if t.deadline != 0 && (next == 0 || t.deadline < next) {
				next = t.deadline
			}
		}
	}
	if cur >= 0 && runnable > 1 || cur < 0 && runnable > 0 {
		if s := now + timeSlice; next == 0 || s < next {
			next = s
		}
	}
	if crash.active && (next == 0 || crash.deadline < next) {
		next = crash.deadline
	}
	if next == 0 {
		lapicDev.Stop()
		return
	}
	lapicDev.OneShot(vecTimer, lapicTicks(next-now))
}

// timerInterrupt runs on every LAPIC timer expiry.
//
//go:nosplit
func timerInterrupt(f *Frame) {
	if crash.active && nanotime() >= crash.deadline {
		kerr("crash report did not finish in time\n")
		stop(exitFault)
	}
	reschedule(f)
}
