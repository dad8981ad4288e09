#include "textflag.h"

// Boot and trap entry points. Everything here runs either before the Go
// runtime exists or in trap context; see doc.go for the rules.
//
// These numbers mirror boot/layout; TestEntryConstantsMatchLayout keeps
// them in sync.
#define PML4      0x10000
#define PDPT      0x11000
#define PD0       0x12000
#define PT0       0x16000
#define GDTBASE   0x17000
#define BOOTTLS   0x17800
#define ENTRYTSC  0x17900
#define EXCFX     0x18000
#define BOOTSTACK 0x30000
#define KSTACK    0x30000
#define IDLESTACK 0x50000

// ---------------------------------------------------------------------
// pvhEntry is the 32-bit PVH entry point (the ELF note points here).
// CPU state: protected mode, paging off, flat segments, IF=0,
// EBX = physical address of hvm_start_info. Only instructions that encode
// identically in 32-bit mode are used: no REX prefixes, no RIP-relative
// operands, only EAX..EDI.
TEXT ·pvhEntry(SB),NOSPLIT|NOFRAME,$0
	CLI
	CLD
	MOVL	BX, SI
	RDTSC
	MOVL	AX, ENTRYTSC
	MOVL	DX, (ENTRYTSC+4)
	MOVL	$BOOTSTACK, SP

	// clear 0x10000-0x17fff: PML4, PDPT, 4 PDs, PT0, GDT page
	MOVL	$PML4, DI
	XORL	AX, AX
	MOVL	$(8*1024), CX
	REP;	STOSL

	MOVL	$PML4, DI
	MOVL	$(PDPT|3), (DI)
	MOVL	$PDPT, DI
	MOVL	$(PD0|3), (DI)
	MOVL	$((PD0+0x1000)|3), 8(DI)
	MOVL	$((PD0+0x2000)|3), 16(DI)
	MOVL	$((PD0+0x3000)|3), 24(DI)

	// identity map 0-3 GiB write-back and 3-4 GiB uncached (MMIO), 2 MiB
	// pages; the first 2 MiB are remapped below with 4 KiB pages.
	MOVL	$PD0, DI
	MOVL	$0x83, AX
	MOVL	$1536, CX
pd1:
	MOVL	AX, (DI)
	ADDL	$0x200000, AX
	ADDL	$8, DI
	DECL	CX
	JNZ	pd1
	ORL	$0x18, AX
	MOVL	$512, CX
pd2:
	MOVL	AX, (DI)
	ADDL	$0x200000, AX
	ADDL	$8, DI
	DECL	CX
	JNZ	pd2

	// first 2 MiB in 4 KiB pages, page 0 left unmapped so that a nil
	// dereference in kernel code faults
	MOVL	$PD0, DI
	MOVL	$(PT0|3), (DI)
	MOVL	$(PT0+8), DI
	MOVL	$0x1003, AX
	MOVL	$511, CX
pt0:
	MOVL	AX, (DI)
	ADDL	$0x1000, AX
	ADDL	$8, DI
	DECL	CX
	JNZ	pt0

	// GDT: null, 64-bit code (0x08), data (0x10)
	MOVL	$GDTBASE, DI
	MOVL	$0x0000ffff, 8(DI)
	MOVL	$0x00af9a00, 12(DI)
	MOVL	$0x0000ffff, 16(DI)
	MOVL	$0x00cf9200, 20(DI)
	MOVW	$23, 0x20(DI)
	MOVL	$GDTBASE, 0x22(DI)
	LGDT	0x20(DI)

	// CR4: PAE | PGE | OSFXSR | OSXMMEXCPT (SSE on, AVX state off)
	MOVL	CR4, AX
	ORL	$(1<<5 | 1<<7 | 1<<9 | 1<<10), AX
	MOVL	AX, CR4
	MOVL	$PML4, AX
	MOVL	AX, CR3
	// EFER: LME | SCE
	MOVL	$0xc0000080, CX
	RDMSR
	ORL	$(1<<8 | 1<<0), AX
	WRMSR
	// CR0: PG | WP | NE | MP | PE, clear EM and TS
	MOVL	CR0, AX
	ANDL	$~(1<<2 | 1<<3), AX
	ORL	$(1<<31 | 1<<16 | 1<<5 | 1<<1 | 1<<0), AX
	MOVL	AX, CR0

	// compatibility mode now; far return into the 64-bit code segment.
	// LEAL assembles RIP-relative; in 32-bit mode its disp32 reads as an
	// absolute value, so add it to the address after the instruction.
	CALL	·eip32<>(SB)
	LEAL	·entry64(SB), BX	// 6 bytes
	ADDL	$6, AX
	ADDL	BX, AX
	PUSHQ	$0x08
	PUSHQ	AX
	RETFQ

// eip32 returns its caller's return address (32-bit mode).
TEXT ·eip32<>(SB),NOSPLIT|NOFRAME,$0
	MOVL	(SP), AX
	RET

// ---------------------------------------------------------------------
// entry64 runs in 64-bit mode with the boot page tables. It calls kinit
// (nosplit Go) to set up the kernel, then enters the Go runtime the way
// Linux's execve would, on the stack kinit built.
TEXT ·entry64(SB),NOSPLIT|NOFRAME,$0
	MOVL	$0x10, AX
	MOVW	AX, DS
	MOVW	AX, ES
	MOVW	AX, SS
	XORL	AX, AX
	MOVW	AX, FS
	MOVW	AX, GS
	MOVQ	$BOOTSTACK, SP
	// FS base -> scratch TLS so ABI wrappers load g = nil
	MOVL	$0xc0000100, CX
	MOVL	$BOOTTLS, AX
	XORL	DX, DX
	WRMSR
	MOVL	SI, SI
	SUBQ	$16, SP
	MOVQ	SI, 0(SP)
	CALL	·kinit(SB)
	MOVQ	8(SP), AX
	MOVQ	AX, SP
	STI
	XORL	AX, AX
	XORL	BX, BX
	XORL	CX, CX
	XORL	DX, DX
	XORL	SI, SI
	XORL	DI, DI
	XORL	BP, BP
	JMP	_rt0_amd64_linux(SB)

// ---------------------------------------------------------------------
// Trap frames. Every entry path builds the same Frame (frame.go): 15
// general registers, then a hardware IRET frame (RIP, CS, RFLAGS, RSP, SS),
// and every exit path returns with IRETQ, so a thread can be suspended on
// one path and resumed on another.

#define PUSH_GPRS \
	PUSHQ	R15; \
	PUSHQ	R14; \
	PUSHQ	R13; \
	PUSHQ	R12; \
	PUSHQ	R11; \
	PUSHQ	R10; \
	PUSHQ	R9; \
	PUSHQ	R8; \
	PUSHQ	BP; \
	PUSHQ	DI; \
	PUSHQ	SI; \
	PUSHQ	DX; \
	PUSHQ	CX; \
	PUSHQ	BX; \
	PUSHQ	AX

#define POP_GPRS_IRET \
	POPQ	AX; \
	POPQ	BX; \
	POPQ	CX; \
	POPQ	DX; \
	POPQ	SI; \
	POPQ	DI; \
	POPQ	BP; \
	POPQ	R8; \
	POPQ	R9; \
	POPQ	R10; \
	POPQ	R11; \
	POPQ	R12; \
	POPQ	R13; \
	POPQ	R14; \
	POPQ	R15; \
	IRETQ

// CALL_HANDLER calls a nosplit Go handler with the frame address. Go code
// has no callee-saved registers, so the frame address is kept on the stack.
// The FXSAVE area of the current thread is saved before and restored after,
// because the handler may switch threads (rewrite the frame and curFX).
#define CALL_HANDLER(fn) \
	MOVQ	SP, BX; \
	MOVQ	·curFX(SB), AX; \
	FXSAVE	(AX); \
	SUBQ	$32, SP; \
	MOVQ	BX, 0(SP); \
	MOVQ	BX, 16(SP); \
	CALL	fn(SB); \
	MOVQ	·curFX(SB), AX; \
	FXRSTOR	(AX); \
	MOVQ	16(SP), SP

// syscallEntry is LSTAR. SYSCALL at CPL0 from the Go runtime: RCX = return
// RIP, R11 = RFLAGS, RSP = caller stack (not switched), IF cleared by
// SFMASK.
TEXT ·syscallEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SP, ·syscallUserSP(SB)
	MOVQ	$KSTACK, SP
	PUSHQ	$0x10
	PUSHQ	·syscallUserSP(SB)
	PUSHQ	R11
	PUSHQ	$0x08
	PUSHQ	CX
	PUSH_GPRS
	CALL_HANDLER(·dosyscall)
	POP_GPRS_IRET

// irqCommon: hardware interrupts arrive on IST1; the vector stub stored
// the vector number in irqVector.
TEXT irqCommon<>(SB),NOSPLIT|NOFRAME,$0
	PUSH_GPRS
	CALL_HANDLER(·dointerrupt)
	POP_GPRS_IRET

// excCommon: CPU exceptions arrive on IST2 (IST3 for #DF, NMI, #MC); the
// stub pushed a zero error code where the CPU pushes none and stored the
// vector in trapVector. Exceptions can nest inside a syscall or interrupt
// handler (a demand-zero page fault while the kernel touches user memory),
// so their SSE state goes to a fixed area instead of the thread's.
TEXT excCommon<>(SB),NOSPLIT|NOFRAME,$0
	POPQ	·trapError(SB)
	PUSH_GPRS
	MOVQ	SP, BX
	MOVQ	$EXCFX, AX
	FXSAVE	(AX)
	SUBQ	$32, SP
	MOVQ	BX, 0(SP)
	MOVQ	BX, 16(SP)
	CALL	·doexception(SB)
	MOVQ	$EXCFX, AX
	FXRSTOR	(AX)
	MOVQ	16(SP), SP
	POP_GPRS_IRET

// idleLoop is the body of the idle thread, which runs only when no other
// thread is runnable: sleep until the next interrupt.
TEXT ·idleLoop(SB),NOSPLIT|NOFRAME,$0
idle:
	STI
	HLT
	JMP	idle

// crashTrampoline is where the fault handler sends a faulting thread: it
// calls the Go-level crash reporter on the thread's own stack.
TEXT ·crashTrampoline(SB),NOSPLIT|NOFRAME,$0
	CALL	·crashReport(SB)
crashhang:
	HLT
	JMP	crashhang

TEXT ·irqSpurious(SB),NOSPLIT|NOFRAME,$0
	IRETQ

// Exception stubs (vectors 0-31).
TEXT ·exc0(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$0, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc1(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$1, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc2(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$2, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc3(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$3, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc4(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$4, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc5(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$5, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc6(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$6, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc7(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$7, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc8(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$8, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc9(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$9, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc10(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$10, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc11(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$11, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc12(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$12, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc13(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$13, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc14(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$14, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc15(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$15, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc16(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$16, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc17(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$17, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc18(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$18, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc19(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$19, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc20(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$20, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc21(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$21, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc22(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$22, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc23(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$23, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc24(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$24, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc25(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$25, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc26(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$26, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc27(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$27, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc28(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$28, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc29(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$29, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc30(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$30, ·trapVector(SB)
	JMP	excCommon<>(SB)

TEXT ·exc31(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	$0
	MOVQ	$31, ·trapVector(SB)
	JMP	excCommon<>(SB)

// Interrupt stubs (vectors 32-71: LAPIC timer, IOAPIC pins 0-23).
TEXT ·irq32(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$32, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq33(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$33, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq34(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$34, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq35(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$35, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq36(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$36, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq37(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$37, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq38(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$38, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq39(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$39, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq40(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$40, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq41(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$41, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq42(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$42, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq43(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$43, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq44(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$44, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq45(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$45, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq46(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$46, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq47(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$47, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq48(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$48, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq49(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$49, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq50(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$50, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq51(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$51, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq52(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$52, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq53(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$53, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq54(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$54, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq55(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$55, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq56(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$56, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq57(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$57, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq58(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$58, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq59(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$59, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq60(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$60, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq61(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$61, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq62(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$62, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq63(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$63, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq64(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$64, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq65(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$65, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq66(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$66, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq67(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$67, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq68(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$68, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq69(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$69, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq70(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$70, ·irqVector(SB)
	JMP	irqCommon<>(SB)

TEXT ·irq71(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$71, ·irqVector(SB)
	JMP	irqCommon<>(SB)

DATA ·excStubs+0(SB)/8, $·exc0(SB)
DATA ·excStubs+8(SB)/8, $·exc1(SB)
DATA ·excStubs+16(SB)/8, $·exc2(SB)
DATA ·excStubs+24(SB)/8, $·exc3(SB)
DATA ·excStubs+32(SB)/8, $·exc4(SB)
DATA ·excStubs+40(SB)/8, $·exc5(SB)
DATA ·excStubs+48(SB)/8, $·exc6(SB)
DATA ·excStubs+56(SB)/8, $·exc7(SB)
DATA ·excStubs+64(SB)/8, $·exc8(SB)
DATA ·excStubs+72(SB)/8, $·exc9(SB)
DATA ·excStubs+80(SB)/8, $·exc10(SB)
DATA ·excStubs+88(SB)/8, $·exc11(SB)
DATA ·excStubs+96(SB)/8, $·exc12(SB)
DATA ·excStubs+104(SB)/8, $·exc13(SB)
DATA ·excStubs+112(SB)/8, $·exc14(SB)
DATA ·excStubs+120(SB)/8, $·exc15(SB)
DATA ·excStubs+128(SB)/8, $·exc16(SB)
DATA ·excStubs+136(SB)/8, $·exc17(SB)
DATA ·excStubs+144(SB)/8, $·exc18(SB)
DATA ·excStubs+152(SB)/8, $·exc19(SB)
DATA ·excStubs+160(SB)/8, $·exc20(SB)
DATA ·excStubs+168(SB)/8, $·exc21(SB)
DATA ·excStubs+176(SB)/8, $·exc22(SB)
DATA ·excStubs+184(SB)/8, $·exc23(SB)
DATA ·excStubs+192(SB)/8, $·exc24(SB)
DATA ·excStubs+200(SB)/8, $·exc25(SB)
DATA ·excStubs+208(SB)/8, $·exc26(SB)
DATA ·excStubs+216(SB)/8, $·exc27(SB)
DATA ·excStubs+224(SB)/8, $·exc28(SB)
DATA ·excStubs+232(SB)/8, $·exc29(SB)
DATA ·excStubs+240(SB)/8, $·exc30(SB)
DATA ·excStubs+248(SB)/8, $·exc31(SB)
GLOBL ·excStubs(SB), RODATA, $256

DATA ·irqStubs+0(SB)/8, $·irq32(SB)
DATA ·irqStubs+8(SB)/8, $·irq33(SB)
DATA ·irqStubs+16(SB)/8, $·irq34(SB)
DATA ·irqStubs+24(SB)/8, $·irq35(SB)
DATA ·irqStubs+32(SB)/8, $·irq36(SB)
DATA ·irqStubs+40(SB)/8, $·irq37(SB)
DATA ·irqStubs+48(SB)/8, $·irq38(SB)
DATA ·irqStubs+56(SB)/8, $·irq39(SB)
DATA ·irqStubs+64(SB)/8, $·irq40(SB)
DATA ·irqStubs+72(SB)/8, $·irq41(SB)
DATA ·irqStubs+80(SB)/8, $·irq42(SB)
DATA ·irqStubs+88(SB)/8, $·irq43(SB)
DATA ·irqStubs+96(SB)/8, $·irq44(SB)
DATA ·irqStubs+104(SB)/8, $·irq45(SB)
DATA ·irqStubs+112(SB)/8, $·irq46(SB)
DATA ·irqStubs+120(SB)/8, $·irq47(SB)
DATA ·irqStubs+128(SB)/8, $·irq48(SB)
DATA ·irqStubs+136(SB)/8, $·irq49(SB)
DATA ·irqStubs+144(SB)/8, $·irq50(SB)
DATA ·irqStubs+152(SB)/8, $·irq51(SB)
DATA ·irqStubs+160(SB)/8, $·irq52(SB)
DATA ·irqStubs+168(SB)/8, $·irq53(SB)
DATA ·irqStubs+176(SB)/8, $·irq54(SB)
DATA ·irqStubs+184(SB)/8, $·irq55(SB)
DATA ·irqStubs+192(SB)/8, $·irq56(SB)
DATA ·irqStubs+200(SB)/8, $·irq57(SB)
DATA ·irqStubs+208(SB)/8, $·irq58(SB)
DATA ·irqStubs+216(SB)/8, $·irq59(SB)
DATA ·irqStubs+224(SB)/8, $·irq60(SB)
DATA ·irqStubs+232(SB)/8, $·irq61(SB)
DATA ·irqStubs+240(SB)/8, $·irq62(SB)
DATA ·irqStubs+248(SB)/8, $·irq63(SB)
DATA ·irqStubs+256(SB)/8, $·irq64(SB)
DATA ·irqStubs+264(SB)/8, $·irq65(SB)
DATA ·irqStubs+272(SB)/8, $·irq66(SB)
DATA ·irqStubs+280(SB)/8, $·irq67(SB)
DATA ·irqStubs+288(SB)/8, $·irq68(SB)
DATA ·irqStubs+296(SB)/8, $·irq69(SB)
DATA ·irqStubs+304(SB)/8, $·irq70(SB)
DATA ·irqStubs+312(SB)/8, $·irq71(SB)
GLOBL ·irqStubs(SB), RODATA, $320

DATA ·syscallEntryPC+0(SB)/8, $·syscallEntry(SB)
GLOBL ·syscallEntryPC(SB), RODATA, $8

DATA ·irqSpuriousPC+0(SB)/8, $·irqSpurious(SB)
GLOBL ·irqSpuriousPC(SB), RODATA, $8

DATA ·idleLoopPC+0(SB)/8, $·idleLoop(SB)
GLOBL ·idleLoopPC(SB), RODATA, $8

DATA ·crashTrampolinePC+0(SB)/8, $·crashTrampoline(SB)
GLOBL ·crashTrampolinePC(SB), RODATA, $8

DATA ·imageEnd+0(SB)/8, $runtime·end(SB)
GLOBL ·imageEnd(SB), RODATA, $8

DATA ·textStart+0(SB)/8, $runtime·text(SB)
GLOBL ·textStart(SB), RODATA, $8

DATA ·textEnd+0(SB)/8, $runtime·etext(SB)
GLOBL ·textEnd(SB), RODATA, $8

// goexitPC+1 is planted as the return address of crashTrampoline, so the
// runtime's unwinder sees the crash reporter as the top of a goroutine
// (runtime.goexit is TOPFRAME) and stack growth inside it works.
DATA ·goexitPC+0(SB)/8, $runtime·goexit(SB)
GLOBL ·goexitPC(SB), RODATA, $8
