package virtio

import "github.com/molt-os/molt/drivers/internal/reg"

// MMIO device register layout (§4.2.2, table "MMIO Device Register
// Layout"), as offsets from the device's base address. Names follow the
// spec's table.
const (
	MagicValue        = 0x000 // R: 0x74726976 ("virt")
	Version           = 0x004 // R: 2 (1 for legacy devices, §4.2.4)
	DeviceID          = 0x008 // R: device type (§5), 0 = no device
	VendorID          = 0x00c // R
	DeviceFeatures    = 0x010 // R: 32 feature bits selected by DeviceFeaturesSel
	DeviceFeaturesSel = 0x014 // W
	DriverFeatures    = 0x020 // W: 32 feature bits selected by DriverFeaturesSel
	DriverFeaturesSel = 0x024 // W
	QueueSel          = 0x030 // W: virtqueue index the Queue* registers refer to
	QueueNumMax       = 0x034 // R: maximum queue size, 0 = queue not available
	QueueNum          = 0x038 // W: queue size the driver uses
	QueueReady        = 0x044 // RW: 1 = the device may use the queue
	QueueNotify       = 0x050 // W: available buffer notification (queue index)
	InterruptStatus   = 0x060 // R: pending interrupt causes
	InterruptACK      = 0x064 // W: acknowledge the causes written
	Status            = 0x070 // RW: device status (§2.1); writing 0 resets
	QueueDescLow      = 0x080 // W: descriptor table address, low 32 bits
	QueueDescHigh     = 0x084 // W
	QueueDriverLow    = 0x090 // W: available ring address
	QueueDriverHigh   = 0x094 // W
	QueueDeviceLow    = 0x0a0 // W: used ring address
	QueueDeviceHigh   = 0x0a4 // W
	SHMSel            = 0x0ac // W: shared memory region (unused by molt)
	SHMLenLow         = 0x0b0 // R
	SHMLenHigh        = 0x0b4 // R
	SHMBaseLow        = 0x0b8 // R
	SHMBaseHigh       = 0x0bc // R
	QueueReset        = 0x0c0 // RW: VIRTIO_F_RING_RESET (unused by molt)
	ConfigGeneration  = 0x0fc // R: changes whenever the configuration space does
	Config            = 0x100 // device-specific configuration space starts here
)

// Registers of the legacy interface only (§4.2.4, version 1 devices).
const (
	GuestPageSize = 0x028 // W: page size QueuePFN counts in
	QueueAlign    = 0x03c // W: used ring alignment in bytes
	QueuePFN      = 0x040 // RW: queue address / GuestPageSize, 0 = not in use
)

// MagicValueVirt is the content of the MagicValue register: "virt" in
// little-endian byte order.
const MagicValueVirt = 0x74726976

// Interrupt causes in InterruptStatus and InterruptACK (§4.2.2).
const (
	InterruptUsedBuffer   = 1 << 0 // Used Buffer Notification
	InterruptConfigChange = 1 << 1 // Configuration Change Notification
)

// Device status bits (§2.1), spelled as in the spec.
const (
	ACKNOWLEDGE        = 1   // the guest has noticed the device
	DRIVER             = 2   // the guest knows how to drive it
	DRIVER_OK          = 4   // the driver is set up and ready
	FEATURES_OK        = 8   // feature negotiation is complete
	DEVICE_NEEDS_RESET = 64  // the device hit an error it cannot recover from
	FAILED             = 128 // the guest has given up on the device
)

// Reserved (device-independent) feature bits (§6).
const (
	VIRTIO_F_INDIRECT_DESC     = 28
	VIRTIO_F_EVENT_IDX         = 29
	VIRTIO_F_ANY_LAYOUT        = 27 // legacy only (§2.7.4.3); implied by VIRTIO_F_VERSION_1
	VIRTIO_F_VERSION_1         = 32
	VIRTIO_F_ACCESS_PLATFORM   = 33
	VIRTIO_F_RING_PACKED       = 34
	VIRTIO_F_IN_ORDER          = 35
	VIRTIO_F_ORDER_PLATFORM    = 36
	VIRTIO_F_SR_IOV            = 37
	VIRTIO_F_NOTIFICATION_DATA = 38
	VIRTIO_F_RING_RESET        = 40
)

// Device types (§5): the value of DeviceID.
const (
	DeviceNet     = 1
	DeviceBlock   = 2
	DeviceConsole = 3
	DeviceEntropy = 4
	DeviceVsock   = 19
)

// Regs is a virtio-mmio register window: offsets are from the device's base
// address. Control registers (below Config) are only ever accessed with
// Read32 and Write32 at 4-byte aligned offsets (§4.2.2.2); the
// configuration space is read with the width of the field (Read8 for
// bytes, Read16 for 16-bit fields, Read32 for 32-bit fields).
//
// MMIO is the implementation for real devices; tests use a fake device.
type Regs interface {
	Read8(off uintptr) uint8
	Read16(off uintptr) uint16
	Read32(off uintptr) uint32
	Write32(off uintptr, val uint32)
}

// MMIO is the register window of a real virtio-mmio device at Base, a
// physical address inside molt's identity-mapped low 4 GiB (microvm places
// its transports at 0xfeb00000 and up, in the uncached top GiB).
//
// Its methods are //go:nosplit so a trap handler may call them (see
// AckInterrupt). All accesses go through drivers/internal/reg.
type MMIO struct {
	Base uintptr
}

// Read32 reads the 32-bit register at off.
//
//go:nosplit
func (m MMIO) Read32(off uintptr) uint32 { return reg.Read32(m.Base + off) }

// Write32 writes the 32-bit register at off.
//
//go:nosplit
func (m MMIO) Write32(off uintptr, val uint32) { reg.Write32(m.Base+off, val) }

// Read8 reads the configuration-space byte at off.
//
// drivers/internal/reg has no 8- or 16-bit MMIO access yet, so this reads
// the aligned 32-bit word that contains the byte and extracts it. QEMU
// accepts 32-bit accesses anywhere inside the configuration space, but the
// spec asks for accesses of the field's width (§4.2.2.2), and a word that
// reaches past the end of the configuration space reads as all ones on
// QEMU. See docs/virtio.md, open points.
//
//go:nosplit
func (m MMIO) Read8(off uintptr) uint8 {
	w := reg.Read32(m.Base + off&^3)
	return uint8(w >> (8 * (off & 3)))
}

// Read16 reads the configuration-space half-word at off (aligned to 2);
// see Read8 for how.
//
//go:nosplit
func (m MMIO) Read16(off uintptr) uint16 {
	w := reg.Read32(m.Base + off&^3)
	return uint16(w >> (8 * (off & 2)))
}

// AckInterrupt reads InterruptStatus, acknowledges exactly the causes it
// found, and returns them. It is safe in trap context; a driver that runs
// entirely in Go calls Transport.AckInterrupt instead.
//
//go:nosplit
func (m MMIO) AckInterrupt() uint32 {
	s := reg.Read32(m.Base + InterruptStatus)
	if s != 0 {
		reg.Write32(m.Base+InterruptACK, s)
	}
	return s
}
