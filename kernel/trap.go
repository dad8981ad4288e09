package kernel

import (
	"unsafe"

	"github.com/molt-os/molt/boot/layout"
)

// Descriptor tables. Every interrupt gate uses an IST stack, because at CPL0
// the CPU would otherwise push the trap frame onto whatever goroutine stack
// was running:
//
//	IST1  hardware interrupts (vectors 32-71, 255)
//	IST2  exceptions (page faults nest here inside syscalls and interrupts)
//	IST3  NMI, double fault and machine check, which may hit anywhere
const (
	istInterrupt = 1
	istException = 2
	istFatal     = 3

	vecTimer    = 32
	vecIOAPIC0  = 48 // IOAPIC pin n arrives on vector vecIOAPIC0+n
	vecSpurious = 255
)

var (
	idt [256][2]uint64
	gdt [5]uint64
	tss [104]byte
	dtr [2][10]byte // IDTR and GDTR images
)

//go:nosplit
func setGate(v int, handler uintptr, ist uint64) {
	h := uint64(handler)
	idt[v][0] = h&0xffff | kernelCS<<16 | ist<<32 | 0x8e00<<32 | (h>>16&0xffff)<<48
	idt[v][1] = h >> 32
}

//go:nosplit
func trapInit() {
	for v := 0; v < 32; v++ {
		ist := uint64(istException)
		if v == 2 || v == 8 || v == 18 {
			ist = istFatal
		}
		setGate(v, excStubs[v], ist)
	}
	for i := 0; i < len(irqStubs); i++ {
		setGate(32+i, irqStubs[i], istInterrupt)
	}
	for v := 32 + len(irqStubs); v < 256; v++ {
		setGate(v, irqSpuriousPC, istInterrupt)
	}
	tssAddr := addrOf(unsafe.Pointer(&tss[0]))
	*u64(tssAddr + 36) = layout.InterruptStackTop // IST1
	*u64(tssAddr + 44) = layout.ExceptionStackTop // IST2
	*u64(tssAddr + 52) = layout.FatalStackTop     // IST3
	*(*uint16)(u64ptr(tssAddr + 102)) = 104       // no I/O permission bitmap
	b := uint64(tssAddr)
	gdt[1] = 0x00af9a000000ffff // 64-bit code
	gdt[2] = 0x00cf92000000ffff // data
	gdt[3] = 103 | (b&0xffffff)<<16 | 0x89<<40 | (b>>24&0xff)<<56
	gdt[4] = b >> 32
	loadTable(&dtr[1], addrOf(unsafe.Pointer(&gdt[0])), len(gdt)*8)
	lgdt(addrOf(unsafe.Pointer(&dtr[1])))
	ltr(tssSel)
	loadTable(&dtr[0], addrOf(unsafe.Pointer(&idt[0])), len(idt)*16)
	lidt(addrOf(unsafe.Pointer(&dtr[0])))

	// SYSCALL: kernel CS 0x08 / SS 0x10; mask IF, DF, TF and AC on entry.
	wrmsr(msrSTAR, kernelCS<<32)
	wrmsr(msrLSTAR, uint64(syscallEntryPC))
	wrmsr(msrSFMASK, 0x40700)
}

//go:nosplit
func loadTable(d *[10]byte, base uintptr, size int) {
	p := addrOf(unsafe.Pointer(d))
	*(*uint16)(u64ptr(p)) = uint16(size - 1)
	*u64(p + 2) = uint64(base)
}

// doexception handles CPU exceptions (called from excCommon on IST2/IST3).
// A not-present fault on a committed page is demand paging; everything else
// is fatal.
//
//go:nosplit
func doexception(f *Frame) {
	vector, code := trapVector, trapError
	if vector == 14 && code&1 == 0 {
		if demandFault(uintptr(readCR2())) {
			return
		}
	}
	fault(f, vector, code)
}

// dointerrupt handles hardware interrupts (called from irqCommon on IST1).
//
//go:nosplit
func dointerrupt(f *Frame) {
	v := irqVector
	interruptCount[v&0xff]++
	switch {
	case v == vecTimer:
		lapicDev.EOI()
		timerInterrupt(f)
	case v >= vecIOAPIC0 && v < vecIOAPIC0+24:
		deviceInterrupt(f, int(v-vecIOAPIC0))
		lapicDev.EOI()
	default:
		lapicDev.EOI()
	}
}

var interruptCount [256]uint64
