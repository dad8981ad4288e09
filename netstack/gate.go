package netstack

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gateMode says what the Ethernet NIC's gate lets through.
type gateMode uint32

const (
	// gateLive: everything passes; the normal state.
	gateLive gateMode = iota
	// gateFrozen: received frames are held back (delivered when the gate
	// goes live, up to maxHeldFrames) and transmitted frames discarded,
	// so the stack neither learns nor tells anything: the state of a
	// stack being exported, or of a new one not yet live.
	gateFrozen
	// gateImport: as gateFrozen, but transmitted frames go to the
	// importer's tap instead of being discarded, and the importer injects
	// frames of its own (the synthetic handshakes).
	gateImport
)

func (m gateMode) String() string {
	switch m {
	case gateLive:
		return "live"
	case gateFrozen:
		return "frozen"
	case gateImport:
		return "importing"
	}
	return "unknown"
}

// gate sits between the stack and the Ethernet NIC's link endpoint (any
// stack.LinkEndpoint: AttachNIC wraps it) and can stop traffic in both
// directions. This is what lets a connection table be exported without the
// peer hearing about it and rebuilt without the peer seeing the rebuild:
// no FIN, RST, ACK or SYN-ACK of either stack escapes while the gate is
// closed.
//
// Synchronization: mode is an atomic, read on every frame. rx is held
// shared by every inbound delivery and exclusively by setMode, so that when
// setMode returns no delivery that saw the old mode is still running (a
// segment delivered "just before" a freeze is already in its endpoint's
// queue, where ExportConns waits for it). Outbound frames never take rx:
// the stack may transmit from inside an inbound delivery (an ARP reply, an
// ICMP echo reply), and Go's RWMutex must not be taken twice by one
// goroutine while a writer waits.
type gate struct {
	nested.Endpoint

	rx   sync.RWMutex
	mode atomic.Uint32 // a gateMode
	// tap receives a copy of every transmitted frame in gateImport mode.
	// It must not block.
	tap atomic.Pointer[func(frame []byte)]

	// holdSYN drops connection requests (TCP segments with SYN and not
	// ACK) while the gate is live: set from the start of a freeze, so
	// that no handshake starts that the transfer could not carry. A
	// client's SYN retransmission then reaches the next stack.
	holdSYN atomic.Bool

	// heldMu guards held: frames received while the gate was not live,
	// delivered in order when it opens (setMode(gateLive)). On a new
	// kernel these are what peers sent during the jump (the host queues
	// them for the NIC): delivered at go-live they spare each peer a
	// retransmission timeout, which after a blackout of a second has
	// backed off to several. Taken inside rx (exclusive) or alone.
	heldMu sync.Mutex
	// +checklocks:heldMu
	held []heldFrame

	droppedIn, discardedOut, heldSYNs, replayedIn atomic.Uint64
}

// heldFrame is a received frame kept for delivery at go-live; the gate
// owns one reference to pkt.
type heldFrame struct {
	protocol tcpip.NetworkProtocolNumber
	pkt      *stack.PacketBuffer
}

// maxHeldFrames bounds the frames kept while the gate is closed (about
// 3 MiB of full-size frames); later ones are dropped, as a NIC's full
// ring drops them.
const maxHeldFrames = 2048

var _ stack.LinkEndpoint = (*gate)(nil)
var _ stack.NetworkDispatcher = (*gate)(nil)

func newGate(child stack.LinkEndpoint, mode gateMode) *gate {
	g := &gate{}
	g.mode.Store(uint32(mode))
	g.Endpoint.Init(child, g)
	return g
}

func (g *gate) getMode() gateMode { return gateMode(g.mode.Load()) }

// setMode switches the gate. When it returns, no inbound delivery admitted
// under the previous mode is still in progress.
func (g *gate) setMode(m gateMode, tap func(frame []byte)) {
	g.rx.Lock()
	if tap != nil {
		g.tap.Store(&tap)
	} else {
		g.tap.Store(nil)
	}
	g.mode.Store(uint32(m))
	if m == gateLive {
		g.holdSYN.Store(false)
		// Before any frame received from now on (deliveries wait for
		// rx), so the stack sees them in arrival order.
		g.replayHeld()
	}
	g.rx.Unlock()
}

// DeliverNetworkPacket implements stack.NetworkDispatcher: frames from the
// device reach the stack only while the gate is live.
func (g *gate) DeliverNetworkPacket(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	g.rx.RLock()
	defer g.rx.RUnlock()
	if g.getMode() != gateLive {
		g.hold(protocol, pkt)
		return
	}
	if g.holdSYN.Load() && isConnectionRequest(protocol, pkt) {
		g.heldSYNs.Add(1)
		return
	}
	g.Endpoint.DeliverNetworkPacket(protocol, pkt)
}

// hold keeps a frame received while the gate is closed, or drops it when
// maxHeldFrames are kept already.
func (g *gate) hold(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	g.heldMu.Lock()
	defer g.heldMu.Unlock()
	if len(g.held) >= maxHeldFrames {
		g.droppedIn.Add(1)
		return
	}
	g.held = append(g.held, heldFrame{protocol, pkt.IncRef()})
}

// replayHeld delivers the held frames to the stack, oldest first.
//
// Preconditions: g.rx is held exclusively and the gate is live.
func (g *gate) replayHeld() {
	for _, h := range g.takeHeld() {
		g.Endpoint.DeliverNetworkPacket(h.protocol, h.pkt)
		g.replayedIn.Add(1)
		h.pkt.DecRef()
	}
}

// Close implements stack.LinkEndpoint: it closes the device, then lets go
// of the frames still held.
func (g *gate) Close() {
	g.Endpoint.Close()
	for _, h := range g.takeHeld() {
		h.pkt.DecRef()
	}
}

// takeHeld empties the held frames and returns them; the caller owns
// their references.
func (g *gate) takeHeld() []heldFrame {
	g.heldMu.Lock()
	defer g.heldMu.Unlock()
	held := g.held
	g.held = nil
	return held
}

// isConnectionRequest reports whether pkt (link header consumed) is a TCP
// segment with SYN set and ACK clear: the first segment of a handshake.
// IPv6 segments behind extension headers are not recognized (they are
// let through; the freeze's wait for handshakes covers them).
func isConnectionRequest(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) bool {
	var tcpOff int
	switch protocol {
	case header.IPv4ProtocolNumber:
		b, ok := pkt.Data().PullUp(header.IPv4MinimumSize)
		if !ok {
			return false
		}
		ip := header.IPv4(b)
		if ip.Protocol() != uint8(header.TCPProtocolNumber) || ip.FragmentOffset() != 0 {
			return false
		}
		tcpOff = int(ip.HeaderLength())
	case header.IPv6ProtocolNumber:
		b, ok := pkt.Data().PullUp(header.IPv6MinimumSize)
		if !ok || header.IPv6(b).NextHeader() != uint8(header.TCPProtocolNumber) {
			return false
		}
		tcpOff = header.IPv6MinimumSize
	default:
		return false
	}
	b, ok := pkt.Data().PullUp(tcpOff + header.TCPMinimumSize)
	if !ok {
		return false
	}
	flags := header.TCP(b[tcpOff:]).Flags()
	return flags.Contains(header.TCPFlagSyn) && !flags.Contains(header.TCPFlagAck)
}

// DeliverLinkPacket implements stack.NetworkDispatcher (packet sockets).
func (g *gate) DeliverLinkPacket(protocol tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	g.rx.RLock()
	defer g.rx.RUnlock()
	if g.getMode() != gateLive {
		return
	}
	g.Endpoint.DeliverLinkPacket(protocol, pkt)
}

// WritePackets implements stack.LinkWriter. A closed gate reports success
// for the frames it swallows, as a down link does: the transports treat
// them as lost on the wire.
func (g *gate) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	switch g.getMode() {
	case gateLive:
		return g.Endpoint.WritePackets(pkts)
	case gateImport:
		if tap := g.tap.Load(); tap != nil {
			for _, pkt := range pkts.AsSlice() {
				v := pkt.ToView()
				(*tap)(append([]byte(nil), v.AsSlice()...))
				v.Release()
			}
			return pkts.Len(), nil
		}
	}
	g.discardedOut.Add(uint64(pkts.Len()))
	return pkts.Len(), nil
}

// inject delivers an Ethernet frame to the stack as if the device had
// received it, whatever the gate's mode: the importer's synthetic segments.
// Frames too short for an Ethernet header are ignored.
func (g *gate) inject(frame []byte) {
	if len(frame) < header.EthernetMinimumSize {
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	defer pkt.DecRef()
	if _, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize); !ok {
		return
	}
	pkt.PktType = tcpip.PacketHost
	g.Endpoint.DeliverNetworkPacket(header.Ethernet(frame).Type(), pkt)
}
