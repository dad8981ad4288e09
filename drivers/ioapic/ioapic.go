// Package ioapic drives the I/O APIC that routes device interrupt pins to
// CPU vectors (Intel 82093AA I/O Advanced Programmable Interrupt Controller
// datasheet, section 3.2).
//
// Methods are //go:nosplit: interrupt handlers mask and unmask pins.
// Register access is indirect (select, then window), so callers must run
// with interrupts off.
package ioapic

import "github.com/molt-os/molt/drivers/internal/reg"

const (
	IOREGSEL = 0x00
	IOWIN    = 0x10

	IOAPICVER = 0x01
	IOREDTBL  = 0x10 // two registers per pin

	REDIR_MASKED = 1 << 16
	REDIR_LEVEL  = 1 << 15
	REDIR_LOW    = 1 << 13 // active low
)

// DefaultBase is the conventional address of the first IOAPIC.
const DefaultBase = 0xfec00000

// IOAPIC is one I/O APIC.
type IOAPIC struct {
	Base uintptr
}

//go:nosplit
func (a *IOAPIC) read(r uint32) uint32 {
	reg.Write32(a.Base+IOREGSEL, r)
	return reg.Read32(a.Base + IOWIN)
}

//go:nosplit
func (a *IOAPIC) write(r, v uint32) {
	reg.Write32(a.Base+IOREGSEL, r)
	reg.Write32(a.Base+IOWIN, v)
}

// Pins returns the number of redirection entries.
//
//go:nosplit
func (a *IOAPIC) Pins() int { return int(a.read(IOAPICVER)>>16&0xff) + 1 }

// MaskAll masks every pin, as a fresh kernel must after a warm boot.
//
//go:nosplit
func (a *IOAPIC) MaskAll() {
	n := a.Pins()
	for p := 0; p < n; p++ {
		a.write(IOREDTBL+2*uint32(p), REDIR_MASKED)
		a.write(IOREDTBL+2*uint32(p)+1, 0)
	}
}

// Route sends pin to vector on the CPU with APIC ID dest, masked until
// Unmask. mode is 0 (edge-triggered, active-high: ISA style) or a
// combination of REDIR_LEVEL and REDIR_LOW.
//
//go:nosplit
func (a *IOAPIC) Route(pin int, vector uint8, dest uint32, mode uint32) {
	lo := uint32(vector) | REDIR_MASKED | mode&(REDIR_LEVEL|REDIR_LOW)
	a.write(IOREDTBL+2*uint32(pin)+1, dest<<24)
	a.write(IOREDTBL+2*uint32(pin), lo)
}

// Mask stops delivery from pin.
//
//go:nosplit
func (a *IOAPIC) Mask(pin int) {
	r := IOREDTBL + 2*uint32(pin)
	a.write(r, a.read(r)|REDIR_MASKED)
}

// Unmask resumes delivery from pin.
//
//go:nosplit
func (a *IOAPIC) Unmask(pin int) {
	r := IOREDTBL + 2*uint32(pin)
	a.write(r, a.read(r)&^REDIR_MASKED)
}
