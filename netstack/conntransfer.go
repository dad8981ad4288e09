package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/molt-os/molt/netstack/conntable"
	"github.com/molt-os/molt/netstack/internal/tcpinternals"
)

// Connection transfer: Freeze, ExportConns, ImportConns, GoLive. A kernel
// update runs them as
//
//	old kernel: quiesce the apps; st.Freeze(); t, err := st.ExportConns(ctx)
//	            (on error: st.GoLive(), resume the apps: nothing changed)
//	            b, err := t.Encode(); hand b over; never call st.Shutdown
//	new kernel: st := New(Config{StartGated: true, SkipDAD: true})
//	            st.AttachNIC(ep, mac); st.Configure(ctx, staticIP)
//	            t, err := conntable.Decode(b); st.ImportConns(ctx, t)
//	            st.GoLive(); resume the apps, which find their sockets by ID
//
// docs/conntransfer.md describes the method and its limits.

// Errors of the connection transfer; test with errors.Is.
var (
	// ErrNotFrozen: ExportConns needs a frozen NIC (Freeze).
	ErrNotFrozen = errors.New("netstack: NIC is not frozen")
	// ErrLive: ImportConns needs a gated NIC (Config.StartGated), so that
	// the rebuild is not seen on the network.
	ErrLive = errors.New("netstack: NIC is live")
	// ErrTableNotEmpty: ImportConns needs a socket table without sockets.
	ErrTableNotEmpty = errors.New("netstack: socket table is not empty")
	// ErrNotTransferable: a socket is in a state the transfer does not
	// carry (version 1 carries LISTEN, ESTABLISHED and bound UDP sockets).
	// The error names the socket.
	ErrNotTransferable = errors.New("netstack: socket cannot be transferred")
)

// checkLayout is the gVisor layout self-check; a variable so that tests can
// make it fail.
var checkLayout = tcpinternals.Check

// exportDrainTimeout bounds the wait for an endpoint's processor to finish
// the segments that arrived before the freeze.
const exportDrainTimeout = 2 * time.Second

// Freeze closes the Ethernet NIC's gate in both directions: from now on no
// received frame reaches the stack and nothing the stack transmits reaches
// the device, so the peers see neither the export nor, later, the sockets
// being closed. When Freeze returns, no frame delivery is in progress. The
// apps must be quiesced before (the caller's task layer does that); GoLive
// opens the gate again.
//
// A handshake in progress (SYN answered, final ACK not yet processed) is
// not a connection the transfer can carry, and its client would be reset
// by the next stack. So Freeze first stops answering connection requests
// (their SYNs are dropped; the clients retransmit them to the next
// kernel, Linux after 1 s) and waits, at most handshakeDrainTimeout, for
// the handshakes in progress to complete; one still open then is
// abandoned, and logged.
func (s *Stack) Freeze() error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	g, err := s.gateLocked()
	if err != nil {
		return err
	}
	g.holdSYN.Store(true)
	deadline := time.Now().Add(handshakeDrainTimeout)
	for {
		n, err := s.pendingHandshakes()
		if err != nil {
			g.holdSYN.Store(false)
			return fmt.Errorf("netstack: freeze: %w", err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			s.logf("netstack: freeze: %d TCP handshakes still in progress after %v; their clients will be reset", n, handshakeDrainTimeout)
			break
		}
		time.Sleep(time.Millisecond)
	}
	g.setMode(gateFrozen, nil)
	return nil
}

// handshakeDrainTimeout bounds Freeze's wait for handshakes in progress:
// a round trip to the client, generous for a slow (emulated) machine.
const handshakeDrainTimeout = 500 * time.Millisecond

// pendingHandshakes counts the handshakes in progress on every listener.
func (s *Stack) pendingHandshakes() (int, error) {
	s.mu.Lock()
	var eps []*tcp.Endpoint
	for _, e := range s.table.entries {
		if te, ok := e.ep.(*tcp.Endpoint); ok && e.state.Kind == KindTCPListener {
			eps = append(eps, te)
		}
	}
	s.mu.Unlock()
	total := 0
	for _, ep := range eps {
		n, err := tcpinternals.PendingHandshakes(ep)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// GoLive opens the NIC's gate: after ImportConns, or to resume a frozen
// stack whose export was abandoned. After an import it then writes the
// bytes each connection's app had written but the old stack had not yet
// sent, and forgets the placeholder neighbor entries the import needed.
func (s *Stack) GoLive() error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	g, err := s.gateLocked()
	if err != nil {
		return err
	}
	g.setMode(gateLive, nil)
	left := s.leftover
	s.leftover = importLeftover{}
	var errs []error
	for _, u := range left.unsent {
		// The send buffer was sized for these bytes, so this does not
		// block; a short write would lose app data, so it is an error.
		n, terr := u.ep.Write(bytes.NewReader(u.data), tcpip.WriteOptions{})
		if terr != nil || n != int64(len(u.data)) {
			errs = append(errs, fmt.Errorf("netstack: GoLive: socket %d: wrote %d of %d unsent bytes: %v", u.id, n, len(u.data), terr))
		}
	}
	for _, p := range left.placeholders {
		s.s.RemoveNeighbor(ethNIC, p.proto, p.addr) // gone already: fine
	}
	return errors.Join(errs...)
}

// gateLocked returns the NIC's gate.
//
// Preconditions:
//   - s.cfgMu is held.
func (s *Stack) gateLocked() (*gate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrStackClosed
	case s.nic == nil:
		return nil, ErrNoNIC
	}
	return s.nic.gate, nil
}

// importLeftover is what ImportConns leaves for GoLive.
type importLeftover struct {
	unsent       []unsentData
	placeholders []neighborKey
}

type unsentData struct {
	id   SocketID
	ep   tcpip.Endpoint
	data []byte
}

type neighborKey struct {
	proto tcpip.NetworkProtocolNumber
	addr  tcpip.Address
}

// ExportConns returns the connection table of a frozen stack as plain data:
// every listener, TCP connection and UDP socket of the socket table, with
// its ID, and the table's next ID. Unread received bytes, bytes waiting to
// be sent or acknowledged, queued datagrams and accepted-but-not-yet-
// Accept()ed connections are included; nothing is consumed, so if the
// update is abandoned the stack can GoLive and carry on as before.
//
// Preconditions: Freeze was called, and no app uses a socket (a Read or
// Write in progress would race with the export).
//
// It refuses, with an error wrapping ErrNotTransferable that names the
// socket, TCP connections in any state but ESTABLISHED (half-closed ones
// included: a FIN sent or received), connections over loopback, and it
// refuses everything if gVisor's private layout is not the one
// netstack/internal/tcpinternals checks. ctx bounds the wait for segments
// that arrived just before the freeze to be processed.
func (s *Stack) ExportConns(ctx context.Context) (*conntable.Table, error) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	g, err := s.gateLocked()
	if err != nil {
		return nil, err
	}
	if m := g.getMode(); m != gateFrozen {
		return nil, fmt.Errorf("%w (gate is %s): call Freeze first", ErrNotFrozen, m)
	}
	if err := checkLayout(); err != nil {
		return nil, fmt.Errorf("netstack: export: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, exportDrainTimeout)
	defer cancel()

	type row struct {
		st   SocketState
		ep   tcpip.Endpoint
		live liveSocket
	}
	s.mu.Lock()
	t := &conntable.Table{NextID: uint32(s.table.next), SavedAtUnixNano: time.Now().UnixNano()}
	rows := make([]row, 0, len(s.table.entries))
	for _, e := range s.table.entries {
		rows = append(rows, row{e.state, e.ep, e.live})
	}
	s.mu.Unlock()
	slices.SortFunc(rows, func(a, b row) int { return int(a.st.ID) - int(b.st.ID) })

	t.Neighbors = s.exportNeighbors()
	for _, r := range rows {
		switch r.st.Kind {
		case KindTCPListener:
			l := r.live.(*Listener)
			t.Listeners = append(t.Listeners, conntable.Listener{
				ID: uint32(r.st.ID), Family: familyOf(r.st.Network), Local: r.st.Local, Backlog: listenBacklog,
			})
			// Connections that completed their handshake but that the
			// app has not accepted yet travel too.
			l.drainAcceptQueue()
			for _, p := range l.pendingSnapshot() {
				c := conntable.TCPConn{Parent: uint32(r.st.ID), Family: familyOf(r.st.Network), Flags: conntable.TCPUnaccepted}
				if err := exportTCP(ctx, s.s, p.ep, &c); err != nil {
					return nil, fmt.Errorf("netstack: export connection not yet accepted from listener %d: %w", r.st.ID, err)
				}
				t.TCP = append(t.TCP, c)
			}
		case KindUDP:
			pc := r.live.(*PacketConn)
			u := conntable.UDPSocket{ID: uint32(r.st.ID), Family: familyOf(r.st.Network), Local: r.st.Local, Remote: r.st.Remote}
			if err := pc.drainEndpoint(); err != nil {
				return nil, fmt.Errorf("netstack: export udp socket %d (%s): %w", r.st.ID, r.st.Local, err)
			}
			for _, d := range pc.pendingSnapshot() {
				u.Queued = append(u.Queued, conntable.Datagram{From: addrPortFromFull(d.from), Payload: d.payload})
			}
			t.UDP = append(t.UDP, u)
		case KindTCPConn:
			c := conntable.TCPConn{ID: uint32(r.st.ID), Parent: uint32(r.st.Parent), Family: familyOf(r.st.Network)}
			if err := exportTCP(ctx, s.s, r.ep, &c); err != nil {
				return nil, fmt.Errorf("netstack: export socket %d (tcp %s -> %s): %w", r.st.ID, r.st.Local, r.st.Remote, err)
			}
			t.TCP = append(t.TCP, c)
		}
	}
	return t, nil
}

// exportNeighbors lists the NIC's resolved neighbors.
func (s *Stack) exportNeighbors() []conntable.Neighbor {
	var out []conntable.Neighbor
	for _, proto := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		entries, err := s.s.Neighbors(ethNIC, proto)
		if err != nil {
			continue
		}
		for _, e := range entries {
			a := fromTCPIP(e.Addr)
			if len(e.LinkAddr) != 6 || !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
				continue
			}
			var mac [6]byte
			copy(mac[:], e.LinkAddr)
			out = append(out, conntable.Neighbor{Addr: a, MAC: mac})
		}
	}
	return out
}

// familyOf maps a network name ("tcp6", "udp", ...) to its family.
func familyOf(network string) conntable.Family {
	switch {
	case strings.HasSuffix(network, "4"):
		return conntable.Family4
	case strings.HasSuffix(network, "6"):
		return conntable.Family6
	}
	return conntable.FamilyAny
}

// appendWriter is an io.Writer that appends to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// exportTCP fills c (addresses and protocol state) from an established
// endpoint.
func exportTCP(ctx context.Context, gs *stack.Stack, ep tcpip.Endpoint, c *conntable.TCPConn) error {
	te, ok := ep.(*tcp.Endpoint)
	if !ok {
		return fmt.Errorf("%w: not a gVisor TCP endpoint (%T)", ErrNotTransferable, ep)
	}
	// The unread bytes come through the public API (a peek consumes
	// nothing), the rest under the endpoint's lock. Once the endpoint's
	// inbound queue is empty nothing can change what it has acknowledged
	// (the gate admits no new segment, and the processor only works under
	// the lock), so the peeked bytes are complete if their count matches
	// the receive buffer's. If not, the processor was still busy: retry.
	var unread appendWriter
	var v tcpinternals.View
	for {
		unread.b = unread.b[:0]
		_, rerr := ep.Read(&unread, tcpip.ReadOptions{Peek: true})
		switch rerr.(type) {
		case nil, *tcpip.ErrWouldBlock, *tcpip.ErrClosedForReceive:
		default:
			return fmt.Errorf("peek at unread data: %s", rerr)
		}
		te.LockUser()
		if st := tcp.EndpointState(te.State()); st != tcp.StateEstablished {
			te.UnlockUser()
			return fmt.Errorf("%w: state %s (version 1 carries ESTABLISHED only)", ErrNotTransferable, stateName(KindTCPConn, uint32(st)))
		}
		var err error
		if v, err = tcpinternals.Open(te); err != nil {
			te.UnlockUser()
			return fmt.Errorf("%w: %v", ErrNotTransferable, err)
		}
		if !v.InboundQueued() && len(unread.b) == te.RcvBufUsed {
			break
		}
		te.UnlockUser()
		select {
		case <-ctx.Done():
			return fmt.Errorf("inbound segments still unprocessed: %w", ctx.Err())
		case <-time.After(50 * time.Microsecond):
		}
	}
	defer te.UnlockUser()

	id := te.TransportEndpointInfo.ID
	c.Local = netip.AddrPortFrom(fromTCPIP(id.LocalAddress), id.LocalPort)
	c.Remote = netip.AddrPortFrom(fromTCPIP(id.RemoteAddress), id.RemotePort)
	if c.Local.Addr().IsLoopback() || c.Remote.Addr().IsLoopback() {
		return fmt.Errorf("%w: a loopback connection has both ends in this stack", ErrNotTransferable)
	}
	ss, rs := v.Sender(), v.Receiver()
	if te.SACKPermitted {
		c.Flags |= conntable.TCPSACK
	}
	if te.SendTSOk {
		c.Flags |= conntable.TCPTimestamps
		c.TSVal = tsNow(gs) + *v.TSOffset()
		c.TSRecent = te.RecentTS
	}
	if ss.SndWndScale > 0 || rs.RcvWndScale > 0 {
		c.Flags |= conntable.TCPWindowScale
		c.SndWndScale, c.RcvWndScale = ss.SndWndScale, rs.RcvWndScale
	}
	c.SndUna, c.SndNxt, c.RcvNxt = uint32(ss.SndUna), uint32(ss.SndNxt), uint32(rs.RcvNxt)
	// The right edge of what the peer was offered: the receiver keeps it
	// in RcvAcc, and in rcvWUP+rcvWnd for the last window it sent.
	edge := rs.RcvAcc
	if e := v.RcvWUP().Add(*v.RcvWnd()); edge.LessThan(e) {
		edge = e
	}
	if edge.LessThan(rs.RcvNxt) {
		edge = rs.RcvNxt
	}
	c.RcvWndEdge = uint32(edge)
	c.SndWnd = uint32(ss.SndWnd)
	c.MSS = uint16(min(ss.MaxPayloadSize, 0xffff))
	rtt := v.RTT()
	c.SRTTMicros, c.RTTVarMicros = micros(rtt.SRTT), micros(rtt.RTTVar)
	c.RTOMicros = max(micros(ss.RTO), 1)
	c.Cwnd, c.Ssthresh = uint32(max(ss.SndCwnd, 1)), uint32(max(ss.Ssthresh, 0))
	c.RcvBuf = uint32(te.SocketOptions().GetReceiveBufferSize())
	c.SndBuf = uint32(te.SocketOptions().GetSendBufferSize())
	c.RecvData = unread.b

	// The send queue holds every byte from SND.UNA on: [SND.UNA, SND.NXT)
	// in flight, then what the app wrote and was not sent yet.
	var send appendWriter
	inFlight := int(ss.SndUna.Size(ss.SndNxt))
	err := v.SendQueue(func(seg tcpinternals.Segment) error {
		if len(send.b) == 0 && inFlight > 0 && *seg.Seq() != ss.SndUna {
			return fmt.Errorf("send queue starts at %d, SND.UNA is %d", *seg.Seq(), ss.SndUna)
		}
		if seg.Flags()&header.TCPFlagFin != 0 {
			return fmt.Errorf("%w: FIN queued (the app closed its side)", ErrNotTransferable)
		}
		_, err := seg.Packet().Data().ReadTo(&send, true /* peek */)
		return err
	})
	if err != nil {
		return err
	}
	if len(send.b) < inFlight {
		return fmt.Errorf("send queue holds %d bytes, fewer than the %d in flight", len(send.b), inFlight)
	}
	c.SendData = send.b
	return nil
}

// tsNow is the TCP timestamp clock without offset (ms), as gVisor's
// tcp.TSOffset.TSVal computes it.
func tsNow(gs *stack.Stack) uint32 {
	return uint32(gs.Clock().NowMonotonic().Sub(tcpip.MonotonicTime{}).Milliseconds())
}

func micros(d time.Duration) uint32 {
	return uint32(min(max(d/time.Microsecond, 0), 1<<32-1))
}

// seqSize is b-a in sequence space.
func seqSize(a, b uint32) int { return int(seqnum.Value(a).Size(seqnum.Value(b))) }

// drainAcceptQueue moves every connection gVisor has ready for Accept into
// the listener's pending list (Accept returns them first, so nothing
// changes for the app).
func (l *Listener) drainAcceptQueue() {
	for {
		ep, wq, err := l.ep.Accept(nil)
		if err != nil {
			return
		}
		l.addPending(pendingConn{ep: ep, wq: wq})
	}
}

func (l *Listener) pendingSnapshot() []pendingConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.pending)
}

// drainEndpoint moves every datagram queued in the endpoint into the
// socket's pending list (Read returns them first).
func (c *PacketConn) drainEndpoint() error {
	for {
		var w appendWriter
		res, err := c.ep.Read(&w, tcpip.ReadOptions{NeedRemoteAddr: true})
		switch err.(type) {
		case nil:
		case *tcpip.ErrWouldBlock, *tcpip.ErrClosedForReceive:
			return nil
		default:
			return fmt.Errorf("read queued datagram: %s", err)
		}
		c.mu.Lock()
		c.pending = append(c.pending, datagram{from: res.RemoteAddr, payload: w.b})
		c.mu.Unlock()
	}
}

func (c *PacketConn) pendingSnapshot() []datagram {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pending)
}
