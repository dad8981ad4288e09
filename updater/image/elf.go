package image

import (
	"bytes"
	"debug/elf"
	"encoding/binary"

	"github.com/molt-os/molt/boot/layout"
)

// This file is a small ELF64 reader written for untrusted input: every
// offset and size is checked against the input before use, arithmetic is
// done so that it cannot overflow, and nothing is allocated in proportion
// to a value the file claims (only to the bounded number of segments and
// formats). debug/elf is used for its constants and their names only.

// ELF64 sizes and the limits this reader imposes.
const (
	elfHeaderSize = 64
	elfPhdrSize   = 56
	elfShdrSize   = 64
	elfSymSize    = 24

	// MaxSegments caps the PT_LOAD segments of an image: the purgatory's
	// parameter page holds a fixed-size segment list. A Go kernel has
	// three or four.
	MaxSegments = 16
	// maxHandoffFormats caps the entries of layout.HandoffFormatsSymbol.
	maxHandoffFormats = 16

	buildIDSize = 32

	// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY (Xen's
	// public/elfnote.h), the note the post-link step writes.
	xenElfnotePhys32Entry = 18
)

// Segment is one loadable segment of an image: Memsz bytes at Addr, of which
// the first len(Data) come from the file and the rest are zero (BSS).
type Segment struct {
	Addr  uint64       // destination physical address (= virtual address)
	Data  []byte       // file bytes; a sub-slice of the bundle, not a copy
	Memsz uint64       // bytes in memory, len(Data) <= Memsz
	Flags elf.ProgFlag // PF_R, PF_W, PF_X
}

// End returns the first address after the segment.
func (s Segment) End() uint64 { return s.Addr + s.Memsz }

// elfImage is what parseELF learns about an image.
type elfImage struct {
	entry          uint64 // e_entry
	pvhEntry       uint64
	segments       []Segment
	offsets        []uint64 // file offset of each segment's Data
	buildIDOff     uint64   // file offset of the 32-byte build ID
	version        string
	hasVersion     bool
	handoffFormats []uint32
	manifest       string // layout.TaskManifestSymbol, "" if absent
}

// sym is a symbol parseELF looks for.
type sym struct {
	value, size uint64
	found       bool
}

// parseELF checks the ELF structure of b and extracts the loadable segments,
// the PVH entry and the symbols molt images carry. It does not check the
// memory layout (checkLayout does).
func parseELF(b []byte) (*elfImage, error) {
	le := binary.LittleEndian
	size := uint64(len(b))
	if size < elfHeaderSize {
		return nil, errorf(ErrFormat, "ELF image is %d bytes, shorter than an ELF64 header", size)
	}
	if !bytes.Equal(b[:4], []byte(elf.ELFMAG)) {
		return nil, errorf(ErrFormat, "no ELF magic at the start of the image (found % x)", b[:4])
	}
	if c := elf.Class(b[elf.EI_CLASS]); c != elf.ELFCLASS64 {
		return nil, errorf(ErrArch, "ELF class %v, want ELFCLASS64", c)
	}
	if d := elf.Data(b[elf.EI_DATA]); d != elf.ELFDATA2LSB {
		return nil, errorf(ErrArch, "ELF data encoding %v, want little-endian", d)
	}
	if v := b[elf.EI_VERSION]; v != byte(elf.EV_CURRENT) {
		return nil, errorf(ErrFormat, "ELF ident version %d, want 1", v)
	}
	if t := elf.Type(le.Uint16(b[16:])); t != elf.ET_EXEC {
		return nil, errorf(ErrArch, "ELF type %v, want ET_EXEC (a static executable)", t)
	}
	if m := elf.Machine(le.Uint16(b[18:])); m != elf.EM_X86_64 {
		return nil, errorf(ErrArch, "ELF machine %v, want EM_X86_64", m)
	}
	img := &elfImage{entry: le.Uint64(b[24:])}
	phoff, shoff := le.Uint64(b[32:]), le.Uint64(b[40:])
	phentsize, phnum := uint64(le.Uint16(b[54:])), uint64(le.Uint16(b[56:]))
	shentsize, shnum := uint64(le.Uint16(b[58:])), uint64(le.Uint16(b[60:]))

	if phnum == 0 {
		return nil, errorf(ErrFormat, "no program headers")
	}
	if phentsize != elfPhdrSize {
		return nil, errorf(ErrFormat, "program header size %d, want %d", phentsize, elfPhdrSize)
	}
	if !inside(phoff, phnum*elfPhdrSize, size) {
		return nil, errorf(ErrFormat, "program headers at %#x (%d of them) run past the end of the file (%#x bytes)", phoff, phnum, size)
	}
	pvhFound := false
	for i := uint64(0); i < phnum; i++ {
		p := b[phoff+i*elfPhdrSize:][:elfPhdrSize]
		typ, flags := elf.ProgType(le.Uint32(p[0:])), elf.ProgFlag(le.Uint32(p[4:]))
		off, vaddr, paddr := le.Uint64(p[8:]), le.Uint64(p[16:]), le.Uint64(p[24:])
		filesz, memsz := le.Uint64(p[32:]), le.Uint64(p[40:])
		switch typ {
		case elf.PT_INTERP, elf.PT_DYNAMIC:
			return nil, errorf(ErrFormat, "program header %d is %v: a kernel image is statically linked", i, typ)
		case elf.PT_NOTE:
			if !inside(off, filesz, size) {
				return nil, errorf(ErrFormat, "PT_NOTE %d at file offset %#x (%#x bytes) runs past the end of the file (%#x bytes)", i, off, filesz, size)
			}
			entry, ok, err := findPVHNote(b[off : off+filesz])
			if err != nil {
				return nil, err
			}
			if ok {
				if pvhFound {
					return nil, errorf(ErrEntry, "more than one PVH entry note")
				}
				pvhFound, img.pvhEntry = true, entry
			}
		case elf.PT_LOAD:
			if len(img.segments) == MaxSegments {
				return nil, errorf(ErrFormat, "more than %d PT_LOAD segments", MaxSegments)
			}
			if paddr != vaddr {
				return nil, errorf(ErrAddress, "PT_LOAD %d at %#x has physical address %#x", i, vaddr, paddr)
			}
			if memsz == 0 {
				return nil, errorf(ErrFormat, "PT_LOAD %d at %#x is empty (p_memsz 0)", i, vaddr)
			}
			if filesz > memsz {
				return nil, errorf(ErrFormat, "PT_LOAD %d at %#x has p_filesz %#x > p_memsz %#x", i, vaddr, filesz, memsz)
			}
			if vaddr+memsz < vaddr {
				return nil, errorf(ErrFormat, "PT_LOAD %d at %#x with %#x bytes wraps around the address space", i, vaddr, memsz)
			}
			if !inside(off, filesz, size) {
				return nil, errorf(ErrFormat, "PT_LOAD %d at %#x needs file bytes %#x..%#x, the file has %#x (truncated?)", i, vaddr, off, off+filesz, size)
			}
			img.segments = append(img.segments, Segment{Addr: vaddr, Data: b[off : off+filesz : off+filesz], Memsz: memsz, Flags: flags})
			img.offsets = append(img.offsets, off)
		}
	}
	if len(img.segments) == 0 {
		return nil, errorf(ErrFormat, "no PT_LOAD segment")
	}

	// The entry: the PVH note is what the boot path (cold or warm) uses;
	// the post-link step writes it equal to e_entry.
	if !pvhFound {
		return nil, errorf(ErrEntry, "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): the image was not post-linked by molt build")
	}
	if img.pvhEntry != img.entry {
		return nil, errorf(ErrEntry, "PVH note enters at %#x but e_entry is %#x", img.pvhEntry, img.entry)
	}
	if img.pvhEntry >= 1<<32 {
		return nil, errorf(ErrEntry, "PVH entry %#x is not below 4 GiB (it is entered in 32-bit mode)", img.pvhEntry)
	}
	if i := img.segmentAt(img.pvhEntry, 1); i < 0 || img.segments[i].Flags&elf.PF_X == 0 {
		return nil, errorf(ErrEntry, "PVH entry %#x is not inside the file bytes of an executable PT_LOAD", img.pvhEntry)
	}

	syms, err := findSymbols(b, shoff, shentsize, shnum, layout.BuildIDSymbol, layout.VersionVar, layout.HandoffFormatsSymbol, layout.TaskManifestSymbol)
	if err != nil {
		return nil, err
	}
	bid, ver, hf, man := syms[0], syms[1], syms[2], syms[3]

	if !bid.found {
		return nil, errorf(ErrFormat, "build ID symbol %s not found", layout.BuildIDSymbol)
	}
	if bid.size != buildIDSize {
		return nil, errorf(ErrFormat, "build ID symbol %s has size %d, want %d", layout.BuildIDSymbol, bid.size, buildIDSize)
	}
	off, ok := img.fileOffset(bid.value, buildIDSize)
	if !ok {
		return nil, errorf(ErrFormat, "build ID symbol %s at %#x has no file bytes", layout.BuildIDSymbol, bid.value)
	}
	img.buildIDOff = off

	// The version and the task manifest are Go string headers (pointer,
	// length) in data pointing at bytes in rodata.
	if ver.found {
		if img.version, err = img.readString(b, ver, layout.VersionVar, MaxVersionLen); err != nil {
			return nil, err
		}
		img.hasVersion = true
	}
	if man.found {
		if img.manifest, err = img.readString(b, man, layout.TaskManifestSymbol, MaxManifestLen); err != nil {
			return nil, err
		}
	}

	if !hf.found {
		return nil, errorf(ErrHandoff, "the image declares no handoff formats (symbol %s not found): it cannot read any handoff", layout.HandoffFormatsSymbol)
	}
	if hf.size == 0 || hf.size%4 != 0 || hf.size/4 > maxHandoffFormats {
		return nil, errorf(ErrFormat, "handoff formats symbol %s has size %d, want a multiple of 4 up to %d", layout.HandoffFormatsSymbol, hf.size, 4*maxHandoffFormats)
	}
	off, ok = img.fileOffset(hf.value, hf.size)
	if !ok {
		return nil, errorf(ErrFormat, "handoff formats symbol %s at %#x has no file bytes", layout.HandoffFormatsSymbol, hf.value)
	}
	for i := uint64(0); i < hf.size; i += 4 {
		if v := le.Uint32(b[off+i:]); v != 0 {
			img.handoffFormats = append(img.handoffFormats, v)
		}
	}
	if len(img.handoffFormats) == 0 {
		return nil, errorf(ErrHandoff, "the image's handoff format list (%s) is empty", layout.HandoffFormatsSymbol)
	}
	return img, nil
}

// readString reads the string variable s (named name) of b, at most max
// bytes long.
func (img *elfImage) readString(b []byte, s sym, name string, max uint64) (string, error) {
	le := binary.LittleEndian
	if s.size != 16 {
		return "", errorf(ErrFormat, "variable %s has size %d, want 16 (a string)", name, s.size)
	}
	hdr, ok := img.fileOffset(s.value, 16)
	if !ok {
		return "", errorf(ErrFormat, "variable %s at %#x has no file bytes", name, s.value)
	}
	p, n := le.Uint64(b[hdr:]), le.Uint64(b[hdr+8:])
	if n > max {
		return "", errorf(ErrFormat, "string %s is %d bytes, at most %d allowed", name, n, max)
	}
	off, ok := img.fileOffset(p, n)
	if !ok {
		return "", errorf(ErrFormat, "string %s at %#x (%d bytes) has no file bytes", name, p, n)
	}
	return string(b[off : off+n]), nil
}

// inside reports whether [off, off+n) lies within [0, size), without
// overflowing.
func inside(off, n, size uint64) bool {
	return off <= size && n <= size-off
}

// findPVHNote walks the notes in b and returns the PVH entry if there is a
// PVH note.
func findPVHNote(b []byte) (entry uint64, found bool, err error) {
	le := binary.LittleEndian
	for len(b) > 0 {
		if len(b) < 12 {
			return 0, false, errorf(ErrFormat, "truncated ELF note header (%d bytes left)", len(b))
		}
		namesz, descsz, typ := uint64(le.Uint32(b[0:])), uint64(le.Uint32(b[4:])), le.Uint32(b[8:])
		nameEnd := 12 + align4(namesz)
		end := nameEnd + align4(descsz)
		if end > uint64(len(b)) {
			return 0, false, errorf(ErrFormat, "ELF note (name %d bytes, descriptor %d bytes) runs past its segment", namesz, descsz)
		}
		name, desc := b[12:12+namesz], b[nameEnd:nameEnd+descsz]
		if typ == xenElfnotePhys32Entry && string(name) == "Xen\x00" {
			if found {
				return 0, false, errorf(ErrEntry, "more than one PVH entry note")
			}
			switch descsz {
			case 4:
				entry = uint64(le.Uint32(desc))
			case 8:
				entry = le.Uint64(desc)
			default:
				return 0, false, errorf(ErrEntry, "PVH entry note has a %d-byte descriptor, want 4 or 8", descsz)
			}
			found = true
		}
		b = b[end:]
	}
	return entry, found, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// findSymbols looks names up in the image's symbol table (the first
// SHT_SYMTAB section and its string table). It returns one sym per name.
func findSymbols(b []byte, shoff, shentsize, shnum uint64, names ...string) ([]sym, error) {
	le := binary.LittleEndian
	size := uint64(len(b))
	out := make([]sym, len(names))
	if shnum == 0 {
		return nil, errorf(ErrFormat, "no section headers, so no symbol table (was the image stripped?)")
	}
	if shentsize != elfShdrSize {
		return nil, errorf(ErrFormat, "section header size %d, want %d", shentsize, elfShdrSize)
	}
	if !inside(shoff, shnum*elfShdrSize, size) {
		return nil, errorf(ErrFormat, "section headers at %#x (%d of them) run past the end of the file (%#x bytes)", shoff, shnum, size)
	}
	shdr := func(i uint64) []byte { return b[shoff+i*elfShdrSize:][:elfShdrSize] }
	for i := uint64(0); i < shnum; i++ {
		s := shdr(i)
		if elf.SectionType(le.Uint32(s[4:])) != elf.SHT_SYMTAB {
			continue
		}
		off, n, link, entsize := le.Uint64(s[24:]), le.Uint64(s[32:]), uint64(le.Uint32(s[40:])), le.Uint64(s[56:])
		if entsize != elfSymSize || n%elfSymSize != 0 {
			return nil, errorf(ErrFormat, "symbol table entry size %d (table %d bytes), want %d", entsize, n, elfSymSize)
		}
		if !inside(off, n, size) {
			return nil, errorf(ErrFormat, "symbol table at %#x (%#x bytes) runs past the end of the file (%#x bytes)", off, n, size)
		}
		if link >= shnum {
			return nil, errorf(ErrFormat, "symbol table links to string table section %d, there are %d sections", link, shnum)
		}
		st := shdr(link)
		if elf.SectionType(le.Uint32(st[4:])) != elf.SHT_STRTAB {
			return nil, errorf(ErrFormat, "symbol table links to section %d, which is not a string table", link)
		}
		soff, sn := le.Uint64(st[24:]), le.Uint64(st[32:])
		if !inside(soff, sn, size) {
			return nil, errorf(ErrFormat, "string table at %#x (%#x bytes) runs past the end of the file (%#x bytes)", soff, sn, size)
		}
		strtab, symtab := b[soff:soff+sn], b[off:off+n]
		for j := 0; j+elfSymSize <= len(symtab); j += elfSymSize {
			e := symtab[j : j+elfSymSize]
			nameOff := uint64(le.Uint32(e[0:]))
			if nameOff >= uint64(len(strtab)) {
				continue
			}
			rest := strtab[nameOff:]
			for k, name := range names {
				// Compare in place: no string is built per symbol.
				if len(rest) > len(name) && rest[len(name)] == 0 && string(rest[:len(name)]) == name {
					if out[k].found {
						return nil, errorf(ErrFormat, "symbol %s is defined twice", name)
					}
					out[k] = sym{value: le.Uint64(e[8:]), size: le.Uint64(e[16:]), found: true}
				}
			}
		}
		return out, nil
	}
	return nil, errorf(ErrFormat, "no symbol table (was the image linked with -s or stripped?)")
}

// segmentAt returns the index of the segment whose file bytes hold
// [addr, addr+n), or -1.
func (img *elfImage) segmentAt(addr, n uint64) int {
	for i, s := range img.segments {
		if addr >= s.Addr && inside(addr-s.Addr, n, uint64(len(s.Data))) {
			return i
		}
	}
	return -1
}

// fileOffset maps [addr, addr+n) to an offset in the ELF file through the
// segment that holds it: the loader puts exactly those bytes there.
func (img *elfImage) fileOffset(addr, n uint64) (uint64, bool) {
	i := img.segmentAt(addr, n)
	if i < 0 {
		return 0, false
	}
	return img.offsets[i] + (addr - img.segments[i].Addr), true
}
