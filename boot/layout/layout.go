// Package layout fixes molt's physical memory layout on x86-64.
//
// Every kernel image imports these constants, and the post-link step
// (tools/molt build) asserts that a linked image respects them. The layout is
// part of the contract between an old and a new kernel during a self-update:
// the handoff region must sit at the same place in both, so a change here is a
// change of the handoff format (see docs/update-protocol.md).
//
// Physical map (identity-mapped by the boot stub, 2 MiB pages except the
// first 2 MiB, which use 4 KiB pages so that page 0 can stay unmapped):
//
//	0x0000_0000  page 0: never mapped (catches nil dereferences in the kernel)
//	0x0000_1000  free
//	0x0000_8000  purgatory code (0x8000, 0x8800), its parameter page
//	             (0x9000), the synthesized PVH start info (0xa000), jump
//	             timestamps (0xe000) and the purgatory stack (top 0xf000)
//	0x0001_0000  boot page tables: PML4, PDPT, 4 PDs, PT for the first 2 MiB
//	0x0001_7000  GDT page; boot TLS scratch at +0x800
//	0x0001_8000  FXSAVE areas for trap paths (exception, double fault)
//	0x0002_0000  syscall kernel stack (top 0x30000)
//	0x0003_0000  IST1: interrupt stack (top 0x40000)
//	0x0004_0000  IST2: exception stack (top 0x48000)
//	0x0004_8000  IST3: double fault / NMI / machine check (top 0x4c000)
//	0x0004_c000  idle thread stack (top 0x50000)
//	0x0006_0000  initial process stack for the Go runtime (m0's g0, top 0x80000)
//	0x001f_f000  kernel image: ELF header page, then text at ImageText
//	   ...       image end (text, data, BSS) must stay below ImageLimit
//	0x0600_0000  handoff region (HandoffSize)
//	0x0700_0000  DMA region for device drivers (DMASize)
//	0x0800_0000  image store: two slots of ImageSlotSize for update images
//	0x0c00_0000  physical frame pool up to the end of RAM below 4 GiB
//
// Virtual addresses at or above 4 GiB belong to the Go runtime's mappings
// (mmap), backed on demand by frames from the pool.
package layout

import "crypto/sha256"

const (
	// PageSize is the base page size used for Go's mappings.
	PageSize = 0x1000

	// BootPML4 .. BootPT0 are the boot page tables built by the 32-bit stub.
	BootPML4 = 0x10000
	BootPDPT = 0x11000
	BootPD   = 0x12000 // four page directories, 0x12000..0x15fff
	BootPT0  = 0x16000 // 4 KiB page table for the first 2 MiB

	// BootGDT is the page holding the GDT the stub loads; the kernel replaces
	// it with one that has a TSS before the runtime starts.
	BootGDT = 0x17000
	// BootTLS is the scratch FS base used before the runtime sets its own, so
	// that ABI wrappers can load g (nil) from FS:-8.
	BootTLS = 0x17800

	// ExceptionFX and DoubleFaultFX are 512-byte FXSAVE areas used by trap
	// paths that can nest inside a syscall or interrupt handler.
	ExceptionFX   = 0x18000
	DoubleFaultFX = 0x18200

	SyscallStackTop   = 0x30000
	InterruptStackTop = 0x40000 // IST1
	ExceptionStackTop = 0x48000 // IST2
	FatalStackTop     = 0x4c000 // IST3
	IdleStackTop      = 0x50000

	// ProcessStackTop is where the execve-shaped stack for _rt0_amd64_linux
	// ends; the runtime uses the 64 KiB below the entry SP as m0's g0 stack.
	ProcessStackTop    = 0x80000
	ProcessStackBottom = 0x60000

	// PurgatoryBase..PurgatoryEnd is reserved for the self-update jump
	// (kernel/jump.go): the purgatory code that copies the next image into
	// place, its parameters, the PVH start info it hands to the next image,
	// and timestamps the next kernel reads. No image segment, allocator or
	// boot stub touches the range, so the next kernel can still read the
	// timestamps after it has booted.
	PurgatoryBase   = 0x8000
	Purgatory64     = 0x8000 // 64-bit copier, at most 0x800 bytes
	Purgatory32     = 0x8800 // 32-bit tail that enters the PVH entry, at most 0x800 bytes
	PurgatoryParams = 0x9000 // segment list and purgatory GDT (one page)
	JumpStartInfo   = 0xa000 // hvm_start_info, memory map, module list, cmdline (four pages)
	JumpTimes       = 0xe000 // TSC stamps of the jump (one page)
	PurgatoryStack  = 0xf000 // top of the purgatory's stack
	PurgatoryEnd    = 0x10000

	// ImageBase is the load address of the ELF header page; the linker is run
	// with -T ImageText so text starts one page above it.
	ImageBase  = 0x1ff000
	ImageText  = 0x200000
	ImageLimit = 0x6000000 // 96 MiB: image end (incl. BSS) must be below

	// HandoffBase and HandoffSize place the region that carries state from
	// one kernel to the next. No allocator ever hands out these addresses.
	HandoffBase = 0x6000000
	HandoffSize = 0x1000000 // 16 MiB

	// DMABase and DMASize place the physically contiguous, identity-mapped
	// memory that device drivers hand to devices (virtqueues, packet
	// buffers). Devices never DMA anywhere else, in particular not into the
	// handoff region.
	DMABase = 0x7000000
	DMASize = 0x1000000 // 16 MiB

	// ImageStoreBase holds ImageSlots slots of ImageSlotSize bytes each,
	// where the update service keeps signed images: the one being staged
	// for the next kernel, and the running or previous one (for rollback,
	// or loaded by the launcher at cold boot). The purgatory copies the
	// next image's segments straight out of its slot, so a slot lies
	// outside every image destination and every allocator.
	ImageStoreBase = 0x8000000
	ImageSlotSize  = 0x2000000 // 32 MiB: the largest signed image
	ImageSlots     = 2

	// FramePoolBase is the first physical address the frame allocator may
	// use; it ends at the top of usable RAM below 4 GiB.
	FramePoolBase = ImageStoreBase + ImageSlots*ImageSlotSize

	// MinRAM is the least guest RAM molt boots with: the fixed layout plus a
	// frame pool large enough for the Go runtime.
	MinRAM = 256 << 20

	// MMIOBase is where the top GiB of the identity map starts; it is mapped
	// uncached (LAPIC, IOAPIC, virtio-mmio live there).
	MMIOBase = 0xc0000000

	// GoVirtBase is the lowest virtual address handed to the Go runtime.
	GoVirtBase = 4 << 30
)

// Symbols the post-link step and the kernel agree on.
const (
	// EntrySymbol is the 32-bit PVH entry point (linker -E).
	EntrySymbol = "github.com/molt-os/molt/kernel.pvhEntry"
	// BuildIDSymbol names a 32-byte array the post-link step fills with the
	// SHA-256 of the image (computed with the array zeroed).
	BuildIDSymbol = "github.com/molt-os/molt/kernel.buildID"
	// VersionVar is set with -ldflags -X to stamp the release version.
	VersionVar = "github.com/molt-os/molt/kernel.version"
	// HandoffFormatsSymbol names a [8]uint32 array listing the handoff
	// container format versions an image reads (zero entries unused). The
	// update service reads it from a pushed image's symbol table and refuses
	// an image that cannot read the format the running kernel writes
	// (docs/images.md).
	HandoffFormatsSymbol = "github.com/molt-os/molt/kernel.handoffFormats"
	// TrustedKeysVar is set with -ldflags -X by molt build to the hex
	// ed25519 public keys (comma-separated) whose signed images the kernel
	// accepts in a self-update (docs/images.md).
	TrustedKeysVar = "github.com/molt-os/molt/updater/image.trustedKeys"
	// TaskManifestSymbol names a string variable in an image's main
	// package that lists its tasks and the state schema versions each
	// reads (updater/task.FormatManifest). It must be initialized with a
	// constant, so that its bytes are in the file: the running kernel
	// reads it from a pushed image to save each task's state in a version
	// the new image reads (docs/tasks.md).
	TaskManifestSymbol = "main.taskManifest"
)

// BuildIDSize is the size of the build ID (BuildIDSymbol).
const BuildIDSize = 32

// BuildIDOf computes an image's build ID: the SHA-256 of the file with the
// BuildIDSize bytes at off (where BuildIDSymbol lies) read as zeros. The
// post-link step stamps it (boot/image) and the update service checks it
// (updater/image); both call this one definition.
func BuildIDOf(data []byte, off uint64) [32]byte {
	var zero [BuildIDSize]byte
	h := sha256.New()
	h.Write(data[:off])
	h.Write(zero[:])
	h.Write(data[off+BuildIDSize:])
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Exit codes the kernel writes to QEMU's isa-debug-exit device. QEMU exits
// with status (code<<1)|1, so code c reaches the host as 2c+1.
const (
	// ExitProgramMax is the largest exit_group status passed through as is;
	// larger values are clamped to it.
	ExitProgramMax = 0x6f
	// ExitFault means the kernel stopped on an unrecoverable CPU exception.
	ExitFault = 0x70
	// ExitKernelPanic means the kernel stopped on an internal error (out of
	// memory, deadlock, bad boot information).
	ExitKernelPanic = 0x71
	// ExitProbe is the status of a successful accelerator probe boot.
	ExitProbe = 0x72
)

// QEMUStatus returns the host exit status of QEMU after the kernel wrote
// code to isa-debug-exit.
func QEMUStatus(code int) int { return code<<1 | 1 }

// DebugExitPort is the I/O port of QEMU's isa-debug-exit device.
const DebugExitPort = 0x501
