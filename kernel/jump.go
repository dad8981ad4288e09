package kernel

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/molt-os/molt/boot/layout"
)

// The self-update jump: the running kernel replaces itself with the next
// image, kexec style, and hands it the handoff region.
//
// The caller (the update service) has put the next image in an image store
// slot, written the handoff region and reset its devices. Jump then fills
// in the purgatory's parameter page and a PVH start info, turns interrupts
// off, masks the interrupt controllers and leaves through a small
// position-independent purgatory below 1 MiB. The purgatory copies each
// segment from the slot to its destination (over the running image),
// zeroes the BSS and enters the next image through its 32-bit PVH entry,
// exactly as a loader does at cold boot. Cold and warm boots therefore
// share one path; the only things that tell them apart are the start
// info's "molt.handoff" module, which points at the region, and the jump
// timestamps at layout.JumpTimes.
//
// Physical pages used (boot/layout): the purgatory code at Purgatory64 and
// Purgatory32, its parameters at PurgatoryParams, the start info at
// JumpStartInfo, timestamps at JumpTimes, its stack below PurgatoryStack.
// None of them lies in an image, an allocator or the region, and the boot
// stub clears only the page tables above them.

// HandoffModule is the start info module name that marks a warm boot.
const HandoffModule = "molt.handoff"

// Segment is one loadable part of the next image.
type Segment struct {
	Dst    uintptr // physical destination: the ELF segment's p_paddr
	Src    uintptr // physical address of its file bytes, in an image slot
	Filesz uintptr // bytes copied from Src
	Memsz  uintptr // bytes at Dst; those past Filesz are zeroed (BSS)
}

// MaxSegments caps the segment list (the parameter page holds it).
const MaxSegments = 16

// Parameter page offsets, shared with the purgatory (jump_amd64.s).
const (
	parNSeg      = 0x00
	parEntry     = 0x08
	parStartInfo = 0x10
	parTimes     = 0x18
	parGDTR      = 0x20 // limit u16, base u64
	parIDTR      = 0x30 // limit 0: a fault in the purgatory triple-faults
	parGDT       = 0x40 // null, 64-bit code 0x08, data 0x10, 32-bit code 0x18
	parSegments  = 0x80 // MaxSegments × {dst, src, filesz, memsz}
)

// Jump timestamp page offsets (layout.JumpTimes). The old kernel and the
// purgatory write it; the next kernel reads it in kinit.
const (
	jtMagic     = 0x00
	jtTSCHz     = 0x08               // the old kernel's calibrated TSC rate
	jtMonoNs    = 0x10               // the old kernel's monotonic ns when Jump began
	jtDecide    = 0x18               // TSC at that instant
	jtOff       = 0x20               // TSC once interrupts were off and controllers masked
	jtPurgatory = 0x28               // TSC when the purgatory began
	jtCopied    = 0x30               // TSC when every segment was copied
	jtZeroed    = 0x38               // TSC when BSS was zeroed, just before the PVH entry
	jtRollback  = 0x40               // rollbackFlag | stop code, if this jump is a rollback
	jumpMagic   = 0x31504d4a544c4f4d // "MOLTJMP1"

	rollbackFlag = 1 << 32
)

// Start info layout inside the four JumpStartInfo pages.
const (
	siModlist = 0x100
	siModName = 0x140
	siMemmap  = 0x200 // up to 32 entries of 24 bytes
	siCmdline = 0x1000
)

// purgatoryMax is the room for each of the two purgatory blobs.
const purgatoryMax = 0x800

// Implemented in jump_amd64.s.
func purgatory64()
func purgatory32()

// jumpToPurgatory switches to the purgatory stack and the boot page
// tables and enters the purgatory. Interrupts must be off.
func jumpToPurgatory()

var (
	purgatory64PC uintptr // addresses of the blobs (DATA in jump_amd64.s)
	purgatory32PC uintptr
)

// Errors of Jump. Nothing has changed when Jump returns one.
var (
	ErrJumpSegments = errors.New("kernel: jump: bad segment list")
	ErrJumpCmdline  = errors.New("kernel: jump: the command line was truncated at boot; the next kernel would not see all of it")
)

// ImageSlot returns image store slot i (layout.ImageStoreBase): memory no
// allocator hands out, where the update service writes an image whose
// segments Jump copies from.
func ImageSlot(i int) (mem []byte, phys uintptr, err error) {
	if !booted {
		return nil, 0, ErrNotBooted
	}
	if i < 0 || i >= layout.ImageSlots {
		return nil, 0, fmt.Errorf("kernel: image slot %d: there are %d", i, layout.ImageSlots)
	}
	phys = layout.ImageStoreBase + uintptr(i)*layout.ImageSlotSize
	return unsafe.Slice((*byte)(u64ptr(phys)), layout.ImageSlotSize), phys, nil
}

// HandoffRegion returns the handoff region (layout.HandoffBase): the only
// memory whose contents survive a jump.
func HandoffRegion() ([]byte, error) {
	if !booted {
		return nil, ErrNotBooted
	}
	return unsafe.Slice((*byte)(u64ptr(layout.HandoffBase)), layout.HandoffSize), nil
}

// Inherited reports whether this kernel was entered by a jump that handed
// it a region, and how many bytes of it the previous kernel wrote. On a
// cold boot it returns false: the region then holds whatever RAM held.
func Inherited() (length int, ok bool) {
	if !booted || !warm.handoff {
		return 0, false
	}
	return int(warm.length), true
}

// JumpReport is how long the previous kernel's jump took, as measured by
// TSC stamps across both kernels.
type JumpReport struct {
	Stop      time.Duration // Jump called → interrupts off, controllers masked
	Enter     time.Duration // → purgatory running on its own stack and GDT
	Copy      time.Duration // → segments copied into place
	Zero      time.Duration // → BSS zeroed; the PVH entry follows
	Boot      time.Duration // → this kernel's PVH entry ran (boot stub)
	Kinit     time.Duration // → kinit done, the Go runtime starts
	Total     time.Duration // Jump called → kinit done
	MonoAtEnd time.Duration // monotonic time at this kernel's entry
}

// PreviousJump returns the timings of the jump that started this kernel.
func PreviousJump() (JumpReport, bool) {
	if !booted || !warm.times {
		return JumpReport{}, false
	}
	d := func(a, b uint64) time.Duration {
		if b < a {
			return 0
		}
		return time.Duration(tscToNs(b - a))
	}
	t := &warm.stamps
	return JumpReport{
		Stop:      d(t[jtDecide/8], t[jtOff/8]),
		Enter:     d(t[jtOff/8], t[jtPurgatory/8]),
		Copy:      d(t[jtPurgatory/8], t[jtCopied/8]),
		Zero:      d(t[jtCopied/8], t[jtZeroed/8]),
		Boot:      d(t[jtZeroed/8], clock.tscEntry0),
		Kinit:     d(clock.tscEntry0, warm.kinitTSC),
		Total:     d(t[jtDecide/8], warm.kinitTSC),
		MonoAtEnd: time.Duration(clock.bootNs),
	}, true
}

// warm is what kinit learned from the start info and the jump page.
var warm struct {
	handoff  bool   // the start info carried HandoffModule
	length   uint64 // its size: the bytes the previous kernel wrote
	times    bool   // the jump page was valid
	stamps   [9]uint64
	kinitTSC uint64
}

// warmInit runs in kinit before the clock starts: it records whether this
// is a warm boot and copies the jump page, whose monotonic stamp lets the
// clock continue from the previous kernel's.
//
//go:nosplit
func warmInit() {
	m, ok := bootInfo.Module(HandoffModule)
	if !ok {
		return
	}
	if m.Addr != layout.HandoffBase || m.Size > layout.HandoffSize {
		kerr("boot: the start info's handoff module is at ")
		puthex(m.Addr)
		puts(" size ")
		puthex(m.Size)
		puts(", not inside the handoff region; ignoring it\n")
		return
	}
	warm.handoff = true
	warm.length = m.Size
	for i := range warm.stamps {
		warm.stamps[i] = *u64(layout.JumpTimes + uintptr(i)*8)
	}
	// The stamps must come from this machine's TSC, in order, before now.
	s := &warm.stamps
	now := rdtsc()
	if s[jtMagic/8] == jumpMagic && s[jtTSCHz/8] != 0 &&
		s[jtDecide/8] <= s[jtOff/8] && s[jtOff/8] <= s[jtPurgatory/8] &&
		s[jtPurgatory/8] <= s[jtCopied/8] && s[jtCopied/8] <= s[jtZeroed/8] && s[jtZeroed/8] <= now {
		warm.times = true
	}
	// Spent: a later cold boot that keeps RAM must not see it.
	*u64(layout.JumpTimes + jtMagic) = 0
}

// Jump replaces the running kernel with the image whose segments are
// listed, entering it at entry (its 32-bit PVH entry) with the first
// handoffLen bytes of the handoff region passed on. It returns only if the
// arguments are invalid, before anything changed.
//
// The caller must have stopped everything that writes memory behind the
// CPU's back: devices doing DMA must be reset (board.NIC.Close). Other
// goroutines simply stop existing. The segments' sources must lie in an
// image store slot (ImageSlot), their destinations in the image area.
func Jump(segs []Segment, entry uintptr, handoffLen int) error {
	if err := prepareJump(segs, entry, handoffLen); err != nil {
		return err
	}
	DisarmRollback()
	disableInterrupts()
	stampJump(0)
	jumpFinal()
	return errors.New("kernel: jump: returned from the purgatory") // not reached
}

// prepareJump checks the arguments and writes everything the purgatory
// needs: parameter page, start info, the purgatory code.
func prepareJump(segs []Segment, entry uintptr, handoffLen int) error {
	if !booted {
		return ErrNotBooted
	}
	if err := checkSegments(segs, entry); err != nil {
		return err
	}
	if handoffLen < 0 || handoffLen > layout.HandoffSize {
		return fmt.Errorf("kernel: jump: handoff length %d outside [0, %d]", handoffLen, layout.HandoffSize)
	}
	if bootInfo.Truncated {
		return ErrJumpCmdline
	}
	writeParams(segs, entry)
	writeStartInfo(uint64(handoffLen))
	copyPhys(layout.Purgatory64, purgatory64PC, purgatoryMax)
	copyPhys(layout.Purgatory32, purgatory32PC, purgatoryMax)
	return nil
}

// MMIOWrite is one 32-bit register write: how a device is reset from the
// kernel's stop path, where no driver code can run.
type MMIOWrite struct {
	Addr  uintptr
	Value uint32
}

// MaxResets caps the device resets a rollback can do.
const MaxResets = 8

// rollback is the jump the kernel takes by itself if it stops before the
// update that started it was committed. Written by ArmRollback (Go), read
// by rollbackJump (trap context): plain data, no pointers.
var rollback struct {
	armed   bool
	nresets int
	resets  [MaxResets]MMIOWrite
}

// ArmRollback prepares a jump back to the previous image: if this kernel
// then stops on its own (a Go panic, a nonzero exit, a CPU fault, a kernel
// panic) before DisarmRollback, it resets the listed devices and jumps to
// segs with the first handoffLen bytes of the handoff region, instead of
// halting. The region must already hold the handoff the previous image is
// to restore. A clean Poweroff does not roll back.
func ArmRollback(segs []Segment, entry uintptr, handoffLen int, resets []MMIOWrite) error {
	if len(resets) > MaxResets {
		return fmt.Errorf("kernel: rollback: %d device resets, at most %d", len(resets), MaxResets)
	}
	for _, r := range resets {
		if r.Addr < layout.MMIOBase || r.Addr&3 != 0 {
			return fmt.Errorf("kernel: rollback: reset register %#x is not an aligned MMIO address", r.Addr)
		}
	}
	DisarmRollback()
	if err := prepareJump(segs, entry, handoffLen); err != nil {
		return err
	}
	fl := disableInterrupts()
	rollback.nresets = copy(rollback.resets[:], resets)
	rollback.armed = true
	restoreInterrupts(fl)
	return nil
}

// DisarmRollback cancels ArmRollback: the update was committed, or a
// forward jump is about to reuse the purgatory pages.
func DisarmRollback() {
	fl := disableInterrupts()
	rollback.armed = false
	restoreInterrupts(fl)
}

// RolledBack reports whether the previous kernel was a newer image that
// stopped before it committed and rolled back into this one, and the code
// it stopped with.
func RolledBack() (code int, ok bool) {
	if !booted || !warm.times || warm.stamps[jtRollback/8]&rollbackFlag == 0 {
		return 0, false
	}
	return int(warm.stamps[jtRollback/8] & 0xff), true
}

// rollbackJump is called from stop when a rollback is armed: interrupts
// are off, and the runtime may be in any state.
//
//go:nosplit
func rollbackJump(code uint8) {
	rollback.armed = false
	kerr("stopping with code ")
	putdec(uint64(code))
	puts(" before the update was committed: rolling back to the previous image\n")
	for i := 0; i < rollback.nresets; i++ {
		*u32(rollback.resets[i].Addr) = rollback.resets[i].Value
	}
	stampJump(rollbackFlag | uint64(code))
	jumpFinal()
}

// CheckJump reports whether Jump would accept segs and entry, without
// doing anything: the update service calls it before it quiesces.
func CheckJump(segs []Segment, entry uintptr) error {
	if err := checkSegments(segs, entry); err != nil {
		return err
	}
	if booted && bootInfo.Truncated {
		return ErrJumpCmdline
	}
	return nil
}

// checkSegments enforces what the purgatory relies on: destinations in the
// image area and apart from each other, sources in the image store and off
// every destination, the entry inside a copied segment.
func checkSegments(segs []Segment, entry uintptr) error {
	if len(segs) == 0 || len(segs) > MaxSegments {
		return fmt.Errorf("%w: %d segments, want 1..%d", ErrJumpSegments, len(segs), MaxSegments)
	}
	const storeEnd = layout.ImageStoreBase + layout.ImageSlots*layout.ImageSlotSize
	entryOK := false
	for i, s := range segs {
		switch {
		case s.Filesz > s.Memsz:
			return fmt.Errorf("%w: segment %d: filesz %#x > memsz %#x", ErrJumpSegments, i, s.Filesz, s.Memsz)
		case s.Dst < layout.ImageBase || s.Memsz > layout.ImageLimit || s.Dst > layout.ImageLimit-s.Memsz:
			return fmt.Errorf("%w: segment %d: [%#x, +%#x) outside the image area [%#x, %#x)",
				ErrJumpSegments, i, s.Dst, s.Memsz, layout.ImageBase, layout.ImageLimit)
		case s.Src < layout.ImageStoreBase || s.Filesz > storeEnd || s.Src > storeEnd-s.Filesz:
			return fmt.Errorf("%w: segment %d: source [%#x, +%#x) outside the image store", ErrJumpSegments, i, s.Src, s.Filesz)
		}
		for j, o := range segs[:i] {
			if s.Dst < o.Dst+o.Memsz && o.Dst < s.Dst+s.Memsz {
				return fmt.Errorf("%w: segments %d and %d overlap", ErrJumpSegments, j, i)
			}
		}
		if entry >= s.Dst && entry < s.Dst+s.Filesz {
			entryOK = true
		}
	}
	if !entryOK || entry >= 1<<32 {
		return fmt.Errorf("%w: entry %#x is not in a segment's file bytes below 4 GiB", ErrJumpSegments, entry)
	}
	return nil
}

func writeParams(segs []Segment, entry uintptr) {
	p := uintptr(layout.PurgatoryParams)
	memclrPhys(p, layout.PageSize)
	*u64(p + parNSeg) = uint64(len(segs))
	*u64(p + parEntry) = uint64(entry)
	*u64(p + parStartInfo) = layout.JumpStartInfo
	*u64(p + parTimes) = layout.JumpTimes
	*u16(p + parGDTR) = 4*8 - 1
	*u64(p + parGDTR + 2) = uint64(p + parGDT)
	*u64(p + parGDT + 0x08) = 0x00af9a000000ffff // 64-bit code
	*u64(p + parGDT + 0x10) = 0x00cf92000000ffff // flat data
	*u64(p + parGDT + 0x18) = 0x00cf9a000000ffff // 32-bit code, for the drop out of long mode
	for i, s := range segs {
		e := p + parSegments + uintptr(i)*32
		*u64(e), *u64(e + 8), *u64(e + 16), *u64(e + 24) = uint64(s.Dst), uint64(s.Src), uint64(s.Filesz), uint64(s.Memsz)
	}
}

// stampJump starts the jump's timestamp page: the clock the next kernel
// continues from, and the rollback word.
//
//go:nosplit
func stampJump(rollbackWord uint64) {
	t := uintptr(layout.JumpTimes)
	for i := uintptr(0); i < layout.PageSize; i += 8 {
		*u64(t + i) = 0
	}
	*u64(t + jtTSCHz) = clock.tscHz
	*u64(t + jtMonoNs) = uint64(nanotime())
	*u64(t + jtDecide) = rdtsc()
	*u64(t + jtRollback) = rollbackWord
}

// writeStartInfo synthesizes the hvm_start_info the next kernel boots
// with: this kernel's memory map and command line (which carries QEMU's
// virtio-mmio device list), the ACPI pointer, and the handoff module.
func writeStartInfo(handoffLen uint64) {
	si := uintptr(layout.JumpStartInfo)
	memclrPhys(si, 4*layout.PageSize)
	*u32(si + 0x00) = 0x336ec578 // magic
	*u32(si + 0x04) = 1          // version
	*u32(si + 0x0c) = 1          // nr_modules
	*u64(si + 0x10) = uint64(si + siModlist)
	*u64(si + 0x18) = uint64(si + siCmdline)
	*u64(si + 0x20) = bootInfo.RSDP
	*u64(si + 0x28) = uint64(si + siMemmap)
	*u32(si + 0x30) = uint32(bootInfo.NRegions)
	for i := 0; i < bootInfo.NRegions; i++ {
		r := bootInfo.Regions[i]
		e := si + siMemmap + uintptr(i)*24
		*u64(e), *u64(e + 8), *u32(e + 16) = r.Addr, r.Size, r.Type
	}
	*u64(si + siModlist) = layout.HandoffBase
	*u64(si + siModlist + 8) = handoffLen
	*u64(si + siModlist + 16) = uint64(si + siModName)
	// The pages were cleared, so the strings end in NUL.
	copyString(si+siModName, HandoffModule)
	copyString(si+siCmdline, bootInfo.Cmdline())
}

func copyPhys(dst, src, n uintptr) {
	copy(unsafe.Slice((*byte)(u64ptr(dst)), n), unsafe.Slice((*byte)(u64ptr(src)), n))
}

func memclrPhys(p, n uintptr) { clear(unsafe.Slice((*byte)(u64ptr(p)), n)) }

// jumpFinal runs with interrupts off: nothing may call into the runtime
// any more. It masks every IOAPIC pin and stops the LAPIC timer, so that
// the next kernel starts with no interrupt source armed, stamps the time
// and leaves.
//
//go:nosplit
func jumpFinal() {
	ioapic0.MaskAll()
	lapicDev.Stop()
	*u64(layout.JumpTimes + jtOff) = rdtsc()
	*u64(layout.JumpTimes + jtMagic) = jumpMagic
	jumpToPurgatory()
}
