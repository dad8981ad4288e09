// Package kexec turns an image lying in an image store slot into the
// segment list kernel.Jump copies into place.
//
// The image is an updater/image bundle already checked by image.Verify (a
// pushed image) or image.Inspect (one this kernel trusted before); kexec
// only translates its segments, whose bytes alias the slot, into the
// physical copy list of the purgatory. kernel.CheckJump and kernel.Jump
// check that list once more.
package kexec

import (
	"fmt"
	"unsafe"

	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/updater/image"
)

// Segments returns the purgatory's copy list for img, whose segment bytes
// must alias mem, the memory of an image store slot at physical address
// phys.
func Segments(img *image.Image, mem []byte, phys uintptr) ([]kernel.Segment, error) {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	out := make([]kernel.Segment, 0, len(img.Segments))
	for i, s := range img.Segments {
		src := phys // a segment without file bytes copies nothing
		if len(s.Data) > 0 {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(s.Data)))
			if p < base || p-base > uintptr(len(mem))-uintptr(len(s.Data)) {
				return nil, fmt.Errorf("kexec: segment %d's bytes are not in the image slot", i)
			}
			src = phys + (p - base)
		}
		out = append(out, kernel.Segment{Dst: uintptr(s.Addr), Src: src, Filesz: uintptr(len(s.Data)), Memsz: uintptr(s.Memsz)})
	}
	return out, nil
}

// Slot reads the bundle at the start of image store slot i without
// authenticating it (image.Inspect) and returns the image and its copy
// list.
func Slot(i int) (*image.Image, []kernel.Segment, error) {
	mem, phys, err := kernel.ImageSlot(i)
	if err != nil {
		return nil, nil, err
	}
	img, err := image.InspectSlot(mem)
	if err != nil {
		return nil, nil, fmt.Errorf("slot %d: %w", i, err)
	}
	segs, err := Segments(img, mem, phys)
	return img, segs, err
}
