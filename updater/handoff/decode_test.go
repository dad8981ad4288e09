package handoff

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func TestRoundTripEmpty(t *testing.T) {
	b := encode(t, Header{Generation: 1, BuildID: id(1)})
	if len(b) != HeaderSize {
		t.Fatalf("empty region is %d bytes; want %d", len(b), HeaderSize)
	}
	r, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode(empty) = %v", err)
	}
	if r.Generation != 1 || r.BuildID != id(1) || r.Count != 0 || len(r.Sections) != 0 || r.Length != HeaderSize || r.Format != FormatVersion {
		t.Errorf("Decode(empty) = %+v", r.Header)
	}
	if r.Sections == nil {
		t.Errorf("Sections is nil; want an empty slice")
	}
	out, err := r.Encode(make([]byte, HeaderSize))
	if err != nil || !bytes.Equal(out, b) {
		t.Errorf("re-encode = %x, %v; want %x", out, err, b)
	}
}

func TestRoundTripManySections(t *testing.T) {
	h := Header{Generation: 42, Flags: FlagRollback, BuildID: id(7)}
	var secs []sec
	for i := range MaxSections {
		p := bytes.Repeat([]byte{byte(i)}, i%19) // every padding length
		secs = append(secs, sec{t: Type(1 + i%5), v: uint32(1 + i%3), f: SectionFlags(i % 2), p: p})
	}
	b := encode(t, h, secs...)
	r, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(r.Sections) != MaxSections || r.Generation != 42 || r.Flags != FlagRollback {
		t.Fatalf("Decode: %d sections, header %+v", len(r.Sections), r.Header)
	}
	for i, s := range r.Sections {
		w := secs[i]
		if s.Index != i || s.Type != w.t || s.Version != w.v || s.Flags != w.f || !bytes.Equal(s.Payload, w.p) {
			t.Fatalf("section %d = %+v; want %+v", i, s, w)
		}
		if s.Offset%Align != 0 || cap(s.Payload) != len(s.Payload) {
			t.Fatalf("section %d: offset %#x, cap %d len %d", i, s.Offset, cap(s.Payload), len(s.Payload))
		}
	}
	out, err := r.Encode(make([]byte, len(b)))
	if err != nil || !bytes.Equal(out, b) {
		t.Fatalf("re-encode differs (err %v)", err)
	}
	// One more section is refused, by count.
	e, _ := NewEncoder(make([]byte, MaxRegionSize), h)
	for i := range MaxSections {
		if err := e.Add(TypeClock, 1, 0, nil); err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
	}
	if err := e.Add(TypeClock, 1, 0, nil); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "4096 sections") {
		t.Errorf("Add beyond MaxSections = %v; want ErrTooLarge naming the cap", err)
	}
}

func TestRoundTripMaxSize(t *testing.T) {
	buf := make([]byte, MaxRegionSize+4096) // larger than the cap: the cap wins
	e, err := NewEncoder(buf, Header{Generation: 9, BuildID: id(9)})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Free(); got != MaxSectionSize {
		t.Fatalf("Free = %d; want %d", got, MaxSectionSize)
	}
	if _, err := e.Reserve(TypeTaskState, 1, 0, MaxSectionSize+1); !errors.Is(err, ErrTooLarge) ||
		!strings.Contains(err.Error(), "task-state v1") {
		t.Fatalf("Reserve(MaxSectionSize+1) = %v; want ErrTooLarge naming task-state v1", err)
	}
	p, err := e.Reserve(TypeTaskState, 1, SectionCritical, MaxSectionSize)
	if err != nil {
		t.Fatalf("Reserve(MaxSectionSize): %v", err)
	}
	for i := range p {
		p[i] = byte(i * 7)
	}
	if e.Free() != 0 {
		t.Errorf("Free after filling = %d", e.Free())
	}
	err = e.Add(TypeClock, 1, 0, nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "section 1") || !strings.Contains(err.Error(), "clock v1") {
		t.Fatalf("Add to a full region = %v; want ErrTooLarge naming section 1 (clock v1)", err)
	}
	b, err := e.Finish()
	if err != nil || len(b) != MaxRegionSize {
		t.Fatalf("Finish = %d bytes, %v; want %d", len(b), err, MaxRegionSize)
	}
	r, err := Decode(buf) // the buffer is longer than the region: fine
	if err != nil {
		t.Fatalf("Decode(max): %v", err)
	}
	if len(r.Sections) != 1 || len(r.Sections[0].Payload) != MaxSectionSize || r.Length != MaxRegionSize {
		t.Fatalf("Decode(max): %+v", r.Header)
	}
	out, err := r.Encode(make([]byte, MaxRegionSize))
	if err != nil || !bytes.Equal(out, b) {
		t.Fatalf("re-encode of the max region differs (err %v)", err)
	}
	// Re-encoding in place, over the payloads it reads, gives the same bytes.
	in := bytes.Clone(b)
	r2, _ := Decode(in)
	if out, err := r2.Encode(in); err != nil || !bytes.Equal(out, b) {
		t.Fatalf("in-place re-encode differs (err %v)", err)
	}
}

func TestEncoderDoesNotFit(t *testing.T) {
	buf := make([]byte, 256)
	e, err := NewEncoder(buf, Header{Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(TypeClock, 1, 0, testClock.Append(nil)); err != nil {
		t.Fatalf("Add(clock): %v", err)
	}
	used := e.Len()
	err = e.Add(TypeUpdateHistory, 1, 0, historyPayload(t, testHistory(2)))
	want := fmt.Sprintf("section 1 at offset %#x: update-history v1 of 264 bytes does not fit: %d of 256 bytes left", used, 256-used)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Add(history) = %v; want ErrTooLarge with %q", err, want)
	}
	if e.Len() != used {
		t.Errorf("a refused section changed the length: %d -> %d", used, e.Len())
	}
	b, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decode(b)
	if err != nil || len(r.Sections) != 1 {
		t.Fatalf("Decode after a refused Add = %v, %v", r, err)
	}
	if _, err := e.Finish(); err == nil {
		t.Errorf("second Finish succeeded")
	}
	if err := e.Add(TypeClock, 1, 0, nil); err == nil {
		t.Errorf("Add after Finish succeeded")
	}
}

func TestEncoderRejects(t *testing.T) {
	if _, err := NewEncoder(make([]byte, HeaderSize-1), Header{Generation: 1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("NewEncoder(short buffer) = %v; want ErrTooLarge", err)
	}
	if _, err := NewEncoder(make([]byte, 512), Header{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewEncoder(generation 0) = %v; want ErrInvalid", err)
	}
	if _, err := NewEncoder(make([]byte, 512), Header{Generation: 1, Flags: 1 << 9}); !errors.Is(err, ErrReserved) {
		t.Errorf("NewEncoder(unknown flag) = %v; want ErrReserved", err)
	}
	e, _ := NewEncoder(make([]byte, 512), Header{Generation: 1})
	for _, c := range []struct {
		t    Type
		v    uint32
		f    SectionFlags
		n    int
		want error
	}{
		{0, 1, 0, 0, ErrInvalid},
		{TypeClock, 0, 0, 0, ErrInvalid},
		{TypeClock, 1, 1 << 4, 0, ErrReserved},
		{TypeClock, 1, 0, -1, ErrInvalid},
		{TypeClock, 1, 0, 1 << 62, ErrTooLarge},
	} {
		if _, err := e.Reserve(c.t, c.v, c.f, c.n); !errors.Is(err, c.want) {
			t.Errorf("Reserve(%v, %d, %v, %d) = %v; want %v", c.t, c.v, c.f, c.n, err, c.want)
		}
	}
	if e.Len() != HeaderSize {
		t.Errorf("refused sections changed the length to %d", e.Len())
	}
}

func TestNewEncoderClearsHeader(t *testing.T) {
	b := sample(t)
	if _, err := NewEncoder(b, Header{Generation: 4}); err != nil {
		t.Fatal(err)
	}
	if st, _, err := Inspect(b); st != Absent {
		t.Errorf("region being rewritten: Inspect = %v, %v; want absent", st, err)
	}
}

// TestDecodeErrors covers every class of malformed input: each case names
// the sentinel, the boot decision and a piece of the message (the offset
// and what was found).
func TestDecodeErrors(t *testing.T) {
	good := sample(t)
	r0, err := Decode(good)
	if err != nil {
		t.Fatalf("Decode(sample): %v", err)
	}
	s0, s1, s2 := r0.Sections[0], r0.Sections[1], r0.Sections[2]
	n := len(good)
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint32(b[off:], v); return b }
	}
	put64 := func(off int, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint64(b[off:], v); return b }
	}
	flip := func(off int) func([]byte) []byte {
		return func(b []byte) []byte { b[off] ^= 1; return b }
	}
	cut := func(m int) func([]byte) []byte { return func(b []byte) []byte { return b[:m] } }
	garbage := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}

	for _, c := range []struct {
		name   string
		mutate func([]byte) []byte
		fix    bool // recompute the checksum after mutating
		want   error
		status Status
		msg    string
	}{
		{"empty input", cut(0), false, ErrTruncated, Absent, "0 bytes cannot hold the 8-byte magic"},
		{"zeros", func([]byte) []byte { return make([]byte, 64<<10) }, false, ErrBadMagic, Absent, "at offset 0x0: region starts with zeros"},
		{"garbage", func([]byte) []byte { return garbage }, false, ErrBadMagic, Absent, "bad magic at offset 0x0: found"},
		{"bad magic", func(b []byte) []byte { b[7] = 'X'; return b }, false, ErrBadMagic, Absent, `found "MOLTHANX", want "MOLTHAND"`},
		{"short garbage", func([]byte) []byte { return []byte("xy") }, false, ErrBadMagic, Absent, `found "xy" (2 bytes)`},
		{"truncated magic", cut(4), false, ErrTruncated, Absent, "4 bytes cannot hold"},
		{"truncated before format version", cut(10), false, ErrTruncated, Corrupt, "10 bytes end before the format version"},
		{"truncated header", cut(HeaderSize - 1), false, ErrTruncated, Corrupt, "103 bytes cannot hold the 104-byte header"},
		{"newer format version", put32(offFormat, 2), false, ErrVersion, Incompatible, "format version 2 at offset 0x8 is newer than the one this reader supports (1)"},
		{"older format version", put32(offFormat, 0), false, ErrVersion, Incompatible, "format version 0 at offset 0x8 is older than"},
		{"unknown header flag", put32(offFlags, 1<<5), true, ErrReserved, Corrupt, "at offset 0xc: unknown header flags 0x20"},
		{"reserved header field", put32(offReserved, 7), true, ErrReserved, Corrupt, "at offset 0x24: reserved field holds 0x7"},
		{"generation 0", put64(offGeneration, 0), true, ErrInvalid, Corrupt, "at offset 0x10: generation 0"},
		{"length below header", put64(offLength, 8), false, ErrInvalid, Corrupt, "length 8 is smaller than the 104-byte header"},
		{"length above cap", put64(offLength, MaxRegionSize+8), false, ErrTooLarge, Corrupt, "length 16777224 exceeds the region size 16777216"},
		{"length misaligned", put64(offLength, uint64(n-4)), true, ErrMisaligned, Corrupt, fmt.Sprintf("at offset 0x18: length %d is not a multiple of 8", n-4)},
		{"length beyond buffer", put64(offLength, uint64(n+8)), false, ErrTruncated, Corrupt, fmt.Sprintf("length field says %d bytes, input has %d", n+8, n)},
		{"truncated section", cut(s1.Offset + 40), false, ErrTruncated, Corrupt, fmt.Sprintf("input has %d", s1.Offset+40)},
		{"section count above cap", put32(offCount, MaxSections+1), true, ErrTooLarge, Corrupt, "at offset 0x20: 4097 sections exceed the cap of 4096"},
		{"section count beyond length", put32(offCount, uint32((n-HeaderSize)/16+1)), true, ErrSectionBounds, Corrupt, "sections need at least"},
		{"checksum: payload byte", flip(s0.Offset + 16), false, ErrChecksum, Corrupt, "checksum mismatch at offset 0x48: stored"},
		{"checksum: build ID byte", flip(offBuildID + 3), false, ErrChecksum, Corrupt, "checksum mismatch"},
		{"checksum: stored sum", flip(offChecksum), false, ErrChecksum, Corrupt, "checksum mismatch"},
		{"checksum: padding byte", flip(s2.Offset + 16 + 5), false, ErrChecksum, Corrupt, "checksum mismatch"},
		{"section beyond length", put32(s1.Offset+secLength, 0x10000), true, ErrSectionBounds, Corrupt,
			fmt.Sprintf("section 1 at offset %#x: update-history payload of 65536 bytes runs past the region end %#x", s1.Offset+secLength, n)},
		{"section header beyond length", put32(offCount, 4), true, ErrSectionBounds, Corrupt,
			fmt.Sprintf("section 3 at offset %#x: section header runs past the region end", n)},
		{"bytes after the last section", put32(offCount, 2), true, ErrSectionBounds, Corrupt,
			fmt.Sprintf("at offset %#x: %d bytes follow the last of 2 sections", s2.Offset, n-s2.Offset)},
		{"section type 0", put32(s1.Offset+secType, 0), true, ErrInvalid, Corrupt, fmt.Sprintf("section 1 at offset %#x: section type 0", s1.Offset)},
		{"section version 0", put32(s0.Offset+secVersion, 0), true, ErrInvalid, Corrupt, "section 0 at offset 0x6c: clock version 0"},
		{"unknown section flag", put32(s2.Offset+secFlags, 3), true, ErrReserved, Corrupt, "unknown section flags 0x2"},
		{"nonzero padding", func(b []byte) []byte { b[s2.Offset+16+3] = 1; return b }, true, ErrReserved, Corrupt,
			fmt.Sprintf("section 2 at offset %#x: nonzero padding", s2.Offset+16+3)},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.mutate(bytes.Clone(good))
			if c.fix && !fixChecksum(b) {
				t.Fatalf("cannot fix the checksum")
			}
			r, err := Decode(b)
			if !errors.Is(err, c.want) || r != nil {
				t.Fatalf("Decode = %v, %v; want %v", r, err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "handoff: ") || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Decode error %q; want it to contain %q", err, c.msg)
			}
			st, r, err2 := Inspect(b)
			if st != c.status || r != nil || err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Inspect = %v, %v, %v; want %v with the Decode error", st, r, err2, c.status)
			}
		})
	}
}

func TestVersionErrorFields(t *testing.T) {
	b := sample(t)
	le.PutUint32(b[offFormat:], 3)
	_, err := Decode(b)
	var ve *VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("Decode(format 3) = %v; want a *VersionError", err)
	}
	if ve.Found != 3 || ve.Min != FormatVersion || ve.Max != FormatVersion || !ve.Newer() || ve.Section != -1 || ve.Offset != offFormat {
		t.Errorf("VersionError = %+v", ve)
	}
	if errors.Is(err, ErrSectionVersion) {
		t.Errorf("a format version error matches ErrSectionVersion")
	}
}

func TestInspectValid(t *testing.T) {
	b := sample(t)
	region := make([]byte, 1<<20) // the reserved range is larger than the region
	copy(region, b)
	st, r, err := Inspect(region)
	if st != Valid || err != nil || r == nil || r.Generation != 3 || len(r.Sections) != 3 {
		t.Fatalf("Inspect = %v, %v, %v; want valid", st, r, err)
	}
	Invalidate(region)
	if st, _, err := Inspect(region); st != Absent || !errors.Is(err, ErrBadMagic) {
		t.Errorf("after Invalidate: Inspect = %v, %v; want absent", st, err)
	}
	for s, want := range map[Status]string{Absent: "absent", Valid: "valid", Corrupt: "corrupt", Incompatible: "incompatible", 9: "status(9)"} {
		if s.String() != want {
			t.Errorf("Status(%d).String() = %q; want %q", int(s), s.String(), want)
		}
	}
}

// TestDecodeAllocation checks that claimed lengths and counts do not drive
// allocation: Decode allocates in proportion to the input it was given.
func TestDecodeAllocation(t *testing.T) {
	big := make([]byte, MaxRegionSize)
	e, _ := NewEncoder(big, Header{Generation: 1})
	if _, err := e.Reserve(TypeTaskState, 1, 0, MaxSectionSize); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Finish(); err != nil {
		t.Fatal(err)
	}
	hdr := bytes.Clone(big[:HeaderSize+SectionHeaderSize]) // claims 16 MiB
	manyCount := bytes.Clone(sample(t))
	le.PutUint32(manyCount[offCount:], MaxSections) // claims 4096 sections
	for _, c := range []struct {
		name  string
		in    []byte
		limit uint64
	}{
		{"valid 16 MiB region, one section", big, 4 << 10},
		{"header claiming 16 MiB", hdr, 4 << 10},
		{"header claiming 4096 sections", manyCount, 4 << 10},
		{"zeros", make([]byte, 1<<20), 4 << 10},
	} {
		got := allocated(func() { Decode(c.in) })
		if got > c.limit {
			t.Errorf("%s: Decode allocated %d bytes; want at most %d", c.name, got, c.limit)
		}
	}
}

// allocated returns the bytes f allocates (exact: ReadMemStats flushes the
// per-P caches).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestFind(t *testing.T) {
	r, err := Decode(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := r.Find(TypeUpdateHistory); !ok || s.Index != 1 || s.Flags != SectionCritical {
		t.Errorf("Find(update-history) = %v, %v", s, ok)
	}
	if _, ok := r.Find(TypeConnTable); ok {
		t.Errorf("Find(conn-table) found a section")
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{TypeClock.String(), "clock"},
		{TypeUpdateHistory.String(), "update-history"},
		{Type(0x99).String(), "type-0x99"},
		{(TypeExperimental + 2).String(), "experimental-0x80000002"},
		{Flags(0).String(), "none"},
		{(FlagRollback | 1<<4).String(), "rollback|0x10"},
		{SectionCritical.String(), "critical"},
		{SectionFlags(0).String(), "none"},
		{SectionFlags(3).String(), "critical|0x2"},
		{SectionFlags(4).String(), "0x4"},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q; want %q", c.got, c.want)
		}
	}
}
