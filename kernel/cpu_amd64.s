#include "textflag.h"

// CPU instructions the kernel needs that Go cannot express. All are NOSPLIT
// leaf functions: they run in trap context and before the runtime exists.

// func wrmsr(msr uint32, val uint64)
TEXT ·wrmsr(SB),NOSPLIT,$0-16
	MOVL	msr+0(FP), CX
	MOVQ	val+8(FP), AX
	MOVQ	AX, DX
	SHRQ	$32, DX
	WRMSR
	RET

// func rdmsr(msr uint32) uint64
TEXT ·rdmsr(SB),NOSPLIT,$0-16
	MOVL	msr+0(FP), CX
	RDMSR
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+8(FP)
	RET

// func rdtsc() uint64
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+0(FP)
	RET

// func rdrand() (v uint64, ok bool)
TEXT ·rdrand(SB),NOSPLIT,$0-9
	RDRANDQ	AX
	SETCS	BX
	MOVQ	AX, v+0(FP)
	MOVB	BX, ok+8(FP)
	RET

// func rdseed() (v uint64, ok bool)
TEXT ·rdseed(SB),NOSPLIT,$0-9
	RDSEEDQ	AX
	SETCS	BX
	MOVQ	AX, v+0(FP)
	MOVB	BX, ok+8(FP)
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB),NOSPLIT,$0-24
	MOVL	leaf+0(FP), AX
	MOVL	sub+4(FP), CX
	CPUID
	MOVL	AX, a+8(FP)
	MOVL	BX, b+12(FP)
	MOVL	CX, c+16(FP)
	MOVL	DX, d+20(FP)
	RET

// func lidt(p uintptr)
TEXT ·lidt(SB),NOSPLIT,$0-8
	MOVQ	p+0(FP), AX
	LIDT	(AX)
	RET

// func lgdt(p uintptr)
TEXT ·lgdt(SB),NOSPLIT,$0-8
	MOVQ	p+0(FP), AX
	LGDT	(AX)
	RET

// func ltr(sel uint16)
TEXT ·ltr(SB),NOSPLIT,$0-2
	MOVW	sel+0(FP), AX
	LTR	AX
	RET

// func readCR2() uint64
TEXT ·readCR2(SB),NOSPLIT,$0-8
	MOVQ	CR2, AX
	MOVQ	AX, ret+0(FP)
	RET

// func readCR3() uint64
TEXT ·readCR3(SB),NOSPLIT,$0-8
	MOVQ	CR3, AX
	MOVQ	AX, ret+0(FP)
	RET

// func invlpg(va uintptr)
TEXT ·invlpg(SB),NOSPLIT,$0-8
	MOVQ	va+0(FP), AX
	INVLPG	(AX)
	RET

// func halt()
TEXT ·halt(SB),NOSPLIT,$0
	HLT
	RET

// func pause()
TEXT ·pause(SB),NOSPLIT,$0
	PAUSE
	RET

// func disableInterrupts() (flags uint64)
TEXT ·disableInterrupts(SB),NOSPLIT,$0-8
	PUSHFQ
	POPQ	AX
	CLI
	MOVQ	AX, flags+0(FP)
	RET

// func restoreInterrupts(flags uint64)
TEXT ·restoreInterrupts(SB),NOSPLIT,$0-8
	MOVQ	flags+0(FP), AX
	PUSHQ	AX
	POPFQ
	RET

// func memclrFrame(p uintptr)
// Zeroes one 4 KiB page with REP STOSQ.
TEXT ·memclrFrame(SB),NOSPLIT,$0-8
	MOVQ	p+0(FP), DI
	MOVQ	$512, CX
	XORL	AX, AX
	CLD
	REP;	STOSQ
	RET
