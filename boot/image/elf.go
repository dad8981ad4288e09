package image

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/molt-os/molt/boot/layout"
)

// Sentinel errors; every error from this package that is about the contents
// of an image wraps exactly one of them.
var (
	// ErrFormat: the file is not an ELF image of the shape Patch handles.
	ErrFormat = errors.New("not a molt kernel image")
	// ErrLayout: the image breaks the physical layout in package layout.
	ErrLayout = errors.New("image violates the memory layout")
	// ErrNotPatched: Verify found no PVH note, a wrong one, or a build ID
	// that does not match the file.
	ErrNotPatched = errors.New("image is not post-linked")
)

// Constants of the notes Patch reads and writes.
const (
	pvhNoteSize = 24 // 12-byte header + "Xen\0" + 8-byte descriptor

	// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY from Xen's
	// public/elfnote.h: the 32-bit physical entry point for PVH boot.
	xenElfnotePhys32Entry = 18
	// goBuildIDNoteType is the type of the note the go command writes into
	// .note.go.buildid (cmd/internal/buildid: ELF_NOTE_GOBUILDID_TAG).
	goBuildIDNoteType = 4

	buildIDSize = 32

	// ELF64 structure sizes and field offsets used for in-place edits.
	elf64PhdrSize    = 56
	elf64ShdrSize    = 64
	phdrFileszOffset = 32
	phdrMemszOffset  = 40
	shdrSizeOffset   = 32
)

// Segment describes one PT_LOAD segment of an image.
type Segment struct {
	Off    uint64       // file offset
	Vaddr  uint64       // load address (equal to the physical address)
	Filesz uint64       // bytes taken from the file
	Memsz  uint64       // bytes in memory; the rest is zero-filled BSS
	Flags  elf.ProgFlag // PF_R, PF_W, PF_X
}

// imageInfo is everything parse learns about an image; the edit and the
// checks of Patch and Verify work on it.
type imageInfo struct {
	data []byte

	entry     uint64
	entrySym  string // the symbol name that matched e_entry
	segments  []Segment
	start     uint64 // lowest PT_LOAD vaddr
	end       uint64 // max(vaddr + memsz)
	version   string // value of layout.VersionVar, "" if unknown
	buildIDAt uint64 // file offset of the 32-byte build ID

	// The first PT_NOTE: where its bytes are, where its program header and
	// (if any) its section header are, and what it holds now.
	noteOff     uint64
	noteSize    uint64
	notePhdrOff uint64
	noteShdrOff uint64 // 0 when no section header describes the note
	notePVH     bool   // the note is already a PVH note
	notePVHDesc uint64 // its descriptor when notePVH
}

// parse validates data against the contract in the package documentation
// and locates the fields Patch edits. It never modifies data.
func parse(data []byte) (*imageInfo, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("%w: %v, want ELFCLASS64", ErrFormat, f.Class)
	}
	if f.Data != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("%w: %v, want little-endian", ErrFormat, f.Data)
	}
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w: machine %v, want EM_X86_64", ErrFormat, f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("%w: type %v, want ET_EXEC (a static executable)", ErrFormat, f.Type)
	}
	le := binary.LittleEndian
	phoff := le.Uint64(data[32:])
	phentsize := uint64(le.Uint16(data[54:]))
	shoff := le.Uint64(data[40:])
	shentsize := uint64(le.Uint16(data[58:]))
	if phentsize != elf64PhdrSize {
		return nil, fmt.Errorf("%w: program header size %d, want %d", ErrFormat, phentsize, elf64PhdrSize)
	}
	// debug/elf has read the program headers, so they are inside the file.

	info := &imageInfo{data: data, start: ^uint64(0)}
	size := uint64(len(data))
	noteIdx := -1
	for i, p := range f.Progs {
		switch p.Type {
		case elf.PT_NOTE:
			if noteIdx < 0 {
				noteIdx = i
			}
		case elf.PT_LOAD:
			if p.Paddr != p.Vaddr {
				return nil, fmt.Errorf("%w: PT_LOAD at %#x has physical address %#x; want p_paddr == p_vaddr", ErrLayout, p.Vaddr, p.Paddr)
			}
			if p.Filesz > p.Memsz {
				return nil, fmt.Errorf("%w: PT_LOAD at %#x has p_filesz %#x > p_memsz %#x", ErrFormat, p.Vaddr, p.Filesz, p.Memsz)
			}
			if p.Off > size || p.Filesz > size-p.Off {
				return nil, fmt.Errorf("%w: PT_LOAD at %#x needs file bytes %#x..%#x, file has %#x (truncated?)", ErrFormat, p.Vaddr, p.Off, p.Off+p.Filesz, size)
			}
			if p.Vaddr < layout.ImageBase {
				return nil, fmt.Errorf("%w: PT_LOAD at %#x is below the image base %#x (linked without -T %#x?)", ErrLayout, p.Vaddr, layout.ImageBase, layout.ImageText)
			}
			if p.Memsz > layout.ImageLimit || p.Vaddr > layout.ImageLimit-p.Memsz {
				// Also catches vaddr+memsz overflowing.
				return nil, fmt.Errorf("%w: image end %#x (%s) is above the limit %#x (%s): PT_LOAD at %#x has %#x bytes in memory",
					ErrLayout, p.Vaddr+p.Memsz, mib(p.Vaddr+p.Memsz), uint64(layout.ImageLimit), mib(layout.ImageLimit), p.Vaddr, p.Memsz)
			}
			info.segments = append(info.segments, Segment{Off: p.Off, Vaddr: p.Vaddr, Filesz: p.Filesz, Memsz: p.Memsz, Flags: p.Flags})
			info.start = min(info.start, p.Vaddr)
			info.end = max(info.end, p.Vaddr+p.Memsz)
		}
	}
	if len(info.segments) == 0 {
		return nil, fmt.Errorf("%w: no PT_LOAD segment", ErrFormat)
	}
	if info.start != layout.ImageBase {
		return nil, fmt.Errorf("%w: lowest PT_LOAD starts at %#x, want the image base %#x (linked without -T %#x?)", ErrLayout, info.start, layout.ImageBase, layout.ImageText)
	}

	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%w: symbol table: %v (was the image linked with -s or stripped?)", ErrFormat, err)
	}
	bySym := make(map[string]elf.Symbol, 4)
	for _, s := range syms {
		switch s.Name {
		case layout.EntrySymbol, layout.EntrySymbol + ".abi0", layout.BuildIDSymbol, layout.VersionVar:
			bySym[s.Name] = s
		}
	}

	// The entry. Declaring the assembly entry in Go makes the linker keep an
	// ABIInternal wrapper under the plain name and the assembly body under
	// ".abi0"; -E resolves to the body. Taking whichever symbol equals
	// e_entry avoids pointing the PVH note at the 64-bit wrapper.
	plain, okPlain := bySym[layout.EntrySymbol]
	abi0, okABI0 := bySym[layout.EntrySymbol+".abi0"]
	switch {
	case !okPlain && !okABI0:
		return nil, fmt.Errorf("%w: entry symbol %s not found", ErrFormat, layout.EntrySymbol)
	case okABI0 && abi0.Value == f.Entry:
		info.entry, info.entrySym = abi0.Value, abi0.Name
	case okPlain && plain.Value == f.Entry:
		info.entry, info.entrySym = plain.Value, plain.Name
	default:
		addr := plain.Value
		if okABI0 {
			addr = abi0.Value
		}
		return nil, fmt.Errorf("%w: ELF entry %#x is not %s (%#x); link with -ldflags '-E %s'", ErrFormat, f.Entry, layout.EntrySymbol, addr, layout.EntrySymbol)
	}
	if info.entry >= 1<<32 {
		return nil, fmt.Errorf("%w: entry %#x is not below 4 GiB", ErrLayout, info.entry)
	}
	if s := info.segmentAt(info.entry, 1); s == nil || s.Flags&elf.PF_X == 0 {
		return nil, fmt.Errorf("%w: entry %#x is not inside the file bytes of an executable PT_LOAD", ErrFormat, info.entry)
	}

	// The build ID field.
	bid, ok := bySym[layout.BuildIDSymbol]
	if !ok {
		return nil, fmt.Errorf("%w: build ID symbol %s not found (is it referenced, so that the linker keeps it?)", ErrFormat, layout.BuildIDSymbol)
	}
	if bid.Size != buildIDSize {
		return nil, fmt.Errorf("%w: build ID symbol %s has size %d, want %d", ErrFormat, layout.BuildIDSymbol, bid.Size, buildIDSize)
	}
	off, ok := info.fileOffset(bid.Value, buildIDSize)
	if !ok {
		where := ""
		if int(bid.Section) < len(f.Sections) && bid.Section != elf.SHN_UNDEF {
			where = " in section " + f.Sections[bid.Section].Name
		}
		return nil, fmt.Errorf("%w: build ID symbol %s at %#x%s has no bytes in the file (BSS? give it a non-zero initial value)", ErrFormat, layout.BuildIDSymbol, bid.Value, where)
	}
	info.buildIDAt = off

	// The version string is informational: a string header (pointer,
	// length) in data pointing at bytes in rodata.
	if v, ok := bySym[layout.VersionVar]; ok && v.Size == 16 {
		if hdr, ok := info.fileOffset(v.Value, 16); ok {
			p, n := le.Uint64(data[hdr:]), le.Uint64(data[hdr+8:])
			if n <= 256 {
				if s, ok := info.fileOffset(p, n); ok {
					info.version = string(data[s : s+n])
				}
			}
		}
	}

	// The note.
	if noteIdx < 0 {
		return nil, fmt.Errorf("%w: no PT_NOTE segment to turn into the PVH note", ErrFormat)
	}
	np := f.Progs[noteIdx]
	if np.Filesz < pvhNoteSize {
		return nil, fmt.Errorf("%w: first PT_NOTE has %d bytes, need %d for the PVH note", ErrFormat, np.Filesz, pvhNoteSize)
	}
	if np.Off > size || np.Filesz > size-np.Off {
		return nil, fmt.Errorf("%w: PT_NOTE file bytes %#x..%#x are outside the file (%#x bytes)", ErrFormat, np.Off, np.Off+np.Filesz, size)
	}
	info.noteOff, info.noteSize = np.Off, np.Filesz
	info.notePhdrOff = phoff + uint64(noteIdx)*phentsize
	nb := data[np.Off : np.Off+np.Filesz]
	namesz, descsz, typ := le.Uint32(nb[0:]), le.Uint32(nb[4:]), le.Uint32(nb[8:])
	name := nb[12:16]
	switch {
	case namesz == 4 && descsz == 8 && typ == xenElfnotePhys32Entry && string(name) == "Xen\x00":
		info.notePVH = true
		info.notePVHDesc = le.Uint64(nb[16:])
	case namesz == 3 && typ == goBuildIDNoteType && string(name) == "Go\x00\x00",
		namesz == 4 && typ == goBuildIDNoteType && string(name) == "Go\x00\x00":
		// The go command's build-ID note; ours to overwrite.
	default:
		return nil, fmt.Errorf("%w: first PT_NOTE holds a note (name %q, type %d) that is neither the Go build-ID note nor a PVH note",
			ErrFormat, bytes.TrimRight(name, "\x00"), typ)
	}
	// The section describing the same bytes (.note.go.buildid), if any.
	if shentsize == elf64ShdrSize {
		for i, s := range f.Sections {
			if s.Type == elf.SHT_NOTE && s.Offset == np.Off && s.Size == np.Filesz {
				info.noteShdrOff = shoff + uint64(i)*shentsize
				break
			}
		}
	}
	return info, nil
}

// segmentAt returns the PT_LOAD whose file bytes hold [vaddr, vaddr+n).
func (info *imageInfo) segmentAt(vaddr, n uint64) *Segment {
	for i := range info.segments {
		s := &info.segments[i]
		if vaddr >= s.Vaddr && n <= s.Filesz && vaddr-s.Vaddr <= s.Filesz-n {
			return s
		}
	}
	return nil
}

// fileOffset maps [vaddr, vaddr+n) to file bytes through the PT_LOAD that
// holds it; the loader puts exactly those bytes at that address.
func (info *imageInfo) fileOffset(vaddr, n uint64) (uint64, bool) {
	s := info.segmentAt(vaddr, n)
	if s == nil {
		return 0, false
	}
	return s.Off + (vaddr - s.Vaddr), true
}

// mib formats a byte count or address in MiB for error messages.
func mib(n uint64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
