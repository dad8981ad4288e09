package kernel

// Physical frame allocator: a bump pointer over the frame pool plus a free
// list threaded through the free frames themselves. It serves 4 KiB frames
// for Go's memory (on demand, from the page-fault handler), page tables and
// per-thread FPU areas.
//
// Synchronization: runs only with interrupts off (trap context or kinit),
// on one CPU, so it needs no lock.

var frames struct {
	next, end uintptr // bump region [next, end)
	free      uintptr // head of the free list (0: empty)
	base      uintptr // start of the pool, for statistics
	inUse     uint64
	peak      uint64
}

// framesInit hands [base, end) to the allocator.
//
//go:nosplit
func framesInit(base, end uintptr) {
	frames.base = base
	frames.next = base
	frames.end = end
}

// allocFrame returns a zeroed frame, or 0 when memory is exhausted.
//
//go:nosplit
func allocFrame() uintptr {
	var f uintptr
	if frames.free != 0 {
		f = frames.free
		frames.free = *(*uintptr)(u64ptr(f))
	} else {
		if frames.next+pageSize > frames.end {
			return 0
		}
		f = frames.next
		frames.next += pageSize
	}
	memclrFrame(f)
	frames.inUse++
	if frames.inUse > frames.peak {
		frames.peak = frames.inUse
	}
	return f
}

// mustAllocFrame is allocFrame for callers that cannot report failure.
//
//go:nosplit
func mustAllocFrame() uintptr {
	f := allocFrame()
	if f == 0 {
		outOfMemory()
	}
	return f
}

//go:nosplit
func freeFrame(f uintptr) {
	*u64(f) = uint64(frames.free)
	frames.free = f
	frames.inUse--
}

//go:nosplit
func outOfMemory() {
	kerr("out of physical memory: ")
	putdec(frames.inUse)
	puts(" frames in use, pool ")
	puthex(uint64(frames.base))
	puts("..")
	puthex(uint64(frames.end))
	puts("\n")
	stop(exitKernelPanic)
}
