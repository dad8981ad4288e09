package image

import (
	"bytes"
	"debug/elf"
	"encoding/binary"

	"github.com/molt-os/molt/boot/layout"
)

// synth describes a small synthetic image shaped like a linked kernel:
// a header page with a Go build-ID note, text at layout.ImageText, a data
// page holding the build ID and the version string header, and BSS. The
// zero value is a valid, unpatched image; each field breaks one thing.
type synth struct {
	class      elf.Class   // default ELFCLASS64; ELFCLASS32 gives a bare ELF32 header
	data       elf.Data    // default ELFDATA2LSB (only the ident byte changes)
	machine    elf.Machine // default EM_X86_64
	typ        elf.Type    // default ET_EXEC
	base       uint64      // address of the header page; default layout.ImageBase
	bss        uint64      // BSS after the data page
	paddrDelta uint64      // added to p_paddr of the data segment
	textFlags  elf.ProgFlag

	entryName    string // default layout.EntrySymbol + ".abi0"
	plainWrapper bool   // also emit the plain-named ABI wrapper symbol
	noEntry      bool
	entryDelta   uint64 // e_entry = entry symbol + entryDelta

	noteSize int    // default 0x64
	noteName string // default "Go\x00\x00"
	noteType uint32 // default 4

	noBuildID    bool
	buildIDInBSS bool
	buildIDSize  uint64 // default 32
	noSymtab     bool
}

// Offsets of the synthetic image.
const (
	synthNoteOff   = 0x100
	synthTextOff   = 0x1000
	synthTextSize  = 0x100
	synthEntryOff  = 0x40 // entry within text
	synthVerOff    = 0x80 // version string bytes within text
	synthDataOff   = 0x2000
	synthDataSize  = 0x100
	synthBuildIDAt = synthDataOff
	synthVerHdrAt  = synthDataOff + 0x20
	synthVersion   = "v0.0.0-synth"
)

func (s synth) bytes() []byte {
	le := binary.LittleEndian
	if s.class == elf.ELFCLASS32 {
		h := elf.Header32{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_386), Version: 1, Ehsize: 52}
		copy(h.Ident[:], elf.ELFMAG)
		h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS32), byte(elf.ELFDATA2LSB), 1
		var b bytes.Buffer
		binary.Write(&b, le, h)
		return append(b.Bytes(), make([]byte, 64)...)
	}
	if s.base == 0 {
		s.base = layout.ImageBase
	}
	if s.machine == 0 {
		s.machine = elf.EM_X86_64
	}
	if s.typ == 0 {
		s.typ = elf.ET_EXEC
	}
	if s.data == 0 {
		s.data = elf.ELFDATA2LSB
	}
	if s.textFlags == 0 {
		s.textFlags = elf.PF_R | elf.PF_X
	}
	if s.entryName == "" {
		s.entryName = layout.EntrySymbol + ".abi0"
	}
	if s.noteSize == 0 {
		s.noteSize = 0x64
	}
	if s.noteName == "" {
		s.noteName = "Go\x00\x00"
	}
	if s.noteType == 0 {
		s.noteType = goBuildIDNoteType
	}
	if s.buildIDSize == 0 {
		s.buildIDSize = 32
	}
	text := s.base + synthTextOff
	data := s.base + synthDataOff
	entry := text + synthEntryOff

	// File contents up to the end of the data page.
	img := make([]byte, synthDataOff+synthDataSize)
	note := img[synthNoteOff : synthNoteOff+s.noteSize]
	if s.noteSize >= 16 {
		le.PutUint32(note[0:], 4)
		le.PutUint32(note[4:], uint32(s.noteSize-16))
		le.PutUint32(note[8:], s.noteType)
		copy(note[12:16], s.noteName)
		for i := 16; i < len(note); i++ {
			note[i] = 'a' + byte(i%26) // a stand-in Go build ID
		}
	}
	for i := range synthTextSize {
		img[synthTextOff+i] = 0xcc
	}
	copy(img[synthTextOff+synthEntryOff:], []byte{0xfa, 0xf4, 0xeb, 0xfd}) // CLI; HLT; JMP .-1
	copy(img[synthTextOff+synthVerOff:], synthVersion)
	copy(img[synthBuildIDAt:], "molt-build-id")
	le.PutUint64(img[synthVerHdrAt:], text+synthVerOff)
	le.PutUint64(img[synthVerHdrAt+8:], uint64(len(synthVersion)))

	// Symbols, strings, section names.
	var strtab, shstrtab bytes.Buffer
	strtab.WriteByte(0)
	shstrtab.WriteByte(0)
	str := func(b *bytes.Buffer, s string) uint32 {
		off := b.Len()
		b.WriteString(s)
		b.WriteByte(0)
		return uint32(off)
	}
	const (
		shText = 2
		shData = 3
		shBSS  = 4
	)
	sym := func(name string, typ elf.SymType, shndx uint16, value, size uint64) elf.Sym64 {
		return elf.Sym64{Name: str(&strtab, name), Info: elf.ST_INFO(elf.STB_GLOBAL, typ), Shndx: shndx, Value: value, Size: size}
	}
	syms := []elf.Sym64{{}}
	if !s.noEntry {
		syms = append(syms, sym(s.entryName, elf.STT_FUNC, shText, entry, 4))
		if s.plainWrapper {
			syms = append(syms, sym(layout.EntrySymbol, elf.STT_FUNC, shText, entry+0x20, 4))
		}
	}
	if !s.noBuildID {
		if s.buildIDInBSS {
			syms = append(syms, sym(layout.BuildIDSymbol, elf.STT_OBJECT, shBSS, data+synthDataSize, s.buildIDSize))
		} else {
			syms = append(syms, sym(layout.BuildIDSymbol, elf.STT_OBJECT, shData, data, s.buildIDSize))
		}
	}
	syms = append(syms, sym(layout.VersionVar, elf.STT_OBJECT, shData, data+0x20, 16))
	syms = append(syms, sym("runtime.text", elf.STT_FUNC, shText, text, 0))
	var symtab bytes.Buffer
	for _, y := range syms {
		binary.Write(&symtab, le, y)
	}

	type sec struct {
		name string
		hdr  elf.Section64
		body []byte
	}
	secs := []sec{
		{"", elf.Section64{}, nil},
		{".note.go.buildid", elf.Section64{Type: uint32(elf.SHT_NOTE), Flags: uint64(elf.SHF_ALLOC), Addr: s.base + synthNoteOff, Off: synthNoteOff, Size: uint64(s.noteSize), Addralign: 4}, nil},
		{".text", elf.Section64{Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_EXECINSTR), Addr: text, Off: synthTextOff, Size: synthTextSize, Addralign: 64}, nil},
		{".noptrdata", elf.Section64{Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_WRITE), Addr: data, Off: synthDataOff, Size: synthDataSize, Addralign: 32}, nil},
		{".bss", elf.Section64{Type: uint32(elf.SHT_NOBITS), Flags: uint64(elf.SHF_ALLOC | elf.SHF_WRITE), Addr: data + synthDataSize, Off: synthDataOff + synthDataSize, Size: s.bss, Addralign: 32}, nil},
	}
	if !s.noSymtab {
		secs = append(secs,
			sec{".symtab", elf.Section64{Type: uint32(elf.SHT_SYMTAB), Link: uint32(len(secs) + 1), Info: 1, Entsize: 24, Addralign: 8}, symtab.Bytes()},
			sec{".strtab", elf.Section64{Type: uint32(elf.SHT_STRTAB), Addralign: 1}, nil}) // body below
	}
	secs = append(secs, sec{".shstrtab", elf.Section64{Type: uint32(elf.SHT_STRTAB), Addralign: 1}, nil})
	for i := range secs {
		secs[i].hdr.Name = str(&shstrtab, secs[i].name)
	}
	for i := range secs {
		switch secs[i].name {
		case ".strtab":
			secs[i].body = strtab.Bytes()
		case ".shstrtab":
			secs[i].body = shstrtab.Bytes()
		}
		if secs[i].body != nil {
			for len(img)%8 != 0 {
				img = append(img, 0)
			}
			secs[i].hdr.Off = uint64(len(img))
			secs[i].hdr.Size = uint64(len(secs[i].body))
			img = append(img, secs[i].body...)
		}
	}
	for len(img)%8 != 0 {
		img = append(img, 0)
	}
	shoff := uint64(len(img))
	var shdrs bytes.Buffer
	for _, x := range secs {
		binary.Write(&shdrs, le, x.hdr)
	}
	img = append(img, shdrs.Bytes()...)

	// Program headers and the ELF header.
	progs := []elf.Prog64{
		{Type: uint32(elf.PT_LOAD), Flags: uint32(s.textFlags), Off: 0, Vaddr: s.base, Paddr: s.base,
			Filesz: synthTextOff + synthTextSize, Memsz: synthTextOff + synthTextSize, Align: 0x1000},
		{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_W), Off: synthDataOff, Vaddr: data, Paddr: data + s.paddrDelta,
			Filesz: synthDataSize, Memsz: synthDataSize + s.bss, Align: 0x1000},
		{Type: uint32(elf.PT_NOTE), Flags: uint32(elf.PF_R), Off: synthNoteOff, Vaddr: s.base + synthNoteOff, Paddr: s.base + synthNoteOff,
			Filesz: uint64(s.noteSize), Memsz: uint64(s.noteSize), Align: 4},
	}
	h := elf.Header64{
		Type: uint16(s.typ), Machine: uint16(s.machine), Version: 1, Entry: entry + s.entryDelta,
		Phoff: 64, Shoff: shoff, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs)),
		Shentsize: 64, Shnum: uint16(len(secs)), Shstrndx: uint16(len(secs) - 1),
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(s.data), 1
	var hb bytes.Buffer
	binary.Write(&hb, le, h)
	for _, p := range progs {
		binary.Write(&hb, le, p)
	}
	copy(img, hb.Bytes())
	return img
}
