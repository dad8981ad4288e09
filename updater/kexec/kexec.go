// Package kexec turns an image lying in an image store slot into the
// segment list kernel.Jump copies into place, and performs the jump.
//
// It checks only what the jump itself needs (a 64-bit x86 executable whose
// loadable segments and PVH entry the purgatory can place); deciding
// whether an image may run at all (signature, handoff formats) is
// updater/image's job, done before anything is staged.
package kexec

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/molt-os/molt/kernel"
)

// Plan is a staged image, ready to jump to.
type Plan struct {
	Segments []kernel.Segment
	Entry    uintptr // the PVH entry (32-bit)
	Filesz   uintptr // bytes the purgatory copies
	Memsz    uintptr // bytes the image occupies, BSS included
}

// ErrImage is wrapped by every PlanELF error.
var ErrImage = errors.New("kexec: image")

// PlanELF plans the jump to the ELF executable img, whose bytes lie at
// physical address phys (inside an image store slot: the purgatory copies
// each segment's file bytes from there).
func PlanELF(img []byte, phys uintptr) (*Plan, error) {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImage, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("%w: %s %s %s, want a 64-bit x86-64 executable", ErrImage, f.Class, f.Machine, f.Type)
	}
	entry, err := pvhEntry(f, img)
	if err != nil {
		return nil, err
	}
	p := &Plan{Entry: uintptr(entry)}
	for i, ph := range f.Progs {
		if ph.Type != elf.PT_LOAD || ph.Memsz == 0 {
			continue
		}
		if ph.Paddr != ph.Vaddr {
			return nil, fmt.Errorf("%w: program header %d: paddr %#x != vaddr %#x", ErrImage, i, ph.Paddr, ph.Vaddr)
		}
		if ph.Filesz > ph.Memsz || ph.Off > uint64(len(img)) || ph.Filesz > uint64(len(img))-ph.Off {
			return nil, fmt.Errorf("%w: program header %d: file bytes [%#x, +%#x) outside the %d-byte image", ErrImage, i, ph.Off, ph.Filesz, len(img))
		}
		p.Segments = append(p.Segments, kernel.Segment{
			Dst: uintptr(ph.Paddr), Src: phys + uintptr(ph.Off),
			Filesz: uintptr(ph.Filesz), Memsz: uintptr(ph.Memsz),
		})
		p.Filesz += uintptr(ph.Filesz)
		p.Memsz += uintptr(ph.Memsz)
	}
	if len(p.Segments) == 0 {
		return nil, fmt.Errorf("%w: no loadable segments", ErrImage)
	}
	return p, nil
}

// pvhEntry finds the Xen PVH entry note (type 18, name "Xen").
func pvhEntry(f *elf.File, img []byte) (uint32, error) {
	le := binary.LittleEndian
	for _, ph := range f.Progs {
		if ph.Type != elf.PT_NOTE || ph.Off > uint64(len(img)) || ph.Filesz > uint64(len(img))-ph.Off {
			continue
		}
		n := img[ph.Off : ph.Off+ph.Filesz]
		for len(n) >= 12 {
			namesz, descsz, typ := le.Uint32(n), le.Uint32(n[4:]), le.Uint32(n[8:])
			na, da := (uint64(namesz)+3)&^3, (uint64(descsz)+3)&^3
			if 12+na+da > uint64(len(n)) {
				break
			}
			name, desc := n[12:12+namesz], n[12+na:12+na+uint64(descsz)]
			if typ == 18 && string(name) == "Xen\x00" && (descsz == 4 || descsz == 8) {
				return le.Uint32(desc), nil
			}
			n = n[12+na+da:]
		}
	}
	return 0, fmt.Errorf("%w: no PVH entry note (Xen, type 18)", ErrImage)
}

// Jump hands over to the planned image with the first handoffLen bytes of
// the handoff region. It returns only with an error, nothing changed.
func (p *Plan) Jump(handoffLen int) error {
	return kernel.Jump(p.Segments, p.Entry, handoffLen)
}
