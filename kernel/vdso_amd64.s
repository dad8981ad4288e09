#include "textflag.h"

// func vdsoClockGettime(): the vDSO's clock_gettime, called by the Go
// runtime with the C calling convention on a g0 stack: DI = clock ID,
// SI = *struct timespec; returns 0 in AX. Only AX, CX and DX are used
// (caller-saved in the C ABI). CLOCK_REALTIME (0) and CLOCK_MONOTONIC (1)
// come from the TSC as in nanotime (clock.go); other clocks make the
// system call.
TEXT ·vdsoClockGettime(SB),NOSPLIT|NOFRAME,$0-0
	CMPQ	DI, $1
	JA	syscall
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	SUBQ	·vdsoTSCEntry(SB), AX
	MULQ	·vdsoTSCMult(SB)	// DX:AX = ticks * mult
	SHRQ	$32, DX, AX		// AX = (DX:AX) >> 32: nanoseconds
	CMPQ	DI, $0
	JNE	split
	ADDQ	·vdsoWallAtBoot(SB), AX
split:
	XORL	DX, DX
	MOVQ	$1000000000, CX
	DIVQ	CX			// AX = seconds, DX = nanoseconds
	MOVQ	AX, 0(SI)
	MOVQ	DX, 8(SI)
	XORL	AX, AX
	RET
syscall:
	MOVQ	$228, AX		// clock_gettime(DI, SI)
	SYSCALL
	RET

// func vdsoClockGettimeAddr() uintptr
TEXT ·vdsoClockGettimeAddr(SB),NOSPLIT,$0-8
	MOVQ	$·vdsoClockGettime(SB), AX
	MOVQ	AX, ret+0(FP)
	RET
