package net

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/molt-os/molt/drivers/virtio"
)

// Network device feature bits (§5.1.3) and status bits (§5.1.4), spelled
// as in the spec. Only MAC and STATUS are ever negotiated.
const (
	VIRTIO_NET_F_CSUM       = 0
	VIRTIO_NET_F_GUEST_CSUM = 1
	VIRTIO_NET_F_MTU        = 3
	VIRTIO_NET_F_MAC        = 5
	VIRTIO_NET_F_MRG_RXBUF  = 15
	VIRTIO_NET_F_STATUS     = 16
	VIRTIO_NET_F_CTRL_VQ    = 17

	VIRTIO_NET_S_LINK_UP  = 1
	VIRTIO_NET_S_ANNOUNCE = 2
)

// Offsets in struct virtio_net_config (§5.1.4).
const (
	configMAC    = 0 // u8 mac[6]
	configStatus = 6 // le16 status
)

// Virtqueue indices (§5.1.2).
const (
	receiveq1  = 0
	transmitq1 = 1
)

// Sizes.
const (
	// BufferSize is the DMA slot of every receive and transmit descriptor:
	// header plus frame.
	BufferSize = 2048
	// MTU is the IP MTU the device carries (VIRTIO_NET_F_MTU is not
	// negotiated, so the Ethernet default).
	MTU = 1500
	// MaxFrameSize is the largest frame Transmit accepts: MTU plus the
	// Ethernet header and one VLAN tag (the FCS is not part of the frame).
	MaxFrameSize = MTU + 14 + 4
	// DefaultQueueSize is the number of entries per queue unless
	// Config.QueueSize says otherwise; QEMU's default too.
	DefaultQueueSize = 256

	hdrLenModern = 12 // struct virtio_net_hdr with num_buffers (VIRTIO_F_VERSION_1)
	hdrLenLegacy = 10 // without num_buffers (legacy, no VIRTIO_NET_F_MRG_RXBUF)
)

// Errors.
var (
	ErrNotNet = errors.New("virtio-net: not a network device")
	// ErrNoMAC: the device offers no MAC (no VIRTIO_NET_F_MAC) and
	// Config.MAC is zero.
	ErrNoMAC = errors.New("virtio-net: device has no MAC address and none was configured")
	// ErrMACMismatch: the device's MAC is not the one Config.MAC expects
	// (after a self-update) or changed across Reinit.
	ErrMACMismatch = errors.New("virtio-net: device MAC address differs from the expected one")
	// ErrNeedsReset: the device stopped (DEVICE_NEEDS_RESET, or the driver
	// caught it corrupting a ring); Err says why. Call Reinit.
	ErrNeedsReset = errors.New("virtio-net: device needs a reset")
	// ErrClosed: Shutdown was called.
	ErrClosed = errors.New("virtio-net: device shut down")
	// ErrQueueFull: the transmit ring has no free slot.
	ErrQueueFull = errors.New("virtio-net: transmit queue full")
	// ErrFrameSize: a frame is empty or longer than MaxFrameSize.
	ErrFrameSize = errors.New("virtio-net: frame size out of range")
	// ErrNoFrame: Receive found no frame.
	ErrNoFrame = errors.New("virtio-net: no frame received")
	// ErrBufferTooSmall: the frame did not fit the buffer given to
	// Receive; it was dropped and counted.
	ErrBufferTooSmall = errors.New("virtio-net: receive buffer too small")
)

// Config configures a Device. The zero value is valid for a device that
// offers its MAC, in pull mode.
type Config struct {
	// QueueSize is the number of entries per virtqueue (rounded down to a
	// power of two and capped by the device); 0 means DefaultQueueSize.
	QueueSize int
	// MAC, when not zero, is the address the caller expects: a device
	// offering VIRTIO_NET_F_MAC must report exactly this one (a kernel
	// re-attaching after a self-update passes the MAC it was handed), and
	// a device without VIRTIO_NET_F_MAC uses it.
	MAC [6]byte
	// OnReceive, when set, receives every frame from HandleInterrupt (push
	// mode); see the package doc for the rules.
	OnReceive func(frame []byte)
	// OnLinkChange, when set, is called with the new link state whenever
	// it changes after New, including the drop to false when the device
	// stops. It is called from HandleInterrupt, Reinit and Shutdown (a stop
	// that Transmit or Receive detects is reported by the next of them).
	OnLinkChange func(up bool)
}

// Stats are the device's counters since New. Every frame Transmit refuses
// is counted under exactly one reason.
type Stats struct {
	RxPackets, RxBytes uint64 // frames delivered (push) or copied out (pull)
	TxPackets, TxBytes uint64 // frames queued for the device

	TxQueueFull      uint64 // frames refused: transmit ring full
	TxOversize       uint64 // frames refused: empty or longer than MaxFrameSize
	TxDown           uint64 // frames refused: device stopped or shut down
	RxBufferTooSmall uint64 // frames dropped: the buffer given to Receive was too small

	// DeviceErrors counts device misbehaviour: used entries with a bad
	// descriptor id or length, frames without payload, a used index
	// overrunning the ring, DEVICE_NEEDS_RESET. LastError describes the
	// latest one.
	DeviceErrors uint64

	Interrupts    uint64 // HandleInterrupt calls
	ConfigChanges uint64 // configuration change interrupts
	RxNotifies    uint64 // available buffer notifications, receive queue
	TxNotifies    uint64 // available buffer notifications, transmit queue (one per batch)
	Reinits       uint64 // successful Reinit calls
}

type counters struct {
	rxPackets, rxBytes, txPackets, txBytes            atomic.Uint64
	txQueueFull, txOversize, txDown, rxBufferTooSmall atomic.Uint64
	deviceErrors, interrupts, configChanges           atomic.Uint64
	rxNotifies, txNotifies, reinits                   atomic.Uint64
}

// Device states.
const (
	stateRunning = iota
	stateStopped // needs Reinit
	stateClosed
)

// Interrupts is an interrupt line as kernel.IRQ presents it: Wait blocks
// until the line fires (and leaves it masked), Done unmasks it.
type Interrupts interface {
	Wait() (uint64, error)
	Done() error
}

// Device is a virtio network device. Create it with New.
type Device struct {
	t   *virtio.Transport // immutable
	dma virtio.DMA        // immutable
	cfg Config            // immutable

	// Lock order: rxMu, then txMu. The fields below each mutex are guarded
	// by it; init writes them with both held.
	rxMu sync.Mutex
	// +checklocks:rxMu
	rx *virtio.Queue
	// +checklocks:rxMu
	rxMem []byte // rx.Size() slots of BufferSize
	// +checklocks:rxMu
	rxPhys uint64 // physical address of rxMem
	// +checklocks:rxMu
	rxSlot []uint16 // slot by head descriptor id
	// +checklocks:rxMu
	onReceive func(frame []byte) // push mode when set (Config.OnReceive, SetReceiver)

	txMu sync.Mutex
	// +checklocks:txMu
	tx *virtio.Queue
	// +checklocks:txMu
	txMem []byte
	// +checklocks:txMu
	txPhys uint64
	// +checklocks:txMu
	txSlot []uint16 // slot by head descriptor id
	// +checklocks:txMu
	txFree []uint16 // free slots

	// mac is set once by New's initialisation (Reinit refuses another
	// MAC) and read without a lock, so that a receiver, which runs with
	// rxMu held, may ask for it (the link endpoint does for every frame).
	mac atomic.Uint64
	// Written by init with rxMu and txMu held; read with either.
	hdrLen    int
	hasStatus bool

	state atomic.Int32  // stateRunning, stateStopped, stateClosed
	link  atomic.Bool   // VIRTIO_NET_S_LINK_UP as last read
	ready chan struct{} // capacity 1: frames may be pending, or the state changed
	done  chan struct{} // closed by Shutdown

	errMu sync.Mutex
	// +checklocks:errMu
	stopErr error // why the device stopped
	// +checklocks:errMu
	lastErr error // the latest device error

	linkMu sync.Mutex // serialises OnLinkChange calls
	// +checklocks:linkMu
	reported bool // the link state OnLinkChange last reported (or New found)

	n counters
}

// New initialises the network device behind t (§3.1.1, §5.1.5): it resets
// it, negotiates features, reads the MAC and link status, sets up both
// queues with buffers from dma, posts every receive buffer and sets
// DRIVER_OK. On failure the device is left with FAILED set (unless it could
// not even be reset) and every DMA allocation is returned.
//
// The caller then runs ServeInterrupts (or calls HandleInterrupt when the
// device's interrupt fires).
func New(t *virtio.Transport, dma virtio.DMA, cfg Config) (*Device, error) {
	if id := t.Info().DeviceID; id != virtio.DeviceNet {
		return nil, fmt.Errorf("%w: device ID %d", ErrNotNet, id)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	d := &Device{t: t, dma: dma, cfg: cfg, onReceive: cfg.OnReceive, ready: make(chan struct{}, 1), done: make(chan struct{})}
	d.rxMu.Lock()
	d.txMu.Lock()
	err := d.initLocked(false)
	d.txMu.Unlock()
	d.rxMu.Unlock()
	if err != nil {
		return nil, err
	}
	d.reported = d.LinkUp()
	return d, nil
}

// initLocked runs the initialisation sequence. With again, the MAC must
// equal the one found before.
//
// Preconditions:
//   - d.rxMu and d.txMu are held.
func (d *Device) initLocked(again bool) error {
	t := d.t
	var required uint64
	if t.Legacy() {
		required |= 1 << virtio.VIRTIO_F_ANY_LAYOUT
	}
	features, err := t.Negotiate(1<<VIRTIO_NET_F_MAC|1<<VIRTIO_NET_F_STATUS, required)
	if err != nil {
		if t.Legacy() && errors.Is(err, virtio.ErrFeatures) {
			err = fmt.Errorf("%w (legacy device; %s)", err, virtio.LegacyHint)
		}
		return fmt.Errorf("virtio-net: %w", err)
	}
	hasStatus := features&(1<<VIRTIO_NET_F_STATUS) != 0

	var mac [6]byte
	if features&(1<<VIRTIO_NET_F_MAC) != 0 {
		if mac, err = d.readMAC(); err != nil {
			t.Fail()
			return fmt.Errorf("virtio-net: reading the MAC: %w", err)
		}
	} else {
		mac = d.cfg.MAC
	}
	switch {
	case mac == [6]byte{}:
		t.Fail()
		return ErrNoMAC
	case d.cfg.MAC != [6]byte{} && mac != d.cfg.MAC:
		t.Fail()
		return fmt.Errorf("%w: device has %s, expected %s", ErrMACMismatch, formatMAC(mac), formatMAC(d.cfg.MAC))
	case again && mac != d.MAC():
		t.Fail()
		return fmt.Errorf("%w: device has %s, had %s before the reset", ErrMACMismatch, formatMAC(mac), formatMAC(d.MAC()))
	}

	if err := d.setupQueuesLocked(); err != nil {
		t.Fail()
		d.releaseLocked()
		return fmt.Errorf("virtio-net: %w", err)
	}
	d.mac.Store(macBits(mac))
	d.hasStatus = hasStatus
	d.hdrLen = hdrLenModern
	if t.Legacy() {
		d.hdrLen = hdrLenLegacy
	}

	// Post every receive buffer (§5.1.5: "fill the receive queues with
	// buffers"), suppress transmit interrupts, then go live. No
	// notification before DRIVER_OK (§3.1.1).
	for slot := range d.rx.Size() {
		d.postRxLocked(uint16(slot))
	}
	d.tx.SetInterrupts(false)
	t.DriverOK()
	if d.rx.NeedsNotify() {
		t.Notify(receiveq1)
		d.n.rxNotifies.Add(1)
	}
	up, err := d.readLinkLocked()
	if err != nil {
		return d.abortLocked(err)
	}
	d.link.Store(up)
	d.state.Store(stateRunning)
	return nil
}

// readMAC reads the mac field (§5.1.4). Modern devices have a generation
// counter for consistent reads; on legacy devices, which have none, the
// driver reads until two reads agree (§2.5.4, "Legacy Interface: Device
// Configuration Space").
func (d *Device) readMAC() ([6]byte, error) {
	t := d.t
	read := func() (mac [6]byte, err error) {
		err = t.ReadConfig(func() {
			for i := range mac {
				mac[i] = t.ConfigRead8(configMAC + uintptr(i))
			}
		})
		return mac, err
	}
	mac, err := read()
	if err != nil || !t.Legacy() {
		return mac, err
	}
	for try := 0; try < 100; try++ {
		again, _ := read()
		if again == mac {
			return mac, nil
		}
		mac = again
	}
	return mac, virtio.ErrConfigUnstable
}

// abortLocked undoes a failed initialisation after DRIVER_OK: reset the
// device so it lets go of the rings, then free them.
//
// Preconditions:
//   - d.rxMu and d.txMu are held.
func (d *Device) abortLocked(err error) error {
	if rerr := d.t.Reset(); rerr == nil {
		d.releaseLocked()
	}
	d.t.Fail()
	return fmt.Errorf("virtio-net: %w", err)
}

// Preconditions:
//   - d.rxMu and d.txMu are held.
func (d *Device) setupQueuesLocked() error {
	var err error
	if d.rx, err = d.t.SetupQueue(receiveq1, d.cfg.QueueSize, d.dma); err != nil {
		return fmt.Errorf("receive queue: %w", err)
	}
	if d.tx, err = d.t.SetupQueue(transmitq1, d.cfg.QueueSize, d.dma); err != nil {
		return fmt.Errorf("transmit queue: %w", err)
	}
	if d.rxMem, d.rxPhys, err = d.dma.Alloc(d.rx.Size()*BufferSize, 4096); err != nil {
		return fmt.Errorf("receive buffers: %w", err)
	}
	if d.txMem, d.txPhys, err = d.dma.Alloc(d.tx.Size()*BufferSize, 4096); err != nil {
		return fmt.Errorf("transmit buffers: %w", err)
	}
	d.rxSlot = make([]uint16, d.rx.Size())
	d.txSlot = make([]uint16, d.tx.Size())
	d.txFree = make([]uint16, 0, d.tx.Size())
	for i := d.tx.Size() - 1; i >= 0; i-- {
		d.txFree = append(d.txFree, uint16(i))
	}
	return nil
}

// releaseLocked returns every DMA allocation. The device must be reset (or
// never have been given DRIVER_OK).
//
// Preconditions:
//   - d.rxMu and d.txMu are held.
func (d *Device) releaseLocked() {
	for _, q := range []**virtio.Queue{&d.rx, &d.tx} {
		if *q != nil {
			if err := (*q).Release(); err != nil {
				d.recordError(err)
			}
			*q = nil
		}
	}
	for _, m := range []struct {
		mem  *[]byte
		phys uint64
	}{{&d.rxMem, d.rxPhys}, {&d.txMem, d.txPhys}} {
		if *m.mem != nil {
			if err := d.dma.Free(m.phys); err != nil {
				d.recordError(err)
			}
			*m.mem = nil
		}
	}
}

// readLinkLocked reads VIRTIO_NET_S_LINK_UP; without VIRTIO_NET_F_STATUS
// the link is up (§5.1.4.2).
//
// Preconditions:
//   - d.rxMu is held.
func (d *Device) readLinkLocked() (bool, error) {
	if !d.hasStatus {
		return true, nil
	}
	var s uint16
	err := d.t.ReadConfig(func() { s = d.t.ConfigRead16(configStatus) })
	return s&VIRTIO_NET_S_LINK_UP != 0, err
}

// postRxLocked makes receive slot available to the device.
//
// Preconditions:
//   - d.rxMu is held.
func (d *Device) postRxLocked(slot uint16) {
	head, err := d.rx.Add(virtio.Buffer{Addr: d.rxPhys + uint64(slot)*BufferSize, Len: BufferSize, Writable: true})
	if err != nil {
		// Only a broken queue refuses: a slot is posted only after its
		// descriptor came back.
		d.stop(err)
		return
	}
	d.rxSlot[head] = slot
}

// MAC returns the device's MAC address.
func (d *Device) MAC() [6]byte {
	v := d.mac.Load()
	var m [6]byte
	for i := range m {
		m[i] = byte(v >> (8 * i))
	}
	return m
}

func macBits(m [6]byte) uint64 {
	var v uint64
	for i, b := range m {
		v |= uint64(b) << (8 * i)
	}
	return v
}

// MTU returns the largest IP packet the device carries (the constant MTU:
// VIRTIO_NET_F_MTU is not negotiated).
func (d *Device) MTU() int { return MTU }

// SetReceiver switches to push mode with fn as the receiver, or to pull
// mode when fn is nil. Frames already waiting in the ring go to fn at once.
// After SetReceiver returns, the previous receiver is not called again. It
// must not be called from a receiver (it waits for the running one to
// return).
func (d *Device) SetReceiver(fn func(frame []byte)) {
	d.rxMu.Lock()
	d.onReceive = fn
	if d.state.Load() == stateRunning {
		if fn != nil {
			d.deliverLocked()
		} else if d.rx.Pending() > 0 {
			d.signal()
		}
	}
	d.rxMu.Unlock()
}

// LinkUp reports the link status (VIRTIO_NET_S_LINK_UP); false while the
// device is stopped or shut down.
func (d *Device) LinkUp() bool { return d.link.Load() && d.state.Load() == stateRunning }

// Legacy reports whether the device uses the legacy virtio-mmio interface.
func (d *Device) Legacy() bool { return d.t.Legacy() }

// Features returns the negotiated feature bits.
func (d *Device) Features() uint64 {
	d.rxMu.Lock()
	defer d.rxMu.Unlock()
	return d.t.Features()
}

// Err returns why the device stopped (it then needs Reinit), ErrClosed
// after Shutdown, or nil while it runs.
func (d *Device) Err() error {
	switch d.state.Load() {
	case stateClosed:
		return ErrClosed
	case stateStopped:
		d.errMu.Lock()
		defer d.errMu.Unlock()
		if d.stopErr == nil {
			return ErrNeedsReset
		}
		return fmt.Errorf("%w: %w", ErrNeedsReset, d.stopErr)
	}
	return nil
}

// LastError returns the latest device error (counted in
// Stats.DeviceErrors), or nil.
func (d *Device) LastError() error {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	return d.lastErr
}

// Ready returns a channel that receives a value when frames may be pending
// for Receive (pull mode) or the device's state changed. It has a buffer
// of one; a receiver must still expect Receive to find nothing.
func (d *Device) Ready() <-chan struct{} { return d.ready }

func (d *Device) signal() {
	select {
	case d.ready <- struct{}{}:
	default:
	}
}

func (d *Device) recordError(err error) {
	d.n.deviceErrors.Add(1)
	d.errMu.Lock()
	d.lastErr = err
	d.errMu.Unlock()
}

// stop records a fatal device error: the device needs Reinit.
func (d *Device) stop(err error) {
	if !d.state.CompareAndSwap(stateRunning, stateStopped) {
		return
	}
	d.recordError(err)
	d.errMu.Lock()
	d.stopErr = err
	d.errMu.Unlock()
	d.signal()
}

// Stats returns a snapshot of the counters.
func (d *Device) Stats() Stats {
	n := &d.n
	return Stats{
		RxPackets: n.rxPackets.Load(), RxBytes: n.rxBytes.Load(),
		TxPackets: n.txPackets.Load(), TxBytes: n.txBytes.Load(),
		TxQueueFull: n.txQueueFull.Load(), TxOversize: n.txOversize.Load(), TxDown: n.txDown.Load(),
		RxBufferTooSmall: n.rxBufferTooSmall.Load(),
		DeviceErrors:     n.deviceErrors.Load(),
		Interrupts:       n.interrupts.Load(), ConfigChanges: n.configChanges.Load(),
		RxNotifies: n.rxNotifies.Load(), TxNotifies: n.txNotifies.Load(),
		Reinits: n.reinits.Load(),
	}
}

// HandleInterrupt services the device's interrupt, from an ordinary
// goroutine: it acknowledges InterruptStatus (§4.2.3.4), handles a
// configuration change (link status; DEVICE_NEEDS_RESET stops the device),
// delivers received frames to the receiver (push mode) or signals Ready (pull
// mode), and reclaims transmitted slots. It is harmless when nothing is
// pending, so a shared or spurious interrupt may call it.
func (d *Device) HandleInterrupt() {
	if d.state.Load() == stateClosed {
		return
	}
	d.n.interrupts.Add(1)
	defer d.reportLink()

	d.rxMu.Lock()
	if d.state.Load() == stateClosed {
		d.rxMu.Unlock()
		return
	}
	isr := d.t.AckInterrupt()
	if isr&virtio.InterruptConfigChange != 0 {
		d.n.configChanges.Add(1)
		d.configChangeLocked()
	}
	if d.state.Load() == stateRunning {
		if d.onReceive != nil {
			d.deliverLocked()
		} else if d.rx.Pending() > 0 {
			d.signal()
		}
	}
	d.rxMu.Unlock()

	d.txMu.Lock()
	if d.state.Load() == stateRunning {
		d.reclaimLocked()
	}
	d.txMu.Unlock()
}

// reportLink calls OnLinkChange if the link state differs from the one it
// last reported. HandleInterrupt, Reinit and Shutdown call it with no other
// lock held; a stop that Transmit or Receive detects is reported by the
// next of them.
func (d *Device) reportLink() {
	if d.cfg.OnLinkChange == nil {
		return
	}
	d.linkMu.Lock()
	defer d.linkMu.Unlock()
	if up := d.LinkUp(); up != d.reported {
		d.reported = up
		d.cfg.OnLinkChange(up)
	}
}

// configChangeLocked handles a configuration change notification.
//
// Preconditions:
//   - d.rxMu is held.
func (d *Device) configChangeLocked() {
	if d.t.NeedsReset() {
		d.stop(errors.New("the device set DEVICE_NEEDS_RESET"))
		return
	}
	up, err := d.readLinkLocked()
	if err != nil {
		d.recordError(err)
		return
	}
	d.link.Store(up)
}

// nextRxLocked takes the next good frame off the receive ring, rejecting
// and counting bad entries (reposting their slots). ok is false when there
// is none or the queue broke.
//
// Preconditions:
//   - d.rxMu is held.
func (d *Device) nextRxLocked() (slot uint16, frame []byte, ok bool) {
	for {
		u, ok, err := d.rx.Pop()
		if !ok {
			if err != nil {
				d.stop(err)
			}
			return 0, nil, false
		}
		if errors.Is(err, virtio.ErrBadUsedID) {
			d.recordError(err)
			continue
		}
		slot := d.rxSlot[u.Head]
		if err == nil && u.Len <= uint32(d.hdrLen) {
			err = fmt.Errorf("virtio-net: received %d bytes, not more than the %d-byte header", u.Len, d.hdrLen)
		}
		if err != nil {
			d.recordError(err)
			d.postRxLocked(slot)
			continue
		}
		off := int(slot) * BufferSize
		return slot, d.rxMem[off+d.hdrLen : off+int(u.Len)], true
	}
}

// deliverLocked hands every received frame to OnReceive.
//
// Preconditions:
//   - d.rxMu is held.
func (d *Device) deliverLocked() {
	posted := false
	for d.state.Load() == stateRunning {
		slot, frame, ok := d.nextRxLocked()
		if !ok {
			break
		}
		d.n.rxPackets.Add(1)
		d.n.rxBytes.Add(uint64(len(frame)))
		d.onReceive(frame)
		d.postRxLocked(slot)
		posted = true
	}
	if posted {
		d.notifyRxLocked()
	}
}

// Preconditions:
//   - d.rxMu is held.
func (d *Device) notifyRxLocked() {
	if d.state.Load() == stateRunning && d.rx.NeedsNotify() {
		d.t.Notify(receiveq1)
		d.n.rxNotifies.Add(1)
	}
}

// Receive copies the next received frame into buf and returns its length
// (pull mode; in push mode OnReceive gets every frame and Receive finds
// none). It does not block: ErrNoFrame means nothing is pending. A frame
// longer than buf is dropped, counted in Stats.RxBufferTooSmall, and
// reported as ErrBufferTooSmall with n set to its length. ErrNeedsReset
// and ErrClosed report a stopped device.
func (d *Device) Receive(buf []byte) (n int, err error) {
	d.rxMu.Lock()
	defer d.rxMu.Unlock()
	if err := d.stateErr(); err != nil {
		return 0, err
	}
	slot, frame, ok := d.nextRxLocked()
	if !ok {
		if err := d.stateErr(); err != nil {
			return 0, err
		}
		return 0, ErrNoFrame
	}
	n = copy(buf, frame)
	if n < len(frame) {
		d.n.rxBufferTooSmall.Add(1)
		n, err = len(frame), fmt.Errorf("%w: %d-byte frame, %d-byte buffer", ErrBufferTooSmall, len(frame), len(buf))
	} else {
		d.n.rxPackets.Add(1)
		d.n.rxBytes.Add(uint64(n))
	}
	d.postRxLocked(slot)
	d.notifyRxLocked()
	if d.rx.Pending() > 0 {
		d.signal() // more to come: keep other waiters going
	}
	return n, err
}

// ReceiveWait is Receive that blocks until a frame arrives, the device
// stops, or ctx is done. Frames arrive only while something calls
// HandleInterrupt (ServeInterrupts).
func (d *Device) ReceiveWait(ctx context.Context, buf []byte) (int, error) {
	for {
		n, err := d.Receive(buf)
		if !errors.Is(err, ErrNoFrame) {
			return n, err
		}
		select {
		case <-d.ready:
		case <-d.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (d *Device) stateErr() error {
	switch d.state.Load() {
	case stateStopped:
		return d.Err()
	case stateClosed:
		return ErrClosed
	}
	return nil
}

// Transmit queues frames for transmission in order, copying each into a
// DMA slot, and notifies the device once for the whole batch. It returns
// how many frames it queued; frames[n:] were not sent, and err says why:
//
//   - ErrQueueFull: the transmit ring filled up (frames[n:] counted in
//     TxQueueFull);
//   - ErrFrameSize: frames[n] is empty or longer than MaxFrameSize
//     (counted in TxOversize; the rest is not looked at);
//   - ErrNeedsReset, ErrClosed: the device is stopped (all counted in
//     TxDown).
//
// The caller may reuse the frames' memory as soon as Transmit returns.
func (d *Device) Transmit(frames [][]byte) (int, error) {
	d.txMu.Lock()
	defer d.txMu.Unlock()
	if err := d.stateErr(); err != nil {
		d.n.txDown.Add(uint64(len(frames)))
		return 0, err
	}
	d.reclaimLocked()
	var err error
	n := 0
	var bytes uint64
	for _, f := range frames {
		if len(f) == 0 || len(f) > MaxFrameSize {
			d.n.txOversize.Add(1)
			err = fmt.Errorf("%w: %d bytes (1 to %d)", ErrFrameSize, len(f), MaxFrameSize)
			break
		}
		if len(d.txFree) == 0 {
			d.n.txQueueFull.Add(uint64(len(frames) - n))
			err = fmt.Errorf("%w: %d of %d frames not sent", ErrQueueFull, len(frames)-n, len(frames))
			break
		}
		slot := d.txFree[len(d.txFree)-1]
		off := int(slot) * BufferSize
		b := d.txMem[off : off+d.hdrLen+len(f)]
		clear(b[:d.hdrLen]) // no offloads: an all-zero virtio_net_hdr (§5.1.6.1)
		copy(b[d.hdrLen:], f)
		head, aerr := d.tx.Add(virtio.Buffer{Addr: d.txPhys + uint64(off), Len: uint32(len(b))})
		if aerr != nil {
			d.stop(aerr) // a slot was free, so only a broken queue refuses
			d.n.txDown.Add(uint64(len(frames) - n))
			err = d.stateErr()
			break
		}
		d.txFree = d.txFree[:len(d.txFree)-1]
		d.txSlot[head] = slot
		n++
		bytes += uint64(len(f))
	}
	if n > 0 {
		d.n.txPackets.Add(uint64(n))
		d.n.txBytes.Add(bytes)
		if d.tx.NeedsNotify() {
			d.t.Notify(transmitq1)
			d.n.txNotifies.Add(1)
		}
	}
	return n, err
}

// reclaimLocked frees the slots of transmitted frames.
//
// Preconditions:
//   - d.txMu is held.
func (d *Device) reclaimLocked() {
	for {
		u, ok, err := d.tx.Pop()
		if !ok {
			if err != nil {
				d.stop(err)
			}
			return
		}
		if errors.Is(err, virtio.ErrBadUsedID) {
			d.recordError(err)
			continue
		}
		if err != nil {
			d.recordError(err) // a length on a device-readable buffer; the slot is free anyway
		}
		d.txFree = append(d.txFree, d.txSlot[u.Head])
	}
}

// ServeInterrupts runs the interrupt loop: wait for the line, service the
// device, unmask. It returns the error that ended Wait or Done, for
// example when the kernel.IRQ is closed. Run it in its own goroutine.
func (d *Device) ServeInterrupts(irq Interrupts) error {
	for {
		if _, err := irq.Wait(); err != nil {
			return err
		}
		d.HandleInterrupt()
		if err := irq.Done(); err != nil {
			return err
		}
	}
}

// Reinit resets the device and initialises it again (§2.4, §3.1.1): fresh
// rings, every receive buffer posted, transmit ring empty, the same MAC
// (ErrMACMismatch otherwise). Frames in flight are lost; the counters keep
// running. It is the way back from ErrNeedsReset, and works on a running
// device too.
func (d *Device) Reinit() error {
	d.rxMu.Lock()
	d.txMu.Lock()
	err := d.reinitLocked()
	d.txMu.Unlock()
	d.rxMu.Unlock()
	d.signal()
	d.reportLink()
	return err
}

// Preconditions:
//   - d.rxMu and d.txMu are held.
func (d *Device) reinitLocked() error {
	if d.state.Load() == stateClosed {
		return ErrClosed
	}
	d.state.Store(stateStopped)
	if err := d.t.Reset(); err != nil {
		d.setStopErr(err)
		return fmt.Errorf("virtio-net: %w", err)
	}
	d.releaseLocked()
	if err := d.initLocked(true); err != nil {
		d.setStopErr(err)
		return err
	}
	d.setStopErr(nil)
	d.n.reinits.Add(1)
	return nil
}

func (d *Device) setStopErr(err error) {
	d.errMu.Lock()
	d.stopErr = err
	d.errMu.Unlock()
}

// Shutdown resets the device, so it no longer touches memory (§2.4), and
// returns its DMA memory. A self-updating kernel calls it before the jump.
// Afterwards every method reports ErrClosed; ServeInterrupts keeps waiting
// until its interrupt line is closed.
func (d *Device) Shutdown() error {
	d.rxMu.Lock()
	d.txMu.Lock()
	if d.state.Swap(stateClosed) == stateClosed {
		d.txMu.Unlock()
		d.rxMu.Unlock()
		return nil
	}
	err := d.t.Reset()
	if err == nil {
		d.releaseLocked()
	}
	close(d.done)
	d.txMu.Unlock()
	d.rxMu.Unlock()
	d.signal()
	d.reportLink()
	if err != nil {
		return fmt.Errorf("virtio-net: shutdown: %w (DMA memory not returned)", err)
	}
	return nil
}

func formatMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
