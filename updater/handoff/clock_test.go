package handoff

import (
	"errors"
	"math"
	"testing"
)

func TestClockRoundTrip(t *testing.T) {
	for _, c := range []Clock{{}, testClock, {MonotonicNs: math.MaxUint64, TSC: math.MaxUint64, WallNs: math.MinInt64, TSCHz: 1}} {
		p := c.Append(nil)
		if len(p) != clockSize {
			t.Fatalf("Append(%+v) is %d bytes; want %d", c, len(p), clockSize)
		}
		got, err := DecodeClock(p)
		if err != nil || got != c {
			t.Errorf("DecodeClock(Append(%+v)) = %+v, %v", c, got, err)
		}
	}
}

func TestClockErrors(t *testing.T) {
	p := testClock.Append(nil)
	if _, err := DecodeClock(p[:31]); !errors.Is(err, ErrTruncated) {
		t.Errorf("DecodeClock(31 bytes) = %v; want ErrTruncated", err)
	}
	if _, err := DecodeClock(append(p, 0)); !errors.Is(err, ErrInvalid) {
		t.Errorf("DecodeClock(33 bytes) = %v; want ErrInvalid", err)
	}
}

func TestClockMonotonicAt(t *testing.T) {
	c := Clock{MonotonicNs: 10e9, TSC: 1000, TSCHz: 2_500_000_000}
	for _, tc := range []struct {
		name string
		c    Clock
		tsc  uint64
		want uint64
		ok   bool
	}{
		{"same instant", c, 1000, 10e9, true},
		{"one second later", c, 1000 + 2_500_000_000, 11e9, true},
		// 1e12 cycles: the naive (delta*1e9) overflows 64 bits.
		{"400 s later", c, 1000 + 1e12, 410e9, true},
		{"TSC went backwards", c, 999, 0, false},
		{"frequency unknown", Clock{MonotonicNs: 1, TSC: 1}, 5, 0, false},
		{"quotient overflows", Clock{TSC: 0, TSCHz: 1}, math.MaxUint64, 0, false},
		{"sum overflows", Clock{MonotonicNs: math.MaxUint64 - 5, TSC: 0, TSCHz: 1e9}, 10, 0, false},
	} {
		got, ok := tc.c.MonotonicAt(tc.tsc)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: MonotonicAt(%d) = %d, %v; want %d, %v", tc.name, tc.tsc, got, ok, tc.want, tc.ok)
		}
	}
}
