package virtio

import (
	"testing"
	"unsafe"
)

// TestMMIO drives the real register accessors (drivers/internal/reg) over
// ordinary memory standing in for a device window.
func TestMMIO(t *testing.T) {
	var win [Config/4 + 2]uint32 // control registers and 8 bytes of config space
	m := MMIO{Base: uintptr(unsafe.Pointer(&win[0]))}
	win[MagicValue/4] = MagicValueVirt
	win[Version/4] = 2
	win[DeviceID/4] = DeviceNet
	win[Config/4] = 0x00540052   // mac 52:00:54:00 (little-endian bytes)
	win[Config/4+1] = 0x00015634 // mac 34:56, status 0x0001

	if info, err := Probe(m); err != nil || info.DeviceID != DeviceNet || info.Legacy() {
		t.Errorf("Probe = %+v, %v", info, err)
	}
	want := []uint8{0x52, 0x00, 0x54, 0x00, 0x34, 0x56}
	for i, w := range want {
		if got := m.Read8(Config + uintptr(i)); got != w {
			t.Errorf("Read8(config+%d) = %#x; want %#x", i, got, w)
		}
	}
	if got := m.Read16(Config + 6); got != 1 {
		t.Errorf("Read16(config+6) = %#x; want 1", got)
	}
	if got := m.Read16(Config + 4); got != 0x5634 {
		t.Errorf("Read16(config+4) = %#x; want 0x5634", got)
	}
	m.Write32(QueueNotify, 7)
	if win[QueueNotify/4] != 7 {
		t.Errorf("Write32(QueueNotify) wrote %d", win[QueueNotify/4])
	}
	// AckInterrupt writes back what it read (a real device would then
	// clear InterruptStatus).
	win[InterruptStatus/4] = InterruptUsedBuffer | InterruptConfigChange
	if got := m.AckInterrupt(); got != 3 || win[InterruptACK/4] != 3 {
		t.Errorf("AckInterrupt = %d, wrote %d; want 3, 3", got, win[InterruptACK/4])
	}
	win[InterruptStatus/4], win[InterruptACK/4] = 0, 0xdead
	if got := m.AckInterrupt(); got != 0 || win[InterruptACK/4] != 0xdead {
		t.Errorf("AckInterrupt with nothing pending = %d and wrote InterruptACK", got)
	}
	d := MMIODevice{Base: m.Base, Size: 512, IRQ: 12}
	if d.Regs() != m || d.String() == "" || (Info{Version: 1}).String() == "" {
		t.Errorf("MMIODevice.Regs or String wrong")
	}
}
