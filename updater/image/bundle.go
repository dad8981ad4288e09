package image

import (
	"bytes"
	"crypto/ed25519"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/updater/handoff"
)

// Bundle format constants (docs/images.md §2). Changing the header layout
// or the signed range is a new format version.
const (
	// Magic opens every bundle.
	Magic = "MOLTIMAG"
	// FormatVersion is the bundle format this package reads and writes.
	FormatVersion = 1
	// HeaderSize is the fixed part of the header; the version string and
	// its padding follow it.
	HeaderSize = 0x48
	// SignatureSize is the size of the ed25519 signature that ends a bundle.
	SignatureSize = ed25519.SignatureSize
	// ArchX86_64 is the arch field of an x86-64 bundle: the ELF machine
	// number EM_X86_64.
	ArchX86_64 = uint16(elf.EM_X86_64)
	// MaxVersionLen caps the release version string (as the update history
	// does).
	MaxVersionLen = 128
	// MaxManifestLen caps the task manifest an image carries
	// (layout.TaskManifestSymbol).
	MaxManifestLen = 4096
	// MaxELFSize caps the ELF length a header may claim. The image must end
	// below layout.ImageLimit and carries its symbol table and DWARF, so 1
	// GiB is far beyond any real image; the cap keeps sizes in int range
	// on every platform.
	MaxELFSize = 1 << 30

	// DefaultStagingSize is the staging area DefaultLimits assumes: one
	// image store slot, where the update service keeps the bundle and from
	// where the purgatory copies the segments (docs/images.md §4).
	DefaultStagingSize = layout.ImageSlotSize
)

// Header field offsets.
const (
	offMagic     = 0x00
	offFormat    = 0x08
	offArch      = 0x0a
	offFlags     = 0x0c
	offELFLen    = 0x10
	offBuildID   = 0x18
	offKeyID     = 0x38
	offVerLen    = 0x40
	offReserved1 = 0x42
	offReserved2 = 0x44
)

// Header is the unauthenticated part of a bundle that ReadHeader parses:
// enough to say what a bundle claims to be before its signature is checked.
type Header struct {
	Format    uint16
	Arch      uint16
	BuildID   [32]byte
	KeyID     KeyID
	Version   string
	ELFOffset int // offset of the ELF in the bundle
	ELFLen    int
	Len       int // length of the whole bundle, signature included
}

// Image is a verified image: what the stager and the purgatory need, and
// what the update service reports.
type Image struct {
	Header
	// Entry is the 32-bit PVH entry point (from the PVH ELF note).
	Entry uint64
	// Segments are the PT_LOAD segments in file order; their Data alias
	// the bundle.
	Segments []Segment
	// HandoffFormats are the handoff container format versions the image
	// reads (layout.HandoffFormatsSymbol).
	HandoffFormats []uint32
	// TaskManifest lists the image's tasks and the state versions they
	// read (layout.TaskManifestSymbol; updater/task.ParseManifest); empty
	// if the image declares none. It is covered by the signature.
	TaskManifest string
	// ELF is the ELF file, a sub-slice of the bundle.
	ELF []byte
}

// String is a short human summary, one fact per line.
func (im *Image) String() string {
	var b strings.Builder
	v := im.Version
	if v == "" {
		v = "(none)"
	}
	fmt.Fprintf(&b, "version   %s\n", v)
	fmt.Fprintf(&b, "build ID  %x\n", im.BuildID)
	fmt.Fprintf(&b, "signed by key %s\n", im.KeyID)
	fmt.Fprintf(&b, "entry     %#x (PVH)\n", im.Entry)
	for _, s := range im.Segments {
		fmt.Fprintf(&b, "segment   %#x-%#x %v, %d file bytes\n", s.Addr, s.End(), s.Flags, len(s.Data))
	}
	fmt.Fprintf(&b, "handoff   reads format %v\n", im.HandoffFormats)
	return b.String()
}

// Limits are the facts about the running kernel that Verify checks an image
// against.
type Limits struct {
	// StagingSize is the room in the staging area, in bytes: the whole
	// bundle must fit, because the update service keeps it in an image
	// store slot (layout.ImageSlotSize) and the purgatory copies the
	// segments' file bytes straight out of it.
	StagingSize uint64
	// HandoffFormat is the handoff container format version the running
	// kernel will write (handoff.FormatVersion of its own code).
	HandoffFormat uint32
}

// DefaultLimits returns DefaultStagingSize and the handoff format this
// package's build of updater/handoff writes.
func DefaultLimits() Limits {
	return Limits{StagingSize: DefaultStagingSize, HandoffFormat: handoff.FormatVersion}
}

// ReadHeader parses and checks the header of a bundle: magic, format
// version, architecture, reserved fields, the version string, and that the
// lengths add up to exactly len(bundle). It does not check the signature, so
// nothing it returns is authenticated.
func ReadHeader(bundle []byte) (*Header, error) {
	h, err := ReadHeaderPrefix(bundle)
	if err != nil {
		return nil, err
	}
	if h.Len != len(bundle) {
		return nil, errorf(ErrFormat, "%d bytes after the signature (the header says %d bytes, the input has %d)", len(bundle)-h.Len, h.Len, len(bundle))
	}
	return h, nil
}

// ReadHeaderPrefix is ReadHeader for a bundle at the start of b, which may
// be longer (an image store slot): bytes after Header.Len are ignored.
func ReadHeaderPrefix(bundle []byte) (*Header, error) {
	le := binary.LittleEndian
	if len(bundle) < len(Magic) || string(bundle[:len(Magic)]) != Magic {
		if len(bundle) >= 4 && string(bundle[:4]) == elf.ELFMAG {
			return nil, errorf(ErrFormat, "this is an ELF file, not a signed bundle (molt build writes one next to the ELF; molt push -key signs an ELF)")
		}
		n := min(len(bundle), len(Magic))
		return nil, errorf(ErrFormat, "bad magic %q, want %q (not a molt image bundle)", bundle[:n], Magic)
	}
	if len(bundle) < HeaderSize {
		return nil, errorf(ErrFormat, "truncated: %d bytes, the header alone is %d", len(bundle), HeaderSize)
	}
	h := &Header{Format: le.Uint16(bundle[offFormat:]), Arch: le.Uint16(bundle[offArch:])}
	if h.Format != FormatVersion {
		newer := "older"
		if h.Format > FormatVersion {
			newer = "newer"
		}
		return nil, errorf(ErrFormatVersion, "bundle format %d, this kernel reads %d (the bundle is %s)", h.Format, FormatVersion, newer)
	}
	if h.Arch != ArchX86_64 {
		return nil, errorf(ErrArch, "bundle is for %v, this kernel runs on %v", elf.Machine(h.Arch), elf.EM_X86_64)
	}
	if f := le.Uint32(bundle[offFlags:]); f != 0 {
		return nil, errorf(ErrFormat, "flags %#x: format %d defines none", f, FormatVersion)
	}
	if r1, r2 := le.Uint16(bundle[offReserved1:]), le.Uint32(bundle[offReserved2:]); r1 != 0 || r2 != 0 {
		return nil, errorf(ErrFormat, "reserved header bytes at %#x are not zero", offReserved1)
	}
	copy(h.BuildID[:], bundle[offBuildID:])
	copy(h.KeyID[:], bundle[offKeyID:])
	vlen := int(le.Uint16(bundle[offVerLen:]))
	if vlen > MaxVersionLen {
		return nil, errorf(ErrFormat, "version string length %d, at most %d", vlen, MaxVersionLen)
	}
	h.ELFOffset = HeaderSize + pad8(vlen)
	if len(bundle) < h.ELFOffset {
		return nil, errorf(ErrFormat, "truncated: %d bytes, the header with its version string is %d", len(bundle), h.ELFOffset)
	}
	ver := bundle[HeaderSize : HeaderSize+vlen]
	if err := checkVersion(ver); err != nil {
		return nil, err
	}
	for _, c := range bundle[HeaderSize+vlen : h.ELFOffset] {
		if c != 0 {
			return nil, errorf(ErrFormat, "nonzero padding after the version string")
		}
	}
	elfLen := le.Uint64(bundle[offELFLen:])
	if elfLen > MaxELFSize {
		return nil, errorf(ErrFormat, "ELF length %d is above the cap %d", elfLen, MaxELFSize)
	}
	want := uint64(h.ELFOffset) + elfLen + SignatureSize
	if uint64(len(bundle)) < want {
		return nil, errorf(ErrFormat, "truncated: %d bytes, the header says %d (%d-byte ELF)", len(bundle), want, elfLen)
	}
	h.ELFLen, h.Len = int(elfLen), int(want)
	h.Version = string(ver)
	return h, nil
}

// checkVersion refuses version strings that are not printable ASCII
// without spaces: they end up in logs, reports and terminals.
func checkVersion(v []byte) error {
	if len(v) > MaxVersionLen {
		return errorf(ErrFormat, "version string is %d bytes, at most %d allowed", len(v), MaxVersionLen)
	}
	for i, c := range v {
		if c <= ' ' || c > '~' {
			return errorf(ErrFormat, "version string has byte %#x at %d: want printable ASCII without spaces", c, i)
		}
	}
	return nil
}

func pad8(n int) int { return (n + 7) &^ 7 }

// Verify authenticates bundle with the trusted keys and checks that the
// image it holds can replace the running kernel under limits. On success the
// returned Image's byte slices alias bundle. Checks run cheapest first and
// the ELF is only parsed once the signature is good; see docs/images.md §3
// for the full list. Every refusal wraps one of the sentinel errors.
func Verify(bundle []byte, trusted []ed25519.PublicKey, limits Limits) (*Image, error) {
	if limits.StagingSize == 0 || limits.HandoffFormat == 0 {
		return nil, fmt.Errorf("image: invalid limits %+v: the staging size and the handoff format must be set (DefaultLimits)", limits)
	}
	h, err := ReadHeader(bundle)
	if err != nil {
		return nil, err
	}
	// Before the signature: hashing a bundle that cannot be staged anyway
	// would only cost time (SHA-512 over tens of MiB is slow under TCG).
	if n := uint64(len(bundle)); n > limits.StagingSize {
		return nil, errorf(ErrTooBig, "the bundle is %d bytes (%s), the staging area holds %d (%s)", n, mib(n), limits.StagingSize, mib(limits.StagingSize))
	}
	var key ed25519.PublicKey
	for i, k := range trusted {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("image: trusted key %d is %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
		if KeyIDOf(k) == h.KeyID {
			key = k
			break
		}
	}
	if key == nil {
		if len(trusted) == 0 {
			return nil, errorf(ErrUnknownKey, "signed by key %s, and this kernel trusts no key (it was built without molt build -key)", h.KeyID)
		}
		ids := make([]string, len(trusted))
		for i, k := range trusted {
			ids[i] = KeyIDOf(k).String()
		}
		return nil, errorf(ErrUnknownKey, "signed by key %s, this kernel trusts %s", h.KeyID, strings.Join(ids, ", "))
	}
	signed := len(bundle) - SignatureSize
	if !ed25519.Verify(key, bundle[:signed], bundle[signed:]) {
		return nil, errorf(ErrSignature, "the signature does not verify with trusted key %s: the bundle was changed after signing, or not signed by that key", h.KeyID)
	}

	elfBytes := bundle[h.ELFOffset : h.ELFOffset+h.ELFLen : h.ELFOffset+h.ELFLen]
	e, err := parseELF(elfBytes)
	if err != nil {
		return nil, err
	}
	var id [32]byte
	copy(id[:], elfBytes[e.buildIDOff:])
	if id != h.BuildID {
		return nil, errorf(ErrFormat, "the header names build ID %x, the ELF carries %x", h.BuildID, id)
	}
	if e.hasVersion && e.version != h.Version {
		return nil, errorf(ErrFormat, "the header names version %q, the ELF carries %q", h.Version, e.version)
	}
	if err := checkLayout(e.segments); err != nil {
		return nil, err
	}
	if !slices.Contains(e.handoffFormats, limits.HandoffFormat) {
		return nil, errorf(ErrHandoff, "the image reads handoff formats %v, the running kernel writes format %d", e.handoffFormats, limits.HandoffFormat)
	}
	return &Image{Header: *h, Entry: e.pvhEntry, Segments: e.segments, HandoffFormats: e.handoffFormats, TaskManifest: e.manifest, ELF: elfBytes}, nil
}

// region is a range of physical addresses an image must not load into.
type region struct {
	start, end uint64 // [start, end)
	name       string
}

// reserved lists every range outside [layout.ImageBase, layout.ImageLimit):
// an image loads only where the running kernel's own image lies, because
// everything else is in use while the old kernel runs (stacks, page tables,
// the purgatory), must survive the jump (the handoff region), or belongs to
// devices and allocators the new kernel starts with.
var reserved = []region{
	{0, layout.ImageBase, "the boot area (page 0, purgatory, boot page tables, GDT, stacks)"},
	{layout.ImageLimit, layout.HandoffBase, "the space between the image limit and the handoff region"},
	{layout.HandoffBase, layout.HandoffBase + layout.HandoffSize, "the handoff region"},
	{layout.DMABase, layout.DMABase + layout.DMASize, "the DMA region"},
	{layout.ImageStoreBase, layout.ImageStoreBase + layout.ImageSlots*layout.ImageSlotSize, "the image store"},
	{layout.ImageStoreBase + layout.ImageSlots*layout.ImageSlotSize, layout.FramePoolBase, "the space between the image store and the frame pool"},
	{layout.FramePoolBase, layout.MMIOBase, "the frame pool"},
	{layout.MMIOBase, 1 << 32, "the MMIO window"},
	{1 << 32, ^uint64(0), "the Go runtime's virtual addresses (at or above 4 GiB)"},
}

// checkLayout refuses segments that overlap a reserved region or each other.
func checkLayout(segs []Segment) error {
	for i, s := range segs {
		for _, r := range reserved {
			if r.start < r.end && s.Addr < r.end && r.start < s.End() {
				return errorf(ErrReservedRegion, "PT_LOAD %#x-%#x overlaps %s (%#x-%#x)", s.Addr, s.End(), r.name, r.start, r.end)
			}
		}
		for _, t := range segs[:i] {
			if s.Addr < t.End() && t.Addr < s.End() {
				return errorf(ErrSegmentOverlap, "PT_LOAD %#x-%#x overlaps PT_LOAD %#x-%#x", s.Addr, s.End(), t.Addr, t.End())
			}
		}
	}
	return nil
}

// InspectSlot is Inspect for a bundle lying at the start of an image store
// slot, followed by whatever the slot held before: its header says how
// long it is.
func InspectSlot(slot []byte) (*Image, error) {
	h, err := ReadHeaderPrefix(slot)
	if err != nil {
		return nil, err
	}
	return Inspect(slot[:h.Len])
}

// Inspect parses a bundle without authenticating it: for an image this
// kernel already trusted, such as the previous image still in its image
// store slot, which a rollback returns to. The header, the ELF structure
// and the layout are checked as in Verify; the signature is not, since
// checking it would cost (under TCG) half a second of the new kernel's
// boot.
func Inspect(bundle []byte) (*Image, error) {
	h, err := ReadHeader(bundle)
	if err != nil {
		return nil, err
	}
	elfBytes := bundle[h.ELFOffset : h.ELFOffset+h.ELFLen : h.ELFOffset+h.ELFLen]
	e, err := parseELF(elfBytes)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(e.segments); err != nil {
		return nil, err
	}
	return &Image{Header: *h, Entry: e.pvhEntry, Segments: e.segments, HandoffFormats: e.handoffFormats, TaskManifest: e.manifest, ELF: elfBytes}, nil
}

// Sign checks that elfBytes is a post-linked molt image that Verify could
// accept (ELF structure, entry, layout, symbols, and a build ID that matches
// the file) and returns it as a bundle signed with key. The version and
// build ID in the header are the ones stamped into the ELF.
func Sign(elfBytes []byte, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("image: sign: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if len(elfBytes) > MaxELFSize {
		return nil, errorf(ErrFormat, "ELF is %d bytes, above the cap %d", len(elfBytes), MaxELFSize)
	}
	e, err := parseELF(elfBytes)
	if err != nil {
		return nil, err
	}
	if err := checkLayout(e.segments); err != nil {
		return nil, err
	}
	id := layout.BuildIDOf(elfBytes, e.buildIDOff)
	if !bytes.Equal(id[:], elfBytes[e.buildIDOff:e.buildIDOff+buildIDSize]) {
		return nil, errorf(ErrFormat, "stored build ID %x does not match the file's %x: the image was not post-linked, or was changed afterwards", elfBytes[e.buildIDOff:e.buildIDOff+buildIDSize], id)
	}
	if err := checkVersion([]byte(e.version)); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	elfOff := HeaderSize + pad8(len(e.version))
	b := make([]byte, elfOff, elfOff+len(elfBytes)+SignatureSize)
	copy(b[offMagic:], Magic)
	le.PutUint16(b[offFormat:], FormatVersion)
	le.PutUint16(b[offArch:], ArchX86_64)
	le.PutUint64(b[offELFLen:], uint64(len(elfBytes)))
	copy(b[offBuildID:], id[:])
	kid := KeyIDOf(key.Public().(ed25519.PublicKey))
	copy(b[offKeyID:], kid[:])
	le.PutUint16(b[offVerLen:], uint16(len(e.version)))
	copy(b[HeaderSize:], e.version)
	b = append(b, elfBytes...)
	return append(b, ed25519.Sign(key, b)...), nil
}

// mib formats a byte count in MiB for messages.
func mib(n uint64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// IsRefusal reports whether err is one of this package's refusals (wraps a
// sentinel), as opposed to a misuse such as invalid limits.
func IsRefusal(err error) bool {
	for _, s := range Sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
