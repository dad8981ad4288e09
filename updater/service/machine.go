package service

import (
	"fmt"
	"unsafe"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/updater/image"
)

// KernelMachine is the Machine of a booted molt kernel.
type KernelMachine struct {
	// Resets are the register writes that reset the devices doing DMA
	// (board.NIC.ResetRegister), for the rollback path, where no driver
	// code can run.
	Resets []kernel.MMIOWrite
}

var _ Machine = KernelMachine{}

func (KernelMachine) Slot(i int) ([]byte, uintptr, error) { return kernel.ImageSlot(i) }
func (KernelMachine) Slots() int                          { return layout.ImageSlots }
func (KernelMachine) Region() ([]byte, error)             { return kernel.HandoffRegion() }
func (KernelMachine) Inherited() (int, bool)              { return kernel.Inherited() }
func (KernelMachine) Clock() kernel.ClockReading          { return kernel.ReadClock() }
func (KernelMachine) BuildID() [32]byte                   { return kernel.BuildIDBytes() }
func (KernelMachine) Version() string                     { return kernel.Version() }
func (KernelMachine) DisarmRollback()                     { kernel.DisarmRollback() }
func (KernelMachine) RolledBack() (int, bool)             { return kernel.RolledBack() }

func (m KernelMachine) ArmRollback(img *image.Image, slot, handoffLen int) error {
	segs, err := m.segments(img, slot)
	if err != nil {
		return err
	}
	return kernel.ArmRollback(segs, uintptr(img.Entry), handoffLen, m.Resets)
}

func (m KernelMachine) CheckJump(img *image.Image, slot int) error {
	segs, err := m.segments(img, slot)
	if err != nil {
		return err
	}
	return kernel.CheckJump(segs, uintptr(img.Entry))
}

func (m KernelMachine) Jump(img *image.Image, slot, handoffLen int) error {
	segs, err := m.segments(img, slot)
	if err != nil {
		return err
	}
	return kernel.Jump(segs, uintptr(img.Entry), handoffLen)
}

// segments turns img's segments, whose file bytes alias the bundle lying
// in slot, into the physical copy list of the purgatory.
func (KernelMachine) segments(img *image.Image, slot int) ([]kernel.Segment, error) {
	mem, phys, err := kernel.ImageSlot(slot)
	if err != nil {
		return nil, err
	}
	return SlotSegments(img, mem, phys)
}

// SlotSegments computes the purgatory's copy list for img, whose segment
// bytes must alias mem, the memory of an image store slot at physical
// address phys.
func SlotSegments(img *image.Image, mem []byte, phys uintptr) ([]kernel.Segment, error) {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	out := make([]kernel.Segment, 0, len(img.Segments))
	for i, s := range img.Segments {
		var src uintptr
		if len(s.Data) > 0 {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(s.Data)))
			if p < base || p-base > uintptr(len(mem))-uintptr(len(s.Data)) {
				return nil, fmt.Errorf("service: segment %d's bytes are not in the image slot", i)
			}
			src = phys + (p - base)
		} else {
			src = phys // nothing to copy; any address in the slot will do
		}
		out = append(out, kernel.Segment{Dst: uintptr(s.Addr), Src: src, Filesz: uintptr(len(s.Data)), Memsz: uintptr(s.Memsz)})
	}
	return out, nil
}
