package handoff_test

import (
	"fmt"
	"os"

	"github.com/molt-os/molt/updater/handoff"
)

// The boot decision: a new kernel inspects the reserved range before
// anything else writes to it.
func ExampleInspect() {
	region := make([]byte, 4096) // stands for the reserved range: zeros after power-on
	boot := func() {
		st, r, err := handoff.Inspect(region)
		switch st {
		case handoff.Valid:
			fmt.Printf("warm boot: generation %d, %d sections\n", r.Generation, len(r.Sections))
		case handoff.Absent:
			fmt.Println("cold boot, no handoff:", err)
		default: // Corrupt, Incompatible: state was lost, and the log says why
			fmt.Printf("cold boot, handoff %v: %.60s...\n", st, err)
		}
	}
	boot()

	e, _ := handoff.NewEncoder(region, handoff.Header{Generation: 1})
	e.Add(handoff.TypeClock, handoff.ClockVersion, 0, handoff.Clock{MonotonicNs: 5e9}.Append(nil))
	e.Finish()
	boot()

	region[0x80] ^= 1 // a bit flips in the clock payload
	boot()
	// Output:
	// cold boot, no handoff: handoff: bad magic at offset 0x0: region starts with zeros, want "MOLTHAND"
	// warm boot: generation 1, 1 sections
	// cold boot, handoff corrupt: handoff: checksum mismatch at offset 0x48: stored 46a386e051...
}

// Writing a region, then reading it back as a `molt handoff describe` would.
func ExampleEncoder() {
	buf := make([]byte, 1024)
	e, err := handoff.Builtin().NewEncoder(buf, handoff.Header{Generation: 7})
	if err != nil {
		panic(err)
	}
	clock := handoff.Clock{MonotonicNs: 12e9, TSC: 30e9, WallNs: 1.8e18, TSCHz: 2.5e9}
	if err := e.Add(handoff.TypeClock, handoff.ClockVersion, 0, clock.Append(nil)); err != nil {
		panic(err)
	}
	var h handoff.History
	h.Add(handoff.HistoryEntry{Generation: 7, FromVersion: "v0.4.0", ToVersion: "v0.5.0"})
	p, _ := h.Append(nil)
	// Too large for what is left: refused, naming the section.
	fmt.Println(e.Add(handoff.TypeTaskState, 1, 0, make([]byte, 2000)))
	if err := e.Add(handoff.TypeUpdateHistory, handoff.HistoryVersion, handoff.SectionCritical, p); err != nil {
		panic(err)
	}
	region, _ := e.Finish()

	r, err := handoff.Decode(region)
	if err != nil {
		panic(err)
	}
	for _, s := range r.Sections {
		fmt.Println(s)
	}
	_ = r.Describe(os.Stdout)
	// Output:
	// handoff: too large: section 1 at offset 0x98: task-state v1 of 2000 bytes does not fit: 872 of 1024 bytes left
	// section 0 (clock v1) at offset 0x68
	// section 1 (update-history v1) at offset 0x98
	// handoff region: format 1, generation 7, 304 bytes, 2 sections
	//   flags    none
	//   writer   build 0000000000000000000000000000000000000000000000000000000000000000
	//   sha-256  92e458661b07c8638b098ad49390e7c2740a17c5f8014df66d794a811efe188b
	// section 0 at 0x68: clock v1, 32 bytes
	//   monotonic 12s at TSC 30000000000 (2.500 GHz), wall 2027-01-15T08:00:00Z
	// section 1 at 0x98: update-history v1, 136 bytes, critical
	//   gen 7  "v0.4.0" (000000000000) -> "v0.5.0" (000000000000)  pending  started -
}
