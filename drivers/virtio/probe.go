package virtio

import (
	"errors"
	"fmt"
)

// Errors Probe and NewTransport return.
var (
	// ErrNotVirtio: MagicValue does not read "virt"; nothing, or something
	// else, answers at the address.
	ErrNotVirtio = errors.New("virtio: no virtio-mmio device (bad MagicValue)")
	// ErrNoDevice: a transport without a device behind it (DeviceID 0).
	// microvm creates all its transports; only those with a -device show
	// up on the command line.
	ErrNoDevice = errors.New("virtio: transport has no device (DeviceID 0)")
	// ErrVersion: a register layout this package does not speak.
	ErrVersion = errors.New("virtio: unsupported virtio-mmio Version")
)

// Info is what the identification registers of a virtio-mmio transport say
// (§4.2.2).
type Info struct {
	Version  uint32 // 2 for VIRTIO 1.x, 1 for the legacy interface (§4.2.4)
	DeviceID uint32 // device type (§5): DeviceNet, DeviceBlock, ...
	VendorID uint32
}

// Legacy reports whether the transport uses the legacy register layout.
func (i Info) Legacy() bool { return i.Version == 1 }

func (i Info) String() string {
	kind := "modern"
	if i.Legacy() {
		kind = "legacy"
	}
	return fmt.Sprintf("virtio-mmio v%d (%s) device %d vendor %#x", i.Version, kind, i.DeviceID, i.VendorID)
}

// Probe reads MagicValue, Version, DeviceID and VendorID. It fails with
// ErrNotVirtio, ErrVersion (a Version other than 1 or 2) or ErrNoDevice;
// the Info is filled in as far as it was read. Probe only reads registers,
// so it is safe on a device another driver owns.
func Probe(r Regs) (Info, error) {
	var i Info
	if m := r.Read32(MagicValue); m != MagicValueVirt {
		return i, fmt.Errorf("%w: read %#x", ErrNotVirtio, m)
	}
	i.Version = r.Read32(Version)
	if i.Version != 1 && i.Version != 2 {
		return i, fmt.Errorf("%w %d", ErrVersion, i.Version)
	}
	i.DeviceID = r.Read32(DeviceID)
	i.VendorID = r.Read32(VendorID)
	if i.DeviceID == 0 {
		return i, ErrNoDevice
	}
	return i, nil
}
