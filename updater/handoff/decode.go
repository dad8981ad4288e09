package handoff

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strconv"
)

var le = binary.LittleEndian

// Decode validates the region at the start of b and returns its header and
// sections. b may be longer than the region (the whole reserved range, or a
// file with trailing bytes); only b[:Length] is read. Payloads alias b.
//
// The checks run in this order, and the first that fails is returned:
// magic (ErrBadMagic), format version (ErrVersion), header size
// (ErrTruncated), header flags and reserved field (ErrReserved), generation
// (ErrInvalid), length against the header size, the cap, the alignment and
// len(b) (ErrInvalid, ErrTooLarge, ErrMisaligned, ErrTruncated), section
// count against its cap and the length (ErrTooLarge, ErrSectionBounds), the
// SHA-256 (ErrChecksum), then each section's header, bounds and padding, and
// finally that the last section ends at Length (ErrSectionBounds).
//
// Nothing is allocated before the section count is known to fit the input.
func Decode(b []byte) (*Region, error) {
	if len(b) < len(Magic) {
		if bytes.HasPrefix([]byte(Magic), b) {
			return nil, headerErr(ErrTruncated, offMagic, "%d bytes cannot hold the %d-byte magic", len(b), len(Magic))
		}
		return nil, headerErr(ErrBadMagic, offMagic, "found %q (%d bytes), want %q", b, len(b), Magic)
	}
	if string(b[:len(Magic)]) != Magic {
		if allZero(b[:len(Magic)]) {
			return nil, headerErr(ErrBadMagic, offMagic, "region starts with zeros, want %q", Magic)
		}
		return nil, headerErr(ErrBadMagic, offMagic, "found %q, want %q", b[:len(Magic)], Magic)
	}
	// Magic and format version keep their places in every format version,
	// so the version is checked before the header size is.
	if len(b) < offFormat+4 {
		return nil, headerErr(ErrTruncated, offFormat, "%d bytes end before the format version", len(b))
	}
	if v := le.Uint32(b[offFormat:]); v != FormatVersion {
		return nil, &VersionError{Section: -1, Offset: offFormat, Found: v, Min: FormatVersion, Max: FormatVersion}
	}
	if len(b) < HeaderSize {
		return nil, headerErr(ErrTruncated, len(b), "%d bytes cannot hold the %d-byte header", len(b), HeaderSize)
	}

	r := &Region{Header: Header{
		Format:     FormatVersion,
		Flags:      Flags(le.Uint32(b[offFlags:])),
		Generation: le.Uint64(b[offGeneration:]),
		Length:     le.Uint64(b[offLength:]),
		Count:      le.Uint32(b[offCount:]),
	}}
	copy(r.BuildID[:], b[offBuildID:])
	copy(r.Checksum[:], b[offChecksum:])

	if unknown := r.Flags &^ knownFlags; unknown != 0 {
		return nil, headerErr(ErrReserved, offFlags, "unknown header flags %#x", uint32(unknown))
	}
	if v := le.Uint32(b[offReserved:]); v != 0 {
		return nil, headerErr(ErrReserved, offReserved, "reserved field holds %#x", v)
	}
	if r.Generation == 0 {
		return nil, headerErr(ErrInvalid, offGeneration, "generation 0 (generations start at 1)")
	}
	switch n := r.Length; {
	case n < HeaderSize:
		return nil, headerErr(ErrInvalid, offLength, "length %d is smaller than the %d-byte header", n, HeaderSize)
	case n > MaxRegionSize:
		return nil, headerErr(ErrTooLarge, offLength, "length %d exceeds the region size %d", n, MaxRegionSize)
	case n%Align != 0:
		return nil, headerErr(ErrMisaligned, offLength, "length %d is not a multiple of %d", n, Align)
	case n > uint64(len(b)):
		return nil, headerErr(ErrTruncated, offLength, "length field says %d bytes, input has %d", n, len(b))
	}
	end := int(r.Length)
	if r.Count > MaxSections {
		return nil, headerErr(ErrTooLarge, offCount, "%d sections exceed the cap of %d", r.Count, MaxSections)
	}
	if need := int(r.Count) * SectionHeaderSize; need > end-HeaderSize {
		return nil, headerErr(ErrSectionBounds, offCount, "%d sections need at least %d bytes, the region has %d after the header", r.Count, need, end-HeaderSize)
	}
	if sum := checksum(b[:end]); sum != r.Checksum {
		return nil, headerErr(ErrChecksum, offChecksum, "stored %x, computed %x over %d bytes", r.Checksum, sum, end)
	}

	r.Sections = make([]Section, 0, r.Count)
	off := HeaderSize
	for i := 0; i < int(r.Count); i++ {
		if end-off < SectionHeaderSize {
			return nil, sectionErr(ErrSectionBounds, i, off, "section header runs past the region end %#x", end)
		}
		h := b[off : off+SectionHeaderSize]
		s := Section{
			Index:   i,
			Offset:  off,
			Type:    Type(le.Uint32(h[secType:])),
			Version: le.Uint32(h[secVersion:]),
			Flags:   SectionFlags(le.Uint32(h[secFlags:])),
		}
		n := le.Uint32(h[secLength:])
		switch {
		case s.Type == 0:
			return nil, sectionErr(ErrInvalid, i, off+secType, "section type 0")
		case s.Version == 0:
			return nil, sectionErr(ErrInvalid, i, off+secVersion, "%s version 0 (versions start at 1)", s.Type)
		case s.Flags&^knownSectionFlags != 0:
			return nil, sectionErr(ErrReserved, i, off+secFlags, "unknown section flags %#x", uint32(s.Flags&^knownSectionFlags))
		}
		p := off + SectionHeaderSize
		// end and p are multiples of Align, so a payload that fits also
		// fits with its padding.
		if uint64(n) > uint64(end-p) {
			return nil, sectionErr(ErrSectionBounds, i, off+secLength, "%s payload of %d bytes runs past the region end %#x", s.Type, n, end)
		}
		next := p + align(int(n))
		if !allZero(b[p+int(n) : next]) {
			return nil, sectionErr(ErrReserved, i, p+int(n), "nonzero padding after the %s payload", s.Type)
		}
		s.Payload = b[p : p+int(n) : p+int(n)]
		r.Sections = append(r.Sections, s)
		off = next
	}
	if off != end {
		return nil, headerErr(ErrSectionBounds, off, "%d bytes follow the last of %d sections (region length %d)", end-off, r.Count, end)
	}
	return r, nil
}

// checksum returns the SHA-256 of region with the checksum field taken as
// zero. region must hold at least the header.
func checksum(region []byte) [32]byte {
	var zero [32]byte
	h := sha256.New()
	h.Write(region[:offChecksum])
	h.Write(zero[:])
	h.Write(region[offChecksum+32:])
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Status is what a booting kernel finds in the handoff region.
type Status int

const (
	// Absent: no handoff magic (all zeros after power-on, or garbage).
	// Cold boot.
	Absent Status = iota
	// Valid: a well-formed region in a format this kernel reads. Warm
	// boot; the sections still go through a Registry.
	Valid
	// Corrupt: the magic is there but the region is not well-formed
	// (truncated, bad checksum, bad framing). Log the error, cold boot,
	// and say so: state was lost.
	Corrupt
	// Incompatible: a well-marked region in a format version this kernel
	// does not read. Log it and cold boot, like Corrupt; an update should
	// have refused this pairing (DESIGN §6.1).
	Incompatible
)

func (s Status) String() string {
	switch s {
	case Absent:
		return "absent"
	case Valid:
		return "valid"
	case Corrupt:
		return "corrupt"
	case Incompatible:
		return "incompatible"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// Inspect makes the boot decision for the reserved range b: it decodes the
// region and classifies the outcome. The error is nil only for Valid; for
// every other status it says what was found, for the boot log.
func Inspect(b []byte) (Status, *Region, error) {
	r, err := Decode(b)
	switch {
	case err == nil:
		return Valid, r, nil
	case errors.Is(err, ErrBadMagic):
		return Absent, nil, err
	case len(b) < len(Magic):
		return Absent, nil, err // too short to hold any handoff
	case errors.Is(err, ErrVersion):
		return Incompatible, nil, err
	}
	return Corrupt, nil, err
}

// Invalidate clears the header at the start of b, so that the region is
// never read again: a kernel calls it once the handoff it booted from is no
// longer needed (after commit, see docs/update-protocol.md), before a later
// reset could replay stale state.
func Invalidate(b []byte) {
	clear(b[:min(len(b), HeaderSize)])
}
