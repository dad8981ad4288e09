package handoff

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns about the contents of a
// region or a payload wraps exactly one of them (a payload error wraps
// ErrPayload and the decoder's own sentinel), so callers test with
// errors.Is; the message adds the offset and the values found.
var (
	// ErrBadMagic: the input does not start with Magic. For a boot this
	// means "no handoff" (Inspect reports Absent).
	ErrBadMagic = errors.New("bad magic")
	// ErrVersion: the format version is not FormatVersion. The error is a
	// *VersionError with the version found and the ones supported.
	ErrVersion = errors.New("unsupported format version")
	// ErrTruncated: the input ends before a structure it must hold, or
	// before the length the header claims.
	ErrTruncated = errors.New("truncated")
	// ErrTooLarge: a length or count exceeds its cap (MaxRegionSize,
	// MaxSections, a section type's MaxLen), or a section does not fit in
	// the encoder's buffer.
	ErrTooLarge = errors.New("too large")
	// ErrMisaligned: the region length is not a multiple of Align.
	ErrMisaligned = errors.New("misaligned")
	// ErrChecksum: the stored SHA-256 does not match the contents.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrSectionBounds: a section runs past the region's length, the
	// section count does not fit the length, or bytes follow the last
	// section. (Sections are laid out back to back, so they cannot
	// overlap; this is the error that a corrupted length or count gives.)
	ErrSectionBounds = errors.New("section out of bounds")
	// ErrReserved: a reserved field, a padding byte or a flag bit this
	// format version does not define is not zero.
	ErrReserved = errors.New("nonzero reserved bits")
	// ErrInvalid: a field holds a value the format forbids (generation 0,
	// section type 0, section version 0, a length below the header size,
	// an unknown enumeration value in a payload).
	ErrInvalid = errors.New("invalid field")

	// ErrUnknownType: a Registry has no codec for the section's type.
	// Such sections are skipped unless marked SectionCritical.
	ErrUnknownType = errors.New("unknown section type")
	// ErrSectionVersion: a Registry knows the section's type but not its
	// version. The error is a *VersionError.
	ErrSectionVersion = errors.New("unsupported section version")
	// ErrPayload: a section's codec rejected its payload.
	ErrPayload = errors.New("malformed payload")
)

// FormatError describes a problem found at a place in a region.
type FormatError struct {
	Err     error  // the sentinel
	Section int    // index of the section concerned, or -1 for the header
	Offset  int64  // byte offset of the offending field, or -1
	Detail  string // what was found, and what was expected
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("handoff: ")
	b.WriteString(e.Err.Error())
	if e.Section >= 0 {
		fmt.Fprintf(&b, ": section %d", e.Section)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at offset %#x", e.Offset)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

func headerErr(sentinel error, off int, format string, args ...any) error {
	return &FormatError{Err: sentinel, Section: -1, Offset: int64(off), Detail: fmt.Sprintf(format, args...)}
}

func sectionErr(sentinel error, idx, off int, format string, args ...any) error {
	return &FormatError{Err: sentinel, Section: idx, Offset: int64(off), Detail: fmt.Sprintf(format, args...)}
}

// VersionError reports a version this reader cannot read: the container
// format's (Section < 0, wraps ErrVersion) or a section's (wraps
// ErrSectionVersion). Min and Max bound the versions it supports.
type VersionError struct {
	Section int   // index of the section, or -1 for the format version
	Type    Type  // the section's type (when Section >= 0)
	Offset  int64 // offset of the version field
	Found   uint32
	Min     uint32
	Max     uint32
}

// Newer reports whether the version found is newer than any supported: the
// writer is ahead of this reader, as opposed to a schema this reader no
// longer migrates from.
func (e *VersionError) Newer() bool { return e.Found > e.Max }

func (e *VersionError) Error() string {
	var b strings.Builder
	b.WriteString("handoff: ")
	if e.Section < 0 {
		fmt.Fprintf(&b, "format version %d at offset %#x", e.Found, e.Offset)
	} else {
		fmt.Fprintf(&b, "section %d (%s) at offset %#x: version %d", e.Section, e.Type, e.Offset, e.Found)
	}
	switch {
	case e.Newer():
		b.WriteString(" is newer than")
	case e.Found < e.Min:
		b.WriteString(" is older than")
	default:
		b.WriteString(" is not among")
	}
	if e.Min == e.Max {
		fmt.Fprintf(&b, " the one this reader supports (%d)", e.Min)
	} else {
		fmt.Fprintf(&b, " the ones this reader supports (%d to %d)", e.Min, e.Max)
	}
	return b.String()
}

func (e *VersionError) Unwrap() error {
	if e.Section < 0 {
		return ErrVersion
	}
	return ErrSectionVersion
}

// payloadErr wraps a codec's error with the section it came from.
func payloadErr(s Section, err error) error {
	return fmt.Errorf("handoff: %v: %w: %w", s, ErrPayload, err)
}
