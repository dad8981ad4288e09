#include "textflag.h"

// The self-update jump (jump.go). These numbers mirror boot/layout and the
// offsets in jump.go; TestJumpConstantsMatch keeps them in sync.
#define PML4       0x10000
#define PURG64     0x8000
#define PURG32     0x8800
#define PARAMS     0x9000
#define PURGSTACK  0xf000

// Parameter page: +0x00 segment count, +0x08 entry, +0x10 start info,
// +0x18 timestamp page, +0x20 GDTR, +0x30 IDTR (limit 0), +0x80 segments
// of 32 bytes {dst, src, filesz, memsz}. Timestamp page: +0x28 purgatory
// entered, +0x30 copied, +0x38 zeroed.

// jumpToPurgatory leaves the running kernel for good. Interrupts are off.
// The boot page tables at PML4 identity-map the low 4 GiB in every kernel
// (the boot stub built them; later mappings only ever add entries above
// 4 GiB), so switching to them keeps this code and the purgatory mapped
// while the image the current page tables belong to gets overwritten.
TEXT ·jumpToPurgatory(SB),NOSPLIT|NOFRAME,$0
	CLI
	MOVQ	$PURGSTACK, SP
	MOVQ	$PML4, AX
	MOVQ	AX, CR3		// also flushes the TLB
	MOVQ	$PURG64, AX
	JMP	AX

// purgatory64 is copied to PURG64 and runs there in 64-bit mode with the
// identity map and IF=0. It must be position independent: only relative
// branches and absolute constants, no calls into the image it overwrites.
// It loads its own GDT and a zero-limit IDT (the kernel's live inside the
// image), copies every segment from its staging slot, zeroes each BSS,
// then far-returns into purgatory32 in compatibility mode.
TEXT ·purgatory64(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$PARAMS, R8
	LGDT	0x20(R8)
	LIDT	0x30(R8)
	MOVL	$0x10, AX
	MOVW	AX, DS
	MOVW	AX, ES
	MOVW	AX, SS
	MOVQ	0x18(R8), R9		// timestamp page
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, 0x28(R9)
	CLD
	MOVQ	0(R8), R10		// segments left
	LEAQ	0x80(R8), R11		// current segment
copyseg:
	TESTQ	R10, R10
	JZ	copied
	MOVQ	0(R11), DI
	MOVQ	8(R11), SI
	MOVQ	16(R11), CX
	MOVQ	CX, R12
	SHRQ	$3, CX
	REP;	MOVSQ
	MOVQ	R12, CX
	ANDQ	$7, CX
	REP;	MOVSB
	ADDQ	$32, R11
	DECQ	R10
	JMP	copyseg
copied:
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, 0x30(R9)
	MOVQ	0(R8), R10
	LEAQ	0x80(R8), R11
zeroseg:
	TESTQ	R10, R10
	JZ	zeroed
	MOVQ	0(R11), DI
	ADDQ	16(R11), DI		// dst + filesz
	MOVQ	24(R11), CX
	SUBQ	16(R11), CX		// memsz - filesz
	MOVQ	CX, R12
	XORL	AX, AX
	SHRQ	$3, CX
	REP;	STOSQ
	MOVQ	R12, CX
	ANDQ	$7, CX
	REP;	STOSB
	ADDQ	$32, R11
	DECQ	R10
	JMP	zeroseg
zeroed:
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, 0x38(R9)
	MOVQ	$PURGSTACK, SP
	PUSHQ	$0x18			// 32-bit code segment of the purgatory GDT
	PUSHQ	$PURG32
	RETFQ

// purgatory32 is copied to PURG32 and entered in compatibility mode. It
// turns paging off (which leaves long mode), clears EFER.LME and enters
// the next image's PVH entry with EBX = the synthesized start info, the
// CPU state the PVH boot protocol specifies. As in pvhEntry, only
// instructions that encode the same in 32-bit mode: no REX prefixes, no
// RIP-relative operands.
TEXT ·purgatory32(SB),NOSPLIT|NOFRAME,$0
	MOVL	$0x10, AX
	MOVW	AX, DS
	MOVW	AX, ES
	MOVW	AX, SS
	MOVW	AX, FS
	MOVW	AX, GS
	MOVL	CR0, AX
	ANDL	$0x7fffffff, AX
	MOVL	AX, CR0
	MOVL	$0xc0000080, CX
	RDMSR
	ANDL	$~(1<<8), AX
	WRMSR
	MOVL	$PARAMS, SI
	MOVL	0x10(SI), BX
	MOVL	0x08(SI), AX
	JMP	AX

DATA ·purgatory64PC+0(SB)/8, $·purgatory64(SB)
GLOBL ·purgatory64PC(SB), RODATA, $8
DATA ·purgatory32PC+0(SB)/8, $·purgatory32(SB)
GLOBL ·purgatory32PC(SB), RODATA, $8
