// Package link turns a NIC driver into a gVisor link endpoint.
//
// A driver (drivers/virtio's net device, or the in-memory [wire] used by
// tests) implements the small [Device] interface: send a batch of Ethernet
// frames, report MTU, MAC and link state, and hand every received frame to
// one callback. [New] wraps such a device into a [stack.LinkEndpoint] that
// speaks Ethernet II (IEEE 802.3 framing without FCS, as virtio-net and TAP
// devices carry it), so gVisor's ARP and NDP work over it.
//
// Packet buffer ownership follows gVisor's convention, and this package keeps
// it explicitly:
//   - Outbound: the stack owns every PacketBuffer it passes to WritePackets
//     and releases it afterwards; the endpoint only copies the bytes out (into
//     one pooled view per frame, released as soon as the device returns).
//   - Inbound: the endpoint creates one PacketBuffer per received frame and
//     calls DecRef on it after the stack's dispatcher returns, on every path,
//     including frames it drops. Tests run with gVisor's reference leak
//     checker in panic mode to hold this line.
//
// Synchronization: the endpoint has no mutex. Its mutable fields (the
// dispatcher, link address, MTU, close action) are atomics, so the receive
// callback, which the driver may call on its own goroutine at any time, never
// waits for the stack.
//
// [wire]: github.com/molt-os/molt/netstack/link/wire
package link

import (
	"errors"
	"fmt"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Device is what the link endpoint needs from a NIC driver.
type Device interface {
	// Transmit sends whole Ethernet frames: destination and source MAC and
	// EtherType first, no frame check sequence. The device must be done with
	// the slices when Transmit returns (it copies them into its own DMA
	// buffers), and it must not block for long: when its queue is full it
	// drops frames and says so with an error, as hardware does. TCP recovers
	// dropped frames by retransmission.
	Transmit(frames [][]byte) error

	// MTU is the largest Ethernet payload (IP packet) the device carries,
	// 1500 for a standard Ethernet device. The frame header is not included.
	MTU() int

	// MAC is the device's station address.
	MAC() [6]byte

	// LinkUp reports whether the device currently has carrier. While it is
	// down, the endpoint drops outbound frames without calling Transmit.
	LinkUp() bool

	// SetReceiver installs the function the driver calls once for every
	// received frame, from its receive goroutine (never from trap context).
	// The frame is only valid during the call: the callee copies what it
	// keeps. SetReceiver(nil) stops delivery; after it returns, the driver
	// makes no further calls to the old function.
	SetReceiver(fn func(frame []byte))
}

// headerLen is the size of an Ethernet II header: two MACs and the EtherType.
const headerLen = header.EthernetMinimumSize

// Stats counts what crossed the endpoint. Every field only grows.
type Stats struct {
	RxFrames  uint64 // frames delivered to the stack
	RxBytes   uint64 // bytes of delivered frames, headers included
	RxDropped uint64 // frames dropped: runt, not addressed to us, no stack attached
	TxFrames  uint64 // frames the device accepted
	TxBytes   uint64 // bytes of accepted frames, headers included
	TxDropped uint64 // frames lost to a down link or a device error
}

// Endpoint is a gVisor link endpoint over a [Device].
//
// Create it with [New]; the zero value is not usable.
type Endpoint struct {
	dev Device // immutable

	// dispatcher is the stack's NIC, set by Attach; nil while detached.
	dispatcher atomic.Pointer[dispatcherBox]
	// linkAddr overrides the device MAC when set (SetLinkAddress).
	linkAddr atomic.Pointer[tcpip.LinkAddress]
	// mtu overrides the device MTU when non-zero (SetMTU).
	mtu atomic.Uint32
	// onClose runs once in Close.
	onClose atomic.Pointer[func()]
	closed  atomic.Bool

	rxFrames, rxBytes, rxDropped atomic.Uint64
	txFrames, txBytes, txDropped atomic.Uint64
}

// dispatcherBox lets an interface value live in an atomic.Pointer.
type dispatcherBox struct{ d stack.NetworkDispatcher }

var _ stack.LinkEndpoint = (*Endpoint)(nil)

// New returns a link endpoint over dev and installs its receive callback.
// Frames that arrive before the stack attaches the endpoint are dropped.
func New(dev Device) (*Endpoint, error) {
	if dev == nil {
		return nil, errors.New("link: nil device")
	}
	if mtu := dev.MTU(); mtu < header.IPv4MinimumMTU || mtu > 0xffff {
		return nil, fmt.Errorf("link: device MTU %d out of range", mtu)
	}
	mac := dev.MAC()
	if !header.IsValidUnicastEthernetAddress(tcpip.LinkAddress(mac[:])) {
		return nil, fmt.Errorf("link: device MAC %s is not a unicast Ethernet address", tcpip.LinkAddress(mac[:]))
	}
	e := &Endpoint{dev: dev}
	dev.SetReceiver(e.receive)
	return e, nil
}

// Stats returns a snapshot of the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	return Stats{
		RxFrames:  e.rxFrames.Load(),
		RxBytes:   e.rxBytes.Load(),
		RxDropped: e.rxDropped.Load(),
		TxFrames:  e.txFrames.Load(),
		TxBytes:   e.txBytes.Load(),
		TxDropped: e.txDropped.Load(),
	}
}

// receive is the device's receive callback: one frame, valid only during the
// call. It copies the frame into a pooled gVisor buffer, hands it to the
// stack and releases its own reference before returning.
func (e *Endpoint) receive(frame []byte) {
	box := e.dispatcher.Load()
	if box == nil || len(frame) < headerLen {
		e.rxDropped.Add(1)
		return
	}
	eth := header.Ethernet(frame)
	dst := eth.DestinationAddress()
	var kind tcpip.PacketType
	switch {
	case dst == header.EthernetBroadcastAddress:
		kind = tcpip.PacketBroadcast
	case header.IsMulticastEthernetAddress(dst):
		kind = tcpip.PacketMulticast
	case dst == e.LinkAddress():
		kind = tcpip.PacketHost
	default:
		// A NIC filters on its station address; the in-memory wire and a
		// promiscuous device do not, so do it here.
		e.rxDropped.Add(1)
		return
	}

	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: buffer.MakeWithData(frame),
	})
	defer pkt.DecRef()
	if _, ok := pkt.LinkHeader().Consume(headerLen); !ok {
		e.rxDropped.Add(1)
		return
	}
	pkt.PktType = kind
	e.rxFrames.Add(1)
	e.rxBytes.Add(uint64(len(frame)))
	box.d.DeliverNetworkPacket(eth.Type(), pkt)
}

// WritePackets implements stack.LinkWriter. The stack keeps ownership of
// pkts; each frame is copied into a pooled view for the device and the view
// is released when Transmit returns.
func (e *Endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	list := pkts.AsSlice()
	if len(list) == 0 {
		return 0, nil
	}
	if e.closed.Load() {
		return 0, &tcpip.ErrClosedForSend{}
	}
	if !e.dev.LinkUp() {
		e.txDropped.Add(uint64(len(list)))
		// Report success: a down link loses frames like a cable does, and
		// transports retransmit. An error here would only bubble up as a
		// spurious write error to applications.
		return len(list), nil
	}

	views := make([]*buffer.View, len(list))
	frames := make([][]byte, len(list))
	var n uint64
	for i, pkt := range list {
		views[i] = pkt.ToView()
		frames[i] = views[i].AsSlice()
		n += uint64(len(frames[i]))
	}
	err := e.dev.Transmit(frames)
	for _, v := range views {
		v.Release()
	}
	if err != nil {
		e.txDropped.Add(uint64(len(list)))
		return len(list), nil
	}
	e.txFrames.Add(uint64(len(list)))
	e.txBytes.Add(n)
	return len(list), nil
}

// MTU implements stack.LinkEndpoint: the device MTU unless SetMTU lowered it.
func (e *Endpoint) MTU() uint32 {
	if m := e.mtu.Load(); m != 0 {
		return m
	}
	return uint32(e.dev.MTU())
}

// SetMTU implements stack.LinkEndpoint. Values above the device MTU are
// clamped to it: the device cannot carry larger frames.
func (e *Endpoint) SetMTU(mtu uint32) {
	if dev := uint32(e.dev.MTU()); mtu > dev {
		mtu = dev
	}
	e.mtu.Store(mtu)
}

// MaxHeaderLength implements stack.LinkEndpoint.
func (*Endpoint) MaxHeaderLength() uint16 { return headerLen }

// LinkAddress implements stack.LinkEndpoint: the device MAC unless
// SetLinkAddress replaced it.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress {
	if a := e.linkAddr.Load(); a != nil {
		return *a
	}
	mac := e.dev.MAC()
	return tcpip.LinkAddress(mac[:])
}

// SetLinkAddress implements stack.LinkEndpoint. It changes the source
// address of outgoing frames and the receive filter; the device itself keeps
// its address (virtio-net has no command for it that every device supports).
func (e *Endpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	e.linkAddr.Store(&addr)
}

// Capabilities implements stack.LinkEndpoint. Ethernet needs ARP/NDP; no
// checksum offload yet (virtio-net can offer it, the driver does not).
func (*Endpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired
}

// Attach implements stack.LinkEndpoint.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		e.dispatcher.Store(nil)
		return
	}
	e.dispatcher.Store(&dispatcherBox{d: d})
}

// IsAttached implements stack.LinkEndpoint.
func (e *Endpoint) IsAttached() bool { return e.dispatcher.Load() != nil }

// Wait implements stack.LinkEndpoint. The endpoint runs no goroutines of its
// own; the driver's receive goroutine is the driver's to stop.
func (*Endpoint) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint.
func (*Endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint: it prepends the Ethernet header.
func (e *Endpoint) AddHeader(pkt *stack.PacketBuffer) {
	src := pkt.EgressRoute.LocalLinkAddress
	if src == "" {
		src = e.LinkAddress()
	}
	eth := header.Ethernet(pkt.LinkHeader().Push(headerLen))
	eth.Encode(&header.EthernetFields{
		SrcAddr: src,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.LinkEndpoint.
func (*Endpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(headerLen)
	return ok
}

// Close implements stack.LinkEndpoint. It stops frame delivery from the
// device and runs the close action. The stack calls it when the NIC is
// removed or the stack is closed.
func (e *Endpoint) Close() {
	if e.closed.Swap(true) {
		return
	}
	e.dev.SetReceiver(nil)
	e.dispatcher.Store(nil)
	if fn := e.onClose.Load(); fn != nil {
		(*fn)()
	}
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *Endpoint) SetOnCloseAction(fn func()) {
	if fn == nil {
		e.onClose.Store(nil)
		return
	}
	e.onClose.Store(&fn)
}
