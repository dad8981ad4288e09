// Package wire is an in-memory Ethernet cable: two [link.Device] ports whose
// transmitted frames arrive at the other end. It lets netstack tests run two
// complete stacks (ARP, NDP, DHCP, TCP) in one process without a VM, through
// the same link endpoint code the virtio driver uses.
//
// Each port delivers received frames from its own goroutine, one at a time,
// as an interrupt-driven driver's receive loop does. A full receive queue
// drops frames rather than blocking the sender, like a NIC's ring.
//
// Synchronization: Port.rxMu is held while the receive callback runs and by
// SetReceiver, which is how SetReceiver(nil) guarantees no later calls.
// Port.mu guards the filter and is never held while calling out. Neither is
// taken inside the other.
//
// [link.Device]: github.com/molt-os/molt/netstack/link.Device
package wire

import (
	"errors"
	"sync"
	"sync/atomic"
)

// QueueLen is how many frames a port buffers for its receiver.
const QueueLen = 1024

// MTU is the Ethernet payload size the ports carry.
const MTU = 1500

// ErrClosed is returned by Transmit on a closed port.
var ErrClosed = errors.New("wire: port closed")

// ErrLinkDown is returned by Transmit while the port's link is down.
var ErrLinkDown = errors.New("wire: link down")

// Port is one end of the cable. It implements link.Device.
type Port struct {
	mac  [6]byte // immutable
	peer *Port   // immutable after Pair

	up      atomic.Bool
	closed  atomic.Bool
	dropped atomic.Uint64

	queue chan []byte   // frames for this port's receiver
	done  chan struct{} // closed by Close
	wg    sync.WaitGroup

	rxMu sync.Mutex
	// +checklocks:rxMu
	receiver func(frame []byte)

	mu sync.Mutex
	// +checklocks:mu
	filter func(frame []byte) bool
}

// Pair returns the two ends of a new cable, with the given MACs and the link
// up. Close both ports when done.
func Pair(macA, macB [6]byte) (*Port, *Port) {
	a, b := newPort(macA), newPort(macB)
	a.peer, b.peer = b, a
	a.start()
	b.start()
	return a, b
}

func newPort(mac [6]byte) *Port {
	p := &Port{
		mac:   mac,
		queue: make(chan []byte, QueueLen),
		done:  make(chan struct{}),
	}
	p.up.Store(true)
	return p
}

func (p *Port) start() {
	p.wg.Add(1)
	go p.rxLoop()
}

// rxLoop plays the driver's receive goroutine.
func (p *Port) rxLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case frame := <-p.queue:
			p.rxMu.Lock()
			if fn := p.receiver; fn != nil {
				fn(frame)
			}
			p.rxMu.Unlock()
		}
	}
}

// Transmit copies each frame to the peer's receive queue. Frames the filter
// rejects, and frames that find the peer's queue full, are dropped silently
// (counted in Dropped), as on a real cable.
func (p *Port) Transmit(frames [][]byte) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if !p.up.Load() {
		return ErrLinkDown
	}
	p.mu.Lock()
	filter := p.filter
	p.mu.Unlock()
	for _, f := range frames {
		if filter != nil && !filter(f) {
			p.dropped.Add(1)
			continue
		}
		if p.peer.closed.Load() || !p.peer.up.Load() {
			p.dropped.Add(1)
			continue
		}
		select {
		case p.peer.queue <- append([]byte(nil), f...):
		default:
			p.dropped.Add(1)
		}
	}
	return nil
}

// MTU implements link.Device.
func (p *Port) MTU() int { return MTU }

// MAC implements link.Device.
func (p *Port) MAC() [6]byte { return p.mac }

// LinkUp implements link.Device.
func (p *Port) LinkUp() bool { return p.up.Load() }

// SetLinkUp sets this port's carrier. A port whose link is down neither
// sends nor receives.
func (p *Port) SetLinkUp(up bool) { p.up.Store(up) }

// SetReceiver implements link.Device. It waits for a callback in progress.
func (p *Port) SetReceiver(fn func(frame []byte)) {
	p.rxMu.Lock()
	p.receiver = fn
	p.rxMu.Unlock()
}

// SetFilter installs fn, which sees every frame this port transmits before it
// goes on the cable; returning false drops the frame. Tests use it to watch
// traffic (ARP requests, DHCP broadcasts) and to lose frames on purpose.
// fn runs on the transmitting goroutine and must not call Transmit.
func (p *Port) SetFilter(fn func(frame []byte) bool) {
	p.mu.Lock()
	p.filter = fn
	p.mu.Unlock()
}

// Dropped reports how many frames this port's transmissions lost.
func (p *Port) Dropped() uint64 { return p.dropped.Load() }

// Close stops the port's receive goroutine; queued frames are discarded.
// Close is idempotent.
func (p *Port) Close() {
	if p.closed.Swap(true) {
		return
	}
	close(p.done)
	p.wg.Wait()
}
