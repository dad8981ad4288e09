// Package fakedev is a virtio-mmio network device written in Go, for host
// tests of drivers/virtio and drivers/virtio/net. It implements virtio.Regs
// (modern and legacy register layouts), decodes the split virtqueues the
// driver builds in a shared Memory, and behaves like QEMU's virtio-net
// device: it transmits what the driver queues on queue 1 (recording the
// frames), fills receive buffers from queue 0 when a test injects a frame,
// raises its interrupt line, and reports link changes and
// DEVICE_NEEDS_RESET with configuration change interrupts.
//
// It also checks the driver: every deviation from the spec it notices (a
// register access of the wrong width or direction, a notification before
// DRIVER_OK, an unoffered feature, a descriptor pointing outside memory, a
// device-writable transmit buffer, ...) is recorded and returned by
// Violations, which tests require to be empty.
//
// Ring accesses follow the same discipline as the driver (see
// drivers/virtio's package doc): the index words are loaded and stored
// atomically, everything else is ordered by them, so tests run under the
// race detector check the driver's memory ordering too.
package fakedev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/molt-os/molt/drivers/virtio"
)

// Memory is guest "physical" memory shared by the driver and the device:
// Buf holds the bytes at physical addresses Base to Base+len(Buf).
type Memory struct {
	Buf  []byte
	Base uint64
}

// NewMemory allocates size bytes at physical address base (a multiple of
// 4096), page-aligned in the Go heap as well, as virtio.NewRegion wants.
func NewMemory(size int, base uint64) *Memory {
	return &Memory{Buf: pageAligned(size), Base: base}
}

// Region returns a DMA allocator over the whole memory.
func (m *Memory) Region() *virtio.Region {
	r, err := virtio.NewRegion(m.Buf, m.Base)
	if err != nil {
		panic(err)
	}
	return r
}

// Network device constants (VIRTIO 1.2 §5.1), duplicated here so the fake
// does not trust the driver's definitions.
const (
	featCSUM       = 0
	featGuestCSUM  = 1
	featMTU        = 3
	featMAC        = 5
	featGuestTSO4  = 7
	featMrgRxbuf   = 15
	featStatus     = 16
	featCtrlVQ     = 17
	featAnyLayout  = 27
	featIndirect   = 28
	featEventIdx   = 29
	featVersion1   = 32
	featRingPacked = 34

	statusLinkUp = 1
)

// DefaultFeatures is what the fake offers unless Options.Features says
// otherwise: roughly QEMU's virtio-net-device, including features the
// driver must decline.
const DefaultFeatures = 1<<featCSUM | 1<<featGuestCSUM | 1<<featMAC | 1<<featGuestTSO4 |
	1<<featMrgRxbuf | 1<<featStatus | 1<<featCtrlVQ | 1<<featAnyLayout | 1<<featIndirect |
	1<<featEventIdx | 1<<featVersion1 | 1<<featRingPacked

// Options configure a fake device.
type Options struct {
	Legacy      bool    // version 1 register layout (§4.2.4); VERSION_1 is then not offered
	Features    uint64  // offered features; 0 means DefaultFeatures
	MAC         [6]byte // the device's MAC address (config space)
	LinkDown    bool    // start with the link down
	QueueNumMax uint32  // per queue; 0 means 256
	// ResetDelay is the number of Status reads that still show the old
	// status after the driver writes 0; -1 means the reset never completes.
	ResetDelay int
	// RejectFeatures makes the device refuse FEATURES_OK.
	RejectFeatures bool
	// NoNotify sets VIRTQ_USED_F_NO_NOTIFY in both used rings.
	NoNotify bool
	// NoQueues makes every QueueNumMax read 0.
	NoQueues bool
}

// Device is a fake virtio-mmio network device. It is safe for concurrent
// use.
type Device struct {
	mem  *Memory
	opts Options

	mu   sync.Mutex
	cond *sync.Cond // signalled whenever isr or the line mask changes

	status         uint32
	resetReads     int // Status reads left before a reset shows
	isr            uint32
	devSel, drvSel uint32
	driverFeatures uint64
	queueSel       uint32
	q              [2]vq
	pageSize       uint32
	linkUp         bool
	gen            uint32

	// interrupt line (see IRQ)
	masked bool
	closed bool
	fired  uint64

	txStalled  bool
	tx         [][]byte
	rxDropped  int
	notifies   [2]int
	resets     int
	violations []string
}

type vq struct {
	numMax, num          uint32
	ready                bool
	desc, driver, device uint64
	pfn, align           uint32
	lastAvail, usedIdx   uint16
}

// New makes a fake network device over mem.
func New(mem *Memory, opts Options) *Device {
	if opts.Features == 0 {
		opts.Features = DefaultFeatures
	}
	if opts.Legacy {
		opts.Features &= 1<<32 - 1
	}
	if opts.QueueNumMax == 0 {
		opts.QueueNumMax = 256
	}
	d := &Device{mem: mem, opts: opts, linkUp: !opts.LinkDown}
	d.cond = sync.NewCond(&d.mu)
	d.resetLocked()
	return d
}

// Preconditions: d.mu is held.
func (d *Device) violate(format string, args ...any) {
	d.violations = append(d.violations, fmt.Sprintf(format, args...))
}

// Violations returns the spec violations the device noticed.
func (d *Device) Violations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.violations...)
}

// Preconditions: d.mu is held.
func (d *Device) resetLocked() {
	d.status, d.isr = 0, 0
	d.devSel, d.drvSel, d.driverFeatures, d.queueSel = 0, 0, 0, 0
	d.pageSize = 0
	for i := range d.q {
		d.q[i] = vq{numMax: d.opts.QueueNumMax}
		if d.opts.NoQueues {
			d.q[i].numMax = 0
		}
	}
	d.cond.Broadcast()
}

func (d *Device) legacy() bool { return d.opts.Legacy }

// Read8 implements virtio.Regs.
func (d *Device) Read8(off uintptr) uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.configLocked(off, 1)
	if !ok {
		return 0xff
	}
	return c[0]
}

// Read16 implements virtio.Regs.
func (d *Device) Read16(off uintptr) uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.configLocked(off, 2)
	if !ok {
		return 0xffff
	}
	return binary.LittleEndian.Uint16(c)
}

// configLocked returns the configuration bytes at register offset off.
// struct virtio_net_config: u8 mac[6]; le16 status (§5.1.4).
//
// Preconditions: d.mu is held.
func (d *Device) configLocked(off uintptr, width int) ([]byte, bool) {
	var c [8]byte
	copy(c[:], d.opts.MAC[:])
	if d.linkUp {
		binary.LittleEndian.PutUint16(c[6:], statusLinkUp)
	}
	o := int(off) - virtio.Config
	switch {
	case off < virtio.Config || o+width > len(c):
		d.violate("config read of %d bytes at %#x outside the configuration space", width, off)
		return nil, false
	case o%width != 0:
		d.violate("unaligned config read of %d bytes at %#x", width, off)
	case o < 6 && width != 1, o >= 6 && width != 2:
		d.violate("config read of %d bytes at %#x: wrong width for the field", width, off)
	case o < 6 && d.opts.Features&(1<<featMAC) == 0:
		d.violate("config read of mac without VIRTIO_NET_F_MAC offered")
	case o >= 6 && d.driverFeatures&(1<<featStatus) == 0 && d.status&virtio.FEATURES_OK != 0:
		d.violate("config read of status without VIRTIO_NET_F_STATUS negotiated")
	}
	return c[o : o+width], true
}

// Read32 implements virtio.Regs.
func (d *Device) Read32(off uintptr) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off >= virtio.Config {
		d.violate("32-bit read at %#x in the configuration space: virtio_net_config has no 32-bit field there", off)
		return 0xffffffff
	}
	if off%4 != 0 {
		d.violate("unaligned register read at %#x", off)
		return 0
	}
	q := &d.q[0]
	if d.queueSel < 2 {
		q = &d.q[d.queueSel]
	}
	switch off {
	case virtio.MagicValue:
		return virtio.MagicValueVirt
	case virtio.Version:
		if d.legacy() {
			return 1
		}
		return 2
	case virtio.DeviceID:
		return virtio.DeviceNet
	case virtio.VendorID:
		return 0x554d4551 // "QEMU"
	case virtio.DeviceFeatures:
		if d.legacy() && d.devSel != 0 {
			return 0
		}
		if d.devSel > 1 {
			return 0
		}
		return uint32(d.opts.Features >> (32 * d.devSel))
	case virtio.QueueNumMax:
		if d.queueSel >= 2 {
			return 0
		}
		return q.numMax
	case virtio.QueueReady:
		if d.legacy() {
			d.violate("read of QueueReady on a legacy device")
			return 0
		}
		if d.queueSel >= 2 {
			return 0
		}
		return b2u(q.ready)
	case virtio.QueuePFN:
		if !d.legacy() {
			d.violate("read of QueuePFN on a modern device")
			return 0
		}
		return q.pfn
	case virtio.InterruptStatus:
		return d.isr
	case virtio.Status:
		if d.resetReads != 0 {
			if d.resetReads > 0 {
				d.resetReads--
			}
			return d.status | virtio.DRIVER_OK
		}
		return d.status
	case virtio.ConfigGeneration:
		if d.legacy() {
			d.violate("read of ConfigGeneration on a legacy device")
			return 0
		}
		return d.gen
	}
	d.violate("read of write-only or reserved register %#x", off)
	return 0
}

// Write32 implements virtio.Regs.
func (d *Device) Write32(off uintptr, v uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off >= virtio.Config || off%4 != 0 {
		d.violate("write of %#x at %#x: not a control register", v, off)
		return
	}
	if d.resetReads != 0 && off != virtio.Status {
		d.violate("write to %#x before the reset completed", off)
	}
	var q *vq
	if d.queueSel < 2 {
		q = &d.q[d.queueSel]
	}
	queueReg := func() bool {
		if q == nil {
			d.violate("write to %#x for nonexistent queue %d", off, d.queueSel)
			return false
		}
		if d.status&virtio.DRIVER_OK != 0 {
			d.violate("queue register %#x written after DRIVER_OK", off)
		}
		if q.ready || q.pfn != 0 {
			if off != virtio.QueueReady && off != virtio.QueuePFN {
				d.violate("queue register %#x written while queue %d is live", off, d.queueSel)
			}
		}
		return true
	}
	switch off {
	case virtio.DeviceFeaturesSel:
		d.devSel = v
	case virtio.DriverFeaturesSel:
		d.drvSel = v
	case virtio.DriverFeatures:
		if d.status&virtio.FEATURES_OK != 0 || d.status&virtio.DRIVER == 0 {
			d.violate("DriverFeatures written in status %#x", d.status)
		}
		if d.drvSel > 1 || (d.legacy() && d.drvSel != 0) {
			d.violate("DriverFeatures written with DriverFeaturesSel %d", d.drvSel)
			return
		}
		d.driverFeatures &^= uint64(0xffffffff) << (32 * d.drvSel)
		d.driverFeatures |= uint64(v) << (32 * d.drvSel)
	case virtio.QueueSel:
		d.queueSel = v
	case virtio.QueueNum:
		if queueReg() {
			if v == 0 || v > q.numMax || v&(v-1) != 0 {
				d.violate("QueueNum %d (max %d) is not a power of two within the maximum", v, q.numMax)
			}
			q.num = v
		}
	case virtio.QueueDescLow, virtio.QueueDescHigh, virtio.QueueDriverLow, virtio.QueueDriverHigh,
		virtio.QueueDeviceLow, virtio.QueueDeviceHigh:
		if d.legacy() {
			d.violate("modern queue address register %#x written on a legacy device", off)
			return
		}
		if queueReg() {
			setHalf(map[uintptr]*uint64{
				virtio.QueueDescLow: &q.desc, virtio.QueueDriverLow: &q.driver, virtio.QueueDeviceLow: &q.device,
			}, off, v)
		}
	case virtio.QueueReady:
		if d.legacy() {
			d.violate("QueueReady written on a legacy device")
			return
		}
		if queueReg() {
			if v == 1 && (q.num == 0 || q.desc == 0 || q.driver == 0 || q.device == 0) {
				d.violate("queue %d made ready without size or addresses", d.queueSel)
			}
			q.ready = v == 1
			if v == 1 {
				d.checkLayoutLocked(q)
				d.publishUsedLocked(int(d.queueSel))
			}
		}
	case virtio.GuestPageSize:
		if !d.legacy() {
			d.violate("GuestPageSize written on a modern device")
		}
		d.pageSize = v
	case virtio.QueueAlign:
		if !d.legacy() {
			d.violate("QueueAlign written on a modern device")
		}
		if queueReg() {
			q.align = v
		}
	case virtio.QueuePFN:
		if !d.legacy() {
			d.violate("QueuePFN written on a modern device")
			return
		}
		if queueReg() {
			if d.pageSize == 0 || q.align == 0 || q.num == 0 {
				d.violate("QueuePFN written before GuestPageSize, QueueAlign and QueueNum")
				return
			}
			q.pfn = v
			q.desc = uint64(v) * uint64(d.pageSize)
			q.driver = q.desc + 16*uint64(q.num)
			q.device = alignUp(q.driver+6+2*uint64(q.num), uint64(q.align))
			d.checkLayoutLocked(q)
			d.publishUsedLocked(int(d.queueSel))
		}
	case virtio.QueueNotify:
		d.notifyLocked(v)
	case virtio.InterruptACK:
		if v&^d.isr != 0 {
			d.violate("InterruptACK %#x acknowledges causes that are not pending (%#x)", v, d.isr)
		}
		d.isr &^= v
		d.cond.Broadcast()
	case virtio.Status:
		d.writeStatusLocked(v)
	default:
		d.violate("write of %#x to read-only or reserved register %#x", v, off)
	}
}

func setHalf(regs map[uintptr]*uint64, off uintptr, v uint32) {
	if p, ok := regs[off]; ok {
		*p = *p&^0xffffffff | uint64(v)
		return
	}
	p := regs[off-4]
	*p = *p&0xffffffff | uint64(v)<<32
}

// Preconditions: d.mu is held.
func (d *Device) checkLayoutLocked(q *vq) {
	n := uint64(q.num)
	for _, r := range []struct {
		name       string
		addr, size uint64
		align      uint64
	}{
		{"descriptor table", q.desc, 16 * n, 16},
		{"available ring", q.driver, 6 + 2*n, 2},
		{"used ring", q.device, 6 + 8*n, 4},
	} {
		if r.addr%r.align != 0 {
			d.violate("%s at %#x is not %d-byte aligned", r.name, r.addr, r.align)
		}
		if _, ok := d.sliceLocked(r.addr, r.size); !ok {
			d.violate("%s at %#x+%d is outside memory", r.name, r.addr, r.size)
		}
	}
}

// Preconditions: d.mu is held.
func (d *Device) writeStatusLocked(v uint32) {
	if v == 0 {
		d.resets++
		d.resetLocked()
		d.resetReads = d.opts.ResetDelay
		return
	}
	if d.resetReads != 0 {
		d.violate("Status %#x written before the reset completed", v)
	}
	if cleared := d.status &^ v; cleared != 0 {
		d.violate("Status write %#x clears bits %#x", v, cleared)
	}
	set := v &^ d.status
	switch {
	case set&virtio.DRIVER != 0 && v&virtio.ACKNOWLEDGE == 0:
		d.violate("DRIVER set without ACKNOWLEDGE")
	case set&virtio.FEATURES_OK != 0:
		if d.legacy() {
			d.violate("FEATURES_OK set on a legacy device")
		}
		ok := !d.opts.RejectFeatures
		if extra := d.driverFeatures &^ d.opts.Features; extra != 0 {
			d.violate("driver accepted unoffered features %#x", extra)
			ok = false
		}
		if !d.legacy() && d.driverFeatures&(1<<featVersion1) == 0 {
			d.violate("modern driver did not accept VIRTIO_F_VERSION_1")
			ok = false
		}
		if !ok {
			v &^= virtio.FEATURES_OK
		}
	case set&virtio.DRIVER_OK != 0:
		if !d.legacy() && d.status&virtio.FEATURES_OK == 0 {
			d.violate("DRIVER_OK set without FEATURES_OK")
		}
		if extra := d.driverFeatures &^ d.opts.Features; extra != 0 {
			d.violate("driver accepted unoffered features %#x", extra)
		}
	}
	d.status = v | d.status&virtio.DEVICE_NEEDS_RESET
}

// hdrLenLocked is the size of struct virtio_net_hdr the driver and device
// agreed on (§5.1.6): 12 bytes with VIRTIO_F_VERSION_1 or
// VIRTIO_NET_F_MRG_RXBUF, else the legacy 10.
//
// Preconditions: d.mu is held.
func (d *Device) hdrLenLocked() int {
	if d.driverFeatures&(1<<featVersion1|1<<featMrgRxbuf) != 0 {
		return 12
	}
	return 10
}

// Preconditions: d.mu is held.
func (d *Device) liveLocked(i int) bool {
	q := &d.q[i]
	return d.status&virtio.DRIVER_OK != 0 && (q.ready || q.pfn != 0)
}

// Preconditions: d.mu is held.
func (d *Device) notifyLocked(v uint32) {
	if v >= 2 {
		d.violate("QueueNotify for nonexistent queue %d", v)
		return
	}
	d.notifies[v]++
	if d.status&virtio.DRIVER_OK == 0 {
		d.violate("QueueNotify %d before DRIVER_OK", v)
		return
	}
	if !d.liveLocked(int(v)) {
		d.violate("QueueNotify %d for a queue that is not set up", v)
		return
	}
	if v == 1 && !d.txStalled {
		d.transmitLocked()
	}
}

// StallTx stops (true) or resumes (false) transmit processing, like a
// device whose backend is busy. Resuming transmits what queued up.
func (d *Device) StallTx(stall bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txStalled = stall
	if !stall && d.liveLocked(1) {
		d.transmitLocked()
	}
}

// SetMAC changes the MAC address in the configuration space, as a
// different device would have.
func (d *Device) SetMAC(mac [6]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts.MAC = mac
	d.gen++
}

// Preconditions: d.mu is held.
func (d *Device) transmitLocked() {
	hdr := d.hdrLenLocked()
	sent := false
	for {
		head, chain, ok := d.popAvailLocked(1)
		if !ok {
			break
		}
		var frame []byte
		for _, s := range chain {
			if s.writable {
				d.violate("transmit descriptor is device-writable")
			}
			frame = append(frame, s.buf...)
		}
		if len(frame) < hdr {
			d.violate("transmit chain of %d bytes is shorter than the %d-byte header", len(frame), hdr)
		} else {
			for i, b := range frame[:hdr] {
				if b != 0 {
					d.violate("transmit header byte %d is %#x; the driver negotiated no offloads", i, b)
					break
				}
			}
			d.tx = append(d.tx, frame[hdr:])
		}
		d.pushUsedLocked(1, uint32(head), 0)
		sent = true
	}
	if sent {
		d.interruptLocked(1, virtio.InterruptUsedBuffer)
	}
}

type seg struct {
	buf      []byte
	writable bool
}

// popAvailLocked takes the next available chain of queue i.
//
// Preconditions: d.mu is held.
func (d *Device) popAvailLocked(i int) (head uint16, chain []seg, ok bool) {
	q := &d.q[i]
	ring, ok1 := d.sliceLocked(q.driver, 4+2*uint64(q.num))
	desc, ok2 := d.sliceLocked(q.desc, 16*uint64(q.num))
	if !ok1 || !ok2 || q.num == 0 {
		return 0, nil, false
	}
	idx := uint16(load32(ring, 0) >> 16)
	if pending := idx - q.lastAvail; pending == 0 {
		return 0, nil, false
	} else if uint32(pending) > q.num {
		d.violate("queue %d: avail.idx %d is %d entries ahead of the device (size %d)", i, idx, pending, q.num)
		q.lastAvail = idx
		return 0, nil, false
	}
	head = binary.LittleEndian.Uint16(ring[4+2*(uint32(q.lastAvail)%q.num):])
	q.lastAvail++
	id := head
	for n := uint32(0); ; n++ {
		if uint32(id) >= q.num || n >= q.num {
			d.violate("queue %d: bad descriptor chain from head %d (id %d, %d links)", i, head, id, n)
			return head, nil, false
		}
		e := desc[16*uint32(id):]
		addr := binary.LittleEndian.Uint64(e)
		l := binary.LittleEndian.Uint32(e[8:])
		flags := binary.LittleEndian.Uint16(e[12:])
		b, ok := d.sliceLocked(addr, uint64(l))
		if !ok {
			d.violate("queue %d: descriptor %d points outside memory (%#x+%d)", i, id, addr, l)
			return head, nil, false
		}
		if flags&virtio.VIRTQ_DESC_F_INDIRECT != 0 {
			d.violate("queue %d: indirect descriptor without VIRTIO_F_INDIRECT_DESC", i)
		}
		chain = append(chain, seg{b, flags&virtio.VIRTQ_DESC_F_WRITE != 0})
		if flags&virtio.VIRTQ_DESC_F_NEXT == 0 {
			return head, chain, true
		}
		id = binary.LittleEndian.Uint16(e[14:])
	}
}

// Preconditions: d.mu is held.
func (d *Device) pushUsedLocked(i int, id, n uint32) {
	q := &d.q[i]
	ring, ok := d.sliceLocked(q.device, 4+8*uint64(q.num))
	if !ok || q.num == 0 {
		return
	}
	e := ring[4+8*(uint32(q.usedIdx)%q.num):]
	binary.LittleEndian.PutUint32(e, id)
	binary.LittleEndian.PutUint32(e[4:], n)
	q.usedIdx++
	d.publishUsedLocked(i)
}

// Preconditions: d.mu is held.
func (d *Device) publishUsedLocked(i int) {
	q := &d.q[i]
	ring, ok := d.sliceLocked(q.device, 4)
	if !ok {
		return
	}
	var flags uint32
	if d.opts.NoNotify {
		flags = virtio.VIRTQ_USED_F_NO_NOTIFY
	}
	store32(ring, 0, flags|uint32(q.usedIdx)<<16)
}

// interruptLocked raises cause unless the driver suppressed used buffer
// notifications for queue i (§2.7.7).
//
// Preconditions: d.mu is held.
func (d *Device) interruptLocked(i int, cause uint32) {
	if cause == virtio.InterruptUsedBuffer {
		ring, ok := d.sliceLocked(d.q[i].driver, 4)
		if ok && load32(ring, 0)&virtio.VIRTQ_AVAIL_F_NO_INTERRUPT != 0 {
			return
		}
	}
	d.isr |= cause
	d.cond.Broadcast()
}

// Preconditions: d.mu is held.
func (d *Device) sliceLocked(phys, n uint64) ([]byte, bool) {
	m := d.mem
	if phys < m.Base || phys-m.Base > uint64(len(m.Buf)) || n > uint64(len(m.Buf))-(phys-m.Base) {
		return nil, false
	}
	o := phys - m.Base
	return m.Buf[o : o+n : o+n], true
}

// Inject delivers frame as if it had arrived from the network: it fills
// the next receive buffer with a virtio_net_hdr and the frame, puts it on
// the used ring and interrupts. It reports false (and counts a drop) when
// the device is not live or the driver has posted no buffer, as QEMU
// would.
func (d *Device) Inject(frame []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.liveLocked(0) || !d.linkUp {
		d.rxDropped++
		return false
	}
	head, chain, ok := d.popAvailLocked(0)
	if !ok {
		d.rxDropped++
		return false
	}
	hdr := make([]byte, d.hdrLenLocked())
	if len(hdr) == 12 {
		binary.LittleEndian.PutUint16(hdr[10:], 1) // num_buffers
	}
	data := append(hdr, frame...)
	written := 0
	for _, s := range chain {
		if !s.writable {
			d.violate("receive descriptor is device-readable")
			continue
		}
		written += copy(s.buf, data[written:])
	}
	if written < len(data) {
		d.violate("receive buffer of %d bytes is too small for a %d-byte frame", written, len(frame))
	}
	d.pushUsedLocked(0, uint32(head), uint32(written))
	d.interruptLocked(0, virtio.InterruptUsedBuffer)
	return true
}

// PushUsedRaw puts an arbitrary entry on queue i's used ring and
// interrupts, as a buggy or hostile device might.
func (d *Device) PushUsedRaw(i int, id, n uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pushUsedLocked(i, id, n)
	d.isr |= virtio.InterruptUsedBuffer
	d.cond.Broadcast()
}

// TakeAvail removes the next available chain of queue i from the device's
// view and returns its head, as a device that consumed a buffer would; the
// test then completes it with PushUsedRaw. ok is false if there is none.
func (d *Device) TakeAvail(i int) (head uint16, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	head, _, ok = d.popAvailLocked(i)
	return head, ok
}

// SetLink changes the link status and sends a configuration change
// interrupt (§5.1.4: VIRTIO_NET_S_LINK_UP).
func (d *Device) SetLink(up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.linkUp = up
	d.gen++
	if d.status&virtio.DRIVER_OK != 0 {
		d.isr |= virtio.InterruptConfigChange
		d.cond.Broadcast()
	}
}

// SetNeedsReset puts the device into the error state DEVICE_NEEDS_RESET
// and, if the driver is live, sends a configuration change interrupt
// (§2.1.2).
func (d *Device) SetNeedsReset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status |= virtio.DEVICE_NEEDS_RESET
	if d.status&virtio.DRIVER_OK != 0 {
		d.isr |= virtio.InterruptConfigChange
		d.cond.Broadcast()
	}
}

// Transmitted returns and forgets the frames the driver has sent.
func (d *Device) Transmitted() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tx
	d.tx = nil
	return t
}

// Stats of the fake device.
type Stats struct {
	Status         uint32 // device status register
	DriverFeatures uint64
	Notifies       [2]int // QueueNotify writes per queue
	RxDropped      int    // injected frames with no buffer to go to
	Resets         int    // writes of 0 to Status
	RxAvail        int    // receive buffers the driver has posted and the device not used
	ISR            uint32 // pending interrupt causes
}

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Status: d.status, DriverFeatures: d.driverFeatures, Notifies: d.notifies,
		RxDropped: d.rxDropped, Resets: d.resets, ISR: d.isr}
	if q := &d.q[0]; q.num != 0 {
		if ring, ok := d.sliceLocked(q.driver, 4); ok {
			s.RxAvail = int(uint16(load32(ring, 0)>>16) - q.lastAvail)
		}
	}
	return s
}

// TxInterruptsSuppressed reports whether the driver set
// VIRTQ_AVAIL_F_NO_INTERRUPT on the transmit queue.
func (d *Device) TxInterruptsSuppressed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ring, ok := d.sliceLocked(d.q[1].driver, 4)
	return ok && d.q[1].num != 0 && load32(ring, 0)&virtio.VIRTQ_AVAIL_F_NO_INTERRUPT != 0
}

// ErrClosed is returned by IRQ.Wait after Close.
var ErrClosed = errors.New("fakedev: interrupt line closed")

// IRQ is the device's interrupt line as molt's kernel.IRQ presents it: Wait
// blocks until the (level-triggered) line is asserted and masks it; Done
// unmasks it, so a line that is still asserted fires again at once.
type IRQ struct{ d *Device }

// IRQ returns the device's interrupt line.
func (d *Device) IRQ() IRQ { return IRQ{d} }

// Wait blocks until the line is asserted and not masked, then masks it.
func (q IRQ) Wait() (uint64, error) {
	d := q.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for !d.closed && (d.masked || d.isr == 0) {
		d.cond.Wait()
	}
	if d.closed {
		return 0, ErrClosed
	}
	d.masked = true
	d.fired++
	return 1, nil
}

// Done unmasks the line.
func (q IRQ) Done() error {
	d := q.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.masked = false
	d.cond.Broadcast()
	return nil
}

// Close makes every Wait return ErrClosed.
func (q IRQ) Close() error {
	d := q.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.cond.Broadcast()
	return nil
}

// Fired returns how many times the line fired (Wait returned).
func (q IRQ) Fired() uint64 {
	q.d.mu.Lock()
	defer q.d.mu.Unlock()
	return q.d.fired
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) / a * a }
