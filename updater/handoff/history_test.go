package handoff

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestHistoryRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, MaxHistoryEntries} {
		h := testHistory(n)
		p := historyPayload(t, h)
		if len(p) != h.Size() || len(p)%Align != 0 {
			t.Fatalf("%d entries: payload %d bytes, Size %d", n, len(p), h.Size())
		}
		got, err := DecodeHistory(p)
		if err != nil {
			t.Fatalf("%d entries: DecodeHistory: %v", n, err)
		}
		if len(got.Entries) != n || (n > 0 && !reflect.DeepEqual(got, h)) {
			t.Fatalf("%d entries: DecodeHistory = %+v; want %+v", n, got, h)
		}
		if again := historyPayload(t, got); !bytes.Equal(again, p) {
			t.Fatalf("%d entries: re-encoding differs", n)
		}
	}
	// Version strings of every length modulo 8, and the longest allowed.
	var h History
	for i := 0; i <= 16; i++ {
		h.Add(HistoryEntry{Generation: 1, FromVersion: strings.Repeat("a", i), ToVersion: strings.Repeat("b", 2*i)})
	}
	h.Add(HistoryEntry{Generation: 2, FromVersion: strings.Repeat("x", MaxVersionLen), ToVersion: strings.Repeat("y", MaxVersionLen), Outcome: OutcomeAborted})
	got, err := DecodeHistory(historyPayload(t, h))
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("DecodeHistory(odd lengths) = %v", err)
	}
	if p := historyPayload(t, testHistory(MaxHistoryEntries)); len(p) > historyMaxLen {
		t.Errorf("a full history (%d bytes) exceeds the section cap %d", len(p), historyMaxLen)
	}
}

func TestHistoryAddKeepsNewest(t *testing.T) {
	var h History
	for i := 1; i <= MaxHistoryEntries+10; i++ {
		h.Add(HistoryEntry{Generation: uint64(i)})
	}
	if len(h.Entries) != MaxHistoryEntries || h.Entries[0].Generation != 11 || h.Last().Generation != MaxHistoryEntries+10 {
		t.Errorf("after %d adds: %d entries, first %d, last %d", MaxHistoryEntries+10, len(h.Entries), h.Entries[0].Generation, h.Last().Generation)
	}
	if (&History{}).Last() != nil {
		t.Errorf("Last of an empty history is not nil")
	}
}

func TestHistoryErrors(t *testing.T) {
	good := historyPayload(t, testHistory(2))
	mut := func(f func(p []byte) []byte) []byte { return f(bytes.Clone(good)) }
	second := historyHeader + entryFixed + align(len("v0.1")+len("v0.2-rc1"))
	for _, c := range []struct {
		name string
		p    []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrTruncated, "cannot hold its 8-byte header"},
		{"reserved", mut(func(p []byte) []byte { p[5] = 1; return p }), ErrReserved, "offset 0x4"},
		{"count above cap", mut(func(p []byte) []byte { le.PutUint32(p, MaxHistoryEntries+1); return p }), ErrTooLarge, "257 entries exceed the cap of 256"},
		{"count beyond payload", mut(func(p []byte) []byte { le.PutUint32(p, 3); return p }), ErrTruncated, "3 entries need at least 336 bytes"},
		{"truncated entry", good[:second+entryFixed-1], ErrTruncated, "entry 1 at payload offset 0x88: 111 bytes left, an entry needs 112"},
		{"truncated strings", good[:len(good)-8], ErrTruncated, "entry 1 at payload offset 0x88: version strings end at"},
		{"version too long", mut(func(p []byte) []byte { le.PutUint16(p[second+0x2c:], MaxVersionLen+1); return p }), ErrTooLarge, "entry 1"},
		{"unknown outcome", mut(func(p []byte) []byte { le.PutUint32(p[second+0x28:], 4); return p }), ErrInvalid, "unknown outcome(4)"},
		{"generation 0", mut(func(p []byte) []byte { le.PutUint64(p[historyHeader:], 0); return p }), ErrInvalid, "entry 0 at payload offset 0x8: generation 0"},
		{"generation goes down", mut(func(p []byte) []byte { le.PutUint64(p[historyHeader:], 9); return p }), ErrInvalid, "generation 2 below the previous entry's 9"},
		{"nonzero padding", mut(func(p []byte) []byte { p[len(p)-1] = 1; return p }), ErrReserved, "nonzero padding"},
		{"trailing bytes", append(bytes.Clone(good), make([]byte, 8)...), ErrInvalid, "8 bytes follow the last entry"},
	} {
		_, err := DecodeHistory(c.p)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: DecodeHistory = %v; want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
	// Append refuses what DecodeHistory would refuse.
	for _, h := range []History{
		{Entries: []HistoryEntry{{Generation: 0}}},
		{Entries: []HistoryEntry{{Generation: 2}, {Generation: 1}}},
		{Entries: []HistoryEntry{{Generation: 1, Outcome: 9}}},
		{Entries: []HistoryEntry{{Generation: 1, ToVersion: strings.Repeat("v", MaxVersionLen+1)}}},
		{Entries: make([]HistoryEntry, MaxHistoryEntries+1)},
	} {
		if _, err := h.Append(nil); err == nil {
			t.Errorf("Append(%.60v) succeeded", h)
		}
	}
}
