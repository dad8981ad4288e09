package handoff

import (
	"testing"
)

// sec is a section to encode in a test.
type sec struct {
	t Type
	v uint32
	f SectionFlags
	p []byte
}

func id(b byte) [32]byte {
	var x [32]byte
	for i := range x {
		x[i] = b + byte(i)
	}
	return x
}

// encode builds a region (or fails the test).
func encode(t testing.TB, h Header, secs ...sec) []byte {
	t.Helper()
	size := HeaderSize
	for _, s := range secs {
		size += SectionHeaderSize + align(len(s.p))
	}
	e, err := NewEncoder(make([]byte, size), h)
	if err != nil {
		t.Fatalf("NewEncoder: %v", err)
	}
	for _, s := range secs {
		if err := e.Add(s.t, s.v, s.f, s.p); err != nil {
			t.Fatalf("Add(%v): %v", s.t, err)
		}
	}
	b, err := e.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return b
}

// fixChecksum recomputes the checksum of a (deliberately broken) region in
// place, when its length field allows, so that the structural check behind
// the checksum is what fails. It reports whether it could.
func fixChecksum(b []byte) bool {
	if len(b) < HeaderSize || string(b[:len(Magic)]) != Magic {
		return false
	}
	n := le.Uint64(b[offLength:])
	if n < HeaderSize || n > uint64(len(b)) {
		return false
	}
	sum := checksum(b[:n])
	copy(b[offChecksum:], sum[:])
	return true
}

var testClock = Clock{MonotonicNs: 1_500_000_000, TSC: 3_750_000_000, WallNs: 1_782_907_200_000_000_000, TSCHz: 2_500_000_000}

func testHistory(n int) History {
	var h History
	for i := 1; i <= n; i++ {
		h.Add(HistoryEntry{
			Generation:  uint64(i),
			FromVersion: "v0." + string(rune('0'+i%10)),
			ToVersion:   "v0." + string(rune('0'+(i+1)%10)) + "-rc1",
			FromBuild:   id(byte(i)),
			ToBuild:     id(byte(i + 1)),
			StartedNs:   int64(i) * 1e12,
			HandoffNs:   int64(i)*1e12 + 5e8,
			ResumedNs:   int64(i)*1e12 + 7e8,
			BlackoutNs:  uint64(i) * 1e6,
			Outcome:     OutcomeCommitted,
		})
	}
	if n > 0 {
		h.Last().Outcome = OutcomePending
		h.Last().ResumedNs, h.Last().BlackoutNs = 0, 0
	}
	return h
}

func historyPayload(t testing.TB, h History) []byte {
	t.Helper()
	p, err := h.Append(nil)
	if err != nil {
		t.Fatalf("History.Append: %v", err)
	}
	return p
}

// sample is a region with both builtin sections and an experimental one.
func sample(t testing.TB) []byte {
	return encode(t, Header{Generation: 3, BuildID: id(0xa0)},
		sec{t: TypeClock, v: ClockVersion, p: testClock.Append(nil)},
		sec{t: TypeUpdateHistory, v: HistoryVersion, f: SectionCritical, p: historyPayload(t, testHistory(3))},
		sec{t: TypeExperimental + 1, v: 1, p: []byte("odd")},
	)
}
