package image

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every refusal from Verify and Sign wraps exactly one of
// them, so that the update service can map it to a refusal code with
// errors.Is; the message says what was found and what was expected.
var (
	// ErrFormat: the bytes are not a well-formed bundle or ELF image
	// (truncated, bad magic, nonzero reserved fields, a missing symbol, a
	// segment whose file bytes lie outside the file, header fields that
	// contradict the ELF).
	ErrFormat = errors.New("malformed image")
	// ErrFormatVersion: the bundle is in a format version this code does
	// not read.
	ErrFormatVersion = errors.New("unsupported bundle format version")
	// ErrUnknownKey: the bundle is signed by a key the kernel does not
	// trust (or the kernel trusts no key at all).
	ErrUnknownKey = errors.New("signed by an untrusted key")
	// ErrSignature: the signature does not verify with the trusted key the
	// bundle names: the bundle was changed after signing, or forged.
	ErrSignature = errors.New("bad signature")
	// ErrArch: the image is not for this machine: the bundle's arch field or
	// the ELF machine is not x86-64, or the ELF is not a little-endian
	// ELFCLASS64 ET_EXEC.
	ErrArch = errors.New("wrong architecture")
	// ErrAddress: a loadable segment's physical address differs from its
	// virtual address (the purgatory copies to physical addresses, the new
	// kernel runs identity-mapped).
	ErrAddress = errors.New("segment physical address differs from its virtual address")
	// ErrReservedRegion: a loadable segment overlaps memory the running
	// kernel or the update needs: the boot area below layout.ImageBase, the
	// handoff region, the DMA region, the frame pool, MMIO, or addresses at
	// or above 4 GiB.
	ErrReservedRegion = errors.New("segment overlaps a reserved region")
	// ErrSegmentOverlap: two loadable segments overlap each other.
	ErrSegmentOverlap = errors.New("segments overlap")
	// ErrEntry: no usable PVH entry: no PVH note, a note that disagrees with
	// e_entry, or an entry outside the file bytes of an executable segment.
	ErrEntry = errors.New("bad entry point")
	// ErrTooBig: the segments to stage do not fit the staging area
	// (Limits.StagingSize).
	ErrTooBig = errors.New("image too big for the staging area")
	// ErrHandoff: the image does not read the handoff format the running
	// kernel writes, or declares no handoff formats at all.
	ErrHandoff = errors.New("incompatible handoff format")
)

// Sentinels lists every sentinel, for tests and for mapping errors to codes.
var Sentinels = []error{
	ErrFormat, ErrFormatVersion, ErrUnknownKey, ErrSignature, ErrArch, ErrAddress,
	ErrReservedRegion, ErrSegmentOverlap, ErrEntry, ErrTooBig, ErrHandoff,
}

// errorf returns an error that wraps sentinel, with the package prefix and
// a detail message.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("image: %w: %s", sentinel, fmt.Sprintf(format, args...))
}
