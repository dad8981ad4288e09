package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/molt-os/molt/netstack/conntable"
	"github.com/molt-os/molt/netstack/internal/tcpinternals"
)

// Import tuning.
const (
	// importBatch is how many synthetic handshakes are in flight at once:
	// well below gVisor's SYN-cookie threshold (1000 half-open
	// connections), since a cookie handshake would lose the options.
	importBatch = 256
	// importDataChunk is the payload of one re-injected receive segment.
	importDataChunk = 16 << 10
	// importTapQueue is how many transmitted frames the import can have
	// waiting; beyond that they are dropped (the import only needs the
	// SYN-ACKs and resolution requests, which come one per connection).
	importTapQueue = 4096
	// placeholderMAC answers resolution requests for next hops the table
	// has no address for; GoLive removes those entries again.
	placeholderMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x00")
)

// ImportConns rebuilds the sockets of t in this stack, with their IDs, and
// continues the socket table's IDs from t.NextID. After it returns,
// Lookup(id) answers for every socket of t; the stack stays gated until
// GoLive.
//
// Preconditions: the stack was made with Config.StartGated, its NIC is
// attached (the same MAC as the exporting stack's) and configured with the
// addresses the connections use, and its socket table is empty. Errors:
// ErrLive, ErrTableNotEmpty, a layout self-check failure, or the first
// socket that could not be rebuilt; the stack is then unusable for the
// import (Shutdown it and start fresh).
//
// How: listeners and UDP sockets are opened as Listen and ListenPacket do,
// queued datagrams go back to their socket's pending list. Each TCP
// connection is rebuilt by gVisor's own code: the importer injects a SYN
// "from the peer" with the peer's options and the sequence number that
// makes RCV.NXT come out right, reads the stack's SYN-ACK from the gate,
// injects the ACK and accepts the endpoint. gVisor picks its own ISS, so
// the send sequence space is then shifted onto the exported one, the
// in-flight bytes are re-sent into the closed gate (so that the endpoint
// holds them as sent and unacknowledged, and the peer's ACKs for them are
// acceptable), windows, timestamps, RTT and congestion state are restored,
// and unread bytes are re-injected as segments from the peer. Bytes never
// sent are written by GoLive.
func (s *Stack) ImportConns(ctx context.Context, t *conntable.Table) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	g, err := s.gateLocked()
	if err != nil {
		return err
	}
	if m := g.getMode(); m != gateFrozen {
		return fmt.Errorf("%w (gate is %s): start the stack with Config.StartGated", ErrLive, m)
	}
	s.mu.Lock()
	busy := len(s.table.entries)
	s.mu.Unlock()
	if busy != 0 {
		return fmt.Errorf("%w: %d sockets", ErrTableNotEmpty, busy)
	}
	if len(t.TCP) > 0 {
		if err := checkLayout(); err != nil {
			return fmt.Errorf("netstack: import: %w", err)
		}
	}
	im := newImporter(s, g, t)
	g.setMode(gateImport, im.tap)
	im.start()
	err = im.run(ctx)
	g.setMode(gateFrozen, nil)
	im.stop()
	if err != nil {
		im.closeAll()
		return fmt.Errorf("netstack: import: %w", err)
	}
	s.leftover = importLeftover{unsent: im.unsent, placeholders: im.placeholderList()}
	return nil
}

// importer is one ImportConns run.
type importer struct {
	s   *Stack
	g   *gate
	t   *conntable.Table
	mac tcpip.LinkAddress // ours

	neighbors map[netip.Addr]tcpip.LinkAddress // immutable

	frames  chan []byte // the gate's tap
	dropped atomic.Uint64
	done    chan struct{}
	wg      sync.WaitGroup

	// synacks: the consumer goroutine sends every SYN-ACK it sees.
	synacks chan outboundSegment

	phMu sync.Mutex
	// +checklocks:phMu
	placeholders map[netip.Addr]bool

	// Results, in the importing goroutine only.
	listeners map[uint32]*Listener
	entries   []*tableEntry
	unsent    []unsentData
	toClose   []tcpip.Endpoint // everything created, for a failed import
	checked   bool             // the unknown-field scan ran once
}

func newImporter(s *Stack, g *gate, t *conntable.Table) *importer {
	im := &importer{
		s: s, g: g, t: t,
		mac:          g.LinkAddress(),
		neighbors:    make(map[netip.Addr]tcpip.LinkAddress, len(t.Neighbors)),
		frames:       make(chan []byte, importTapQueue),
		done:         make(chan struct{}),
		synacks:      make(chan outboundSegment, importTapQueue),
		placeholders: map[netip.Addr]bool{},
		listeners:    map[uint32]*Listener{},
	}
	for _, n := range t.Neighbors {
		im.neighbors[n.Addr] = tcpip.LinkAddress(n.MAC[:])
	}
	return im
}

// tap is the gate's outbound hook: it must not block.
func (im *importer) tap(frame []byte) {
	select {
	case im.frames <- frame:
	default:
		im.dropped.Add(1)
	}
}

func (im *importer) start() {
	im.wg.Add(1)
	go func() {
		defer im.wg.Done()
		for {
			select {
			case <-im.done:
				return
			case f := <-im.frames:
				im.handleOutbound(f)
			}
		}
	}()
}

func (im *importer) stop() {
	close(im.done)
	im.wg.Wait()
}

// handleOutbound looks at a frame the stack transmitted during the import:
// it answers address resolution (the stack would not send its SYN-ACKs
// before knowing the next hop's MAC), passes SYN-ACKs on, and drops the
// rest.
func (im *importer) handleOutbound(f []byte) {
	if target, ok := resolutionRequest(f); ok {
		mac, known := im.neighbors[target]
		if !known {
			mac = placeholderMAC
			im.phMu.Lock()
			im.placeholders[target] = true
			im.phMu.Unlock()
		}
		im.g.inject(resolutionReply(target, mac, im.mac, im.ourAddr(target)))
		return
	}
	if seg, ok := parseTCPFrame(f); ok && seg.flags == header.TCPFlagSyn|header.TCPFlagAck {
		select {
		case im.synacks <- seg:
		default:
			im.dropped.Add(1)
		}
	}
}

// ourAddr is the stack's address of target's family (the destination of a
// resolution reply).
func (im *importer) ourAddr(target netip.Addr) netip.Addr {
	proto := ipv4.ProtocolNumber
	if target.Is6() {
		proto = ipv6.ProtocolNumber
	}
	if a, err := im.s.s.GetMainNICAddress(ethNIC, proto); err == nil {
		return fromTCPIP(a.Address)
	}
	if target.Is6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func (im *importer) placeholderList() []neighborKey {
	im.phMu.Lock()
	defer im.phMu.Unlock()
	var out []neighborKey
	for a := range im.placeholders {
		proto := ipv4.ProtocolNumber
		if a.Is6() {
			proto = ipv6.ProtocolNumber
		}
		out = append(out, neighborKey{proto: proto, addr: toTCPIP(a)})
	}
	return out
}

// closeAll closes whatever a failed import created. The gate is frozen, so
// the resets this sends go nowhere.
func (im *importer) closeAll() {
	for _, ep := range im.toClose {
		ep.Close()
	}
}

func (im *importer) run(ctx context.Context) error {
	for i := range im.t.Listeners {
		if err := im.listener(&im.t.Listeners[i]); err != nil {
			return err
		}
	}
	for i := range im.t.UDP {
		if err := im.udp(&im.t.UDP[i]); err != nil {
			return err
		}
	}
	if err := im.tcpAll(ctx); err != nil {
		return err
	}
	// Publish the sockets under their IDs.
	s := im.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStackClosed
	}
	for _, e := range im.entries {
		id := e.state.ID
		if _, dup := s.table.entries[id]; dup {
			return fmt.Errorf("socket ID %d twice", id)
		}
		s.table.entries[id] = e
	}
	if next := SocketID(im.t.NextID); next > s.table.next {
		s.table.next = next
	}
	return nil
}

func (im *importer) listener(l *conntable.Listener) error {
	network := "tcp" + l.Family.Suffix()
	ep, wq, st, err := im.s.openListener(network, l.Local.String())
	if err != nil {
		return fmt.Errorf("listener %d (%s %s): %w", l.ID, network, l.Local, err)
	}
	im.toClose = append(im.toClose, ep)
	st.ID = SocketID(l.ID)
	live := newListener(im.s, st.ID, st, ep, wq)
	im.listeners[l.ID] = live
	im.entries = append(im.entries, &tableEntry{state: st, ep: ep, live: live})
	return nil
}

func (im *importer) udp(u *conntable.UDPSocket) error {
	network := "udp" + u.Family.Suffix()
	ep, wq, st, proto, err := im.s.openPacket(network, u.Local.String())
	if err != nil {
		return fmt.Errorf("udp socket %d (%s %s): %w", u.ID, network, u.Local, err)
	}
	im.toClose = append(im.toClose, ep)
	if u.Remote.IsValid() {
		if terr := ep.Connect(tcpip.FullAddress{Addr: toTCPIP(u.Remote.Addr()), Port: u.Remote.Port()}); terr != nil {
			return fmt.Errorf("udp socket %d: connect to %s: %s", u.ID, u.Remote, terr)
		}
		st.Remote = u.Remote
	}
	st.ID = SocketID(u.ID)
	pc := newPacketConn(im.s, st.ID, ep, wq, proto)
	for _, d := range u.Queued {
		pc.pending = append(pc.pending, datagram{
			from:    tcpip.FullAddress{Addr: toTCPIP(d.From.Addr()), Port: d.From.Port()},
			payload: bytes.Clone(d.Payload),
		})
	}
	im.entries = append(im.entries, &tableEntry{state: st, ep: ep, live: pc})
	return nil
}

// acceptor is the listening endpoint that receives a group's synthetic
// SYNs: the app's listener on that port, or a temporary one for
// connections the app dialed.
type acceptor struct {
	ep   tcpip.Endpoint
	wq   *waiter.Queue
	live *Listener // nil for a temporary listener
}

func (im *importer) tcpAll(ctx context.Context) error {
	// Group the connections by the listener their SYN will reach.
	type key struct {
		listener uint32         // an imported listener, or 0
		local    netip.AddrPort // for a temporary listener
	}
	groups := map[key][]int{}
	var order []key
	for i := range im.t.TCP {
		c := &im.t.TCP[i]
		k := key{local: c.Local}
		if l := im.listenerFor(c); l != nil {
			k = key{listener: uint32(l.id)}
		}
		if c.Flags&conntable.TCPUnaccepted != 0 && k.listener != c.Parent {
			return fmt.Errorf("connection %s -> %s not yet accepted from listener %d: the listener on its port is %d", c.Local, c.Remote, c.Parent, k.listener)
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		var a acceptor
		if k.listener != 0 {
			l := im.listeners[k.listener]
			a = acceptor{ep: l.ep, wq: l.wq, live: l}
		} else {
			tmp, err := im.tempListener(k.local)
			if err != nil {
				return err
			}
			a = tmp
		}
		idx := groups[k]
		for lo := 0; lo < len(idx); lo += importBatch {
			if err := im.batch(ctx, a, idx[lo:min(lo+importBatch, len(idx))]); err != nil {
				if a.live == nil {
					a.ep.Close()
				}
				return err
			}
		}
		if a.live == nil {
			a.ep.Close() // the accepted connections stay
		}
	}
	return nil
}

// listenerFor returns the imported listener a SYN to c's local address
// reaches, if any.
func (im *importer) listenerFor(c *conntable.TCPConn) *Listener {
	for i := range im.t.Listeners {
		l := &im.t.Listeners[i]
		la := l.Local.Addr()
		if l.Local.Port() != c.Local.Port() {
			continue
		}
		switch {
		case la == c.Local.Addr(),
			la.IsUnspecified() && la.Is4() && c.Local.Addr().Is4(),
			la.IsUnspecified() && la.Is6() && (c.Local.Addr().Is6() || l.Family == conntable.FamilyAny):
			return im.listeners[l.ID]
		}
	}
	return nil
}

func (im *importer) tempListener(local netip.AddrPort) (acceptor, error) {
	proto := ipv4.ProtocolNumber
	if local.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	wq := new(waiter.Queue)
	ep, terr := im.s.s.NewEndpoint(tcp.ProtocolNumber, proto, wq)
	if terr != nil {
		return acceptor{}, fmt.Errorf("temporary listener on %s for dialed connections: %s", local, terr)
	}
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.Bind(tcpip.FullAddress{Addr: toTCPIP(local.Addr()), Port: local.Port()}); terr != nil {
		ep.Close()
		return acceptor{}, fmt.Errorf("temporary listener on %s for dialed connections: bind: %s", local, terr)
	}
	if terr := ep.Listen(importBatch + 1); terr != nil {
		ep.Close()
		return acceptor{}, fmt.Errorf("temporary listener on %s for dialed connections: listen: %s", local, terr)
	}
	return acceptor{ep: ep, wq: wq}, nil
}

// tuple names a connection.
type tuple struct{ local, remote netip.AddrPort }

// rcvStart is the sequence number of the first unread byte.
func rcvStart(c *conntable.TCPConn) uint32 { return c.RcvNxt - uint32(len(c.RecvData)) }

// peerWindow is the peer's window as its segments carry it (scaled down).
func peerWindow(c *conntable.TCPConn) uint16 {
	return uint16(min(c.SndWnd>>c.SndWndScale, 0xffff))
}

func (im *importer) peerMAC(a netip.Addr) tcpip.LinkAddress {
	if mac, ok := im.neighbors[a]; ok {
		return mac
	}
	return placeholderMAC
}

// batch rebuilds the connections idx of the table through acceptor a.
func (im *importer) batch(ctx context.Context, a acceptor, idx []int) error {
	byTuple := make(map[tuple]int, len(idx))
	for _, i := range idx {
		c := &im.t.TCP[i]
		byTuple[tuple{c.Local, c.Remote}] = i
		ws := -1
		if c.Flags&conntable.TCPWindowScale != 0 {
			ws = int(c.SndWndScale)
		}
		// The peer's MSS is not known, only what the sender made of it;
		// offering more (40 bytes is the most the options can take) and
		// lowering MaxPayloadSize afterwards gives the exported value.
		mss := uint16(min(int(c.MSS)+header.TCPOptionsMaximumSize, 0xffff))
		syn := tcpSegment{
			src: c.Remote, dst: c.Local, srcMAC: im.peerMAC(c.Remote.Addr()), dstMAC: im.mac,
			seq: rcvStart(c) - 1, flags: header.TCPFlagSyn, window: 0xffff,
			options: synOptions(mss, ws, c.Flags&conntable.TCPSACK != 0, c.Flags&conntable.TCPTimestamps != 0, c.TSRecent),
		}
		im.g.inject(syn.frame())
	}
	// The SYN-ACKs carry the ISS gVisor chose, and our TSval.
	got := make(map[int]outboundSegment, len(idx))
	for len(got) < len(idx) {
		select {
		case seg := <-im.synacks:
			if i, ok := byTuple[tuple{seg.local, seg.remote}]; ok {
				got[i] = seg
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for SYN-ACKs: %d of %d (%d frames dropped): %w", len(got), len(idx), im.dropped.Load(), ctx.Err())
		}
	}
	for _, i := range idx {
		c := &im.t.TCP[i]
		sa := got[i]
		var opts []byte
		if c.Flags&conntable.TCPTimestamps != 0 {
			opts = tsOption(c.TSRecent, sa.tsVal)
		}
		ack := tcpSegment{
			src: c.Remote, dst: c.Local, srcMAC: im.peerMAC(c.Remote.Addr()), dstMAC: im.mac,
			seq: rcvStart(c), ack: sa.seq + 1, flags: header.TCPFlagAck, window: peerWindow(c), options: opts,
		}
		im.g.inject(ack.frame())
	}

	accepted, err := im.accept(ctx, a, byTuple, len(idx))
	if err != nil {
		return err
	}
	elapsedMs := uint32(0)
	if d := time.Now().UnixNano() - im.t.SavedAtUnixNano; d > 0 && im.t.SavedAtUnixNano != 0 {
		elapsedMs = uint32(min(d/1e6, 1<<31))
	}
	for _, i := range idx {
		c := &im.t.TCP[i]
		if err := im.patch(c, accepted[i], elapsedMs); err != nil {
			return fmt.Errorf("%s: %w", connName(c), err)
		}
	}
	// Unread bytes go back into the receive queues as segments from the
	// peer; the endpoints acknowledge them into the closed gate.
	for _, i := range idx {
		c := &im.t.TCP[i]
		for off := 0; off < len(c.RecvData); off += importDataChunk {
			var opts []byte
			if c.Flags&conntable.TCPTimestamps != 0 {
				opts = tsOption(c.TSRecent, 0)
			}
			seg := tcpSegment{
				src: c.Remote, dst: c.Local, srcMAC: im.peerMAC(c.Remote.Addr()), dstMAC: im.mac,
				seq: rcvStart(c) + uint32(off), ack: c.SndUna, flags: header.TCPFlagAck | header.TCPFlagPsh,
				window: peerWindow(c), options: opts, payload: c.RecvData[off:min(off+importDataChunk, len(c.RecvData))],
			}
			im.g.inject(seg.frame())
		}
	}
	for _, i := range idx {
		c := &im.t.TCP[i]
		if want := len(c.RecvData); want > 0 {
			if err := waitQueued(ctx, accepted[i].ep, want); err != nil {
				return fmt.Errorf("%s: %w", connName(c), err)
			}
		}
		im.publish(c, a, accepted[i])
	}
	return nil
}

func connName(c *conntable.TCPConn) string {
	if c.Flags&conntable.TCPUnaccepted != 0 {
		return fmt.Sprintf("connection %s -> %s (not yet accepted from listener %d)", c.Local, c.Remote, c.Parent)
	}
	return fmt.Sprintf("socket %d (tcp %s -> %s)", c.ID, c.Local, c.Remote)
}

// accept takes n connections of the batch out of a's accept queue.
func (im *importer) accept(ctx context.Context, a acceptor, byTuple map[tuple]int, n int) (map[int]pendingConn, error) {
	entry, ready := waiter.NewChannelEntry(waiter.ReadableEvents)
	a.wq.EventRegister(&entry)
	defer a.wq.EventUnregister(&entry)
	out := make(map[int]pendingConn, n)
	for len(out) < n {
		ep, wq, terr := a.ep.Accept(nil)
		if _, wait := terr.(*tcpip.ErrWouldBlock); wait {
			select {
			case <-ready:
			case <-ctx.Done():
				return nil, fmt.Errorf("accepting rebuilt connections: %d of %d: %w", len(out), n, ctx.Err())
			}
			continue
		}
		if terr != nil {
			return nil, fmt.Errorf("accepting rebuilt connections: %s", terr)
		}
		im.toClose = append(im.toClose, ep)
		la, lerr := ep.GetLocalAddress()
		ra, rerr := ep.GetRemoteAddress()
		if lerr != nil || rerr != nil {
			return nil, fmt.Errorf("accepted connection without addresses: %v, %v", lerr, rerr)
		}
		tp := tuple{addrPortFromFull(la), addrPortFromFull(ra)}
		i, ok := byTuple[tp]
		if !ok {
			return nil, fmt.Errorf("accepted an unexpected connection %s -> %s", tp.local, tp.remote)
		}
		out[i] = pendingConn{ep: ep, wq: wq}
	}
	return out, nil
}

// patch turns a freshly handshaken endpoint into the exported connection.
func (im *importer) patch(c *conntable.TCPConn, p pendingConn, elapsedMs uint32) error {
	te, ok := p.ep.(*tcp.Endpoint)
	if !ok {
		return fmt.Errorf("accepted endpoint is a %T", p.ep)
	}
	inFlight := int(c.InFlight())
	ops := te.SocketOptions()
	if c.RcvBuf != 0 {
		ops.SetReceiveBufferSize(int64(c.RcvBuf), true)
	}
	// Room for every byte the old endpoint held: in flight, then unsent
	// (written by GoLive, which must not block).
	ops.SetSendBufferSize(int64(max(int(c.SndBuf), len(c.SendData)+1)), true)
	if inFlight > 0 {
		// Nagle and corking would hold back the tail of the re-send
		// below. (Setting these options takes the user lock, so it
		// happens outside it; the deferred restore runs after the
		// unlock.)
		delay, cork := ops.GetDelayOption(), ops.GetCorkOption()
		ops.SetDelayOption(false)
		ops.SetCorkOption(false)
		defer func() {
			ops.SetDelayOption(delay)
			ops.SetCorkOption(cork)
		}()
	}

	te.LockUser()
	locked := true
	defer func() {
		if locked {
			te.UnlockUser()
		}
	}()
	if st := tcp.EndpointState(te.State()); st != tcp.StateEstablished {
		return fmt.Errorf("rebuilt endpoint is %s, not ESTABLISHED", stateName(KindTCPConn, uint32(st)))
	}
	v, err := tcpinternals.Open(te)
	if err != nil {
		return err
	}
	ss, rs := v.Sender(), v.Receiver()
	start := seqnum.Value(rcvStart(c))
	if rs.RcvNxt != start {
		return fmt.Errorf("RCV.NXT %d after the handshake, want %d", rs.RcvNxt, start)
	}
	if ss.SndUna != ss.SndNxt || !v.SendQueueEmpty() {
		return errors.New("the rebuilt endpoint sent data of its own")
	}
	iss := ss.SndUna - 1
	if ss.MaxPayloadSize > int(c.MSS) {
		ss.MaxPayloadSize = int(c.MSS)
		v.SetScoreboardMSS(c.MSS)
	}
	// RTT first: the retransmission timer armed by the re-send below
	// should use the connection's RTO, not the initial one (1 s).
	if c.SRTTMicros != 0 {
		rtt := v.RTT()
		rtt.SRTT = time.Duration(c.SRTTMicros) * time.Microsecond
		rtt.RTTVar = time.Duration(c.RTTVarMicros) * time.Microsecond
		rtt.SRTTInited = true
	}
	ss.RTO = time.Duration(c.RTOMicros) * time.Microsecond

	// The bytes the old stack had in flight are "sent" again, through the
	// normal write path, into the closed gate: the endpoint then holds
	// them as sent and unacknowledged, so SND.NXT ends where the old one
	// was and the peer's ACKs up to it are acceptable. (Rewinding SND.NXT
	// instead wedged connections in the spike: the peer's ACKs lay beyond
	// our SND.NXT and were ignored.) Window and cwnd are opened for this
	// and restored below.
	if inFlight > 0 {
		ss.SndWnd, ss.SndCwnd = 1<<30, 1<<20
		te.UnlockUser()
		locked = false
		n, terr := te.Write(bytes.NewReader(c.SendData[:inFlight]), tcpip.WriteOptions{})
		te.LockUser()
		locked = true
		if terr != nil || n != int64(inFlight) {
			return fmt.Errorf("re-sending %d in-flight bytes: wrote %d: %v", inFlight, n, terr)
		}
		if sent := int(ss.SndUna.Size(ss.SndNxt)); sent != inFlight {
			return fmt.Errorf("re-sent %d of %d in-flight bytes", sent, inFlight)
		}
	}
	nxt := ss.SndNxt
	isNew := func(x seqnum.Value) bool { return x.InRange(iss, nxt+1) }
	if !im.checked {
		// A send-space field this package does not shift would keep a
		// value of the new ISS's space: refuse, rather than corrupt the
		// connection, when a gVisor upgrade adds one.
		var unknown []string
		for path, x := range v.SeqFields() {
			if isNew(x) && !tcpinternals.KnownSendSpace[path] {
				unknown = append(unknown, fmt.Sprintf("%s=%d", path, x))
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("%w: fields not known to hold send sequence numbers do: %s", tcpinternals.ErrLayout, strings.Join(unknown, ", "))
		}
		im.checked = true
	}
	// Shift the send sequence space: new ISS+1 becomes the exported SND.UNA.
	delta := seqnum.Value(c.SndUna) - (iss + 1)
	shift := func(x *seqnum.Value) {
		if isNew(*x) {
			*x += delta
		}
	}
	rack := v.RACK()
	for _, x := range []*seqnum.Value{
		&ss.SndUna, &ss.SndNxt, &ss.RTTMeasureSeqNum,
		&ss.FastRecovery.First, &ss.FastRecovery.Last, &ss.FastRecovery.HighRxt, &ss.FastRecovery.RescueRxt,
		&rack.EndSequence, &rack.FACK, &rack.RTTSeq, v.TLPHighRxt(), v.MaxSACKed(),
	} {
		shift(x)
	}
	if cs := v.Cubic(); cs != nil {
		shift(&cs.EndSeq)
	}
	if err := v.SendQueue(func(seg tcpinternals.Segment) error { shift(seg.Seq()); return nil }); err != nil {
		return err
	}
	if ss.SndUna != seqnum.Value(c.SndUna) || ss.SndNxt != seqnum.Value(c.SndNxt) {
		return fmt.Errorf("sequence shift gave SND.UNA %d SND.NXT %d, want %d %d", ss.SndUna, ss.SndNxt, c.SndUna, c.SndNxt)
	}

	// Options must have come out as negotiated with the real peer.
	switch {
	case te.SACKPermitted != (c.Flags&conntable.TCPSACK != 0):
		return fmt.Errorf("SACK negotiated %v, want %v", te.SACKPermitted, c.Flags&conntable.TCPSACK != 0)
	case te.SendTSOk != (c.Flags&conntable.TCPTimestamps != 0):
		return fmt.Errorf("timestamps negotiated %v, want %v", te.SendTSOk, c.Flags&conntable.TCPTimestamps != 0)
	case ss.SndWndScale != c.SndWndScale:
		return fmt.Errorf("peer window scale %d, want %d", ss.SndWndScale, c.SndWndScale)
	}
	ss.SndWnd = seqnum.Size(c.SndWnd)
	// Our window scale is what the peer applies to our windows; the
	// SYN-ACK that announced another one never reached it.
	rs.RcvWndScale = c.RcvWndScale
	// The receive window: never less than what the peer was offered.
	edge := seqnum.Value(c.RcvWndEdge)
	*v.RcvWUP() = start
	*v.RcvWnd() = start.Size(edge)
	if rs.RcvAcc.LessThan(edge) {
		rs.RcvAcc = edge
	}
	if c.Flags&conntable.TCPTimestamps != 0 {
		// Our TSval continues from the exported one plus the time the
		// transfer took, so the peer's PAWS check (RFC 7323 §5) passes.
		*v.TSOffset() = c.TSVal + elapsedMs - tsNow(im.s.s)
		te.RecentTS = c.TSRecent
	}
	ss.SndCwnd, ss.Ssthresh = int(c.Cwnd), int(c.Ssthresh)
	return nil
}

// waitQueued waits until ep's receive queue holds want bytes.
func waitQueued(ctx context.Context, ep tcpip.Endpoint, want int) error {
	for {
		n, terr := ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
		if terr == nil && n == want {
			return nil
		}
		if terr == nil && n > want {
			return fmt.Errorf("receive queue holds %d bytes, want %d", n, want)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("re-injected unread data: %d of %d bytes queued: %w", n, want, ctx.Err())
		case <-time.After(50 * time.Microsecond):
		}
	}
}

// publish records a rebuilt connection: a table entry with its ID, or a
// pending connection of its listener.
func (im *importer) publish(c *conntable.TCPConn, a acceptor, p pendingConn) {
	if unsent := c.SendData[c.InFlight():]; len(unsent) > 0 {
		im.unsent = append(im.unsent, unsentData{id: SocketID(c.ID), ep: p.ep, data: bytes.Clone(unsent)})
	}
	if c.Flags&conntable.TCPUnaccepted != 0 {
		a.live.addPending(p)
		return
	}
	st := SocketState{
		ID: SocketID(c.ID), Kind: KindTCPConn, Network: "tcp" + c.Family.Suffix(),
		Local: c.Local, Remote: c.Remote, Parent: SocketID(c.Parent),
	}
	live := &Conn{TCPConn: gonet.NewTCPConn(p.wq, p.ep), s: im.s, id: st.ID}
	im.entries = append(im.entries, &tableEntry{state: st, ep: p.ep, live: live})
}
