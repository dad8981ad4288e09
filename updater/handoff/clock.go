package handoff

import (
	"fmt"
	"io"
	"math/bits"
	"time"
)

// ClockVersion is the clock section's current schema version.
const ClockVersion = 1

// clockSize is the size of a clock v1 payload.
const clockSize = 32

// Clock is the clock section (TypeClock): the writer's clocks, read at one
// instant while saving, so that the new kernel's monotonic clock continues
// where the old one stopped (DESIGN §6.4).
//
// Payload, version 1 (32 bytes):
//
//	0x00  uint64  monotonic ns at save (the writer's CLOCK_MONOTONIC)
//	0x08  uint64  TSC at the same instant
//	0x10  int64   wall clock at save, ns since the Unix epoch (CLOCK_REALTIME)
//	0x18  uint64  the writer's calibrated TSC frequency in Hz; 0 if unknown
type Clock struct {
	MonotonicNs uint64
	TSC         uint64
	WallNs      int64
	TSCHz       uint64
}

// Append appends the v1 payload to dst.
func (c Clock) Append(dst []byte) []byte {
	dst = le.AppendUint64(dst, c.MonotonicNs)
	dst = le.AppendUint64(dst, c.TSC)
	dst = le.AppendUint64(dst, uint64(c.WallNs))
	return le.AppendUint64(dst, c.TSCHz)
}

// DecodeClock parses a v1 payload. Its length must be exactly 32 bytes.
func DecodeClock(p []byte) (Clock, error) {
	switch {
	case len(p) < clockSize:
		return Clock{}, fmt.Errorf("clock payload of %d bytes, want %d: %w", len(p), clockSize, ErrTruncated)
	case len(p) > clockSize:
		return Clock{}, fmt.Errorf("clock payload of %d bytes, want %d: %w", len(p), clockSize, ErrInvalid)
	}
	return Clock{
		MonotonicNs: le.Uint64(p[0x00:]),
		TSC:         le.Uint64(p[0x08:]),
		WallNs:      int64(le.Uint64(p[0x10:])),
		TSCHz:       le.Uint64(p[0x18:]),
	}, nil
}

// MonotonicAt returns the writer's monotonic time continued to the moment
// the TSC read tsc: MonotonicNs + (tsc-TSC)/TSCHz. It reports false when it
// cannot tell: TSCHz is 0, the TSC went backwards (it was reset, so this is
// not the machine that wrote the clock), or the result overflows.
func (c Clock) MonotonicAt(tsc uint64) (uint64, bool) {
	if c.TSCHz == 0 || tsc < c.TSC {
		return 0, false
	}
	hi, lo := bits.Mul64(tsc-c.TSC, uint64(time.Second))
	if hi >= c.TSCHz {
		return 0, false
	}
	ns, _ := bits.Div64(hi, lo, c.TSCHz)
	sum, carry := bits.Add64(c.MonotonicNs, ns, 0)
	if carry != 0 {
		return 0, false
	}
	return sum, true
}

// Describe prints the clock on one line.
func (c Clock) Describe(w io.Writer) error {
	hz := "unknown"
	if c.TSCHz != 0 {
		hz = fmt.Sprintf("%.3f GHz", float64(c.TSCHz)/1e9)
	}
	_, err := fmt.Fprintf(w, "monotonic %v at TSC %d (%s), wall %s\n",
		time.Duration(c.MonotonicNs), c.TSC, hz, time.Unix(0, c.WallNs).UTC().Format(time.RFC3339Nano))
	return err
}

var clockType = SectionType{
	Type:   TypeClock,
	MaxLen: clockSize,
	Codecs: []Codec{{
		Version: 1,
		Decode:  func(p []byte) (any, error) { return DecodeClock(p) },
	}},
}
