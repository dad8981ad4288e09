package virtio_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/molt-os/molt/drivers/virtio"
	"github.com/molt-os/molt/drivers/virtio/internal/fakedev"
)

// regsMap is a register window that only answers the identification
// registers.
type regsMap map[uintptr]uint32

func (r regsMap) Read8(off uintptr) uint8         { return 0 }
func (r regsMap) Read16(off uintptr) uint16       { return 0 }
func (r regsMap) Read32(off uintptr) uint32       { return r[off] }
func (r regsMap) Write32(off uintptr, val uint32) { r[off] = val }

func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		regs regsMap
		want error
		info virtio.Info
	}{
		{regsMap{}, virtio.ErrNotVirtio, virtio.Info{}},
		{regsMap{virtio.MagicValue: 0xffffffff}, virtio.ErrNotVirtio, virtio.Info{}},
		{regsMap{virtio.MagicValue: virtio.MagicValueVirt, virtio.Version: 3}, virtio.ErrVersion, virtio.Info{Version: 3}},
		{regsMap{virtio.MagicValue: virtio.MagicValueVirt, virtio.Version: 2}, virtio.ErrNoDevice, virtio.Info{Version: 2}},
		{regsMap{virtio.MagicValue: virtio.MagicValueVirt, virtio.Version: 2, virtio.DeviceID: 1, virtio.VendorID: 7}, nil,
			virtio.Info{Version: 2, DeviceID: 1, VendorID: 7}},
		{regsMap{virtio.MagicValue: virtio.MagicValueVirt, virtio.Version: 1, virtio.DeviceID: 2}, nil,
			virtio.Info{Version: 1, DeviceID: 2}},
	} {
		info, err := virtio.Probe(tc.regs)
		if !errors.Is(err, tc.want) || info != tc.info {
			t.Errorf("Probe(%v) = %+v, %v; want %+v, %v", tc.regs, info, err, tc.info, tc.want)
		}
		if _, err := virtio.NewTransport(tc.regs); !errors.Is(err, tc.want) {
			t.Errorf("NewTransport(%v) = %v; want %v", tc.regs, err, tc.want)
		}
	}
	if !(virtio.Info{Version: 1}).Legacy() || (virtio.Info{Version: 2}).Legacy() {
		t.Errorf("Info.Legacy wrong")
	}
}

func newFake(t *testing.T, opts fakedev.Options) (*fakedev.Device, *virtio.Region, *virtio.Transport) {
	t.Helper()
	mem := fakedev.NewMemory(1<<20, 0x7000000)
	dev := fakedev.New(mem, opts)
	tr, err := virtio.NewTransport(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, v := range dev.Violations() {
			t.Errorf("device saw a spec violation: %s", v)
		}
	})
	return dev, mem.Region(), tr
}

const (
	featMAC    = 1 << 5
	featStatus = 1 << 16
)

func TestNegotiateModern(t *testing.T) {
	dev, region, tr := newFake(t, fakedev.Options{})
	got, err := tr.Negotiate(featMAC|featStatus|1<<63, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(featMAC | featStatus | 1<<virtio.VIRTIO_F_VERSION_1); got != want || tr.Features() != want {
		t.Errorf("Negotiate = %#x; want %#x (offered ∩ wanted, plus VERSION_1)", got, want)
	}
	if s := dev.Stats(); s.Status != virtio.ACKNOWLEDGE|virtio.DRIVER|virtio.FEATURES_OK || s.DriverFeatures != got {
		t.Errorf("device status %#x features %#x", s.Status, s.DriverFeatures)
	}
	if !tr.HasFeature(5) || tr.HasFeature(0) {
		t.Errorf("HasFeature wrong")
	}
	q, err := tr.SetupQueue(0, 1024, region)
	if err != nil || q.Size() != 256 {
		t.Fatalf("SetupQueue(0, 1024) = %v, %v; want a queue capped at the device's 256", q, err)
	}
	if _, err := tr.SetupQueue(5, 16, region); !errors.Is(err, virtio.ErrNoQueue) {
		t.Errorf("SetupQueue(5) = %v; want ErrNoQueue", err)
	}
	tr.DriverOK()
	if dev.Stats().Status&virtio.DRIVER_OK == 0 {
		t.Errorf("DRIVER_OK not set")
	}
	// Negotiate starts with a reset.
	if _, err := tr.Negotiate(0, 0); err != nil {
		t.Fatal(err)
	}
	if s := dev.Stats(); s.Resets != 2 {
		t.Errorf("device saw %d resets; want 2", s.Resets)
	}
}

func TestNegotiateLegacy(t *testing.T) {
	dev, region, tr := newFake(t, fakedev.Options{Legacy: true})
	if !tr.Legacy() {
		t.Fatal("fake legacy device not seen as legacy")
	}
	got, err := tr.Negotiate(featMAC|1<<virtio.VIRTIO_F_VERSION_1, 1<<virtio.VIRTIO_F_ANY_LAYOUT|1<<virtio.VIRTIO_F_VERSION_1)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(featMAC | 1<<virtio.VIRTIO_F_ANY_LAYOUT); got != want {
		t.Errorf("legacy Negotiate = %#x; want %#x (no bits above 31)", got, want)
	}
	if s := dev.Stats(); s.Status != virtio.ACKNOWLEDGE|virtio.DRIVER {
		t.Errorf("legacy status %#x; want ACKNOWLEDGE|DRIVER (no FEATURES_OK)", s.Status)
	}
	if _, err := tr.SetupQueue(1, 64, region); err != nil {
		t.Fatal(err)
	}
	if tr.ConfigGeneration() != 0 {
		t.Errorf("legacy ConfigGeneration != 0")
	}
}

func TestNegotiateFailures(t *testing.T) {
	// A modern device without VERSION_1.
	dev, _, tr := newFake(t, fakedev.Options{Features: featMAC})
	_, err := tr.Negotiate(featMAC, 0)
	if !errors.Is(err, virtio.ErrFeatures) || !strings.Contains(err.Error(), "VIRTIO_F_VERSION_1") {
		t.Errorf("Negotiate without VERSION_1 = %v; want ErrFeatures naming VIRTIO_F_VERSION_1", err)
	}
	if dev.Stats().Status&virtio.FAILED == 0 {
		t.Errorf("FAILED not set after a failed negotiation")
	}
	// A required feature missing.
	dev, _, tr = newFake(t, fakedev.Options{})
	if _, err := tr.Negotiate(0, 1<<40); !errors.Is(err, virtio.ErrFeatures) || !strings.Contains(err.Error(), "40") {
		t.Errorf("Negotiate requiring bit 40 = %v; want ErrFeatures naming 40", err)
	}
	// FEATURES_OK refused.
	dev, _, tr = newFake(t, fakedev.Options{RejectFeatures: true})
	if _, err := tr.Negotiate(featMAC, 0); !errors.Is(err, virtio.ErrFeaturesRejected) {
		t.Errorf("Negotiate with a device refusing FEATURES_OK = %v; want ErrFeaturesRejected", err)
	}
	if dev.Stats().Status&virtio.FAILED == 0 {
		t.Errorf("FAILED not set after FEATURES_OK was refused")
	}
}

func TestReset(t *testing.T) {
	dev, _, tr := newFake(t, fakedev.Options{ResetDelay: 100})
	if err := tr.Reset(); err != nil {
		t.Fatalf("Reset with a device that takes 100 reads: %v", err)
	}
	if dev.Stats().Status != 0 {
		t.Errorf("status after Reset = %#x", dev.Stats().Status)
	}
	_, _, tr = newFake(t, fakedev.Options{ResetDelay: -1})
	if err := tr.Reset(); !errors.Is(err, virtio.ErrResetTimeout) {
		t.Errorf("Reset with a device that never resets = %v; want ErrResetTimeout", err)
	}
}

func TestInterruptAndNeedsReset(t *testing.T) {
	dev, _, tr := newFake(t, fakedev.Options{})
	if _, err := tr.Negotiate(featStatus, 0); err != nil {
		t.Fatal(err)
	}
	tr.DriverOK()
	if tr.AckInterrupt() != 0 {
		t.Errorf("AckInterrupt with nothing pending != 0")
	}
	dev.SetLink(false)
	if got := tr.AckInterrupt(); got != virtio.InterruptConfigChange {
		t.Errorf("AckInterrupt after a link change = %#x; want InterruptConfigChange", got)
	}
	if dev.Stats().ISR != 0 {
		t.Errorf("interrupt not acknowledged")
	}
	var status uint16
	if err := tr.ReadConfig(func() { status = tr.ConfigRead16(6) }); err != nil || status != 0 {
		t.Errorf("config status = %d, %v; want 0 (link down)", status, err)
	}
	if tr.NeedsReset() {
		t.Errorf("NeedsReset before the device asked")
	}
	dev.SetNeedsReset()
	if !tr.NeedsReset() || tr.AckInterrupt()&virtio.InterruptConfigChange == 0 {
		t.Errorf("DEVICE_NEEDS_RESET not reported with a configuration change interrupt")
	}
}
