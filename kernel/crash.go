package kernel

import (
	"unsafe"

	"github.com/molt-os/molt/boot/layout"
)

// Fatal exceptions. The report comes in two stages:
//
//  1. In trap context (fault): registers, the faulting address, the bytes
//     at RIP and a frame-pointer stack walk, printed with nosplit code that
//     trusts nothing. This part always appears.
//  2. If the fault hit Go code on a Go stack, the thread is sent to
//     crashReport (crashreport.go) on its own stack, where ordinary Go
//     code decodes the instruction with x86asm and names the function and
//     line of every PC. A deadline bounds that stage; if it faults or
//     hangs, the kernel stops with stage 1 alone.
//
// Either way the machine stops with layout.ExitFault.

const maxCrashPCs = 32

var crash struct {
	active   bool
	deadline int64
	vector   uint64
	code     uint64
	cr2      uint64
	frame    Frame
	text     [16]byte // instruction bytes at RIP
	textOK   bool
	pcs      [maxCrashPCs]uint64
	npcs     int
	// goexitSlot is the stack slot holding runtime.goexit's return
	// address, the bottom of the faulting goroutine's stack (0: not found).
	goexitSlot uintptr
}

var exceptionNames = [32]string{
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS",
	"#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved", "#MF x87 error", "#AC alignment check",
	"#MC machine check", "#XM SIMD error", "#VE virtualization", "#CP control protection",
}

// fault reports a fatal exception and never returns to the faulting code.
//
//go:nosplit
func fault(f *Frame, vector, code uint64) {
	if crash.active {
		kerr("fault while reporting a fault: ")
		puts(exceptionNames[vector&31])
		puts(" at RIP ")
		puthex(f.RIP)
		puts("\n")
		stop(exitFault)
	}
	cr2 := readCR2()
	crash.vector = vector
	crash.code = code
	crash.cr2 = cr2
	crash.frame = *f
	kerr("fault: ")
	puts(exceptionNames[vector&31])
	puts(" (vector ")
	putdec(vector)
	puts(") error ")
	puthex(code)
	if vector == 14 {
		puts(" address ")
		puthex(cr2)
		if code&1 == 0 {
			puts(" (not present")
		} else {
			puts(" (protection")
		}
		if code&2 != 0 {
			puts(", write)")
		} else if code&16 != 0 {
			puts(", instruction fetch)")
		} else {
			puts(", read)")
		}
	}
	puts("\n")
	dumpRegisters(f, cr2)
	if mapped(uintptr(f.RIP), 16) {
		crash.textOK = true
		puts("molt:   code at RIP:")
		for i := 0; i < 16; i++ {
			crash.text[i] = *u8(uintptr(f.RIP) + uintptr(i))
			puts(" ")
			puthexDigits(uint64(crash.text[i]), 2)
		}
		puts("\n")
	}
	walkFrames(f)
	if cur >= 0 {
		puts("molt:   thread ")
		putdec(uint64(current().tid))
		puts("\n")
	}
	if !goContext(f) || crash.goexitSlot == 0 {
		stop(exitFault) // not a goroutine stack we can reuse: stage 1 only
	}
	// Stage 2: run the Go reporter on the faulting thread's stack.
	crash.active = true
	crash.deadline = nanotime() + 5_000_000_000
	// Restart the goroutine's stack at its bottom frame: enter the
	// trampoline as if runtime.goexit had called it, on the very slot that
	// holds goexit's return address. The runtime's unwinder then sees a
	// well-formed goroutine stack, so the reporter can grow it. The frames
	// it overwrites were already recorded above.
	f.RSP = uint64(crash.goexitSlot)
	f.RIP = uint64(crashTrampolinePC)
	f.RFLAGS |= rflagsIF
	armTimer(nanotime())
}

// goContext reports whether the fault happened in Go code running on a Go
// stack (not in kernel trap context, not on the boot stacks).
//
//go:nosplit
func goContext(f *Frame) bool {
	return f.CS == kernelCS && uintptr(f.RIP) >= textStart && uintptr(f.RIP) < textEnd &&
		uintptr(f.RSP) >= layout.GoVirtBase && cur >= 0 && mapped(uintptr(f.RSP)-1024, 1024)
}

// frameRegNames are the Frame fields in memory order.
var frameRegNames = [20]string{
	"RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "R8 ", "R9 ", "R10",
	"R11", "R12", "R13", "R14", "R15", "RIP", "CS ", "RFL", "RSP", "SS ",
}

// dumpRegisters prints the frame four registers a line. It walks the Frame
// as memory to keep this trap-context frame small.
//
//go:nosplit
func dumpRegisters(f *Frame, cr2 uint64) {
	base := addrOf(unsafe.Pointer(f))
	for i := 0; i < len(frameRegNames); i++ {
		if i%4 == 0 {
			puts("molt:   ")
		}
		puts(frameRegNames[i])
		puts(" ")
		puthex(*u64(base + uintptr(i)*8))
		if i%4 == 3 {
			puts("\n")
		} else {
			puts("  ")
		}
	}
	puts("molt:   CR2 ")
	puthex(cr2)
	puts("  CR3 ")
	puthex(readCR3())
	puts("\n")
}

// walkFrames follows the frame-pointer chain (Go keeps RBP as a frame
// pointer on amd64) without touching goroutine structures: each frame is
// [saved RBP][return address]. Every address is checked before it is read.
//
//go:nosplit
func walkFrames(f *Frame) {
	crash.pcs[0] = f.RIP
	crash.npcs = 1
	bp := uintptr(f.BP)
	for crash.npcs < maxCrashPCs && bp != 0 && bp&7 == 0 && mapped(bp, 16) {
		ret := *u64(bp + 8)
		if ret == 0 || uintptr(ret) < textStart || uintptr(ret) >= textEnd {
			break
		}
		crash.pcs[crash.npcs] = ret
		crash.npcs++
		if ret == uint64(goexitPC)+1 {
			crash.goexitSlot = bp + 8
			break
		}
		next := uintptr(*u64(bp))
		if next <= bp {
			break // frames grow up the stack; anything else is corrupt
		}
		bp = next
	}
	puts("molt:   stack (frame pointers):")
	for i := 0; i < crash.npcs; i++ {
		puts(" ")
		puthex(crash.pcs[i])
	}
	puts("\n")
}
