package net

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molt-os/molt/drivers/virtio"
	"github.com/molt-os/molt/drivers/virtio/internal/fakedev"
)

var testMAC = [6]byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

type rig struct {
	dev    *fakedev.Device
	region *virtio.Region
	tr     *virtio.Transport
	// allowed lists violations the test provokes on purpose (substrings).
	allowed []string
}

// newRig makes a fake device with just enough fake DMA memory and checks at the
// end of the test that the device saw no spec violation.
func newRig(t testing.TB, opts fakedev.Options) *rig {
	t.Helper()
	if opts.MAC == [6]byte{} {
		opts.MAC = testMAC
	}
	n := int(opts.QueueNumMax)
	if n == 0 {
		n = DefaultQueueSize
	}
	mem := fakedev.NewMemory(2*n*BufferSize+2*virtio.RingBytes(n)+64<<10, 0x7000000)
	dev := fakedev.New(mem, opts)
	tr, err := virtio.NewTransport(dev)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{dev: dev, region: mem.Region(), tr: tr}
	t.Cleanup(func() {
	next:
		for _, v := range dev.Violations() {
			for _, a := range r.allowed {
				if strings.Contains(v, a) {
					continue next
				}
			}
			t.Errorf("device saw a spec violation: %s", v)
		}
	})
	return r
}

func (r *rig) open(t testing.TB, cfg Config) *Device {
	t.Helper()
	d, err := New(r.tr, r.region, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// frame makes a recognisable Ethernet-sized frame.
func frame(i, size int) []byte {
	f := make([]byte, size)
	for j := range f {
		f[j] = byte(i + j)
	}
	copy(f, fmt.Sprintf("frame %d", i))
	return f
}

func TestNewModern(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	d := r.open(t, Config{})
	if d.MAC() != testMAC {
		t.Errorf("MAC() = %x; want %x", d.MAC(), testMAC)
	}
	if !d.LinkUp() || d.Err() != nil || d.Legacy() {
		t.Errorf("LinkUp %v Err %v Legacy %v; want up, nil, modern", d.LinkUp(), d.Err(), d.Legacy())
	}
	want := uint64(1<<VIRTIO_NET_F_MAC | 1<<VIRTIO_NET_F_STATUS | 1<<virtio.VIRTIO_F_VERSION_1)
	if got := d.Features(); got != want {
		t.Errorf("Features() = %#x; want %#x (every offload declined)", got, want)
	}
	s := r.dev.Stats()
	if s.Status != virtio.ACKNOWLEDGE|virtio.DRIVER|virtio.FEATURES_OK|virtio.DRIVER_OK {
		t.Errorf("device status %#x", s.Status)
	}
	if s.RxAvail != DefaultQueueSize || s.Notifies[0] != 1 {
		t.Errorf("device has %d receive buffers after %d notifications; want %d after 1", s.RxAvail, s.Notifies[0], DefaultQueueSize)
	}
	if !r.dev.TxInterruptsSuppressed() {
		t.Errorf("transmit interrupts not suppressed")
	}
}

func TestNewLegacy(t *testing.T) {
	r := newRig(t, fakedev.Options{Legacy: true})
	var got [][]byte
	d := r.open(t, Config{OnReceive: func(f []byte) { got = append(got, bytes.Clone(f)) }})
	if !d.Legacy() || d.MAC() != testMAC || !d.LinkUp() {
		t.Fatalf("legacy device: Legacy %v MAC %x LinkUp %v", d.Legacy(), d.MAC(), d.LinkUp())
	}
	if d.Features()&(1<<virtio.VIRTIO_F_ANY_LAYOUT) == 0 {
		t.Errorf("VIRTIO_F_ANY_LAYOUT not negotiated on a legacy device")
	}
	// The 10-byte legacy header on both paths.
	f := frame(1, 60)
	if n, err := d.Transmit([][]byte{f}); n != 1 || err != nil {
		t.Fatalf("Transmit = %d, %v", n, err)
	}
	if tx := r.dev.Transmitted(); len(tx) != 1 || !bytes.Equal(tx[0], f) {
		t.Errorf("device received %q; want %q", tx, f)
	}
	r.dev.Inject(f)
	d.HandleInterrupt()
	if len(got) != 1 || !bytes.Equal(got[0], f) {
		t.Errorf("OnReceive got %q; want %q", got, f)
	}
}

func TestLegacyWithoutAnyLayout(t *testing.T) {
	r := newRig(t, fakedev.Options{Legacy: true, Features: 1 << VIRTIO_NET_F_MAC})
	_, err := New(r.tr, r.region, Config{})
	if !errors.Is(err, virtio.ErrFeatures) || !strings.Contains(err.Error(), "force-legacy=false") {
		t.Errorf("New on a legacy device without ANY_LAYOUT = %v; want ErrFeatures with the QEMU hint", err)
	}
}

func TestMACHandling(t *testing.T) {
	other := [6]byte{2, 0, 0, 0, 0, 1}

	// No VIRTIO_NET_F_MAC and no MAC configured.
	r := newRig(t, fakedev.Options{Features: 1 << virtio.VIRTIO_F_VERSION_1})
	if _, err := New(r.tr, r.region, Config{}); !errors.Is(err, ErrNoMAC) {
		t.Errorf("New without any MAC = %v; want ErrNoMAC", err)
	}
	if r.dev.Stats().Status&virtio.FAILED == 0 {
		t.Errorf("FAILED not set")
	}
	// ... but configured: used.
	if d, err := New(r.tr, r.region, Config{MAC: other}); err != nil || d.MAC() != other {
		t.Errorf("New with Config.MAC on a device without one = %v; MAC %x", err, d.MAC())
	}

	// The device's MAC is not the expected one.
	r = newRig(t, fakedev.Options{})
	if _, err := New(r.tr, r.region, Config{MAC: other}); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("New expecting another MAC = %v; want ErrMACMismatch", err)
	}
	if r.dev.Stats().Status&virtio.FAILED == 0 {
		t.Errorf("FAILED not set")
	}
	if s := r.region.Stats(); s.Allocations != 0 {
		t.Errorf("failed New left %d DMA allocations", s.Allocations)
	}
	// The expected one.
	if d, err := New(r.tr, r.region, Config{MAC: testMAC}); err != nil || d.MAC() != testMAC {
		t.Errorf("New expecting the device's MAC = %v", err)
	}
}

func TestNotNet(t *testing.T) {
	regs := regsMap{virtio.MagicValue: virtio.MagicValueVirt, virtio.Version: 2, virtio.DeviceID: virtio.DeviceBlock}
	tr, err := virtio.NewTransport(regs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(tr, nil, Config{}); !errors.Is(err, ErrNotNet) {
		t.Errorf("New on a block device = %v; want ErrNotNet", err)
	}
}

type regsMap map[uintptr]uint32

func (r regsMap) Read8(off uintptr) uint8         { return 0 }
func (r regsMap) Read16(off uintptr) uint16       { return 0 }
func (r regsMap) Read32(off uintptr) uint32       { return r[off] }
func (r regsMap) Write32(off uintptr, val uint32) { r[off] = val }

func TestNewFailures(t *testing.T) {
	for name, opts := range map[string]fakedev.Options{
		"no queues":         {NoQueues: true},
		"features rejected": {RejectFeatures: true},
	} {
		r := newRig(t, opts)
		if _, err := New(r.tr, r.region, Config{}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
		if r.dev.Stats().Status&virtio.FAILED == 0 {
			t.Errorf("%s: FAILED not set", name)
		}
		if s := r.region.Stats(); s.Allocations != 0 {
			t.Errorf("%s: failed New left %d DMA allocations", name, s.Allocations)
		}
	}
	// Not enough DMA memory for the buffers.
	r := newRig(t, fakedev.Options{})
	small := fakedev.NewMemory(64<<10, 0x7000000).Region()
	if _, err := New(r.tr, small, Config{}); !errors.Is(err, virtio.ErrNoMemory) {
		t.Errorf("New with 64 KiB of DMA memory = %v; want ErrNoMemory", err)
	}
	if s := small.Stats(); s.Allocations != 0 {
		t.Errorf("failed New left %d DMA allocations", s.Allocations)
	}
}

func TestNoStatusFeature(t *testing.T) {
	r := newRig(t, fakedev.Options{Features: 1<<virtio.VIRTIO_F_VERSION_1 | 1<<VIRTIO_NET_F_MAC, LinkDown: true})
	d := r.open(t, Config{})
	if !d.LinkUp() {
		t.Errorf("LinkUp() = false without VIRTIO_NET_F_STATUS; the link must be assumed up")
	}
}

func TestTransmitBatch(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	d := r.open(t, Config{})
	var frames [][]byte
	var total int
	for i := range 10 {
		frames = append(frames, frame(i, 60+i*100))
		total += 60 + i*100
	}
	if n, err := d.Transmit(frames); n != 10 || err != nil {
		t.Fatalf("Transmit(10 frames) = %d, %v", n, err)
	}
	// The caller may reuse its buffers at once.
	for _, f := range frames {
		clear(f)
	}
	got := r.dev.Transmitted()
	for i := range frames {
		if i >= len(got) || !bytes.Equal(got[i], frame(i, 60+i*100)) {
			t.Fatalf("device got %d frames; frame %d differs", len(got), i)
		}
	}
	if n := r.dev.Stats().Notifies[1]; n != 1 {
		t.Errorf("%d transmit notifications for one batch; want 1", n)
	}
	s := d.Stats()
	if s.TxPackets != 10 || s.TxBytes != uint64(total) || s.TxNotifies != 1 {
		t.Errorf("Stats() = %+v; want 10 packets, %d bytes, 1 notify", s, total)
	}
	if n, err := d.Transmit(nil); n != 0 || err != nil {
		t.Errorf("Transmit(nil) = %d, %v", n, err)
	}
	if d.Stats().TxNotifies != 1 {
		t.Errorf("an empty batch notified the device")
	}
}

func TestTransmitNoNotify(t *testing.T) {
	r := newRig(t, fakedev.Options{NoNotify: true})
	d := r.open(t, Config{})
	r.dev.StallTx(true) // the device polls instead (NO_NOTIFY): process on our command
	if n, err := d.Transmit([][]byte{frame(1, 60)}); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	if s := r.dev.Stats(); s.Notifies != [2]int{0, 0} {
		t.Errorf("notifications %v although the device set VIRTQ_USED_F_NO_NOTIFY", s.Notifies)
	}
	r.dev.StallTx(false)
	if len(r.dev.Transmitted()) != 1 {
		t.Errorf("frame not transmitted")
	}
}

func TestTransmitQueueFull(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	d := r.open(t, Config{QueueSize: 8})
	r.dev.StallTx(true)
	var frames [][]byte
	for i := range 11 {
		frames = append(frames, frame(i, 100))
	}
	n, err := d.Transmit(frames)
	if n != 8 || !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Transmit(11) into 8 slots = %d, %v; want 8, ErrQueueFull", n, err)
	}
	if s := d.Stats(); s.TxQueueFull != 3 || s.TxPackets != 8 {
		t.Errorf("Stats() = %+v; want TxQueueFull 3, TxPackets 8", s)
	}
	if n, err := d.Transmit(frames[8:]); n != 0 || !errors.Is(err, ErrQueueFull) {
		t.Errorf("Transmit into a full ring = %d, %v", n, err)
	}
	// The device catches up; the next Transmit reclaims the slots.
	r.dev.StallTx(false)
	if n, err := d.Transmit(frames[8:]); n != 3 || err != nil {
		t.Fatalf("Transmit after the device caught up = %d, %v", n, err)
	}
	got := r.dev.Transmitted()
	if len(got) != 11 {
		t.Fatalf("device got %d frames; want 11", len(got))
	}
	for i, f := range got {
		if !bytes.Equal(f, frames[i]) {
			t.Errorf("frame %d differs", i)
		}
	}
	if s := d.Stats(); s.TxQueueFull != 6 {
		t.Errorf("TxQueueFull = %d; want 6", s.TxQueueFull)
	}
}

func TestTransmitFrameSize(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	d := r.open(t, Config{})
	n, err := d.Transmit([][]byte{frame(0, 60), frame(1, MaxFrameSize), frame(2, MaxFrameSize+1), frame(3, 60)})
	if n != 2 || !errors.Is(err, ErrFrameSize) {
		t.Errorf("Transmit with an oversize third frame = %d, %v; want 2, ErrFrameSize", n, err)
	}
	if n, err := d.Transmit([][]byte{{}}); n != 0 || !errors.Is(err, ErrFrameSize) {
		t.Errorf("Transmit of an empty frame = %d, %v; want ErrFrameSize", n, err)
	}
	if s := d.Stats(); s.TxOversize != 2 || s.TxPackets != 2 {
		t.Errorf("Stats() = %+v; want TxOversize 2, TxPackets 2", s)
	}
	if got := r.dev.Transmitted(); len(got) != 2 || len(got[1]) != MaxFrameSize {
		t.Errorf("device got %d frames", len(got))
	}
}

// TestTransmitWraparound sends many times the ring size in batches of
// varying length.
func TestTransmitWraparound(t *testing.T) {
	r := newRig(t, fakedev.Options{QueueNumMax: 16})
	d := r.open(t, Config{})
	sent := 0
	for b := 0; sent < 16*50; b++ {
		var batch [][]byte
		for range 1 + b%16 {
			batch = append(batch, frame(sent+len(batch), 64+(sent+len(batch))%1400))
		}
		if n, err := d.Transmit(batch); n != len(batch) || err != nil {
			t.Fatalf("batch %d: Transmit = %d, %v", b, n, err)
		}
		for i, f := range r.dev.Transmitted() {
			if !bytes.Equal(f, batch[i]) {
				t.Fatalf("batch %d frame %d differs", b, i)
			}
		}
		sent += len(batch)
	}
	if s := d.Stats(); s.TxPackets != uint64(sent) || s.DeviceErrors != 0 {
		t.Errorf("Stats() = %+v", s)
	}
}

// TestReceivePush injects several times the ring size, interrupt by
// interrupt and in bursts, and checks order, contents, refills and counters.
func TestReceivePush(t *testing.T) {
	r := newRig(t, fakedev.Options{QueueNumMax: 32})
	var got [][]byte
	d := r.open(t, Config{OnReceive: func(f []byte) { got = append(got, bytes.Clone(f)) }})
	want := 0
	var bytesWant uint64
	for burst := 0; want < 32*10; burst++ {
		for range 1 + burst%32 { // up to a full ring per interrupt
			f := frame(want, 14+want%1500)
			if !r.dev.Inject(f) {
				t.Fatalf("device had no receive buffer for frame %d", want)
			}
			want++
			bytesWant += uint64(len(f))
		}
		d.HandleInterrupt()
		if r.dev.Stats().RxAvail != 32 {
			t.Fatalf("after burst %d the device has %d buffers; want all 32 reposted", burst, r.dev.Stats().RxAvail)
		}
	}
	if len(got) != want {
		t.Fatalf("OnReceive got %d frames; want %d", len(got), want)
	}
	for i, f := range got {
		if !bytes.Equal(f, frame(i, 14+i%1500)) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if s := d.Stats(); s.RxPackets != uint64(want) || s.RxBytes != bytesWant || s.DeviceErrors != 0 {
		t.Errorf("Stats() = %+v; want %d packets, %d bytes", s, want, bytesWant)
	}
	if r.dev.Stats().RxDropped != 0 {
		t.Errorf("device dropped frames")
	}
}

func TestReceivePull(t *testing.T) {
	r := newRig(t, fakedev.Options{QueueNumMax: 8})
	d := r.open(t, Config{})
	buf := make([]byte, 2048)
	if _, err := d.Receive(buf); !errors.Is(err, ErrNoFrame) {
		t.Errorf("Receive with nothing pending = %v; want ErrNoFrame", err)
	}
	for i := range 3 {
		r.dev.Inject(frame(i, 100))
	}
	d.HandleInterrupt()
	select {
	case <-d.Ready():
	default:
		t.Fatalf("Ready not signalled")
	}
	n, err := d.Receive(buf)
	if err != nil || !bytes.Equal(buf[:n], frame(0, 100)) {
		t.Errorf("Receive = %d, %v", n, err)
	}
	if n, err := d.Receive(buf[:50]); n != 100 || !errors.Is(err, ErrBufferTooSmall) {
		t.Errorf("Receive into 50 bytes = %d, %v; want 100, ErrBufferTooSmall", n, err)
	}
	if n, err := d.Receive(buf); err != nil || !bytes.Equal(buf[:n], frame(2, 100)) {
		t.Errorf("Receive after a drop = %d, %v; want frame 2", n, err)
	}
	if s := d.Stats(); s.RxPackets != 2 || s.RxBufferTooSmall != 1 {
		t.Errorf("Stats() = %+v; want 2 packets, 1 too small", s)
	}
	// Wraparound in pull mode: many times the ring.
	for i := range 100 {
		if !r.dev.Inject(frame(i, 60)) {
			t.Fatalf("no buffer for frame %d", i)
		}
		if n, err := d.Receive(buf); err != nil || !bytes.Equal(buf[:n], frame(i, 60)) {
			t.Fatalf("frame %d: Receive = %d, %v", i, n, err)
		}
	}
	if r.dev.Stats().RxAvail != 8 {
		t.Errorf("device has %d receive buffers; want 8", r.dev.Stats().RxAvail)
	}
}

func TestLinkChange(t *testing.T) {
	r := newRig(t, fakedev.Options{LinkDown: true})
	var mu sync.Mutex
	var changes []bool
	d := r.open(t, Config{OnLinkChange: func(up bool) {
		mu.Lock()
		changes = append(changes, up)
		mu.Unlock()
	}})
	if d.LinkUp() {
		t.Errorf("LinkUp() = true on a device whose link is down")
	}
	r.dev.SetLink(true)
	d.HandleInterrupt()
	if !d.LinkUp() {
		t.Errorf("LinkUp() = false after the link came up")
	}
	r.dev.SetLink(false)
	d.HandleInterrupt()
	d.HandleInterrupt() // nothing new: no callback
	if d.LinkUp() {
		t.Errorf("LinkUp() = true after the link went down")
	}
	if fmt.Sprint(changes) != "[true false]" {
		t.Errorf("OnLinkChange calls %v; want [true false]", changes)
	}
	if s := d.Stats(); s.ConfigChanges != 2 || s.Interrupts != 3 {
		t.Errorf("Stats() = %+v; want 2 config changes, 3 interrupts", s)
	}
}

func TestNeedsResetAndReinit(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	var got [][]byte
	var links []bool
	d := r.open(t, Config{
		OnReceive:    func(f []byte) { got = append(got, bytes.Clone(f)) },
		OnLinkChange: func(up bool) { links = append(links, up) },
	})
	r.dev.SetNeedsReset()
	d.HandleInterrupt()
	if err := d.Err(); !errors.Is(err, ErrNeedsReset) || !strings.Contains(err.Error(), "DEVICE_NEEDS_RESET") {
		t.Fatalf("Err() = %v; want ErrNeedsReset naming DEVICE_NEEDS_RESET", err)
	}
	if d.LinkUp() {
		t.Errorf("LinkUp() = true on a stopped device")
	}
	if n, err := d.Transmit([][]byte{frame(0, 60), frame(1, 60)}); n != 0 || !errors.Is(err, ErrNeedsReset) {
		t.Errorf("Transmit on a stopped device = %d, %v", n, err)
	}
	if _, err := d.Receive(make([]byte, 100)); !errors.Is(err, ErrNeedsReset) {
		t.Errorf("Receive on a stopped device = %v", err)
	}
	if s := d.Stats(); s.TxDown != 2 || s.DeviceErrors != 1 {
		t.Errorf("Stats() = %+v; want TxDown 2, DeviceErrors 1", s)
	}
	if err := d.Reinit(); err != nil {
		t.Fatalf("Reinit: %v", err)
	}
	if d.Err() != nil || !d.LinkUp() || d.MAC() != testMAC {
		t.Errorf("after Reinit: Err %v LinkUp %v MAC %x", d.Err(), d.LinkUp(), d.MAC())
	}
	if n, err := d.Transmit([][]byte{frame(2, 60)}); n != 1 || err != nil {
		t.Errorf("Transmit after Reinit = %d, %v", n, err)
	}
	r.dev.Inject(frame(3, 60))
	d.HandleInterrupt()
	if len(got) != 1 || !bytes.Equal(got[0], frame(3, 60)) {
		t.Errorf("receive after Reinit: got %d frames", len(got))
	}
	if fmt.Sprint(links) != "[false true]" {
		t.Errorf("OnLinkChange calls %v; want [false true]", links)
	}
	if s := d.Stats(); s.Reinits != 1 {
		t.Errorf("Reinits = %d", s.Reinits)
	}
	// Reinit frees the old rings and buffers: exactly 4 allocations live.
	if s := r.region.Stats(); s.Allocations != 4 {
		t.Errorf("%d DMA allocations after Reinit; want 4", s.Allocations)
	}
	// A device whose MAC changed is refused.
	r.dev.SetMAC([6]byte{2, 2, 2, 2, 2, 2})
	if err := d.Reinit(); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("Reinit with a changed MAC = %v; want ErrMACMismatch", err)
	}
	if !errors.Is(d.Err(), ErrMACMismatch) {
		t.Errorf("Err() = %v; want ErrMACMismatch", d.Err())
	}
}

// TestBadUsedEntries plays a buggy device on both rings.
func TestBadUsedEntries(t *testing.T) {
	r := newRig(t, fakedev.Options{QueueNumMax: 8})
	var got int
	d := r.open(t, Config{OnReceive: func([]byte) { got++ }})

	r.dev.PushUsedRaw(0, 999, 100) // id out of range
	d.HandleInterrupt()
	head, ok := r.dev.TakeAvail(0)
	if !ok {
		t.Fatal("no receive buffer")
	}
	r.dev.PushUsedRaw(0, uint32(head), BufferSize+1) // longer than the buffer
	d.HandleInterrupt()
	head, _ = r.dev.TakeAvail(0)
	r.dev.PushUsedRaw(0, uint32(head), hdrLenModern) // no payload
	d.HandleInterrupt()
	r.dev.StallTx(true)
	d.Transmit([][]byte{frame(0, 60)})
	r.dev.PushUsedRaw(1, 7, 0) // a transmit completion for a descriptor not in flight
	d.Transmit(nil)
	r.dev.StallTx(false)
	if tx := r.dev.Transmitted(); len(tx) != 1 {
		t.Errorf("device transmitted %d frames; want 1", len(tx))
	}
	if s := d.Stats(); s.DeviceErrors != 4 || got != 0 || d.Err() != nil {
		t.Errorf("Stats() = %+v, %d frames, Err %v; want 4 device errors, no frames, running", s, got, d.Err())
	}
	if d.LastError() == nil {
		t.Errorf("LastError() = nil")
	}
	// The rejected buffers went back to the device; the ring still works.
	if n := r.dev.Stats().RxAvail; n != 8 {
		t.Errorf("device has %d receive buffers; want 8", n)
	}
	r.dev.Inject(frame(1, 60))
	d.HandleInterrupt()
	if got != 1 {
		t.Errorf("good frame after bad entries not delivered")
	}
	// used.idx overrun stops the device.
	for range 20 {
		r.dev.PushUsedRaw(0, 0, 0)
	}
	d.HandleInterrupt()
	if !errors.Is(d.Err(), virtio.ErrUsedOverrun) || !errors.Is(d.Err(), ErrNeedsReset) {
		t.Errorf("Err() after an overrun = %v", d.Err())
	}
	if err := d.Reinit(); err != nil || d.Err() != nil {
		t.Errorf("Reinit after an overrun = %v, Err %v", err, d.Err())
	}
}

func TestShutdownAndReattach(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	d := r.open(t, Config{})
	irq := r.dev.IRQ()
	served := make(chan error)
	go func() { served <- d.ServeInterrupts(irq) }()
	d.Transmit([][]byte{frame(0, 60)})

	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if s := r.dev.Stats(); s.Status != 0 {
		t.Errorf("device status after Shutdown = %#x; want 0 (reset)", s.Status)
	}
	if s := r.region.Stats(); s.Allocations != 0 {
		t.Errorf("%d DMA allocations after Shutdown", s.Allocations)
	}
	if _, err := d.Transmit([][]byte{frame(0, 60)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Transmit after Shutdown = %v", err)
	}
	if _, err := d.ReceiveWait(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("ReceiveWait after Shutdown = %v", err)
	}
	if err := d.Reinit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reinit after Shutdown = %v", err)
	}
	if err := d.Shutdown(); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
	d.HandleInterrupt() // harmless
	irq.Close()
	if err := <-served; !errors.Is(err, fakedev.ErrClosed) {
		t.Errorf("ServeInterrupts returned %v", err)
	}

	// The next kernel re-attaches, expecting the MAC it was handed.
	d2, err := New(r.tr, r.region, Config{MAC: d.MAC()})
	if err != nil {
		t.Fatalf("re-attach: %v", err)
	}
	if n, err := d2.Transmit([][]byte{frame(1, 60)}); n != 1 || err != nil {
		t.Errorf("Transmit after re-attach = %d, %v", n, err)
	}
	if got := r.dev.Transmitted(); len(got) != 2 {
		t.Errorf("device transmitted %d frames; want 2", len(got))
	}
}

// TestConcurrent runs the interrupt loop, a transmitter and a pull
// receiver at once against a device injecting from another goroutine; run
// with -race it checks the locking and the ring memory ordering.
func TestConcurrent(t *testing.T) {
	for _, push := range []bool{false, true} {
		t.Run(fmt.Sprintf("push=%v", push), func(t *testing.T) {
			const frames = 2000
			r := newRig(t, fakedev.Options{QueueNumMax: 64})
			var mu sync.Mutex
			var pushed [][]byte
			cfg := Config{}
			if push {
				cfg.OnReceive = func(f []byte) {
					mu.Lock()
					pushed = append(pushed, bytes.Clone(f))
					mu.Unlock()
				}
			}
			d := r.open(t, cfg)
			irq := r.dev.IRQ()
			go d.ServeInterrupts(irq)
			defer irq.Close()

			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // transmitter
				defer wg.Done()
				for i := 0; i < frames; {
					n, err := d.Transmit([][]byte{frame(i, 100), frame(i+1, 100)})
					if err != nil && !errors.Is(err, ErrQueueFull) {
						t.Error(err)
						return
					}
					i += n
				}
			}()
			go func() { // the network
				defer wg.Done()
				for i := 0; i < frames; {
					if r.dev.Inject(frame(i, 200)) {
						i++
					} else {
						time.Sleep(10 * time.Microsecond) // receiver behind: wait for buffers
					}
				}
			}()
			var pulled [][]byte
			if !push {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				buf := make([]byte, 2048)
				for len(pulled) < frames {
					n, err := d.ReceiveWait(ctx, buf)
					if err != nil {
						t.Fatalf("ReceiveWait after %d frames: %v", len(pulled), err)
					}
					pulled = append(pulled, bytes.Clone(buf[:n]))
				}
			}
			wg.Wait()
			deadline := time.Now().Add(30 * time.Second)
			for push && time.Now().Before(deadline) {
				mu.Lock()
				n := len(pushed)
				mu.Unlock()
				if n == frames {
					break
				}
				time.Sleep(time.Millisecond)
			}
			got := pulled
			if push {
				mu.Lock()
				got = pushed
				mu.Unlock()
			}
			if len(got) != frames {
				t.Fatalf("received %d frames; want %d", len(got), frames)
			}
			for i, f := range got {
				if !bytes.Equal(f, frame(i, 200)) {
					t.Fatalf("frame %d differs", i)
				}
			}
			// Give the device the last batch, then check it saw everything.
			d.Transmit(nil)
			if tx := r.dev.Transmitted(); len(tx) < frames {
				t.Errorf("device transmitted %d frames; want %d", len(tx), frames)
			}
			if s := d.Stats(); s.DeviceErrors != 0 || s.TxPackets < frames {
				t.Errorf("Stats() = %+v", s)
			}
			if irq.Fired() == 0 {
				t.Errorf("the interrupt line never fired")
			}
		})
	}
}

// FuzzReceiveUsed lets a hostile device write arbitrary used entries to
// both rings between legitimate traffic. The driver must not panic, must
// count what it rejects, must keep every receive buffer posted while it
// runs, and must recover with Reinit.
func FuzzReceiveUsed(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3})
	f.Add([]byte{0x40, 0, 0x12, 0x41, 7, 0xff, 0x80, 0xc0})
	f.Add([]byte{0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		const size = 8
		r := newRig(t, fakedev.Options{QueueNumMax: size})
		// A device that returns buffers it never took sees the driver
		// make them available again: its own avail ring overflows.
		r.allowed = []string{"ahead of the device"}
		got := 0
		d := r.open(t, Config{OnReceive: func(f []byte) {
			if len(f) == 0 || len(f) > BufferSize-hdrLenModern {
				t.Fatalf("OnReceive got a %d-byte frame", len(f))
			}
			got++
		}})
		for i, b := range data {
			switch b >> 6 {
			case 0: // a good frame
				r.dev.Inject(frame(i, 14+int(b)))
			case 1: // a raw used entry on the receive ring
				id := uint32(b & 0x0f)
				if b&0x10 != 0 {
					if h, ok := r.dev.TakeAvail(0); ok {
						id = uint32(h)
					}
				}
				r.dev.PushUsedRaw(0, id, uint32(b&0x20)<<6|uint32(i))
			case 2: // a raw used entry on the transmit ring, or a frame to send
				if b&1 != 0 {
					r.dev.PushUsedRaw(1, uint32(b&0x3f), 0)
				} else {
					d.Transmit([][]byte{frame(i, 60)})
				}
			case 3:
				if b&1 != 0 {
					d.Reinit()
				}
			}
			d.HandleInterrupt()
			if d.Err() == nil {
				d.rxMu.Lock()
				inFlight := d.rx.InFlight()
				d.rxMu.Unlock()
				// Buffers lost to entries with bad ids stay with the device;
				// everything else must be back on the ring.
				if inFlight != size {
					t.Fatalf("step %d: %d receive buffers in flight; want %d", i, inFlight, size)
				}
			}
		}
		if uint64(got) != d.Stats().RxPackets {
			t.Fatalf("delivered %d frames, counted %d", got, d.Stats().RxPackets)
		}
		if err := d.Reinit(); err != nil {
			t.Fatalf("Reinit: %v", err)
		}
		if n, err := d.Transmit([][]byte{frame(0, 60)}); n != 1 || err != nil {
			t.Fatalf("Transmit after Reinit = %d, %v", n, err)
		}
	})
}

func TestReceiveWaitEnds(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	d := r.open(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.ReceiveWait(ctx, make([]byte, 2048)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ReceiveWait with nothing coming = %v; want the context's error", err)
	}
	// A device that stops wakes the waiter.
	errc := make(chan error)
	go func() {
		_, err := d.ReceiveWait(context.Background(), make([]byte, 2048))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	r.dev.SetNeedsReset()
	d.HandleInterrupt()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrNeedsReset) {
			t.Errorf("ReceiveWait on a device that stopped = %v; want ErrNeedsReset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReceiveWait did not return when the device stopped")
	}
}

func TestSetReceiver(t *testing.T) {
	r := newRig(t, fakedev.Options{})
	d := r.open(t, Config{})
	if d.MTU() != 1500 {
		t.Errorf("MTU() = %d", d.MTU())
	}
	// Pull mode: frames wait in the ring ...
	r.dev.Inject(frame(0, 60))
	r.dev.Inject(frame(1, 60))
	d.HandleInterrupt()
	// ... until a receiver is installed, which gets them at once.
	var got [][]byte
	d.SetReceiver(func(f []byte) { got = append(got, bytes.Clone(f)) })
	if len(got) != 2 || !bytes.Equal(got[1], frame(1, 60)) {
		t.Fatalf("receiver got %d frames on install; want the 2 pending", len(got))
	}
	r.dev.Inject(frame(2, 60))
	d.HandleInterrupt()
	d.SetReceiver(nil)
	r.dev.Inject(frame(3, 60))
	d.HandleInterrupt()
	if len(got) != 3 {
		t.Errorf("receiver got %d frames; want 3 (none after SetReceiver(nil))", len(got))
	}
	select {
	case <-d.Ready():
	default:
		t.Errorf("Ready not signalled in pull mode")
	}
	buf := make([]byte, 100)
	if n, err := d.Receive(buf); err != nil || !bytes.Equal(buf[:n], frame(3, 60)) {
		t.Errorf("Receive after SetReceiver(nil) = %d, %v", n, err)
	}
}
