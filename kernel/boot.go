package kernel

import (
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/boot/pvh"
	"github.com/molt-os/molt/drivers/debugexit"
	"github.com/molt-os/molt/drivers/ioapic"
)

// kinit runs once, in 64-bit mode on the boot stack, before the Go runtime
// exists (called from entry64). It brings up the console, memory, traps,
// clocks, interrupt routing and the thread table, then builds the
// execve-shaped stack on which _rt0_amd64_linux starts, and returns its
// address.
//
// Context: no runtime, no g, interrupts off. Everything it calls is
// nosplit, allocation-free and writes no heap pointers.
//
//go:nosplit
func kinit(startInfo uintptr) uintptr {
	com1.Init()
	if rc := pvh.Parse(startInfo, &bootInfo); rc != pvh.OK {
		kerr("boot: ")
		puts(pvh.ErrorString(rc))
		puts(" (molt boots through the PVH entry; use qemu -M microvm -kernel)\n")
		stop(exitKernelPanic)
	}
	parseOptions(bootInfo.Cmdline())
	if opts.probe {
		// We reached 64-bit mode and ran SSE code (the ABI wrapper of this
		// very function zeroes X15): the accelerator works.
		stop(layout.ExitProbe)
	}
	ramTop = uintptr(bootInfo.RAMBelow(layout.MMIOBase))
	if ramTop < layout.MinRAM {
		kerr("boot: usable RAM ends at ")
		puthex(uint64(ramTop))
		puts("; molt needs at least ")
		putdec(layout.MinRAM >> 20)
		puts(" MiB (qemu -m)\n")
		stop(exitKernelPanic)
	}
	if imageEnd > layout.ImageLimit {
		kerr("boot: image ends at ")
		puthex(uint64(imageEnd))
		puts(", above the layout limit; rebuild with molt build\n")
		stop(exitKernelPanic)
	}
	framesInit(layout.FramePoolBase, ramTop)
	trapInit()
	lapicDev.Init(vecSpurious)
	warmInit()
	clockInit()
	vdsoOn = !opts.novdso && vdsoInit()
	interruptsInit()
	vmInit()
	fdInit()
	randomInit()
	schedInit()
	booted = true
	kinitDoneNs = nanotime() - clock.bootNs
	warm.kinitTSC = rdtsc()
	return buildProcessStack()
}

var (
	booted      bool
	bootInfo    pvh.Info
	ramTop      uintptr
	kinitDoneNs int64
	ioapic0     = ioapic.IOAPIC{Base: ioapic.DefaultBase}
	qemuExit    = debugexit.DebugExit{Port: layout.DebugExitPort}
)

// interruptsInit masks every IOAPIC pin (a warm boot inherits whatever the
// previous kernel left) and routes the console's receive interrupt.
//
//go:nosplit
func interruptsInit() {
	ioapic0.MaskAll()
	ioapic0.Route(com1.IRQ, uint8(vecIOAPIC0+com1.IRQ), lapicDev.ID(), 0)
	com1.EnableRxInterrupt()
	ioapic0.Unmask(com1.IRQ)
}

// deviceInterrupt dispatches an IOAPIC pin.
//
//go:nosplit
func deviceInterrupt(f *Frame, pin int) {
	if pin == com1.IRQ {
		consoleInterrupt()
	} else {
		irqInterrupt(pin)
	}
	if timerDirty {
		reschedule(f) // let the woken thread run now rather than at the next slice
	}
}

// Kernel command-line options (words starting with "molt.").
var opts struct {
	quiet bool // molt.quiet: only errors on the console
	probe bool // molt.probe: exit with ExitProbe once in 64-bit mode
	stats bool // molt.stats: print syscall statistics at exit
	// molt.novdso: announce no vDSO, so every clock read is a system
	// call (for comparison, or should the vDSO misbehave)
	novdso bool
}

var quiet bool

//go:nosplit
func parseOptions(cmdline string) {
	for w, i := nextWord(cmdline, 0); w != "" && w != "--"; w, i = nextWord(cmdline, i) {
		switch w {
		case "molt.quiet":
			opts.quiet = true
		case "molt.probe":
			opts.probe = true
		case "molt.stats":
			opts.stats = true
		case "molt.novdso":
			opts.novdso = true
		}
	}
	quiet = opts.quiet
}

// nextWord returns the space-separated word of s that starts at or after
// i, and the index after it; "" at the end. (Trap-context code cannot use
// closures: their bodies are not nosplit.)
//
//go:nosplit
func nextWord(s string, i int) (string, int) {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	j := i
	for j < len(s) && s[j] != ' ' {
		j++
	}
	return s[i:j], j
}

// stop powers the machine off through QEMU's isa-debug-exit device with
// the given code; on hardware without it the CPU halts for good.
//
//go:nosplit
func stop(code uint8) {
	disableInterrupts()
	if code != 0 && rollback.armed {
		rollbackJump(code)
	}
	qemuExit.Exit(code)
	for {
		halt()
	}
}

const (
	exitFault       = layout.ExitFault
	exitKernelPanic = layout.ExitKernelPanic
)

//go:nosplit
func exitGroup(status int) {
	if opts.stats {
		dumpStats()
	}
	if !quiet {
		klog("exit_group(")
		putdec(uint64(status))
		puts(")\n")
	}
	if status < 0 || status > layout.ExitProgramMax {
		status = layout.ExitProgramMax
	}
	stop(uint8(status))
}

//go:nosplit
func dumpStats() {
	kerr("syscall counts:")
	for i := 0; i < len(sysCounts); i++ {
		if sysCounts[i] != 0 {
			puts(" ")
			putdec(uint64(i))
			puts("=")
			putdec(sysCounts[i])
		}
	}
	puts("\nmolt: frames in use ")
	putdec(frames.inUse)
	puts(" (peak ")
	putdec(frames.peak)
	puts("), demand faults ")
	putdec(pagingStats.demandFaults)
	puts(", reservations ")
	putdec(uint64(vm.n))
	puts(", switches ")
	putdec(schedStats.switches)
	puts(", idle ms ")
	putdec(uint64(schedStats.idleNs / 1e6))
	puts("\n")
}
