package kernel

// Frame is the saved register state of a thread at a trap: the layout the
// entry stubs in entry_amd64.s build (general registers pushed in reverse
// order, then the hardware IRET frame). Syscalls, interrupts and exceptions
// all produce and consume it, which is what lets the scheduler suspend a
// thread on one path and resume it on another.
type Frame struct {
	AX, BX, CX, DX, SI, DI, BP, R8, R9, R10, R11, R12, R13, R14, R15 uint64
	RIP, CS, RFLAGS, RSP, SS                                         uint64
}

const (
	kernelCS  = 0x08
	kernelDS  = 0x10
	tssSel    = 0x18
	rflagsIF  = 1 << 9
	rflagsRsv = 1 << 1 // always-one bit
)
