package handoff

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// A test section type with two schema versions, as a subsystem would have
// after changing its saved state once.
const tCounter = TypeExperimental + 7

type counterV1 struct{ N uint32 }

type counterV2 struct {
	N     uint64
	Label string
}

func (c counterV1) bytes() []byte { return le.AppendUint32(le.AppendUint32(nil, c.N), 0) }

func (c counterV2) bytes() []byte { return append(le.AppendUint64(nil, c.N), c.Label...) }

var (
	counterCodecV1 = Codec{Version: 1, Decode: func(p []byte) (any, error) {
		if len(p) != 8 {
			return nil, fmt.Errorf("counter v1 payload of %d bytes, want 8: %w", len(p), ErrInvalid)
		}
		if le.Uint32(p[4:]) != 0 {
			return nil, fmt.Errorf("counter v1 padding: %w", ErrReserved)
		}
		return counterV1{N: le.Uint32(p)}, nil
	}}
	counterCodecV2 = Codec{Version: 2, Decode: func(p []byte) (any, error) {
		if len(p) < 8 {
			return nil, fmt.Errorf("counter v2 payload of %d bytes: %w", len(p), ErrTruncated)
		}
		return counterV2{N: le.Uint64(p), Label: string(p[8:])}, nil
	}}
	// upgrade1to2 is the migration hook: v1 values become v2 values.
	upgrade1to2 = func(v any) (any, error) {
		c := v.(counterV1)
		if c.N == 0xdead {
			return nil, errors.New("refusing to migrate 0xdead")
		}
		return counterV2{N: uint64(c.N), Label: "migrated from v1"}, nil
	}
)

// Three kernels: one that writes v1, one that writes v2 and still reads
// v1, and one that dropped v1.
func counterRegistry(t *testing.T, codecs ...Codec) *Registry {
	t.Helper()
	r := Builtin()
	if err := r.Register(SectionType{Type: tCounter, MaxLen: 64, Codecs: codecs}); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return r
}

func TestVersionSkew(t *testing.T) {
	v1CodecLast := counterCodecV1 // as the current version, v1 has no Upgrade
	writerV1 := counterRegistry(t, v1CodecLast)
	v1Migrating := counterCodecV1
	v1Migrating.Upgrade = upgrade1to2
	readerV2 := counterRegistry(t, v1Migrating, counterCodecV2)
	readerV2Only := counterRegistry(t, counterCodecV2)

	// v1 writer, v2 reader: the value arrives migrated.
	e, err := writerV1.NewEncoder(make([]byte, 512), Header{Generation: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(tCounter, 1, SectionCritical, counterV1{N: 77}.bytes()); err != nil {
		t.Fatal(err)
	}
	b, _ := e.Finish()
	r, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	v, err := readerV2.Decode(r.Sections[0])
	if want := (counterV2{N: 77, Label: "migrated from v1"}); err != nil || v != want {
		t.Errorf("v2 reader: Decode(v1 section) = %#v, %v; want %#v", v, err, want)
	}
	if v, err := writerV1.Decode(r.Sections[0]); err != nil || v != (counterV1{N: 77}) {
		t.Errorf("v1 reader: Decode(v1 section) = %#v, %v", v, err)
	}

	// v2 writer, v1 reader: reported as newer, with found and supported.
	b2 := encode(t, Header{Generation: 6}, sec{t: tCounter, v: 2, p: counterV2{N: 1 << 40, Label: "x"}.bytes()})
	r2, _ := Decode(b2)
	_, err = writerV1.Decode(r2.Sections[0])
	var ve *VersionError
	if !errors.As(err, &ve) || !errors.Is(err, ErrSectionVersion) || errors.Is(err, ErrVersion) {
		t.Fatalf("v1 reader: Decode(v2 section) = %v; want a section *VersionError", err)
	}
	if ve.Found != 2 || ve.Min != 1 || ve.Max != 1 || !ve.Newer() || ve.Type != tCounter || ve.Section != 0 {
		t.Errorf("VersionError = %+v", ve)
	}
	if want := "section 0 (experimental-0x80000007) at offset 0x6c: version 2 is newer than the one this reader supports (1)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q; want %q", err, want)
	}

	// A reader that dropped v1: reported as older.
	_, err = readerV2Only.Decode(r.Sections[0])
	if !errors.As(err, &ve) || ve.Newer() || ve.Found != 1 || ve.Min != 2 || !strings.Contains(err.Error(), "is older than the one this reader supports (2)") {
		t.Errorf("v2-only reader: Decode(v1 section) = %v", err)
	}

	// A failing migration is a payload error naming the step.
	b3 := encode(t, Header{Generation: 7}, sec{t: tCounter, v: 1, p: counterV1{N: 0xdead}.bytes()})
	r3, _ := Decode(b3)
	_, err = readerV2.Decode(r3.Sections[0])
	if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), "upgrading v1 to v2: refusing to migrate 0xdead") {
		t.Errorf("failing Upgrade: %v", err)
	}
}

func TestDecodeAll(t *testing.T) {
	b := encode(t, Header{Generation: 2},
		sec{t: TypeClock, v: 1, p: testClock.Append(nil)},
		sec{t: TypeExperimental + 1, v: 1, p: []byte("skip me")},                 // unknown, skipped
		sec{t: TypeExperimental + 2, v: 1, f: SectionCritical, p: []byte("!")},   // unknown, critical
		sec{t: TypeClock, v: 2, p: make([]byte, 40)},                             // known type, newer version
		sec{t: TypeUpdateHistory, v: 1, p: []byte{1, 0, 0, 0, 0, 0, 0, 0}},       // malformed payload
		sec{t: TypeUpdateHistory, v: 1, p: historyPayload(t, testHistory(2))},    // fine
		sec{t: TypeClock, v: 1, p: append(testClock.Append(nil), 0, 0, 0, 0, 0)}, // above MaxLen
	)
	r, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Builtin().DecodeAll(r)
	if len(ds) != 7 {
		t.Fatalf("DecodeAll returned %d results", len(ds))
	}
	if ds[0].Err != nil || ds[0].Value != testClock {
		t.Errorf("clock: %v, %v", ds[0].Value, ds[0].Err)
	}
	if !ds[1].Skipped() || !errors.Is(ds[1].Err, ErrUnknownType) {
		t.Errorf("unknown type: %+v", ds[1])
	}
	if ds[2].Skipped() || !errors.Is(ds[2].Err, ErrUnknownType) {
		t.Errorf("unknown critical type: %+v", ds[2])
	}
	var ve *VersionError
	if !errors.As(ds[3].Err, &ve) || !ve.Newer() || ve.Found != 2 || ve.Max != 1 {
		t.Errorf("clock v2: %v", ds[3].Err)
	}
	if !errors.Is(ds[4].Err, ErrPayload) || !errors.Is(ds[4].Err, ErrTruncated) {
		t.Errorf("malformed history: %v", ds[4].Err)
	}
	if h, ok := ds[5].Value.(History); ds[5].Err != nil || !ok || !reflect.DeepEqual(h, testHistory(2)) {
		t.Errorf("history: %#v, %v", ds[5].Value, ds[5].Err)
	}
	if !errors.Is(ds[6].Err, ErrTooLarge) || !strings.Contains(ds[6].Err.Error(), "clock payload of 37 bytes exceeds its cap of 32") {
		t.Errorf("oversized clock: %v", ds[6].Err)
	}
	// The joined error names every problem except the skipped section.
	if err == nil {
		t.Fatal("DecodeAll returned no error")
	}
	msg := err.Error()
	for _, want := range []string{"section 2 at offset", "the writer marked it critical", "section 3 (clock)", "section 4 (update-history v1)", "section 6 at offset"} {
		if !strings.Contains(msg, want) {
			t.Errorf("DecodeAll error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "section 1 ") {
		t.Errorf("DecodeAll error mentions the skipped section:\n%s", msg)
	}

	// Only skippable sections: no error.
	b = encode(t, Header{Generation: 2}, sec{t: TypeExperimental + 1, v: 9, p: nil}, sec{t: TypeClock, v: 1, p: testClock.Append(nil)})
	r, _ = Decode(b)
	if _, err := Builtin().DecodeAll(r); err != nil {
		t.Errorf("DecodeAll with an unknown, non-critical section = %v", err)
	}
}

func TestRegisterRejects(t *testing.T) {
	dec := func([]byte) (any, error) { return nil, nil }
	up := func(v any) (any, error) { return v, nil }
	for _, c := range []struct {
		name string
		st   SectionType
		msg  string
	}{
		{"type 0", SectionType{Codecs: []Codec{{Version: 1, Decode: dec}}}, "type 0"},
		{"duplicate", SectionType{Type: TypeClock, Codecs: []Codec{{Version: 1, Decode: dec}}}, "already registered"},
		{"no codecs", SectionType{Type: tCounter}, "no codecs"},
		{"MaxLen", SectionType{Type: tCounter, MaxLen: MaxSectionSize + 1, Codecs: []Codec{{Version: 1, Decode: dec}}}, "MaxLen"},
		{"version 0", SectionType{Type: tCounter, Codecs: []Codec{{Version: 0, Decode: dec}}}, "version 0"},
		{"gap", SectionType{Type: tCounter, Codecs: []Codec{{Version: 1, Decode: dec, Upgrade: up}, {Version: 3, Decode: dec}}}, "consecutive"},
		{"no Decode", SectionType{Type: tCounter, Codecs: []Codec{{Version: 1}}}, "no Decode"},
		{"no Upgrade", SectionType{Type: tCounter, Codecs: []Codec{{Version: 1, Decode: dec}, {Version: 2, Decode: dec}}}, "no Upgrade to v2"},
		{"Upgrade on current", SectionType{Type: tCounter, Codecs: []Codec{{Version: 1, Decode: dec, Upgrade: up}}}, "current version v1 has an Upgrade"},
	} {
		if err := Builtin().Register(c.st); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: Register = %v; want an error containing %q", c.name, err, c.msg)
		}
	}
	r := NewRegistry()
	if err := r.Register(SectionType{Type: tCounter, Codecs: []Codec{{Version: 4, Decode: dec}}}); err != nil {
		t.Fatal(err)
	}
	st, ok := r.Lookup(tCounter)
	if !ok || st.MaxLen != MaxSectionSize || st.Oldest() != 4 || st.Current() != 4 {
		t.Errorf("Lookup = %+v, %v", st, ok)
	}
	if _, ok := r.Lookup(TypeClock); ok {
		t.Errorf("an empty registry knows clock")
	}
}

func TestRegistryEncoderCaps(t *testing.T) {
	e, err := Builtin().NewEncoder(make([]byte, 4096), Header{Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Add(TypeClock, 1, 0, make([]byte, 40))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "clock v1 of 40 bytes exceeds the 32-byte cap for clock") {
		t.Errorf("Add(40-byte clock) = %v", err)
	}
	if err := e.Add(TypeClock, 1, 0, testClock.Append(nil)); err != nil {
		t.Errorf("Add(clock) = %v", err)
	}
	if err := e.Add(TypeExperimental+3, 1, 0, make([]byte, 1000)); err != nil {
		t.Errorf("Add(unregistered type) = %v; the registry caps only what it knows", err)
	}
}
