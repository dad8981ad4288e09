package service

import (
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/kexec"
)

// KernelMachine is the Machine of a booted molt kernel.
type KernelMachine struct {
	// Resets are the register writes that reset the devices doing DMA
	// (board.NIC.ResetRegister), for the rollback path, where no driver
	// code can run.
	Resets []kernel.MMIOWrite
}

var _ Machine = KernelMachine{}

func (KernelMachine) Slot(i int) ([]byte, uintptr, error)     { return kernel.ImageSlot(i) }
func (KernelMachine) Slots() int                              { return layout.ImageSlots }
func (KernelMachine) Region() ([]byte, error)                 { return kernel.HandoffRegion() }
func (KernelMachine) Inherited() (int, bool)                  { return kernel.Inherited() }
func (KernelMachine) Clock() kernel.ClockReading              { return kernel.ReadClock() }
func (KernelMachine) BuildID() [32]byte                       { return kernel.BuildIDBytes() }
func (KernelMachine) Version() string                         { return kernel.Version() }
func (KernelMachine) DisarmRollback()                         { kernel.DisarmRollback() }
func (KernelMachine) RolledBack() (int, bool)                 { return kernel.RolledBack() }
func (KernelMachine) PreviousJump() (kernel.JumpReport, bool) { return kernel.PreviousJump() }

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
	return kexec.Segments(img, mem, phys)
}
