package netstack

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// listenBacklog is the accept queue length of listeners (Linux's default
// somaxconn).
const listenBacklog = 4096

// socketTable maps stable IDs to sockets. Each entry pairs the plain-data
// SocketState with the live objects; only the former is ever saved.
type socketTable struct {
	next    SocketID
	entries map[SocketID]*tableEntry
}

type tableEntry struct {
	state SocketState
	ep    tcpip.Endpoint // live; for List's protocol state
	live  liveSocket     // what Lookup returns
}

// liveSocket is implemented by *Listener, *Conn and *PacketConn.
type liveSocket interface {
	// ID is the socket's table ID.
	ID() SocketID
	// closeLive closes the gVisor endpoint once, leaving the table alone.
	closeLive()
}

func (t *socketTable) init() {
	t.next = 1
	t.entries = make(map[SocketID]*tableEntry)
}

// addLocked assigns the next ID to st, builds the live socket for that ID
// with mk and records both. mk must not block or call into gVisor.
func (t *socketTable) addLocked(st SocketState, ep tcpip.Endpoint, mk func(SocketID) liveSocket) (liveSocket, error) {
	if t.next == 0 || t.next == math.MaxUint32 {
		return nil, errors.New("netstack: socket IDs exhausted")
	}
	st.ID = t.next
	t.next++
	live := mk(st.ID)
	t.entries[st.ID] = &tableEntry{state: st, ep: ep, live: live}
	return live, nil
}

func (t *socketTable) removeLocked(id SocketID) (*tableEntry, bool) {
	e, ok := t.entries[id]
	if ok {
		delete(t.entries, id)
	}
	return e, ok
}

func (t *socketTable) drainLocked() []*tableEntry {
	out := make([]*tableEntry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	clear(t.entries)
	return out
}

// register records a new socket. If the stack is shut down, it returns
// ErrStackClosed and the caller closes ep.
func (s *Stack) register(st SocketState, ep tcpip.Endpoint, mk func(SocketID) liveSocket) (liveSocket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrStackClosed
	}
	return s.table.addLocked(st, ep, mk)
}

// forget drops id from the table; the caller closes the live socket.
func (s *Stack) forget(id SocketID) {
	s.mu.Lock()
	s.table.removeLocked(id)
	s.mu.Unlock()
}

// Listen opens a TCP listener, as net.Listen does: network is "tcp", "tcp4"
// or "tcp6"; address is "host:port" with a literal IP or an empty host (any
// address; with "tcp" that is dual-stack). Host names are not resolved.
// The returned listener is a *Listener; the connections it accepts are
// *Conn values with IDs of their own.
func (s *Stack) Listen(network, address string) (SocketID, net.Listener, error) {
	ep, wq, st, err := s.openListener(network, address)
	if err != nil {
		return 0, nil, err
	}
	live, err := s.register(st, ep, func(id SocketID) liveSocket { return newListener(s, id, st, ep, wq) })
	if err != nil {
		ep.Close()
		return 0, nil, err
	}
	return live.ID(), live.(*Listener), nil
}

// openListener creates a listening endpoint as Listen describes and
// returns it with its state record (ID not yet assigned).
func (s *Stack) openListener(network, address string) (tcpip.Endpoint, *waiter.Queue, SocketState, error) {
	a, err := s.resolve("tcp", network, address, false)
	if err != nil {
		return nil, nil, SocketState{}, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	wq := new(waiter.Queue)
	ep, terr := s.s.NewEndpoint(tcp.ProtocolNumber, a.proto, wq)
	if terr != nil {
		return nil, nil, SocketState{}, &net.OpError{Op: "listen", Net: network, Err: goError(terr)}
	}
	if a.proto == ipv6.ProtocolNumber {
		ep.SocketOptions().SetV6Only(a.v6only)
	}
	// As Go's net package does on Linux: a restarted server can bind its
	// port while old connections sit in TIME-WAIT.
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.Bind(a.addr); terr != nil {
		ep.Close()
		return nil, nil, SocketState{}, &net.OpError{Op: "bind", Net: network, Addr: a.tcpAddr(), Err: goError(terr)}
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, nil, SocketState{}, &net.OpError{Op: "listen", Net: network, Addr: a.tcpAddr(), Err: goError(terr)}
	}
	return ep, wq, SocketState{Kind: KindTCPListener, Network: network, Local: localAddr(ep, a.proto)}, nil
}

// ListenPacket opens a UDP socket, as net.ListenPacket does: network is
// "udp", "udp4" or "udp6", address as for Listen. The result is a
// *PacketConn.
func (s *Stack) ListenPacket(network, address string) (SocketID, net.PacketConn, error) {
	ep, wq, st, proto, err := s.openPacket(network, address)
	if err != nil {
		return 0, nil, err
	}
	live, err := s.register(st, ep, func(id SocketID) liveSocket { return newPacketConn(s, id, ep, wq, proto) })
	if err != nil {
		ep.Close()
		return 0, nil, err
	}
	return live.ID(), live.(*PacketConn), nil
}

// openPacket creates a bound UDP endpoint as ListenPacket describes and
// returns it with its state record (ID not yet assigned) and its network
// protocol.
func (s *Stack) openPacket(network, address string) (tcpip.Endpoint, *waiter.Queue, SocketState, tcpip.NetworkProtocolNumber, error) {
	a, err := s.resolve("udp", network, address, false)
	if err != nil {
		return nil, nil, SocketState{}, 0, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	wq := new(waiter.Queue)
	ep, terr := s.s.NewEndpoint(udp.ProtocolNumber, a.proto, wq)
	if terr != nil {
		return nil, nil, SocketState{}, 0, &net.OpError{Op: "listen", Net: network, Err: goError(terr)}
	}
	if a.proto == ipv6.ProtocolNumber {
		ep.SocketOptions().SetV6Only(a.v6only)
	}
	if terr := ep.Bind(a.addr); terr != nil {
		ep.Close()
		return nil, nil, SocketState{}, 0, &net.OpError{Op: "bind", Net: network, Addr: a.udpAddr(), Err: goError(terr)}
	}
	return ep, wq, SocketState{Kind: KindUDP, Network: network, Local: localAddr(ep, a.proto)}, a.proto, nil
}

func newPacketConn(s *Stack, id SocketID, ep tcpip.Endpoint, wq *waiter.Queue, proto tcpip.NetworkProtocolNumber) *PacketConn {
	return &PacketConn{UDPConn: gonet.NewUDPConn(wq, ep), s: s, id: id, v4: proto == ipv4.ProtocolNumber, ep: ep}
}

// Dial opens a TCP connection, as net.Dialer.DialContext does: network is
// "tcp", "tcp4" or "tcp6"; address is "ip:port" (an IPv6 link-local address
// may carry the zone %eth0; without one it goes out of eth0). ctx bounds the
// handshake only. The result is a *Conn.
func (s *Stack) Dial(ctx context.Context, network, address string) (SocketID, net.Conn, error) {
	a, err := s.resolve("tcp", network, address, true)
	if err != nil {
		return 0, nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, &net.OpError{Op: "dial", Net: network, Addr: a.tcpAddr(), Err: err}
	}
	var wq waiter.Queue
	ep, terr := s.s.NewEndpoint(tcp.ProtocolNumber, a.proto, &wq)
	if terr != nil {
		return 0, nil, &net.OpError{Op: "dial", Net: network, Addr: a.tcpAddr(), Err: goError(terr)}
	}
	// Register before Connect so the completion event cannot be missed.
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	terr = ep.Connect(a.addr)
	if _, started := terr.(*tcpip.ErrConnectStarted); started {
		select {
		case <-ctx.Done():
			wq.EventUnregister(&entry)
			ep.Close()
			return 0, nil, &net.OpError{Op: "dial", Net: network, Addr: a.tcpAddr(), Err: ctx.Err()}
		case <-ready:
		}
		terr = ep.LastError()
	}
	wq.EventUnregister(&entry)
	if terr != nil {
		ep.Close()
		return 0, nil, &net.OpError{Op: "dial", Net: network, Addr: a.tcpAddr(), Err: goError(terr)}
	}
	return s.adoptConn(network, ep, &wq, 0)
}

// adoptConn records an established TCP endpoint (dialled, or accepted by
// listener parent) and wraps it for the app.
func (s *Stack) adoptConn(network string, ep tcpip.Endpoint, wq *waiter.Queue, parent SocketID) (SocketID, *Conn, error) {
	st := SocketState{Kind: KindTCPConn, Network: network, Local: localAddr(ep, 0), Parent: parent}
	if r, err := ep.GetRemoteAddress(); err == nil {
		st.Remote = addrPortFromFull(r)
	}
	live, err := s.register(st, ep, func(id SocketID) liveSocket {
		return &Conn{TCPConn: gonet.NewTCPConn(wq, ep), s: s, id: id}
	})
	if err != nil {
		ep.Close()
		return 0, nil, err
	}
	return live.ID(), live.(*Conn), nil
}

// Lookup returns the socket with the given ID: a *Listener (net.Listener),
// *Conn (net.Conn) or *PacketConn (net.PacketConn). This is how an app finds
// its sockets again after a kernel update.
func (s *Stack) Lookup(id SocketID) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.table.entries[id]
	if !ok {
		return nil, false
	}
	return e.live, true
}

// Close closes the socket with the given ID and removes it from the table,
// exactly as calling the socket's own Close does.
func (s *Stack) Close(id SocketID) error {
	s.mu.Lock()
	e, ok := s.table.removeLocked(id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownSocket, id)
	}
	e.live.closeLive()
	return nil
}

// List returns one row per open socket, in ID order, with each socket's
// current protocol state.
func (s *Stack) List() []SocketInfo {
	type row struct {
		st SocketState
		ep tcpip.Endpoint
	}
	s.mu.Lock()
	rows := make([]row, 0, len(s.table.entries))
	for _, e := range s.table.entries {
		rows = append(rows, row{e.state, e.ep})
	}
	s.mu.Unlock()

	// Endpoint state is read without holding s.mu (gVisor takes its own
	// locks), so a row may already be stale when returned; it is a view.
	out := make([]SocketInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, SocketInfo{SocketState: r.st, State: stateName(r.st.Kind, r.ep.State())})
	}
	slices.SortFunc(out, func(a, b SocketInfo) int { return int(a.ID) - int(b.ID) })
	return out
}

// TableState returns the socket table as plain data (see sockets_state.go).
func (s *Stack) TableState() TableState {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := TableState{NextID: s.table.next, Sockets: make([]SocketState, 0, len(s.table.entries))}
	for _, e := range s.table.entries {
		ts.Sockets = append(ts.Sockets, e.state)
	}
	slices.SortFunc(ts.Sockets, func(a, b SocketState) int { return int(a.ID) - int(b.ID) })
	return ts
}

// SocketIDOf returns the table ID of a socket value this package handed out
// (for instance a net.Conn returned by a Listener's Accept).
func SocketIDOf(v any) (SocketID, bool) {
	if l, ok := v.(liveSocket); ok {
		return l.ID(), true
	}
	return 0, false
}

// stateName renders a gVisor endpoint state for List.
func stateName(kind SocketKind, state uint32) string {
	if kind == KindUDP {
		switch transport.DatagramEndpointState(state) {
		case transport.DatagramEndpointStateInitial:
			return "INITIAL"
		case transport.DatagramEndpointStateBound:
			return "BOUND"
		case transport.DatagramEndpointStateConnected:
			return "CONNECTED"
		case transport.DatagramEndpointStateClosed:
			return "CLOSED"
		}
		return fmt.Sprintf("state(%d)", state)
	}
	switch tcp.EndpointState(state) {
	case tcp.StateEstablished:
		return "ESTABLISHED"
	case tcp.StateSynSent:
		return "SYN-SENT"
	case tcp.StateSynRecv:
		return "SYN-RCVD"
	case tcp.StateFinWait1:
		return "FIN-WAIT1"
	case tcp.StateFinWait2:
		return "FIN-WAIT2"
	case tcp.StateTimeWait:
		return "TIME-WAIT"
	case tcp.StateClose:
		return "CLOSED"
	case tcp.StateCloseWait:
		return "CLOSE-WAIT"
	case tcp.StateLastAck:
		return "LAST-ACK"
	case tcp.StateListen:
		return "LISTEN"
	case tcp.StateClosing:
		return "CLOSING"
	case tcp.StateInitial:
		return "INITIAL"
	case tcp.StateBound:
		return "BOUND"
	case tcp.StateConnecting:
		return "CONNECTING"
	case tcp.StateError:
		return "ERROR"
	}
	return fmt.Sprintf("state(%d)", state)
}

// endpointAddr is a resolved socket address.
type endpointAddr struct {
	proto  tcpip.NetworkProtocolNumber
	addr   tcpip.FullAddress
	ip     netip.Addr // for error messages; invalid means any
	v6only bool
}

func (a endpointAddr) tcpAddr() *net.TCPAddr {
	return &net.TCPAddr{IP: a.ip.AsSlice(), Port: int(a.addr.Port), Zone: a.ip.Zone()}
}

func (a endpointAddr) udpAddr() *net.UDPAddr {
	return &net.UDPAddr{IP: a.ip.AsSlice(), Port: int(a.addr.Port), Zone: a.ip.Zone()}
}

// resolve parses a net-style network and "host:port" for transport kind
// ("tcp" or "udp"). dial requires a host and a port.
func (s *Stack) resolve(kind, network, address string, dial bool) (endpointAddr, error) {
	family, ok := strings.CutPrefix(network, kind)
	if !ok || (family != "" && family != "4" && family != "6") {
		return endpointAddr{}, fmt.Errorf("%w %q: want %s, %s4 or %s6", errUnknownNetwork, network, kind, kind, kind)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return endpointAddr{}, fmt.Errorf("address %q: %v", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return endpointAddr{}, fmt.Errorf("address %q: port %q is not a number from 0 to 65535", address, portStr)
	}
	if dial && (host == "" || port == 0) {
		return endpointAddr{}, fmt.Errorf("address %q: dialing needs a host and a non-zero port", address)
	}

	var ip netip.Addr
	if host != "" {
		ip, err = netip.ParseAddr(host)
		if err != nil {
			return endpointAddr{}, fmt.Errorf("address %q: host %q is not an IP address (netstack resolves no names)", address, host)
		}
	}
	zone := ip.Zone()
	ip = ip.WithZone("").Unmap()
	if dial && ip.IsUnspecified() {
		return endpointAddr{}, fmt.Errorf("address %q: cannot dial the unspecified address", address)
	}

	a := endpointAddr{addr: tcpip.FullAddress{Port: uint16(port)}}
	switch {
	case family == "4":
		if ip.IsValid() && !ip.Is4() {
			return endpointAddr{}, fmt.Errorf("address %q is not IPv4", address)
		}
		a.proto = ipv4.ProtocolNumber
	case family == "6":
		if ip.Is4() {
			return endpointAddr{}, fmt.Errorf("address %q is not IPv6", address)
		}
		a.proto, a.v6only = ipv6.ProtocolNumber, true
	case ip.Is4():
		a.proto = ipv4.ProtocolNumber
	default:
		// No host, "::" or an IPv6 address: IPv6, taking IPv4 too.
		a.proto = ipv6.ProtocolNumber
	}

	switch zone {
	case "":
		if header.IsV6LinkLocalUnicastAddress(toTCPIP(ip)) || header.IsV6LinkLocalMulticastAddress(toTCPIP(ip)) {
			a.addr.NIC = ethNIC // the only link there is
		}
	case ethName, strconv.Itoa(int(ethNIC)):
		a.addr.NIC = ethNIC
	case loopbackName, strconv.Itoa(int(loopbackNIC)):
		a.addr.NIC = loopbackNIC
	default:
		return endpointAddr{}, fmt.Errorf("address %q: unknown zone %q (NICs: %s, %s)", address, zone, loopbackName, ethName)
	}
	if ip.IsValid() && !ip.IsUnspecified() {
		a.addr.Addr = toTCPIP(ip)
	}
	a.ip = ip.WithZone(zone)
	if a.ip.IsValid() && a.ip.Is4() && zone != "" {
		a.ip = ip // IPv4 addresses have no zones
	}
	return a, nil
}

// localAddr reads an endpoint's bound address, rendering "any" as the
// unspecified address of proto (or of the endpoint's own family).
func localAddr(ep tcpip.Endpoint, proto tcpip.NetworkProtocolNumber) netip.AddrPort {
	full, err := ep.GetLocalAddress()
	if err != nil {
		return netip.AddrPort{}
	}
	if full.Addr.BitLen() == 0 {
		if proto == ipv4.ProtocolNumber {
			return netip.AddrPortFrom(netip.IPv4Unspecified(), full.Port)
		}
		return netip.AddrPortFrom(netip.IPv6Unspecified(), full.Port)
	}
	return addrPortFromFull(full)
}

// goError turns a gVisor error into a Go error. The common ones become the
// errno values Linux would return, so errors.Is(err, syscall.ECONNREFUSED)
// works as it does with package net.
func goError(err tcpip.Error) error {
	switch err.(type) {
	case *tcpip.ErrConnectionRefused:
		return syscall.ECONNREFUSED
	case *tcpip.ErrConnectionReset:
		return syscall.ECONNRESET
	case *tcpip.ErrConnectionAborted, *tcpip.ErrAborted:
		return syscall.ECONNABORTED
	case *tcpip.ErrPortInUse:
		return syscall.EADDRINUSE
	case *tcpip.ErrBadLocalAddress:
		return syscall.EADDRNOTAVAIL
	case *tcpip.ErrNetworkUnreachable, *tcpip.ErrNoNet:
		return syscall.ENETUNREACH
	case *tcpip.ErrHostUnreachable, *tcpip.ErrHostDown:
		return syscall.EHOSTUNREACH
	case *tcpip.ErrTimeout:
		return syscall.ETIMEDOUT
	case *tcpip.ErrNoPortAvailable:
		return syscall.EAGAIN
	}
	return errors.New(err.String())
}
