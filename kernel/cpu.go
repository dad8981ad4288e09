package kernel

// Implemented in cpu_amd64.s; safe in trap context.

func wrmsr(msr uint32, val uint64)
func rdmsr(msr uint32) uint64
func rdtsc() uint64
func rdrand() (v uint64, ok bool)
func rdseed() (v uint64, ok bool)
func cpuid(leaf, sub uint32) (a, b, c, d uint32)
func lidt(p uintptr)
func lgdt(p uintptr)
func ltr(sel uint16)
func readCR2() uint64
func readCR3() uint64
func invlpg(va uintptr)
func halt()
func pause()
func disableInterrupts() (flags uint64)
func restoreInterrupts(flags uint64)
func memclrFrame(p uintptr)

// Model-specific registers.
const (
	msrEFER         = 0xc0000080
	msrSTAR         = 0xc0000081
	msrLSTAR        = 0xc0000082
	msrSFMASK       = 0xc0000084
	msrFSBase       = 0xc0000100
	msrKVMSystemTim = 0x4b564d01 // MSR_KVM_SYSTEM_TIME_NEW
)
