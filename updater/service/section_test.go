package service

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

var pendingCases = []Pending{
	{},
	{ReplySocket: 7, ListenSocket: 3, Slot: 1, PreviousSlot: 0, QuiesceBegan: 123456789,
		Phases: []Phase{{"upload", time.Second}, {"verify", 30 * time.Millisecond}, {"quiesce", 4 * time.Millisecond}, {"save", 0}}},
	{Slot: 0, PreviousSlot: NoSlot},
}

func TestPendingRoundTrip(t *testing.T) {
	for i, p := range pendingCases {
		b, err := p.Append(nil)
		if err != nil {
			t.Fatalf("case %d: Append: %v", i, err)
		}
		got, err := DecodePending(b)
		if err != nil {
			t.Fatalf("case %d: DecodePending: %v", i, err)
		}
		if !reflect.DeepEqual(got, p) && !(len(p.Phases) == 0 && len(got.Phases) == 0 && got.QuiesceBegan == p.QuiesceBegan) {
			t.Errorf("case %d: round trip %+v; want %+v", i, got, p)
		}
	}
}

func TestPendingErrors(t *testing.T) {
	good, err := pendingCases[1].Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func([]byte)) []byte { b := slices.Clone(good); f(b); return b }
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        good[:pendingFixed-1],
		"truncated":    good[:len(good)-1],
		"trailing":     append(slices.Clone(good), 0),
		"reserved":     mut(func(b []byte) { b[0x14] = 1 }),
		"many phases":  mut(func(b []byte) { b[0x10] = MaxPhases + 1 }),
		"phase name":   mut(func(b []byte) { b[pendingFixed] = 'A' }),
		"no name":      mut(func(b []byte) { b[pendingFixed] = 0 }),
		"name padding": mut(func(b []byte) { b[pendingFixed+phaseName-1] = 'x' }),
		"duration":     mut(func(b []byte) { b[pendingFixed+phaseSize-1] = 0x80 }),
	} {
		if _, err := DecodePending(b); !errors.Is(err, ErrPending) {
			t.Errorf("%s: %v; want ErrPending", name, err)
		}
	}
	for _, p := range []Pending{
		{Phases: make([]Phase, MaxPhases+1)},
		{Phases: []Phase{{"Bad", 0}}},
		{Phases: []Phase{{"negative", -1}}},
	} {
		if _, err := p.Append(nil); err == nil {
			t.Errorf("Append(%+v) succeeded", p)
		}
	}
}

func FuzzDecodePending(f *testing.F) {
	for _, p := range pendingCases {
		b, _ := p.Append(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePending(b)
		if err != nil {
			if !errors.Is(err, ErrPending) {
				t.Fatalf("error without ErrPending: %v", err)
			}
			return
		}
		again, err := p.Append(nil)
		if err != nil || !slices.Equal(again, b) {
			t.Fatalf("not canonical: %x -> %x, %v", b, again, err)
		}
	})
}
