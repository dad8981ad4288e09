package handoff

import (
	"fmt"
	"strings"

	"github.com/molt-os/molt/boot/layout"
)

// Format constants. Changing any of them, or the layout of the header or of
// a section header, is a new format version (docs/update-protocol.md).
const (
	// Magic opens every handoff region.
	Magic = "MOLTHAND"
	// FormatVersion is the container format this package reads and writes.
	// It versions the header and the section framing only; payloads carry
	// their own versions, and the release version is a third, unrelated
	// number.
	FormatVersion = 1

	// HeaderSize is the size of the fixed header.
	HeaderSize = 0x68
	// SectionHeaderSize is the size of the header before each payload.
	SectionHeaderSize = 16
	// Align is the alignment of the header, every section and the length.
	Align = 8

	// MaxRegionSize caps the length of a region: the reserved physical
	// range.
	MaxRegionSize = layout.HandoffSize
	// MaxSectionSize caps one payload: a region holding nothing else.
	MaxSectionSize = MaxRegionSize - HeaderSize - SectionHeaderSize
	// MaxSections caps the section count.
	MaxSections = 4096
)

// Header field offsets.
const (
	offMagic      = 0x00
	offFormat     = 0x08
	offFlags      = 0x0c
	offGeneration = 0x10
	offLength     = 0x18
	offCount      = 0x20
	offReserved   = 0x24
	offBuildID    = 0x28
	offChecksum   = 0x48
)

// Section header field offsets, relative to the section.
const (
	secType    = 0x0
	secVersion = 0x4
	secLength  = 0x8
	secFlags   = 0xc
)

// Flags are the header's flag bits.
type Flags uint32

const (
	// FlagRollback marks a handoff written to go back to the previous
	// image (DESIGN §6.7): the state is carried, the update is undone.
	FlagRollback Flags = 1 << 0

	knownFlags = FlagRollback
)

func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	var parts []string
	if f&FlagRollback != 0 {
		parts = append(parts, "rollback")
	}
	if rest := f &^ knownFlags; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

// SectionFlags are a section header's flag bits.
type SectionFlags uint32

const (
	// SectionCritical tells a reader that does not understand the section
	// (unknown type or version) that continuing without it loses state the
	// writer considered essential: Registry.DecodeAll reports it as an
	// error instead of skipping it quietly.
	SectionCritical SectionFlags = 1 << 0

	knownSectionFlags = SectionCritical
)

func (f SectionFlags) String() string {
	switch f {
	case 0:
		return "none"
	case SectionCritical:
		return "critical"
	}
	if f&SectionCritical != 0 {
		return fmt.Sprintf("critical|%#x", uint32(f&^SectionCritical))
	}
	return fmt.Sprintf("%#x", uint32(f))
}

// Type identifies what a section holds. Numbers are assigned here, once,
// and never reused; docs/update-protocol.md carries the same table.
type Type uint32

const (
	// TypeClock: Clock, the writer's clocks at save (clock.go).
	TypeClock Type = 1
	// TypeUpdateHistory: History, the record of past updates (history.go).
	TypeUpdateHistory Type = 2

	// Reserved for sections that are planned but not defined yet
	// (DESIGN §4–§6); their payloads are specified when they are built.
	TypeProcessTable Type = 3 // task IDs, names, state versions, restart policy, socket ownership
	TypeTaskState    Type = 4 // one task's saved state (one section per task)
	TypeConnTable    Type = 5 // TCP/UDP connection tables
	TypeNIC          Type = 6 // NIC identity (MAC, device) for re-attach
	TypeIPConfig     Type = 7 // addresses, routes, DHCP lease

	// TypeUpdate: the update in progress, from the update service
	// (updater/service): the push connection to answer, the old side's
	// phase timings, which image store slot holds which image.
	TypeUpdate Type = 8

	// TypeExperimental and above are never assigned: tests and local
	// experiments use them, released images must not write them.
	TypeExperimental Type = 0x8000_0000
)

var typeNames = map[Type]string{
	TypeClock:         "clock",
	TypeUpdateHistory: "update-history",
	TypeProcessTable:  "process-table",
	TypeTaskState:     "task-state",
	TypeConnTable:     "conn-table",
	TypeNIC:           "nic",
	TypeIPConfig:      "ip-config",
	TypeUpdate:        "update",
}

// String returns the type's registered name, or its number.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if t >= TypeExperimental {
		return fmt.Sprintf("experimental-%#x", uint32(t))
	}
	return fmt.Sprintf("type-%#x", uint32(t))
}

// Header holds the fixed header's fields.
type Header struct {
	// Format is the format version read by Decode (always FormatVersion
	// in a decoded region). Encoders ignore it.
	Format uint32
	// Flags are the header flags.
	Flags Flags
	// Generation counts handoffs: 1 for the first one after a cold boot,
	// one more for each further handoff. Zero is invalid.
	Generation uint64
	// Length is the region's length in bytes, header included. Encoders
	// compute it.
	Length uint64
	// Count is the number of sections. Encoders compute it.
	Count uint32
	// BuildID is the writer's build ID (kernel.BuildID: SHA-256 of its
	// image).
	BuildID [32]byte
	// Checksum is the SHA-256 stored in the region. Encoders compute it.
	Checksum [32]byte
}

// Section is one section of a decoded region.
type Section struct {
	Index   int    // position in the region, from 0
	Offset  int    // offset of the section header in the region
	Type    Type   // what the payload holds
	Version uint32 // the payload's schema version, from 1
	Flags   SectionFlags
	// Payload aliases the decoded input (capacity limited to its length):
	// it is valid as long as the input is, and must be copied or decoded
	// before the region is written again.
	Payload []byte
}

func (s Section) String() string {
	return fmt.Sprintf("section %d (%s v%d) at offset %#x", s.Index, s.Type, s.Version, s.Offset)
}

// Region is a decoded handoff region.
type Region struct {
	Header
	Sections []Section
}

// Find returns the first section of type t.
func (r *Region) Find(t Type) (Section, bool) {
	for _, s := range r.Sections {
		if s.Type == t {
			return s, true
		}
	}
	return Section{}, false
}

// align rounds n up to a multiple of Align.
func align(n int) int { return (n + Align - 1) &^ (Align - 1) }
