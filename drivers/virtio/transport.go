package virtio

import (
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Errors of Transport.
var (
	// ErrResetTimeout: Status did not read 0 after a reset (§2.4).
	ErrResetTimeout = errors.New("virtio: device did not complete its reset")
	// ErrFeatures: the device lacks a feature the driver requires.
	ErrFeatures = errors.New("virtio: device lacks required features")
	// ErrFeaturesRejected: the device cleared FEATURES_OK, refusing the
	// feature subset the driver chose (§3.1.1 step 6).
	ErrFeaturesRejected = errors.New("virtio: device rejected the negotiated features")
	// ErrNoQueue: the device has no such virtqueue (QueueNumMax 0).
	ErrNoQueue = errors.New("virtio: virtqueue not available")
	// ErrConfigUnstable: the configuration generation kept changing.
	ErrConfigUnstable = errors.New("virtio: configuration space kept changing")
)

// LegacyHint is appended to errors caused by a legacy (version 1)
// transport where the modern interface would have worked.
const LegacyHint = "run QEMU with -global virtio-mmio.force-legacy=false for the VIRTIO 1.x interface"

// Reset polling: QEMU completes a reset within the register write; other
// devices get up to a second (§2.4: the driver waits for Status to read 0).
const (
	resetSpins   = 64
	resetTimeout = time.Second
)

// Transport drives the device-independent part of a virtio-mmio device:
// status, feature negotiation, virtqueue setup, notifications, interrupts
// and the configuration space. It is not safe for concurrent use, except
// that Notify and AckInterrupt touch only their own registers and may run
// alongside each other and alongside Queue operations.
type Transport struct {
	regs     Regs
	info     Info
	features uint64 // negotiated; written only by Negotiate
}

// NewTransport probes the device behind r (see Probe) and returns its
// transport. It does not touch the device's state.
func NewTransport(r Regs) (*Transport, error) {
	info, err := Probe(r)
	if err != nil {
		return nil, err
	}
	return &Transport{regs: r, info: info}, nil
}

// Info returns what Probe read.
func (t *Transport) Info() Info { return t.info }

// Legacy reports whether the device uses the legacy interface (§4.2.4).
func (t *Transport) Legacy() bool { return t.info.Legacy() }

// Features returns the feature bits negotiated by the last Negotiate.
func (t *Transport) Features() uint64 { return t.features }

// HasFeature reports whether feature bit b was negotiated.
func (t *Transport) HasFeature(b uint) bool { return t.features&(1<<b) != 0 }

// Status reads the device status (§2.1).
func (t *Transport) Status() uint32 { return t.regs.Read32(Status) }

// addStatus sets bits in the device status. The driver never clears a bit
// except by resetting (§2.1.1).
func (t *Transport) addStatus(bits uint32) {
	t.regs.Write32(Status, t.regs.Read32(Status)|bits)
}

// Reset resets the device (§2.4, §4.2.3.1: write 0 to Status) and waits
// until Status reads 0: from then on the device no longer reads or writes
// any memory the driver gave it, so the memory can be freed or reused.
// A self-updating kernel resets every device before it jumps, and the new
// kernel resets again before it initialises.
func (t *Transport) Reset() error {
	t.regs.Write32(Status, 0)
	deadline := time.Time{}
	for i := 0; ; i++ {
		if t.regs.Read32(Status) == 0 {
			t.features = 0
			return nil
		}
		if i < resetSpins {
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(resetTimeout)
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%w: Status reads %#x after %v", ErrResetTimeout, t.regs.Read32(Status), resetTimeout)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// Fail sets FAILED (§2.1): the driver has given up on the device. Drivers
// call it when initialisation goes irrecoverably wrong (§3.1.1).
func (t *Transport) Fail() { t.addStatus(FAILED) }

// NeedsReset reports whether the device has set DEVICE_NEEDS_RESET (§2.1):
// it has hit an error it cannot recover from without a reset and
// re-initialisation. Devices announce it with a configuration change
// interrupt once DRIVER_OK is set.
func (t *Transport) NeedsReset() bool { return t.Status()&DEVICE_NEEDS_RESET != 0 }

// Negotiate runs steps 1-6 of device initialisation (§3.1.1): reset, set
// ACKNOWLEDGE and DRIVER, read the device's features, accept offered ∩
// wanted, and (modern devices) set FEATURES_OK and check that the device
// kept it. It returns the negotiated features. The driver then sets up its
// virtqueues and calls DriverOK.
//
// The transport adds its own features: VIRTIO_F_VERSION_1 is required of a
// modern (version 2) device, and VIRTIO_F_ACCESS_PLATFORM and
// VIRTIO_F_ORDER_PLATFORM are accepted when offered (molt hands devices
// physical addresses and orders ring accesses with full barriers, which
// satisfies both). A legacy device has only 32 feature bits; the
// VIRTIO_F_VERSION_1 and higher bits are dropped from wanted and required.
//
// A device that lacks a required feature, or rejects FEATURES_OK, is left
// with FAILED set and the error wraps ErrFeatures or ErrFeaturesRejected.
func (t *Transport) Negotiate(wanted, required uint64) (uint64, error) {
	if err := t.Reset(); err != nil {
		return 0, err
	}
	t.addStatus(ACKNOWLEDGE)
	t.addStatus(DRIVER)

	var offered uint64
	if t.Legacy() {
		t.regs.Write32(DeviceFeaturesSel, 0)
		offered = uint64(t.regs.Read32(DeviceFeatures))
		wanted &= 1<<32 - 1
		required &= 1<<32 - 1
	} else {
		for sel := uint32(0); sel < 2; sel++ {
			t.regs.Write32(DeviceFeaturesSel, sel)
			offered |= uint64(t.regs.Read32(DeviceFeatures)) << (32 * sel)
		}
		required |= 1 << VIRTIO_F_VERSION_1
		wanted |= 1<<VIRTIO_F_VERSION_1 | 1<<VIRTIO_F_ACCESS_PLATFORM | 1<<VIRTIO_F_ORDER_PLATFORM
	}
	wanted |= required
	if missing := required &^ offered; missing != 0 {
		t.Fail()
		err := fmt.Errorf("%w: missing feature bits %s (offered %#x)", ErrFeatures, featureList(missing), offered)
		if !t.Legacy() && missing&(1<<VIRTIO_F_VERSION_1) != 0 {
			err = fmt.Errorf("%w; a version 2 transport must offer VIRTIO_F_VERSION_1", err)
		}
		return 0, err
	}
	features := offered & wanted
	for sel := uint32(0); sel < 2; sel++ {
		if t.Legacy() && sel > 0 {
			break
		}
		t.regs.Write32(DriverFeaturesSel, sel)
		t.regs.Write32(DriverFeatures, uint32(features>>(32*sel)))
	}
	if t.Legacy() {
		t.regs.Write32(GuestPageSize, legacyAlign)
	} else {
		t.addStatus(FEATURES_OK)
		if t.Status()&FEATURES_OK == 0 {
			t.Fail()
			return 0, fmt.Errorf("%w: %s", ErrFeaturesRejected, featureList(features))
		}
	}
	t.features = features
	return features, nil
}

// DriverOK sets DRIVER_OK (§3.1.1 step 8): the device is live.
func (t *Transport) DriverOK() { t.addStatus(DRIVER_OK) }

// SetupQueue sets up virtqueue index with at most size entries (§4.2.3.2;
// legacy: §4.2.4): it selects the queue, checks that it exists and is not
// in use, allocates a Queue of min(size, QueueNumMax) entries (rounded
// down to a power of two) from dma and hands its addresses to the device.
// Call it between Negotiate and DriverOK.
func (t *Transport) SetupQueue(index, size int, dma DMA) (*Queue, error) {
	t.regs.Write32(QueueSel, uint32(index))
	if t.Legacy() {
		if t.regs.Read32(QueuePFN) != 0 {
			return nil, fmt.Errorf("virtio: queue %d is already in use (QueuePFN set)", index)
		}
	} else if t.regs.Read32(QueueReady) != 0 {
		return nil, fmt.Errorf("virtio: queue %d is already in use (QueueReady set)", index)
	}
	max := t.regs.Read32(QueueNumMax)
	if max == 0 {
		return nil, fmt.Errorf("%w: queue %d", ErrNoQueue, index)
	}
	n := uint32(min(size, MaxQueueSize))
	n = min(n, max)
	n = 1 << (bits.Len32(n) - 1) // largest power of two <= n
	q, err := NewQueue(dma, int(n))
	if err != nil {
		return nil, err
	}
	t.regs.Write32(QueueNum, n)
	if t.Legacy() {
		pfn := q.DescAddr() / legacyAlign
		if pfn > 1<<32-1 {
			q.Release()
			return nil, fmt.Errorf("virtio: queue %d at %#x is beyond the legacy interface's reach", index, q.DescAddr())
		}
		t.regs.Write32(QueueAlign, legacyAlign)
		t.regs.Write32(QueuePFN, uint32(pfn))
		return q, nil
	}
	t.write64(QueueDescLow, q.DescAddr())
	t.write64(QueueDriverLow, q.DriverAddr())
	t.write64(QueueDeviceLow, q.DeviceAddr())
	t.regs.Write32(QueueReady, 1)
	return q, nil
}

func (t *Transport) write64(low uintptr, v uint64) {
	t.regs.Write32(low, uint32(v))
	t.regs.Write32(low+4, uint32(v>>32))
}

// Notify sends an available buffer notification for queue index
// (§4.2.3.3).
func (t *Transport) Notify(index int) { t.regs.Write32(QueueNotify, uint32(index)) }

// AckInterrupt reads InterruptStatus, acknowledges the causes it found
// (§4.2.3.4) and returns them (InterruptUsedBuffer, InterruptConfigChange).
// Acknowledge before processing the rings: an entry the device adds after
// the acknowledgement raises the interrupt again, so none is missed.
func (t *Transport) AckInterrupt() uint32 {
	s := t.regs.Read32(InterruptStatus)
	if s != 0 {
		t.regs.Write32(InterruptACK, s)
	}
	return s
}

// ConfigGeneration reads the configuration generation counter (§2.5.1);
// legacy devices have none and read as 0.
func (t *Transport) ConfigGeneration() uint32 {
	if t.Legacy() {
		return 0
	}
	return t.regs.Read32(ConfigGeneration)
}

// ReadConfig calls read, which reads configuration fields with
// ConfigRead8/16/32, until the generation counter is the same before and
// after (§2.5.1), so fields wider than 32 bits or spread over several
// reads are consistent.
func (t *Transport) ReadConfig(read func()) error {
	for try := 0; try < 100; try++ {
		g := t.ConfigGeneration()
		read()
		if t.ConfigGeneration() == g {
			return nil
		}
	}
	return ErrConfigUnstable
}

// ConfigRead8, ConfigRead16 and ConfigRead32 read a field of the
// device-specific configuration space at offset off (from Config), with the
// access width of the field (§4.2.2.2). Values are little-endian (modern
// devices) or guest-endian, which is the same on amd64 (legacy).
func (t *Transport) ConfigRead8(off uintptr) uint8   { return t.regs.Read8(Config + off) }
func (t *Transport) ConfigRead16(off uintptr) uint16 { return t.regs.Read16(Config + off) }
func (t *Transport) ConfigRead32(off uintptr) uint32 { return t.regs.Read32(Config + off) }

// featureList names the bits of f as "0,5,16".
func featureList(f uint64) string {
	s := ""
	for f != 0 {
		b := bits.TrailingZeros64(f)
		f &^= 1 << b
		if s != "" {
			s += ","
		}
		s += fmt.Sprint(b)
	}
	if s == "" {
		return "none"
	}
	return s
}
