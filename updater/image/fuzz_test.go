package image

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"sort"
	"strings"
	"testing"
)

// FuzzVerify checks, for any input, that ReadHeader and Verify do not
// panic, allocate in proportion to the input and not to what it claims,
// refuse only with errors that wrap exactly one sentinel, and that a bundle
// Verify accepts is canonical: signing its ELF again gives the same bytes.
//
// Each input is tried twice: as is, and re-signed with the trusted test
// key, so that the fuzzer gets past the signature to the ELF checks.
//
// The seed corpus is testdata/fuzz/FuzzVerify, generated from fuzzSeeds
// (go test -run TestFuzzCorpus -update-corpus). Run with
//
//	go test -run '^$' -fuzz FuzzVerify ./updater/image
func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkVerify(t, data)
		checkVerify(t, resign(bytes.Clone(data), testKey))
	})
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

func checkVerify(t *testing.T, data []byte) {
	before := heapAllocs()
	h, herr := ReadHeader(data)
	im, err := Verify(data, trusted(), DefaultLimits())
	// The slack covers the lag of the allocation counter and the messages.
	if grew, limit := heapAllocs()-before, uint64(1<<20+2*len(data)); grew > limit {
		t.Fatalf("verifying %d bytes allocated %d bytes (limit %d)", len(data), grew, limit)
	}
	if herr != nil {
		if err == nil || h != nil || !errors.Is(err, unwrapSentinel(herr)) {
			t.Fatalf("ReadHeader: %v, but Verify: %v", herr, err)
		}
	}
	if err != nil {
		n := 0
		for _, s := range Sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if im != nil || n != 1 || !strings.HasPrefix(err.Error(), "image: ") {
			t.Fatalf("Verify = %v, %q: want nil and an error wrapping one sentinel", im, err)
		}
		return
	}
	if h == nil || h.BuildID != im.BuildID || h.Version != im.Version || len(im.Segments) == 0 || len(im.HandoffFormats) == 0 {
		t.Fatalf("accepted an inconsistent image %+v (header %+v)", im, h)
	}
	for _, s := range im.Segments {
		if uint64(len(s.Data)) > s.Memsz || checkLayout([]Segment{s}) != nil {
			t.Fatalf("accepted a bad segment %#x+%#x", s.Addr, s.Memsz)
		}
	}
	// Verify does not recompute the build ID (the signature covers it), so
	// Sign may refuse an accepted image for that reason only; otherwise it
	// must reproduce the input.
	b, serr := Sign(im.ELF, testKey)
	switch {
	case serr != nil && !strings.Contains(serr.Error(), "not post-linked"):
		t.Fatalf("Verify accepted what Sign refuses: %v", serr)
	case serr == nil && !bytes.Equal(b, data):
		t.Fatalf("re-signing an accepted bundle gives different bytes")
	}
}

func unwrapSentinel(err error) error {
	for _, s := range Sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return errors.New("no sentinel")
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzVerify from fuzzSeeds")

// fuzzSeeds returns the seed corpus: valid bundles and one near-miss for
// each refusal TestRefusals covers.
func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"valid":          mustSign(t, newSynth().bytes()),
		"valid-32bitpvh": func() []byte { s := newSynth(); s.pvhDescSize = 4; s.extraNote = true; return mustSign(t, s.bytes()) }(),
		"valid-formats":  func() []byte { s := newSynth(); s.setFormats(3, 1); s.version = ""; return mustSign(t, s.bytes()) }(),
	}
	for _, c := range refusalCases() {
		if c.trusted != nil || c.limits != nil {
			continue // depends on the caller, not the bytes
		}
		seeds["refuse-"+strings.ReplaceAll(c.name, " ", "-")] = c.bundle
	}
	return seeds
}

func corpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// TestFuzzCorpus checks that testdata/fuzz/FuzzVerify holds the current
// seeds, or rewrites it with -update-corpus.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	seeds := fuzzSeeds(t)
	names := make([]string, 0, len(seeds))
	for n := range seeds {
		names = append(names, n)
	}
	sort.Strings(names)
	if *updateCorpus {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), corpusFile(seeds[n]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Equal(b, corpusFile(seeds[n])) {
			t.Errorf("seed %s is missing or stale (%v): go test ./updater/image -run TestFuzzCorpus -update-corpus", n, err)
		}
	}
}
