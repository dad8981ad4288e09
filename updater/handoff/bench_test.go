package handoff

import (
	"fmt"
	"testing"
)

// BenchmarkDecode measures validating a region: SHA-256 dominates, so the
// cost grows with the region's length, not with the reserved range.
func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 1 << 20, MaxRegionSize} {
		buf := make([]byte, size)
		e, _ := NewEncoder(buf, Header{Generation: 1})
		e.Add(TypeClock, 1, 0, testClock.Append(nil))
		e.Reserve(TypeTaskState, 1, 0, e.Free())
		region, _ := e.Finish()
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(region)))
			for b.Loop() {
				if _, err := Decode(region); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode measures writing a small region (clock and a history of
// 32 updates) in place, as the old kernel does just before the jump.
func BenchmarkEncode(b *testing.B) {
	buf := make([]byte, 64<<10)
	hist := historyPayload(b, testHistory(32))
	clk := testClock.Append(nil)
	for b.Loop() {
		e, _ := NewEncoder(buf, Header{Generation: 2})
		e.Add(TypeClock, ClockVersion, 0, clk)
		e.Add(TypeUpdateHistory, HistoryVersion, SectionCritical, hist)
		if _, err := e.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}
