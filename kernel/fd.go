package kernel

import "github.com/molt-os/molt/drivers/ioapic"

// File descriptors. The Go runtime needs exactly three kinds: the console
// (0, 1, 2), eventfd (netpollBreak) and epoll (netpoll, which also drives
// every timer). Device interrupt descriptors for drivers will join them.
//
// Synchronization: interrupts off, one CPU.

const maxFDs = 64

const (
	fdFree = iota
	fdConsole
	fdEpoll
	fdEvent
	fdIRQ
)

// epoll_event as the amd64 ABI packs it: uint32 events, uint64 data.
const (
	epollEventSize = 12
	epollIn        = 0x001
	epollOut       = 0x004
	epollCtlAdd    = 1
	epollCtlDel    = 2
	epollCtlMod    = 3
	oNonblock      = 0x800
)

type fdesc struct {
	kind       uint8
	registered bool   // in the (single) epoll interest list
	ready      bool   // an edge not yet reported to epoll
	events     uint32 // requested epoll events
	data       uint64 // epoll user data, stored verbatim (Go puts a pointer there)
	count      uint64 // eventfd counter; interrupts since the last read
	pin        int32  // fdIRQ: IOAPIC pin
}

var fds [maxFDs]fdesc

//go:nosplit
func fdInit() {
	fds[0].kind = fdConsole
	fds[1].kind = fdConsole
	fds[2].kind = fdConsole
}

//go:nosplit
func fdAlloc(kind uint8) uint64 {
	for i := 3; i < maxFDs; i++ {
		if fds[i].kind == fdFree {
			fds[i] = fdesc{kind: kind}
			return uint64(i)
		}
	}
	return errno(eMFILE)
}

//go:nosplit
func fdGet(fd uintptr) *fdesc {
	if fd >= maxFDs || fds[fd].kind == fdFree {
		return nil
	}
	return &fds[fd]
}

//go:nosplit
func fdClose(fd uintptr) uint64 {
	d := fdGet(fd)
	if d == nil {
		return errno(eBADF)
	}
	if d.kind == fdIRQ {
		irqClose(d)
	}
	if d.kind != fdConsole {
		*d = fdesc{}
	}
	return 0
}

//go:nosplit
func fdFcntl(fd, cmd uintptr) uint64 {
	d := fdGet(fd)
	if d == nil {
		return errno(eBADF)
	}
	const fGetfd, fSetfd, fGetfl, fSetfl = 1, 2, 3, 4
	switch cmd {
	case fGetfd, fSetfd, fSetfl:
		return 0
	case fGetfl:
		if d.kind == fdConsole {
			return 2 // O_RDWR, blocking: os keeps the console out of netpoll
		}
		return 2 | oNonblock
	}
	return errno(eINVAL)
}

// Reads and writes.

//go:nosplit
func fdRead(f *Frame, fd, buf, n uintptr) (r uint64, blocked bool) {
	d := fdGet(fd)
	if d == nil {
		return errno(eBADF), false
	}
	switch d.kind {
	case fdConsole:
		return consoleRead(f, buf, n)
	case fdEvent, fdIRQ:
		if n < 8 {
			return errno(eINVAL), false
		}
		if d.count == 0 {
			return errno(eAGAIN), false
		}
		*u64(buf) = d.count
		d.count = 0
		return 8, false
	}
	return errno(eINVAL), false
}

//go:nosplit
func fdWrite(fd, buf, n uintptr) uint64 {
	d := fdGet(fd)
	if d == nil {
		return errno(eBADF)
	}
	switch d.kind {
	case fdConsole:
		putBytes(buf, n)
		return uint64(n)
	case fdEvent:
		if n < 8 {
			return errno(eINVAL)
		}
		d.count += *u64(buf)
		fdSignal(d)
		return 8
	case fdIRQ:
		ioapic0.Unmask(int(d.pin)) // the driver has serviced the device
		return uint64(n)
	}
	return errno(eINVAL)
}

// fdSignal records an edge on d and hands it to a thread waiting in
// epoll_pwait, if any.
//
//go:nosplit
func fdSignal(d *fdesc) {
	d.ready = true
	if !d.registered {
		return
	}
	for i := range threads {
		t := &threads[i]
		if t.state == tBlocked && t.wait == wEpoll {
			if n := epollCollect(t.waitAddr, t.waitLen); n > 0 {
				wake(t, uint64(n))
			}
			return
		}
	}
}

// epoll.

//go:nosplit
func epollCtl(epfd, op, fd, ev uintptr) uint64 {
	e := fdGet(epfd)
	if e == nil || e.kind != fdEpoll {
		return errno(eBADF)
	}
	d := fdGet(fd)
	if d == nil {
		return errno(eBADF)
	}
	if d.kind == fdConsole || d.kind == fdEpoll {
		return errno(eINVAL) // Linux refuses regular files; nothing needs these
	}
	switch op {
	case epollCtlAdd:
		if d.registered {
			return errno(eEXIST)
		}
		d.registered = true
		d.events = *u32(ev)
		d.data = *u64(ev + 4)
		d.ready = d.count > 0
	case epollCtlMod:
		if !d.registered {
			return errno(eNOENT)
		}
		d.events = *u32(ev)
		d.data = *u64(ev + 4)
	case epollCtlDel:
		if !d.registered {
			return errno(eNOENT)
		}
		d.registered = false
	default:
		return errno(eINVAL)
	}
	return 0
}

// epollCollect writes up to max ready events to buf (edge-triggered: each
// edge is reported once) and returns how many it wrote.
//
//go:nosplit
func epollCollect(buf, max uintptr) int {
	n := 0
	for i := 3; i < maxFDs && uintptr(n) < max; i++ {
		d := &fds[i]
		if !d.registered || !d.ready {
			continue
		}
		d.ready = false
		ev := buf + uintptr(n)*epollEventSize
		*u32(ev) = epollIn // Go throws on anything else from its eventfd
		*u64(ev + 4) = d.data
		n++
	}
	return n
}

// sysEpollWait is epoll_wait/epoll_pwait: Go's scheduler sleeps here when
// it has nothing to run, with the timeout of its next timer.
//
//go:nosplit
func epollWait(f *Frame, epfd, buf, max uintptr, timeoutMs int64) (uint64, bool) {
	e := fdGet(epfd)
	if e == nil || e.kind != fdEpoll {
		return errno(eBADF), false
	}
	if max == 0 || max > 1<<20 {
		return errno(eINVAL), false
	}
	if n := epollCollect(buf, max); n > 0 || timeoutMs == 0 {
		return uint64(n), false
	}
	var timeout int64 = -1
	if timeoutMs > 0 {
		timeout = timeoutMs * 1_000_000
	}
	block(f, wEpoll, buf, max, timeout)
	return 0, true
}

// The console: output is polled; input arrives by UART interrupt into a
// ring buffer and is handed to a thread blocked in read(0).

var consoleIn struct {
	buf        [1024]byte
	head, tail uint32 // head: next to read; tail: next to write
	dropped    uint64
}

//go:nosplit
func consoleRead(f *Frame, buf, n uintptr) (uint64, bool) {
	if n == 0 {
		return 0, false
	}
	if got := consoleDrain(buf, n); got > 0 {
		return uint64(got), false
	}
	block(f, wConsole, buf, n, -1)
	return 0, true
}

//go:nosplit
func consoleDrain(buf, n uintptr) uintptr {
	var i uintptr
	for ; i < n && consoleIn.head != consoleIn.tail; i++ {
		*u8(buf + i) = consoleIn.buf[consoleIn.head%uint32(len(consoleIn.buf))]
		consoleIn.head++
	}
	return i
}

// consoleInterrupt drains the UART into the ring and completes a blocked
// read.
//
//go:nosplit
func consoleInterrupt() {
	for {
		c, ok := com1.TryGetByte()
		if !ok {
			break
		}
		if consoleIn.tail-consoleIn.head == uint32(len(consoleIn.buf)) {
			consoleIn.dropped++
			continue
		}
		consoleIn.buf[consoleIn.tail%uint32(len(consoleIn.buf))] = c
		consoleIn.tail++
	}
	for i := range threads {
		t := &threads[i]
		if t.state == tBlocked && t.wait == wConsole {
			if got := consoleDrain(t.waitAddr, t.waitLen); got > 0 {
				wake(t, uint64(got))
			}
			return
		}
	}
}

// Interrupt descriptors: a driver running as ordinary Go code opens one
// per IOAPIC pin (kernel.OpenIRQ). The pin is routed level-triggered and
// active-high (virtio-mmio on microvm). When it fires, the interrupt
// handler masks it, counts it and makes the descriptor readable; the driver
// reads the count (through Go's netpoller, so no thread waits), services
// the device, and writes to the descriptor to unmask the pin.

const maxPins = 24

var irqFD [maxPins]int32 // descriptor per pin, 0: none

//go:nosplit
func irqOpen(pin uintptr) uint64 {
	if pin >= maxPins || int(pin) == com1.IRQ {
		return errno(eINVAL)
	}
	if irqFD[pin] != 0 {
		return errno(eEXIST)
	}
	r := fdAlloc(fdIRQ)
	if int64(r) < 0 {
		return r
	}
	fds[r].pin = int32(pin)
	irqFD[pin] = int32(r)
	interruptSources++
	ioapic0.Route(int(pin), uint8(vecIOAPIC0+pin), lapicDev.ID(), ioapic.REDIR_LEVEL)
	ioapic0.Unmask(int(pin))
	return r
}

//go:nosplit
func irqClose(d *fdesc) {
	ioapic0.Mask(int(d.pin))
	irqFD[d.pin] = 0
	interruptSources--
}

// irqInterrupt runs in interrupt context for a pin without a kernel
// driver of its own.
//
//go:nosplit
func irqInterrupt(pin int) {
	if pin < 0 || pin >= maxPins || irqFD[pin] == 0 {
		ioapic0.Mask(pin) // nobody listens: keep a stuck line quiet
		return
	}
	ioapic0.Mask(pin)
	d := &fds[irqFD[pin]]
	d.count++
	fdSignal(d)
}
