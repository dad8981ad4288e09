package handoff

import (
	"errors"
	"fmt"
	"testing"
)

// image stands for one kernel image in a chain of self-updates.
type image struct {
	version string
	build   [32]byte
}

// carried is what a kernel takes from the region it booted from.
type carried struct {
	gen     uint64
	history History
	clock   Clock
}

// bootFrom is what a new kernel does with the region: decide cold or warm,
// decode everything into its own values, and close the pending history
// entry as committed.
func bootFrom(t *testing.T, region []byte, self image, tsc uint64, wallNs int64) (Status, carried) {
	t.Helper()
	st, r, err := Inspect(region)
	if st != Valid {
		if st != Absent {
			t.Fatalf("%s: Inspect = %v, %v", self.version, st, err)
		}
		return st, carried{}
	}
	ds, err := Builtin().DecodeAll(r)
	if err != nil {
		t.Fatalf("%s: DecodeAll: %v", self.version, err)
	}
	c := carried{gen: r.Generation}
	for _, d := range ds {
		switch v := d.Value.(type) {
		case Clock:
			c.clock = v
		case History:
			c.history = v
		}
	}
	last := c.history.Last()
	if last == nil || last.Outcome != OutcomePending || last.ToBuild != self.build || last.Generation != r.Generation {
		t.Fatalf("%s: last history entry %+v; want a pending entry for this image at generation %d", self.version, last, r.Generation)
	}
	mono, ok := c.clock.MonotonicAt(tsc)
	if !ok || mono < c.clock.MonotonicNs {
		t.Fatalf("%s: MonotonicAt(%d) = %d, %v", self.version, tsc, mono, ok)
	}
	last.Outcome = OutcomeCommitted
	last.ResumedNs = wallNs
	last.BlackoutNs = mono - c.clock.MonotonicNs
	return st, c
}

// handOff writes the region for the jump from self to next.
func handOff(t *testing.T, region []byte, c carried, self, next image, flags Flags, tsc uint64, wallNs int64) {
	t.Helper()
	c.history.Add(HistoryEntry{
		Generation: c.gen + 1, FromVersion: self.version, ToVersion: next.version,
		FromBuild: self.build, ToBuild: next.build,
		StartedNs: wallNs - 1e6, HandoffNs: wallNs, Outcome: OutcomePending,
	})
	e, err := Builtin().NewEncoder(region, Header{Generation: c.gen + 1, Flags: flags, BuildID: self.build})
	if err != nil {
		t.Fatal(err)
	}
	clk := Clock{MonotonicNs: uint64(tsc) / 3, TSC: tsc, WallNs: wallNs, TSCHz: 3e9} // 3 GHz: ns = tsc/3
	if err := e.Add(TypeClock, ClockVersion, 0, clk.Append(nil)); err != nil {
		t.Fatal(err)
	}
	p, err := c.history.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(TypeUpdateHistory, HistoryVersion, SectionCritical, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Finish(); err != nil {
		t.Fatal(err)
	}
}

// TestRepeatedHandoffs runs a chain of updates through one region: a cold
// boot, ten updates with a rollback in the middle. Each generation is one
// more than the last, the history grows by one entry per handoff, and each
// kernel finds its predecessor's build ID in the header.
func TestRepeatedHandoffs(t *testing.T) {
	region := make([]byte, 1<<20) // zeros, as after power-on
	images := make([]image, 12)
	for i := range images {
		images[i] = image{version: fmt.Sprintf("v1.%d.0", i), build: id(byte(16 * i))}
	}
	// Image 6 fails its health window; the chain goes back to 5, then on.
	chain := []int{0, 1, 2, 3, 4, 5, 6, 5, 7, 8, 9, 10}
	tsc, wall := uint64(3e9), int64(1.7e18)
	var prevBuild [32]byte
	for hop, idx := range chain {
		self := images[idx]
		st, c := bootFrom(t, region, self, tsc+3e6, wall+2e6)
		if hop == 0 {
			if st != Absent {
				t.Fatalf("first boot: %v; want absent (cold)", st)
			}
		} else {
			r, _ := Decode(region)
			if r.Generation != uint64(hop) || r.BuildID != prevBuild {
				t.Fatalf("hop %d: generation %d, writer %x; want %d, %x", hop, r.Generation, r.BuildID[:2], hop, prevBuild[:2])
			}
			if got := len(c.history.Entries); got != hop {
				t.Fatalf("hop %d: %d history entries; want %d", hop, got, hop)
			}
			if wantRollback := chain[hop-1] == 6; (r.Flags&FlagRollback != 0) != wantRollback {
				t.Fatalf("hop %d: flags %v", hop, r.Flags)
			}
			if b := c.history.Last().BlackoutNs; b != 1e6 {
				t.Errorf("hop %d: blackout %d ns; want 1 ms (3e6 cycles at 3 GHz)", hop, b)
			}
		}
		if hop == len(chain)-1 {
			break
		}
		next, flags := images[chain[hop+1]], Flags(0)
		if idx == 6 {
			// A failed health window: record it, and hand off back.
			c.history.Last().Outcome = OutcomeRolledBack
			flags = FlagRollback
		}
		tsc += 30e9
		wall += 10e9
		handOff(t, region, c, self, next, flags, tsc, wall)
		prevBuild = self.build
	}

	// The last kernel sees the whole chain.
	r, err := Decode(region)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Find(TypeUpdateHistory)
	h, err := DecodeHistory(s.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != len(chain)-1 {
		t.Fatalf("history has %d entries; want %d", len(h.Entries), len(chain)-1)
	}
	for i, e := range h.Entries {
		want := OutcomeCommitted
		switch {
		case i == len(h.Entries)-1:
			want = OutcomePending // the last kernel has not committed yet
		case chain[i+1] == 6:
			want = OutcomeRolledBack
		}
		if e.Generation != uint64(i+1) || e.FromBuild != images[chain[i]].build || e.ToBuild != images[chain[i+1]].build || e.Outcome != want {
			t.Errorf("entry %d: gen %d %s->%s %v; want gen %d %s->%s %v", i, e.Generation, e.FromVersion, e.ToVersion, e.Outcome,
				i+1, images[chain[i]].version, images[chain[i+1]].version, want)
		}
	}

	// After commit the kernel invalidates the region: a reset that keeps
	// RAM then boots cold instead of replaying old state.
	Invalidate(region)
	if st, _, err := Inspect(region); st != Absent || !errors.Is(err, ErrBadMagic) {
		t.Errorf("after Invalidate: %v, %v", st, err)
	}
}
