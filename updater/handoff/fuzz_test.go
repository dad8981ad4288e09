package handoff

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"
)

// FuzzDecode checks, for any input, that Decode and Inspect do not panic,
// agree with each other, allocate in proportion to the input and not to
// what it claims, fail only with errors that wrap a sentinel, and that a
// region they accept re-encodes to the very same bytes, as do the payloads
// the builtin registry accepts.
//
// Each input is tried twice: as is, and with its checksum recomputed, so
// that the fuzzer reaches the checks behind the checksum.
//
// The seed corpus is testdata/fuzz/FuzzDecode, generated from fuzzSeeds
// (go test -run TestFuzzCorpus -update-corpus). Run with
//
//	go test -run '^$' -fuzz FuzzDecode ./updater/handoff
func FuzzDecode(f *testing.F) {
	reg := Builtin()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, reg, data)
		if fixed := bytes.Clone(data); fixChecksum(fixed) {
			checkDecode(t, reg, fixed)
		}
	})
}

var sentinels = []error{
	ErrBadMagic, ErrVersion, ErrTruncated, ErrTooLarge, ErrMisaligned, ErrChecksum,
	ErrSectionBounds, ErrReserved, ErrInvalid, ErrUnknownType, ErrSectionVersion, ErrPayload,
}

func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// heapAllocs returns the bytes allocated so far. Small allocations are
// counted when a per-P cache is flushed, so the figure can lag by a few
// spans; large ones, the ones that matter here, are counted at once.
func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

func checkDecode(t *testing.T, reg *Registry, data []byte) {
	before := heapAllocs()
	r, err := Decode(data)
	var ds []Decoded
	if err == nil {
		ds, _ = reg.DecodeAll(r)
	}
	// The slack covers the lag of the allocation counter.
	if grew, limit := heapAllocs()-before, uint64(1<<20+8*len(data)); grew > limit {
		t.Fatalf("decoding %d bytes allocated %d bytes (limit %d)", len(data), grew, limit)
	}

	st, r2, ierr := Inspect(data)
	if (err == nil) != (st == Valid) || (r2 == nil) != (st != Valid) || (ierr == nil) != (err == nil) {
		t.Fatalf("Decode error %v, but Inspect = %v, %v", err, st, ierr)
	}
	if err != nil {
		if r != nil || !wrapsSentinel(err) || !strings.HasPrefix(err.Error(), "handoff: ") {
			t.Fatalf("Decode = %v, %q: the error must wrap a sentinel and say it is about a handoff", r, err)
		}
		return
	}

	if r.Length > uint64(len(data)) || int(r.Count) != len(r.Sections) || r.Format != FormatVersion || r.Generation == 0 {
		t.Fatalf("accepted an inconsistent header %+v for %d bytes", r.Header, len(data))
	}
	out, err := r.Encode(make([]byte, r.Length))
	if err != nil {
		t.Fatalf("re-encoding a decoded region: %v", err)
	}
	if !bytes.Equal(out, data[:r.Length]) {
		t.Fatalf("re-encoded region differs from the input")
	}
	for _, d := range ds {
		if d.Err != nil {
			if !wrapsSentinel(d.Err) {
				t.Fatalf("section error wraps no sentinel: %v", d.Err)
			}
			continue
		}
		var p []byte
		switch v := d.Value.(type) {
		case Clock:
			p = v.Append(nil)
		case History:
			if p, err = v.Append(nil); err != nil {
				t.Fatalf("a decoded history does not re-encode: %v", err)
			}
		default:
			t.Fatalf("builtin registry returned a %T", v)
		}
		if !bytes.Equal(p, d.Section.Payload) {
			t.Fatalf("%v re-encodes differently", d.Section)
		}
	}
	if err := r.Describe(io.Discard); err != nil {
		t.Fatal(err)
	}
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzDecode from fuzzSeeds")

// fuzzSeeds returns the seed corpus: valid regions and near-misses, one of
// each class of malformed input TestDecodeErrors covers.
func fuzzSeeds(t testing.TB) map[string][]byte {
	valid := sample(t)
	r, err := Decode(valid)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := r.Sections[1], r.Sections[2]
	near := func(fix bool, f func(b []byte) []byte) []byte {
		b := f(bytes.Clone(valid))
		if fix && !fixChecksum(b) {
			t.Fatal("cannot fix the checksum of a seed")
		}
		return b
	}
	garbage := make([]byte, 256)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"valid-empty":    encode(t, Header{Generation: 1, BuildID: id(1)}),
		"valid-sample":   valid,
		"valid-rollback": encode(t, Header{Generation: 8, Flags: FlagRollback}, sec{t: TypeExperimental + 2, v: 1, f: SectionCritical, p: []byte("x")}),
		"valid-skew": encode(t, Header{Generation: 2},
			sec{t: TypeClock, v: 2, p: make([]byte, 40)},
			sec{t: TypeUpdateHistory, v: 1, p: []byte{1, 0, 0, 0, 0, 0, 0, 0}}),
		"zeros":                    make([]byte, 256),
		"garbage":                  garbage,
		"near-bad-magic":           near(false, func(b []byte) []byte { b[7] = 'X'; return b }),
		"near-truncated-header":    valid[:60],
		"near-format-v2":           near(false, func(b []byte) []byte { le.PutUint32(b[offFormat:], 2); return b }),
		"near-bad-checksum":        near(false, func(b []byte) []byte { b[s1.Offset+20] ^= 4; return b }),
		"near-length-beyond-input": near(false, func(b []byte) []byte { le.PutUint64(b[offLength:], uint64(len(b)+64)); return b }),
		"near-length-misaligned":   near(true, func(b []byte) []byte { le.PutUint64(b[offLength:], uint64(len(b)-4)); return b }),
		"near-truncated-section":   valid[:s2.Offset+10],
		"near-section-beyond-end":  near(true, func(b []byte) []byte { le.PutUint32(b[s1.Offset+secLength:], 1<<20); return b }),
		"near-trailing-bytes":      near(true, func(b []byte) []byte { le.PutUint32(b[offCount:], 2); return b }),
		"near-count-beyond-end":    near(true, func(b []byte) []byte { le.PutUint32(b[offCount:], 40); return b }),
		"near-nonzero-padding":     near(true, func(b []byte) []byte { b[s2.Offset+16+4] = 9; return b }),
		"near-unknown-flags":       near(true, func(b []byte) []byte { le.PutUint32(b[s2.Offset+secFlags:], 6); return b }),
		"near-history-payload":     near(true, func(b []byte) []byte { le.PutUint32(b[s1.Offset+SectionHeaderSize:], 4); return b }),
	}
}

func corpusFile(b []byte) []byte { return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b) }

// TestFuzzCorpus keeps testdata/fuzz/FuzzDecode in step with fuzzSeeds and
// checks that each seed is what its name says.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	reg := Builtin()
	for name, b := range fuzzSeeds(t) {
		path := filepath.Join(dir, name)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, corpusFile(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, corpusFile(b)) {
			t.Errorf("%s is missing or stale (%v); run go test -run TestFuzzCorpus -update-corpus", path, err)
		}
		r, err := Decode(b)
		switch {
		case strings.HasPrefix(name, "valid-") && err != nil:
			t.Errorf("seed %s: Decode = %v", name, err)
		case name == "near-history-payload":
			if _, err := reg.DecodeAll(r); !errors.Is(err, ErrPayload) {
				t.Errorf("seed %s: DecodeAll = %v; want ErrPayload", name, err)
			}
		case !strings.HasPrefix(name, "valid-") && err == nil:
			t.Errorf("seed %s: Decode succeeded", name)
		}
		checkDecode(t, reg, b)
	}
}
