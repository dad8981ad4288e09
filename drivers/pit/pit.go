// Package pit reads the Intel 8254 programmable interval timer, which molt
// uses only as a reference clock of known frequency to calibrate the TSC and
// the local APIC timer (Intel 82C54 datasheet; channel 0 in mode 2).
//
// The functions run before the Go runtime starts, so they are //go:nosplit.
package pit

import "github.com/molt-os/molt/drivers/internal/reg"

const (
	// Hz is the PIT input clock.
	Hz = 1193182

	CH0  = 0x40
	MODE = 0x43

	// MODE_CH0_RATE selects channel 0, low/high byte access, mode 2 (rate
	// generator), binary counting.
	MODE_CH0_RATE = 0x34
	// MODE_LATCH0 latches channel 0's count for reading.
	MODE_LATCH0 = 0x00
)

// Start sets channel 0 counting down from 65535, wrapping around.
//
//go:nosplit
func Start() {
	reg.Out8(MODE, MODE_CH0_RATE)
	reg.Out8(CH0, 0xff)
	reg.Out8(CH0, 0xff)
}

// Count returns channel 0's current count.
//
//go:nosplit
func Count() uint16 {
	reg.Out8(MODE, MODE_LATCH0)
	lo := reg.In8(CH0)
	hi := reg.In8(CH0)
	return uint16(hi)<<8 | uint16(lo)
}

// Elapsed returns the ticks between two counts read with Count, allowing
// for one wrap-around of the 16-bit down-counter.
//
//go:nosplit
func Elapsed(from, to uint16) uint32 {
	return uint32(from-to) & 0xffff
}
