// Package uart drives a 16550-compatible serial port (PC16550D datasheet,
// National Semiconductor, 1995), as found at COM1 on QEMU microvm and PCs.
//
// Transmit is polled: the kernel prints from trap context, so PutByte is
// //go:nosplit and never blocks on anything but the line status register.
// Receive is interrupt-driven: EnableRxInterrupt asks the chip to raise its
// IRQ line when a byte arrives, and the owner drains it with TryGetByte.
package uart

import "github.com/molt-os/molt/drivers/internal/reg"

// Register offsets from the base port (DLAB=0 unless noted).
const (
	RBR = 0 // receiver buffer (read)
	THR = 0 // transmitter holding (write)
	IER = 1 // interrupt enable
	FCR = 2 // FIFO control (write)
	LCR = 3 // line control
	MCR = 4 // modem control
	LSR = 5 // line status
	DLL = 0 // divisor latch low (DLAB=1)
	DLM = 1 // divisor latch high (DLAB=1)

	LSR_DR    = 1 << 0 // data ready
	LSR_THRE  = 1 << 5 // transmitter holding register empty
	IER_ERBFI = 1 << 0 // enable received-data-available interrupt
	MCR_OUT2  = 1 << 3 // gates the IRQ line on PC-compatible boards
	LCR_DLAB  = 1 << 7
	LCR_8N1   = 0x03
)

// COM1 is the conventional first serial port.
const (
	COM1Base = 0x3f8
	COM1IRQ  = 4
)

// UART is one 16550 port.
type UART struct {
	Base uint16 // I/O port base
	IRQ  int    // ISA IRQ number
}

// Init programs 115200 8N1 with FIFOs enabled and interrupts off.
//
//go:nosplit
func (u *UART) Init() {
	reg.Out8(u.Base+IER, 0)
	reg.Out8(u.Base+LCR, LCR_DLAB)
	reg.Out8(u.Base+DLL, 1) // 115200 baud
	reg.Out8(u.Base+DLM, 0)
	reg.Out8(u.Base+LCR, LCR_8N1)
	reg.Out8(u.Base+FCR, 0x07) // enable and clear FIFOs
	reg.Out8(u.Base+MCR, 0x03) // DTR, RTS
}

// PutByte waits for the transmitter and sends one byte.
//
//go:nosplit
func (u *UART) PutByte(c byte) {
	for reg.In8(u.Base+LSR)&LSR_THRE == 0 {
	}
	reg.Out8(u.Base+THR, c)
}

// TryGetByte returns a received byte, if one is waiting.
//
//go:nosplit
func (u *UART) TryGetByte() (byte, bool) {
	if reg.In8(u.Base+LSR)&LSR_DR == 0 {
		return 0, false
	}
	return reg.In8(u.Base + RBR), true
}

// EnableRxInterrupt makes the chip raise its IRQ when data arrives.
//
//go:nosplit
func (u *UART) EnableRxInterrupt() {
	reg.Out8(u.Base+MCR, 0x03|MCR_OUT2)
	reg.Out8(u.Base+IER, IER_ERBFI)
}
