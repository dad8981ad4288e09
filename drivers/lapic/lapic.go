// Package lapic drives the x86 local APIC in xAPIC (MMIO) mode: enable,
// end-of-interrupt and the one-shot timer molt uses for tickless scheduling
// (Intel SDM Vol. 3A, chapter 11 "Advanced Programmable Interrupt
// Controller").
//
// All methods are //go:nosplit: the scheduler programs the timer from trap
// context.
package lapic

import "github.com/molt-os/molt/drivers/internal/reg"

// Register offsets (SDM Vol. 3A, table 11-1).
const (
	LAPIC_ID    = 0x020
	LAPIC_VER   = 0x030
	LAPIC_TPR   = 0x080
	LAPIC_EOI   = 0x0b0
	LAPIC_SVR   = 0x0f0
	LAPIC_LVT_T = 0x320 // LVT timer
	LAPIC_LINT0 = 0x350
	LAPIC_LINT1 = 0x360
	LAPIC_LVT_E = 0x370 // LVT error
	LAPIC_TICR  = 0x380 // timer initial count
	LAPIC_TCCR  = 0x390 // timer current count
	LAPIC_TDCR  = 0x3e0 // timer divide configuration

	SVR_ENABLE = 1 << 8
	LVT_MASKED = 1 << 16
	TDCR_DIV16 = 0x3
)

// DefaultBase is the architectural reset address of the local APIC.
const DefaultBase = 0xfee00000

// LAPIC is the local APIC of the current CPU.
type LAPIC struct {
	Base uintptr
}

// Init software-enables the APIC with the given spurious vector, masks the
// legacy LINT pins (molt routes device interrupts through the IOAPIC) and
// leaves the timer stopped.
//
//go:nosplit
func (l *LAPIC) Init(spurious uint8) {
	reg.Write32(l.Base+LAPIC_TPR, 0)
	reg.Write32(l.Base+LAPIC_SVR, SVR_ENABLE|uint32(spurious))
	reg.Write32(l.Base+LAPIC_LINT0, LVT_MASKED)
	reg.Write32(l.Base+LAPIC_LINT1, LVT_MASKED)
	reg.Write32(l.Base+LAPIC_LVT_E, LVT_MASKED)
	reg.Write32(l.Base+LAPIC_TDCR, TDCR_DIV16)
	l.Stop()
}

// ID returns the APIC ID of the current CPU.
//
//go:nosplit
func (l *LAPIC) ID() uint32 { return reg.Read32(l.Base+LAPIC_ID) >> 24 }

// EOI signals the end of the interrupt being serviced.
//
//go:nosplit
func (l *LAPIC) EOI() { reg.Write32(l.Base+LAPIC_EOI, 0) }

// OneShot arms the timer to raise vector after count ticks of the divided
// APIC clock. A count of 0 stops the timer.
//
//go:nosplit
func (l *LAPIC) OneShot(vector uint8, count uint32) {
	reg.Write32(l.Base+LAPIC_LVT_T, uint32(vector))
	reg.Write32(l.Base+LAPIC_TICR, count)
}

// Stop masks and stops the timer.
//
//go:nosplit
func (l *LAPIC) Stop() {
	reg.Write32(l.Base+LAPIC_LVT_T, LVT_MASKED)
	reg.Write32(l.Base+LAPIC_TICR, 0)
}

// StartCount starts a free-running (masked) countdown from the maximum
// value, for calibration against another clock.
//
//go:nosplit
func (l *LAPIC) StartCount() {
	reg.Write32(l.Base+LAPIC_LVT_T, LVT_MASKED)
	reg.Write32(l.Base+LAPIC_TICR, 0xffffffff)
}

// Count returns the timer's current count.
//
//go:nosplit
func (l *LAPIC) Count() uint32 { return reg.Read32(l.Base + LAPIC_TCCR) }
