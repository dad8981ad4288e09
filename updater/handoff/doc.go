// Package handoff defines the handoff region: the bytes an old molt kernel
// leaves in physical memory for the kernel that replaces it, and the only
// state that crosses a self-update. docs/update-protocol.md specifies the
// format byte by byte; this comment is the summary.
//
// The region lives at layout.HandoffBase (96 MiB) and is at most
// layout.HandoffSize (16 MiB) long. No allocator of any molt kernel ever hands
// out those addresses, and no device DMAs there, so the new kernel may read
// the region from ordinary Go code once its runtime is up.
//
// Layout (little-endian, every structure 8-byte aligned):
//
//	0x00  magic "MOLTHAND"          8 bytes
//	0x08  format version            uint32  (FormatVersion; not the release version)
//	0x0c  flags                     uint32  (Flags; unknown bits are rejected)
//	0x10  generation                uint64  (1 for the first handoff, +1 per handoff)
//	0x18  length                    uint64  (header + sections, multiple of 8)
//	0x20  section count             uint32
//	0x24  reserved                  uint32  (zero)
//	0x28  writer build ID           32 bytes (SHA-256 of the writer's image)
//	0x48  SHA-256                   32 bytes (of bytes [0, length) with this field zeroed)
//	0x68  sections, back to back, each:
//	      +0x0 type uint32, +0x4 version uint32, +0x8 payload length uint32,
//	      +0xc flags uint32, +0x10 payload, zero padding to a multiple of 8
//
// Encoding is canonical: Decode accepts exactly the bytes an Encoder writes
// (reserved fields, padding and unknown flags must be zero, nothing may
// follow the last section), so a decoded region re-encodes to the same bytes.
//
// # Reading
//
// Decode checks the magic, the format version, the length against the input
// and the caps, the checksum and then the section framing, and returns the
// first problem as an error that wraps one sentinel (ErrBadMagic, ErrVersion,
// ErrTruncated, ...) and names the offset. Section payloads are sub-slices of
// the input. Inspect turns the result into the boot decision: Absent (no
// magic: zeros or garbage, cold boot), Valid, Corrupt (the magic is there but
// the rest is not: log it, cold boot) or Incompatible (a format this kernel
// does not read).
//
// Section payloads are interpreted through a Registry: each section type
// lists one Codec per schema version it can read, and each older codec
// upgrades its value to the next version, so a newer kernel reads state
// written with an older schema. A type the registry does not know is
// skipped; a known type in a version the registry cannot read is reported as
// a *VersionError that says which versions it found and supports.
//
// # Writing
//
// An Encoder builds a region in a caller-provided buffer (the region itself,
// in a kernel) and refuses, naming the section, anything that does not fit.
// It clears the header first and writes it, with the checksum, only in
// Finish, so a half-written region never carries a valid magic.
//
// Section type numbers are assigned in this package (types.go) so that they
// never collide; the codecs may live with the subsystems that own the state.
// This package defines two sections: clock (Clock) and update-history
// (History).
//
// # Context
//
// Everything here is ordinary Go: it allocates, and it needs the runtime.
// Decode allocates at most one Section per section the input can physically
// hold (never in proportion to a length or count it claims), and does not
// copy payloads.
package handoff
