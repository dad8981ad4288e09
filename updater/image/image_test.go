package image

import (
	"bytes"
	"crypto/ed25519"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	boot "github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/updater/image/imagetest"
)

// Fixed test keys, so that seeds and golden bundles are reproducible.
var (
	testKey  = imagetest.Key(7)
	otherKey = imagetest.Key(9)
	testPub  = testKey.Public().(ed25519.PublicKey)
	otherPub = otherKey.Public().(ed25519.PublicKey)
)

func trusted() []ed25519.PublicKey { return []ed25519.PublicKey{testPub} }

// rawBundle builds a bundle around any ELF bytes, without the checks of
// Sign, so that Verify's own checks can be reached. Header fields come from
// the ELF when it parses, else they are zero.
func rawBundle(elfBytes []byte, key ed25519.PrivateKey, edit func(hdr []byte)) []byte {
	le := binary.LittleEndian
	var id [32]byte
	version := ""
	if e, err := parseELF(elfBytes); err == nil {
		copy(id[:], elfBytes[e.buildIDOff:])
		version = e.version
	}
	b := make([]byte, HeaderSize+pad8(len(version)))
	copy(b, Magic)
	le.PutUint16(b[offFormat:], FormatVersion)
	le.PutUint16(b[offArch:], ArchX86_64)
	le.PutUint64(b[offELFLen:], uint64(len(elfBytes)))
	copy(b[offBuildID:], id[:])
	kid := KeyIDOf(key.Public().(ed25519.PublicKey))
	copy(b[offKeyID:], kid[:])
	le.PutUint16(b[offVerLen:], uint16(len(version)))
	copy(b[HeaderSize:], version)
	if edit != nil {
		edit(b)
	}
	b = append(b, elfBytes...)
	return append(b, ed25519.Sign(key, b)...)
}

// resign replaces the signature of a bundle with a valid one by key.
func resign(b []byte, key ed25519.PrivateKey) []byte {
	if len(b) < SignatureSize {
		return b
	}
	n := len(b) - SignatureSize
	copy(b[n:], ed25519.Sign(key, b[:n]))
	return b
}

func mustSign(t testing.TB, e []byte) []byte {
	t.Helper()
	b, err := Sign(e, testKey)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return b
}

func TestSignVerify(t *testing.T) {
	s := newSynth()
	e := s.bytes()
	b := mustSign(t, e)
	im, err := Verify(b, []ed25519.PublicKey{otherPub, testPub}, DefaultLimits())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if im.Entry != synthEntry || im.Version != synthVersion || im.KeyID != KeyIDOf(testPub) || im.Format != FormatVersion || im.Arch != ArchX86_64 {
		t.Errorf("image = %+v", im.Header)
	}
	if !reflect.DeepEqual(im.HandoffFormats, []uint32{1}) {
		t.Errorf("handoff formats %v, want [1]", im.HandoffFormats)
	}
	if len(im.Segments) != 2 || im.Segments[0].Addr != synthText || im.Segments[1].Memsz != synthBSS || !bytes.Equal(im.Segments[0].Data, s.loads[0].data) {
		t.Errorf("segments %+v", im.Segments)
	}
	if im.Segments[0].Flags != elf.PF_R|elf.PF_X {
		t.Errorf("text flags %v", im.Segments[0].Flags)
	}
	if !bytes.Equal(im.ELF, e) || im.ELFOffset != HeaderSize+16 || im.ELFLen != len(e) {
		t.Errorf("ELF at %d, %d bytes", im.ELFOffset, im.ELFLen)
	}
	if want := layout.BuildIDOf(e, synthBuildIDOffset(t, e)); im.BuildID != want {
		t.Errorf("build ID %x, want %x", im.BuildID, want)
	}
	if s := im.String(); !strings.Contains(s, synthVersion) || !strings.Contains(s, KeyIDOf(testPub).String()) {
		t.Errorf("String() = %q", s)
	}
	// Signing is deterministic (ed25519 is).
	if b2 := mustSign(t, e); !bytes.Equal(b, b2) {
		t.Error("two signatures of one image differ")
	}
	// The header can be read without the key.
	h, err := ReadHeader(b)
	if err != nil || h.Version != synthVersion || h.BuildID != im.BuildID || h.Len != len(b) {
		t.Errorf("ReadHeader = %+v, %v", h, err)
	}
	// In a slot, the bundle is followed by whatever the slot held before.
	slot := append(bytes.Clone(b), make([]byte, 4096)...)
	if h, err := ReadHeaderPrefix(slot); err != nil || h.Len != len(b) {
		t.Errorf("ReadHeaderPrefix = %+v, %v", h, err)
	}
	if _, err := ReadHeaderPrefix(b[:len(b)-1]); !errors.Is(err, ErrFormat) {
		t.Errorf("ReadHeaderPrefix of a truncated bundle: %v", err)
	}
}

func synthBuildIDOffset(t *testing.T, e []byte) uint64 {
	img, err := parseELF(e)
	if err != nil {
		t.Fatal(err)
	}
	return img.buildIDOff
}

func TestVariants(t *testing.T) {
	// Accepted variations: an empty version, a 4-byte PVH descriptor, other
	// notes before the PVH note, several handoff formats, BSS up to the
	// image limit.
	for name, f := range map[string]func(s *synth){
		"no version":       func(s *synth) { s.version = "" },
		"no version var":   func(s *synth) { s.dropSym(layout.VersionVar) },
		"32-bit pvh note":  func(s *synth) { s.pvhDescSize = 4 },
		"extra note":       func(s *synth) { s.extraNote = true },
		"formats 2 1":      func(s *synth) { s.setFormats(0, 2, 0, 1) },
		"bss to the limit": func(s *synth) { s.loads[1].memsz = layout.ImageLimit - synthData },
	} {
		t.Run(name, func(t *testing.T) {
			s := newSynth()
			f(s)
			if _, err := Verify(mustSign(t, s.bytes()), trusted(), DefaultLimits()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// refusalCase is one bundle Verify must refuse.
type refusalCase struct {
	name    string
	bundle  []byte
	trusted []ed25519.PublicKey
	limits  *Limits
	want    error
	msg     string
}

func TestRefusals(t *testing.T) {
	limits := DefaultLimits()
	for _, tt := range refusalCases() {
		t.Run(tt.name, func(t *testing.T) {
			tr := trusted()
			if tt.trusted != nil {
				tr = tt.trusted
			}
			l := limits
			if tt.limits != nil {
				l = *tt.limits
			}
			im, err := Verify(tt.bundle, tr, l)
			if im != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, %v; want %v", im, err, tt.want)
			}
			n := 0
			for _, s := range Sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || !IsRefusal(err) {
				t.Errorf("%v wraps %d sentinels, want 1", err, n)
			}
			if !strings.HasPrefix(err.Error(), "image: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q; want it to contain %q", err, tt.msg)
			}
		})
	}
}

func refusalCases() []refusalCase {
	synthWith := func(f func(s *synth)) []byte {
		s := newSynth()
		f(s)
		return rawBundle(s.bytes(), testKey, nil)
	}
	load := func(addr, memsz uint64) synthLoad {
		return synthLoad{addr: addr, paddr: addr, data: make([]byte, 16), memsz: memsz, flags: elf.PF_R}
	}
	good := rawBundle(newSynth().bytes(), testKey, nil)
	return []refusalCase{
		// Container.
		{name: "empty", bundle: nil, want: ErrFormat, msg: "bad magic"},
		{name: "bad magic", bundle: append([]byte("MOLTHAND"), good[8:]...), want: ErrFormat, msg: `bad magic "MOLTHAND"`},
		{name: "an ELF", bundle: newSynth().bytes(), want: ErrFormat, msg: "this is an ELF file"},
		{name: "truncated header", bundle: good[:HeaderSize-1], want: ErrFormat, msg: "truncated"},
		{name: "truncated", bundle: good[:len(good)-1], want: ErrFormat, msg: "truncated"},
		{name: "trailing bytes", bundle: append(bytes.Clone(good), 0), want: ErrFormat, msg: "1 bytes after the signature"},
		{name: "newer format", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { h[offFormat] = 2 }), want: ErrFormatVersion, msg: "bundle format 2, this kernel reads 1 (the bundle is newer)"},
		{name: "arch arm64", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { binary.LittleEndian.PutUint16(h[offArch:], uint16(elf.EM_AARCH64)) }), want: ErrArch, msg: "bundle is for EM_AARCH64"},
		{name: "flags", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { h[offFlags] = 1 }), want: ErrFormat, msg: "flags 0x1"},
		{name: "reserved", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { h[offReserved2+3] = 1 }), want: ErrFormat, msg: "reserved"},
		{name: "version too long", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { binary.LittleEndian.PutUint16(h[offVerLen:], 129) }), want: ErrFormat, msg: "length 129"},
		{name: "version with space", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { h[HeaderSize+2] = ' ' }), want: ErrFormat, msg: "printable ASCII"},
		{name: "version padding", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { h[HeaderSize+15] = 'x' }), want: ErrFormat, msg: "padding"},
		{name: "huge ELF length", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { binary.LittleEndian.PutUint64(h[offELFLen:], 1<<62) }), want: ErrFormat, msg: "above the cap"},

		// Keys and signature.
		{name: "unknown key", bundle: rawBundle(newSynth().bytes(), otherKey, nil), want: ErrUnknownKey, msg: "signed by key " + KeyIDOf(otherPub).String() + ", this kernel trusts " + KeyIDOf(testPub).String()},
		{name: "no trusted key", bundle: good, trusted: []ed25519.PublicKey{}, want: ErrUnknownKey, msg: "trusts no key"},
		{name: "changed ELF byte", bundle: func() []byte { b := bytes.Clone(good); b[HeaderSize+16+0x200] ^= 1; return b }(), want: ErrSignature, msg: "does not verify with trusted key"},
		{name: "changed signature", bundle: func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(), want: ErrSignature, msg: "bad signature"},
		{name: "changed header version", bundle: func() []byte { b := bytes.Clone(good); b[HeaderSize] = 'w'; return b }(), want: ErrSignature},

		// Architecture.
		{name: "ELF arm64", bundle: synthWith(func(s *synth) { s.machine = elf.EM_AARCH64 }), want: ErrArch, msg: "ELF machine EM_AARCH64, want EM_X86_64"},
		{name: "ELFCLASS32", bundle: synthWith(func(s *synth) { s.class = elf.ELFCLASS32 }), want: ErrArch, msg: "ELFCLASS32"},
		{name: "big-endian", bundle: synthWith(func(s *synth) { s.data = elf.ELFDATA2MSB }), want: ErrArch, msg: "little-endian"},
		{name: "ET_DYN", bundle: synthWith(func(s *synth) { s.typ = elf.ET_DYN }), want: ErrArch, msg: "ET_DYN"},

		// Layout.
		{name: "below the image base", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(layout.PurgatoryBase, 0x100)) }), want: ErrReservedRegion, msg: "PT_LOAD 0x8000-0x8100 overlaps the boot area"},
		{name: "into the handoff region", bundle: synthWith(func(s *synth) { s.loads[1].memsz = layout.HandoffBase - synthData + 1 }), want: ErrReservedRegion, msg: "overlaps the handoff region (0x6000000-0x7000000)"},
		{name: "DMA region", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(layout.DMABase+0x1000, 0x100)) }), want: ErrReservedRegion, msg: "the DMA region"},
		{name: "image store", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(layout.ImageStoreBase+layout.ImageSlotSize, 0x100)) }), want: ErrReservedRegion, msg: "the image store"},
		{name: "frame pool", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(layout.FramePoolBase+0x100000, 0x100)) }), want: ErrReservedRegion, msg: "the frame pool"},
		{name: "MMIO", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(layout.MMIOBase, 0x100)) }), want: ErrReservedRegion, msg: "MMIO"},
		{name: "above 4 GiB", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(5<<30, 0x100)) }), want: ErrReservedRegion, msg: "at or above 4 GiB"},
		{name: "segments overlap", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(synthData+0x8000, 0x100)) }), want: ErrSegmentOverlap, msg: "PT_LOAD 0x209000-0x209100 overlaps PT_LOAD 0x201000-0x211000"},
		{name: "paddr != vaddr", bundle: synthWith(func(s *synth) { s.loads[1].paddr += 0x1000 }), want: ErrAddress, msg: "has physical address 0x202000"},
		{name: "wraps", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, load(^uint64(0)-0xf, 0x100)) }), want: ErrFormat, msg: "wraps around"},
		{name: "too many segments", bundle: synthWith(func(s *synth) {
			for i := range MaxSegments {
				s.loads = append(s.loads, load(synthData+synthBSS+uint64(i)*0x1000, 0x100))
			}
		}), want: ErrFormat, msg: "more than 16 PT_LOAD"},

		// Entry.
		{name: "no PVH note", bundle: synthWith(func(s *synth) { s.pvh = false }), want: ErrEntry, msg: "no PVH entry note"},
		{name: "PVH disagrees", bundle: synthWith(func(s *synth) { s.pvhEntry += 4 }), want: ErrEntry, msg: "PVH note enters at 0x200044 but e_entry is 0x200040"},
		{name: "PVH descriptor size", bundle: synthWith(func(s *synth) { s.pvhDescSize = 2 }), want: ErrEntry, msg: "2-byte descriptor"},
		{name: "entry in data", bundle: synthWith(func(s *synth) { s.entry, s.pvhEntry = synthData+8, synthData+8 }), want: ErrEntry, msg: "not inside the file bytes of an executable PT_LOAD"},
		{name: "entry in BSS", bundle: synthWith(func(s *synth) { s.entry, s.pvhEntry = synthData+0x2000, synthData+0x2000 }), want: ErrEntry, msg: "executable PT_LOAD"},
		{name: "text not executable", bundle: synthWith(func(s *synth) { s.loads[0].flags = elf.PF_R }), want: ErrEntry, msg: "executable PT_LOAD"},

		// Size and handoff.
		{name: "too big for staging", bundle: good, limits: &Limits{StagingSize: uint64(len(good) - 1), HandoffFormat: 1}, want: ErrTooBig, msg: fmt.Sprintf("the bundle is %d bytes (0.00 MiB), the staging area holds %d", len(good), len(good)-1)},
		{name: "newer handoff only", bundle: synthWith(func(s *synth) { s.setFormats(2, 3) }), want: ErrHandoff, msg: "reads handoff formats [2 3], the running kernel writes format 1"},
		{name: "no handoff formats", bundle: synthWith(func(s *synth) { s.dropSym(layout.HandoffFormatsSymbol) }), want: ErrHandoff, msg: "declares no handoff formats"},
		{name: "empty handoff formats", bundle: synthWith(func(s *synth) { s.setFormats() }), want: ErrHandoff, msg: "is empty"},

		// ELF structure and consistency with the header.
		{name: "interp", bundle: synthWith(func(s *synth) { s.interp = true }), want: ErrFormat, msg: "statically linked"},
		{name: "no build ID", bundle: synthWith(func(s *synth) { s.dropSym(layout.BuildIDSymbol) }), want: ErrFormat, msg: "build ID symbol"},
		{name: "build ID in BSS", bundle: synthWith(func(s *synth) { s.syms[1].value = synthData + 0x1000 }), want: ErrFormat, msg: "has no file bytes"},
		{name: "header build ID", bundle: rawBundle(newSynth().bytes(), testKey, func(h []byte) { h[offBuildID] ^= 1 }), want: ErrFormat, msg: "the header names build ID"},
		{name: "filesz > memsz", bundle: synthWith(func(s *synth) { s.loads[0].memsz = 0x10 }), want: ErrFormat, msg: "p_filesz 0x100 > p_memsz 0x10"},
		{name: "empty segment", bundle: synthWith(func(s *synth) { s.loads = append(s.loads, synthLoad{addr: 0x300000, paddr: 0x300000}) }), want: ErrFormat, msg: "empty"},
	}
}

func TestVerifyMisuse(t *testing.T) {
	good := mustSign(t, newSynth().bytes())
	if _, err := Verify(good, trusted(), Limits{}); err == nil || IsRefusal(err) || !strings.Contains(err.Error(), "invalid limits") {
		t.Errorf("zero limits: %v", err)
	}
	if _, err := Verify(good, []ed25519.PublicKey{testPub[:31]}, DefaultLimits()); err == nil || IsRefusal(err) || !strings.Contains(err.Error(), "trusted key 0 is 31 bytes") {
		t.Errorf("short trusted key: %v", err)
	}
}

func TestSignRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    func(s *synth)
		want error
		msg  string
	}{
		{"not post-linked", func(s *synth) { s.noStamp = true }, ErrFormat, "not post-linked"},
		{"no PVH note", func(s *synth) { s.pvh = false }, ErrEntry, "no PVH entry note"},
		{"arm64", func(s *synth) { s.machine = elf.EM_AARCH64 }, ErrArch, "EM_AARCH64"},
		{"overlap", func(s *synth) { s.loads[1].memsz = layout.HandoffBase }, ErrReservedRegion, "handoff region"},
		{"version with a control byte", func(s *synth) { s.version = "v\x011" }, ErrFormat, "printable"},
		{"no handoff formats", func(s *synth) { s.setFormats() }, ErrHandoff, "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSynth()
			tt.f(s)
			b, err := Sign(s.bytes(), testKey)
			if b != nil || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Sign = %d bytes, %v; want %v containing %q", len(b), err, tt.want, tt.msg)
			}
		})
	}
	if _, err := Sign(newSynth().bytes(), testKey[:10]); err == nil || !strings.Contains(err.Error(), "private key is 10 bytes") {
		t.Errorf("short key: %v", err)
	}
}

// TestReservedCoversOutside checks that the reserved table leaves exactly
// [ImageBase, ImageLimit) free, whatever the layout constants become.
func TestReservedCoversOutside(t *testing.T) {
	for _, a := range []uint64{0, layout.PurgatoryBase, layout.ImageBase - 1, layout.ImageLimit, layout.HandoffBase + layout.HandoffSize, layout.DMABase + layout.DMASize, layout.ImageStoreBase, layout.FramePoolBase - 1, layout.FramePoolBase, 1 << 32, ^uint64(0) - 1} {
		if checkLayout([]Segment{{Addr: a, Memsz: 1}}) == nil {
			t.Errorf("a byte at %#x is not reserved", a)
		}
	}
	for _, a := range []uint64{layout.ImageBase, layout.ImageText, layout.ImageLimit - 1} {
		if err := checkLayout([]Segment{{Addr: a, Memsz: 1}}); err != nil {
			t.Errorf("a byte at %#x: %v", a, err)
		}
	}
}

// TestTrustedKeysVar checks that layout.TrustedKeysVar names this
// package's variable, so that molt build's -X reaches it.
func TestTrustedKeysVar(t *testing.T) {
	if want := reflect.TypeOf(KeyID{}).PkgPath() + ".trustedKeys"; layout.TrustedKeysVar != want {
		t.Errorf("layout.TrustedKeysVar = %q, want %q", layout.TrustedKeysVar, want)
	}
	saved := trustedKeys
	defer func() { trustedKeys = saved }()
	trustedKeys = FormatTrustedKeys(testPub, otherPub)
	keys, err := TrustedKeys()
	if err != nil || len(keys) != 2 || !keys[0].Equal(testPub) || !keys[1].Equal(otherPub) {
		t.Errorf("TrustedKeys() = %v, %v", keys, err)
	}
	for _, bad := range []string{"zz", "00", FormatTrustedKeys(testPub) + ",", " " + FormatTrustedKeys(testPub)} {
		if _, err := ParseTrustedKeys(bad); err == nil {
			t.Errorf("ParseTrustedKeys(%q) accepted", bad)
		}
	}
	if k, err := ParseTrustedKeys(""); k != nil || err != nil {
		t.Errorf("ParseTrustedKeys(\"\") = %v, %v", k, err)
	}
}

func TestKeyFiles(t *testing.T) {
	priv := MarshalPrivateKey(testKey)
	pub := MarshalPublicKey(testPub)
	for _, want := range []string{"# molt image signing key", "PRIVATE", PrivateKeyTag + " "} {
		if !bytes.Contains(priv, []byte(want)) {
			t.Errorf("private key file %q lacks %q", priv, want)
		}
	}
	if k, err := ParsePrivateKey(priv); err != nil || !k.Equal(testKey) {
		t.Errorf("ParsePrivateKey = %v", err)
	}
	if k, err := ParsePublicKey(pub); err != nil || !k.Equal(testPub) {
		t.Errorf("ParsePublicKey = %v", err)
	}
	for _, tt := range []struct {
		text string
		pub  bool
		msg  string
	}{
		{string(pub), false, "this is a molt-ed25519-public-v1 key"},
		{string(priv), true, "this is a molt-ed25519-private-v1 key"},
		{"", false, "no \"molt-ed25519-private-v1\" line"},
		{"# only a comment\n", true, "no "},
		{PrivateKeyTag + " 00\n", false, "want 64 hex digits"},
		{"ssh-ed25519 AAAA\n", true, `starts with "ssh-ed25519"`},
		{string(priv) + string(priv[bytes.Index(priv, []byte(PrivateKeyTag)):]), false, "a second key"},
	} {
		var err error
		if tt.pub {
			_, err = ParsePublicKey([]byte(tt.text))
		} else {
			_, err = ParsePrivateKey([]byte(tt.text))
		}
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("parsing %q: %v; want %q", tt.text, err, tt.msg)
		}
	}
	// Windows line ends and trailing spaces are tolerated.
	crlf := strings.ReplaceAll(string(priv), "\n", " \r\n")
	if k, err := ParsePrivateKey([]byte(crlf)); err != nil || !k.Equal(testKey) {
		t.Errorf("CRLF key file: %v", err)
	}
}

// TestRealImage signs and verifies an image linked by the real toolchain
// and post-linked by boot/image, with the kernel's own handoff format
// declaration (kernel/imageinfo.go) copied in: the symbols must be found
// where Go's linker puts them, and the kernel's list must contain the
// format this tree's updater/handoff writes.
func TestRealImage(t *testing.T) {
	e := imagetest.TinyKernel(t, "v0.1-real")
	path := filepath.Join(t.TempDir(), "molt.elf")
	if err := os.WriteFile(path, e, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := boot.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	b := mustSign(t, e)
	im, err := Verify(b, trusted(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if im.Entry != rep.Entry || im.BuildID != rep.BuildID || im.Version != "v0.1-real" || len(im.Segments) != len(rep.Segments) {
		t.Errorf("image %v; post-link report %v", im, rep)
	}
	for i, s := range im.Segments {
		r := rep.Segments[i]
		if s.Addr != r.Vaddr || uint64(len(s.Data)) != r.Filesz || s.Memsz != r.Memsz || s.Flags != r.Flags {
			t.Errorf("segment %d: %+v, post-link %+v", i, s, r)
		}
	}
	if !reflect.DeepEqual(im.HandoffFormats, []uint32{1}) {
		t.Errorf("handoff formats %v", im.HandoffFormats)
	}
}

// Inspect reads what Verify reads, without the signature: a bundle with a
// broken signature still inspects, a broken header or layout does not.
func TestInspect(t *testing.T) {
	s := newSynth()
	b := mustSign(t, s.bytes())
	v, err := Verify(b, []ed25519.PublicKey{testPub}, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(b)
	bad[len(bad)-1] ^= 1
	im, err := Inspect(bad)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if im.Entry != v.Entry || im.BuildID != v.BuildID || len(im.Segments) != len(v.Segments) || im.Segments[0].Addr != v.Segments[0].Addr {
		t.Errorf("Inspect = %+v; Verify = %+v", im, v)
	}
	if _, err := Inspect(b[:len(b)-1]); !errors.Is(err, ErrFormat) {
		t.Errorf("Inspect of a truncated bundle: %v; want ErrFormat", err)
	}
	// In a slot, the bundle is followed by what the slot held before.
	slot := append(bytes.Clone(b), bytes.Repeat([]byte{0xaa}, 4096)...)
	if im, err := InspectSlot(slot); err != nil || im.BuildID != v.BuildID {
		t.Errorf("InspectSlot(bundle + old bytes) = %v, %v; want the bundle's image", im, err)
	}
	if _, err := InspectSlot(make([]byte, 4096)); err == nil {
		t.Error("InspectSlot of an empty slot: no error")
	}
}
