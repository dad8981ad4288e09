package image

import (
	"bytes"
	"debug/elf"
	"encoding/binary"

	"github.com/molt-os/molt/boot/layout"
)

// synth describes a small synthetic ELF image shaped like a post-linked
// molt kernel: a text segment holding the PVH entry and the version bytes,
// a data segment holding the build ID, the version string header and the
// handoff format list, then BSS. The default (newSynth) is valid; tests
// change one field to break one thing.
type synth struct {
	class   elf.Class
	data    elf.Data
	machine elf.Machine
	typ     elf.Type

	loads []synthLoad

	entry       uint64 // e_entry
	pvh         bool   // emit the PVH note
	pvhEntry    uint64
	pvhDescSize int // 4 or 8
	extraNote   bool
	interp      bool

	syms    []synthSym
	version string // "" with noVersion false: an empty version string
	noStamp bool   // leave the build ID zero instead of stamping it
}

type synthLoad struct {
	addr, paddr uint64
	data        []byte
	memsz       uint64
	flags       elf.ProgFlag
}

type synthSym struct {
	name        string
	value, size uint64
}

const (
	synthText      = layout.ImageText
	synthData      = layout.ImageText + 0x1000
	synthEntry     = synthText + 0x40
	synthVerBytes  = synthText + 0x80
	synthBuildID   = synthData
	synthVerHdr    = synthData + 0x20
	synthFormats   = synthData + 0x40
	synthBSS       = 0x10000
	synthVersion   = "v1.2.3-synth"
	synthFileBytes = 0x100
)

func newSynth() *synth {
	s := &synth{
		class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_X86_64, typ: elf.ET_EXEC,
		entry: synthEntry, pvh: true, pvhEntry: synthEntry, pvhDescSize: 8,
		version: synthVersion,
	}
	text := make([]byte, synthFileBytes)
	text[0x40] = 0xf4 // HLT at the entry
	data := make([]byte, synthFileBytes)
	s.loads = []synthLoad{
		{addr: synthText, paddr: synthText, data: text, memsz: synthFileBytes, flags: elf.PF_R | elf.PF_X},
		{addr: synthData, paddr: synthData, data: data, memsz: synthBSS, flags: elf.PF_R | elf.PF_W},
	}
	s.syms = []synthSym{
		{"runtime.text", synthText, 0},
		{layout.BuildIDSymbol, synthBuildID, 32},
		{layout.VersionVar, synthVerHdr, 16},
		{layout.HandoffFormatsSymbol, synthFormats, 32},
	}
	s.setFormats(1)
	return s
}

// setFormats writes the handoff format list into the data segment.
func (s *synth) setFormats(v ...uint32) {
	d := s.loads[1].data[synthFormats-synthData:]
	clear(d[:32])
	for i, f := range v {
		binary.LittleEndian.PutUint32(d[4*i:], f)
	}
}

// dropSym removes a symbol by name.
func (s *synth) dropSym(name string) {
	out := s.syms[:0]
	for _, y := range s.syms {
		if y.name != name {
			out = append(out, y)
		}
	}
	s.syms = out
}

// bytes lays the image out: header, program headers, notes, segment bytes,
// symbol table, string table, section headers.
func (s *synth) bytes() []byte {
	le := binary.LittleEndian
	// The version string and its header.
	text, data := s.loads[0].data, s.loads[1].data
	copy(text[synthVerBytes-synthText:], s.version)
	le.PutUint64(data[synthVerHdr-synthData:], synthVerBytes)
	le.PutUint64(data[synthVerHdr-synthData+8:], uint64(len(s.version)))

	var notes []byte
	if s.extraNote {
		notes = appendNote(notes, "GNU\x00", 3, make([]byte, 20))
	}
	if s.pvh {
		desc := make([]byte, s.pvhDescSize)
		if s.pvhDescSize == 4 {
			le.PutUint32(desc, uint32(s.pvhEntry))
		} else if s.pvhDescSize >= 8 {
			le.PutUint64(desc, s.pvhEntry)
		}
		notes = appendNote(notes, "Xen\x00", xenElfnotePhys32Entry, desc)
	}

	nph := len(s.loads) + 1
	if s.interp {
		nph++
	}
	off := uint64(elfHeaderSize + nph*elfPhdrSize)
	noteOff := off
	off += uint64(len(notes))
	loadOff := make([]uint64, len(s.loads))
	for i, l := range s.loads {
		off = (off + 15) &^ 15
		loadOff[i] = off
		off += uint64(len(l.data))
	}
	var strtab bytes.Buffer
	strtab.WriteByte(0)
	var symtab bytes.Buffer
	symtab.Write(make([]byte, elfSymSize)) // the null symbol
	for _, y := range s.syms {
		e := make([]byte, elfSymSize)
		le.PutUint32(e[0:], uint32(strtab.Len()))
		e[4] = byte(elf.STT_OBJECT)
		le.PutUint64(e[8:], y.value)
		le.PutUint64(e[16:], y.size)
		symtab.Write(e)
		strtab.WriteString(y.name)
		strtab.WriteByte(0)
	}
	off = (off + 7) &^ 7
	symOff := off
	off += uint64(symtab.Len())
	strOff := off
	off += uint64(strtab.Len())
	off = (off + 7) &^ 7
	shOff := off
	off += 3 * elfShdrSize

	b := make([]byte, off)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS], b[elf.EI_DATA], b[elf.EI_VERSION] = byte(s.class), byte(s.data), 1
	le.PutUint16(b[16:], uint16(s.typ))
	le.PutUint16(b[18:], uint16(s.machine))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], s.entry)
	le.PutUint64(b[32:], elfHeaderSize)
	le.PutUint64(b[40:], shOff)
	le.PutUint16(b[52:], elfHeaderSize)
	le.PutUint16(b[54:], elfPhdrSize)
	le.PutUint16(b[56:], uint16(nph))
	le.PutUint16(b[58:], elfShdrSize)
	le.PutUint16(b[60:], 3)
	ph := b[elfHeaderSize:]
	putPhdr := func(typ elf.ProgType, flags elf.ProgFlag, off, vaddr, paddr, filesz, memsz uint64) {
		le.PutUint32(ph[0:], uint32(typ))
		le.PutUint32(ph[4:], uint32(flags))
		le.PutUint64(ph[8:], off)
		le.PutUint64(ph[16:], vaddr)
		le.PutUint64(ph[24:], paddr)
		le.PutUint64(ph[32:], filesz)
		le.PutUint64(ph[40:], memsz)
		le.PutUint64(ph[48:], 4)
		ph = ph[elfPhdrSize:]
	}
	putPhdr(elf.PT_NOTE, elf.PF_R, noteOff, 0, 0, uint64(len(notes)), uint64(len(notes)))
	if s.interp {
		putPhdr(elf.PT_INTERP, elf.PF_R, noteOff, 0, 0, 0, 0)
	}
	copy(b[noteOff:], notes)
	for i, l := range s.loads {
		putPhdr(elf.PT_LOAD, l.flags, loadOff[i], l.addr, l.paddr, uint64(len(l.data)), l.memsz)
		copy(b[loadOff[i]:], l.data)
	}
	copy(b[symOff:], symtab.Bytes())
	copy(b[strOff:], strtab.Bytes())
	sh := b[shOff+elfShdrSize:] // section 0 is the null section
	le.PutUint32(sh[4:], uint32(elf.SHT_SYMTAB))
	le.PutUint64(sh[24:], symOff)
	le.PutUint64(sh[32:], uint64(symtab.Len()))
	le.PutUint32(sh[40:], 2)
	le.PutUint64(sh[56:], elfSymSize)
	sh = sh[elfShdrSize:]
	le.PutUint32(sh[4:], uint32(elf.SHT_STRTAB))
	le.PutUint64(sh[24:], strOff)
	le.PutUint64(sh[32:], uint64(strtab.Len()))

	if !s.noStamp && len(s.loads) > 1 && s.loads[1].addr == synthData {
		at := loadOff[1] + (synthBuildID - synthData)
		id := layout.BuildIDOf(b, at)
		copy(b[at:], id[:])
	}
	return b
}

func appendNote(b []byte, name string, typ uint32, desc []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(len(name)))
	b = le.AppendUint32(b, uint32(len(desc)))
	b = le.AppendUint32(b, typ)
	b = append(b, name...)
	b = append(b, make([]byte, int(align4(uint64(len(name))))-len(name))...)
	b = append(b, desc...)
	return append(b, make([]byte, int(align4(uint64(len(desc))))-len(desc))...)
}
