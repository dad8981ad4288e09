// Package dhcp is a DHCPv4 client (RFC 2131) that runs over a gVisor stack:
// it obtains one lease for one NIC and returns it; the caller installs the
// address and routes. Message encoding is github.com/insomniacslk/dhcp/dhcpv4;
// the transport is a gVisor UDP endpoint, so no host socket is ever opened.
//
// The client walks INIT → SELECTING → REQUESTING → BOUND once per attempt:
// broadcast DISCOVER, take the first valid OFFER, broadcast REQUEST for it,
// wait for ACK (done) or NAK (next attempt). Each attempt waits Timeout,
// doubled per retry up to MaxTimeout (RFC 2131 §4.1 asks for exponential
// backoff). Replies that fail any check are logged and ignored, never
// trusted: wrong transaction ID or client MAC, not a BOOTREPLY, wrong message
// type, no usable address or server identifier.
//
// Before it has an address, the client sends from 0.0.0.0 by giving the NIC
// the unspecified address for the duration of the exchange, and it sets the
// BROADCAST flag so that servers broadcast their replies: gVisor drops
// unicast IP to an address the NIC does not (yet) own (RFC 2131 §4.1 lets a
// client that cannot receive such unicasts ask for broadcast this way).
//
// Not implemented (see docs/netstack.md): lease renewal and rebinding
// (RENEWING/REBINDING), DHCPRELEASE, DECLINE after an ARP probe of the
// offered address, INIT-REBOOT with a remembered address, and options beyond
// subnet mask, router, DNS servers and lease time.
package dhcp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Ports fixed by RFC 2131 §4.1.
const (
	ServerPort = 67
	ClientPort = 68
)

// Defaults for the zero fields of Config. They favour a quick boot on a
// local network (QEMU user networking answers in well under a millisecond)
// over the RFC's suggested 4 s first wait; the whole default run gives up
// after 1+2+4+8+8 = 23 s.
const (
	DefaultTimeout    = time.Second
	DefaultMaxTimeout = 8 * time.Second
	DefaultAttempts   = 5
)

// ErrNoLease is returned (wrapped) when every attempt ran out of time
// without an acknowledged lease.
var ErrNoLease = errors.New("dhcp: no lease")

// Config tunes the client. The zero value uses the defaults above.
type Config struct {
	// Timeout is how long the first attempt waits for each reply.
	Timeout time.Duration
	// MaxTimeout caps the doubling of Timeout across attempts.
	MaxTimeout time.Duration
	// Attempts is how many DISCOVER rounds run before giving up.
	Attempts int
	// Hostname, if set, is sent as option 12.
	Hostname string
	// Logf receives one line per protocol event and per ignored reply.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxTimeout < c.Timeout {
		c.MaxTimeout = max(DefaultMaxTimeout, c.Timeout)
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Lease is what an acknowledged DHCP exchange grants. It is plain data, so
// it can be logged, compared and carried across a kernel update as is.
type Lease struct {
	// Addr is the leased address with the subnet's prefix length.
	Addr netip.Prefix
	// Router is the default gateway; the zero Addr if the server gave none
	// inside the subnet.
	Router netip.Addr
	// DNS lists the name servers the server offered, in its order.
	DNS []netip.Addr
	// Server is the server identifier (option 54).
	Server netip.Addr
	// Duration is the lease time (option 51); zero if the server sent none.
	Duration time.Duration
	// Acquired is when the ACK arrived.
	Acquired time.Time
}

// Acquire runs the DHCP exchange on NIC nic of s and returns the lease. It
// does not configure the lease; the NIC must have no IPv4 address yet.
// Errors wrap ErrNoLease when the attempts ran out, or the context's error.
func Acquire(ctx context.Context, s *stack.Stack, nic tcpip.NICID, cfg Config) (Lease, error) {
	cfg = cfg.withDefaults()
	info, ok := s.NICInfo()[nic]
	if !ok {
		return Lease{}, fmt.Errorf("dhcp: NIC %d does not exist", nic)
	}
	mac := net.HardwareAddr(info.LinkAddress)
	if len(mac) != 6 {
		return Lease{}, fmt.Errorf("dhcp: NIC %d has no Ethernet address (%q)", nic, info.LinkAddress)
	}

	// Source address 0.0.0.0 until we own one (RFC 2131 §4.1).
	unspecified := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: header.IPv4Any.WithPrefix(),
	}
	if err := s.AddProtocolAddress(nic, unspecified, stack.AddressProperties{}); err != nil {
		return Lease{}, fmt.Errorf("dhcp: add 0.0.0.0 to NIC %d: %s", nic, err)
	}
	defer s.RemoveAddress(nic, header.IPv4Any)

	conn, err := openSocket(s, nic)
	if err != nil {
		return Lease{}, err
	}
	defer conn.Close()

	c := &client{conn: conn, mac: mac, cfg: cfg, start: time.Now()}
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()

	timeout := cfg.Timeout
	for attempt := 1; attempt <= cfg.Attempts; attempt++ {
		lease, err := c.attempt(timeout)
		if err == nil {
			return lease, nil
		}
		if ctx.Err() != nil {
			return Lease{}, fmt.Errorf("dhcp: %w", ctx.Err())
		}
		cfg.Logf("dhcp: attempt %d/%d: %v", attempt, cfg.Attempts, err)
		timeout = min(2*timeout, cfg.MaxTimeout)
	}
	return Lease{}, fmt.Errorf("%w: %d attempts without an acknowledged offer", ErrNoLease, cfg.Attempts)
}

// openSocket returns a UDP socket on port 68 of the NIC, allowed to
// broadcast. Binding to the device routes 255.255.255.255 without a route
// table entry.
func openSocket(s *stack.Stack, nic tcpip.NICID) (*gonet.UDPConn, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("dhcp: new UDP endpoint: %s", terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	// Room for a burst of replies (several servers, or junk): gVisor's
	// default 32 KiB holds only about a dozen small datagrams.
	ep.SocketOptions().SetReceiveBufferSize(256<<10, true)
	if terr := ep.SocketOptions().SetBindToDevice(int32(nic)); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("dhcp: bind to NIC %d: %s", nic, terr)
	}
	if terr := ep.Bind(tcpip.FullAddress{NIC: nic, Port: ClientPort}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("dhcp: bind port %d: %s", ClientPort, terr)
	}
	return gonet.NewUDPConn(&wq, ep), nil
}

// client is the state of one Acquire call.
type client struct {
	conn  *gonet.UDPConn // immutable
	mac   net.HardwareAddr
	cfg   Config
	start time.Time

	mu sync.Mutex
	// +checklocks:mu
	canceled bool
}

// cancel unblocks a pending read for good; the context was canceled.
func (c *client) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canceled = true
	c.conn.SetReadDeadline(time.Unix(1, 0))
}

// setDeadline arms the read deadline unless cancel already ran, so a
// cancellation is never overwritten by a later deadline.
func (c *client) setDeadline(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return false
	}
	c.conn.SetReadDeadline(t)
	return true
}

// attempt runs DISCOVER/OFFER/REQUEST/ACK once with a fresh transaction ID.
func (c *client) attempt(timeout time.Duration) (Lease, error) {
	var xid dhcpv4.TransactionID
	if _, err := rand.Read(xid[:]); err != nil {
		return Lease{}, fmt.Errorf("transaction ID: %w", err)
	}

	discover := c.message(xid, dhcpv4.MessageTypeDiscover)
	if err := c.send(discover); err != nil {
		return Lease{}, err
	}
	offer, err := c.await(xid, time.Now().Add(timeout), dhcpv4.MessageTypeOffer)
	if err != nil {
		return Lease{}, fmt.Errorf("waiting for OFFER: %w", err)
	}
	offered, err := leaseFrom(offer)
	if err != nil {
		return Lease{}, err // await already checked this; cannot happen
	}
	c.cfg.Logf("dhcp: offer %s from %s", offered.Addr, offered.Server)

	// The REQUEST keeps the transaction ID (RFC 2131 §4.4.1) and names the
	// chosen server, which tells any other offering server to stand down.
	request := c.message(xid, dhcpv4.MessageTypeRequest)
	request.UpdateOption(dhcpv4.OptRequestedIPAddress(offered.Addr.Addr().AsSlice()))
	request.UpdateOption(dhcpv4.OptServerIdentifier(offered.Server.AsSlice()))
	if err := c.send(request); err != nil {
		return Lease{}, err
	}
	// One deadline for the answer, however many foreign replies arrive.
	deadline := time.Now().Add(timeout)
	for {
		reply, err := c.await(xid, deadline, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
		if err != nil {
			return Lease{}, fmt.Errorf("waiting for ACK: %w", err)
		}
		if sid, _ := netip.AddrFromSlice(reply.ServerIdentifier().To4()); sid != offered.Server {
			c.cfg.Logf("dhcp: ignoring %s from server %s: we requested from %s", reply.MessageType(), sid, offered.Server)
			continue
		}
		if reply.MessageType() == dhcpv4.MessageTypeNak {
			return Lease{}, fmt.Errorf("server %s refused %s (NAK: %q)", offered.Server, offered.Addr, reply.Message())
		}
		lease, err := leaseFrom(reply)
		if err != nil {
			return Lease{}, err
		}
		lease.Acquired = time.Now()
		c.cfg.Logf("dhcp: bound to %s via %s, lease %s", lease.Addr, lease.Router, lease.Duration)
		return lease, nil
	}
}

// message builds a client message of type t. All client messages ask for
// broadcast replies and the same options.
func (c *client) message(xid dhcpv4.TransactionID, t dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	secs := time.Since(c.start) / time.Second
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		TransactionID: xid,
		NumSeconds:    uint16(min(secs, 0xffff)),
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		ClientHWAddr:  c.mac,
		Options:       make(dhcpv4.Options),
	}
	m.SetBroadcast()
	m.UpdateOption(dhcpv4.OptMessageType(t))
	m.UpdateOption(dhcpv4.OptParameterRequestList(
		dhcpv4.OptionSubnetMask,
		dhcpv4.OptionRouter,
		dhcpv4.OptionDomainNameServer,
		dhcpv4.OptionIPAddressLeaseTime,
		dhcpv4.OptionServerIdentifier,
	))
	// We can take a full Ethernet frame's worth of reply, not just 576 bytes.
	m.UpdateOption(dhcpv4.OptMaxMessageSize(1500))
	if c.cfg.Hostname != "" {
		m.UpdateOption(dhcpv4.OptHostName(c.cfg.Hostname))
	}
	return m
}

func (c *client) send(m *dhcpv4.DHCPv4) error {
	to := &net.UDPAddr{IP: net.IPv4bcast.To4(), Port: ServerPort}
	if _, err := c.conn.WriteTo(m.ToBytes(), to); err != nil {
		return fmt.Errorf("send %s: %w", m.MessageType(), err)
	}
	return nil
}

// errTimeout marks an attempt's wait running out; Acquire retries.
var errTimeout = errors.New("timed out")

// await reads replies until one passes checkReply for xid and one of the
// wanted types, or until deadline. Everything else is logged and dropped.
func (c *client) await(xid dhcpv4.TransactionID, deadline time.Time, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	if !c.setDeadline(deadline) {
		return nil, errors.New("canceled")
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errTimeout
			}
			return nil, err
		}
		if ua, ok := from.(*net.UDPAddr); !ok || ua.Port != ServerPort {
			c.cfg.Logf("dhcp: ignoring datagram from %v: not from port %d", from, ServerPort)
			continue
		}
		m, err := checkReply(buf[:n], xid, c.mac, want...)
		if err != nil {
			c.cfg.Logf("dhcp: ignoring reply from %v: %v", from, err)
			continue
		}
		return m, nil
	}
}

// checkReply decodes b and accepts it only as a reply to our transaction of
// one of the wanted types. OFFERs and ACKs must also yield a lease.
func checkReply(b []byte, xid dhcpv4.TransactionID, mac net.HardwareAddr, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	if m.OpCode != dhcpv4.OpcodeBootReply {
		return nil, fmt.Errorf("op %s, want BootReply", m.OpCode)
	}
	if m.TransactionID != xid {
		return nil, fmt.Errorf("transaction ID %s, want %s", m.TransactionID, xid)
	}
	if m.HWType != iana.HWTypeEthernet || m.ClientHWAddr.String() != mac.String() {
		return nil, fmt.Errorf("client hardware address %s (type %s), want %s", m.ClientHWAddr, m.HWType, mac)
	}
	t := m.MessageType()
	found := false
	for _, w := range want {
		found = found || t == w
	}
	if !found {
		return nil, fmt.Errorf("message type %s, want %v", t, want)
	}
	if _, ok := netip.AddrFromSlice(m.ServerIdentifier().To4()); !ok {
		return nil, errors.New("no server identifier")
	}
	if t == dhcpv4.MessageTypeOffer || t == dhcpv4.MessageTypeAck {
		if _, err := leaseFrom(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// leaseFrom extracts the lease an OFFER or ACK grants.
func leaseFrom(m *dhcpv4.DHCPv4) (Lease, error) {
	var l Lease
	addr, ok := netip.AddrFromSlice(m.YourIPAddr.To4())
	if !ok || !usableUnicast(addr) {
		return l, fmt.Errorf("offered address %v is not a usable unicast address", m.YourIPAddr)
	}
	bits := classfulBits(addr)
	if mask := m.SubnetMask(); mask != nil {
		ones, size := mask.Size()
		if size != 32 || ones == 0 {
			return l, fmt.Errorf("subnet mask %v is not a contiguous IPv4 mask", net.IP(mask))
		}
		bits = ones
	}
	l.Addr = netip.PrefixFrom(addr, bits)
	l.Server, _ = netip.AddrFromSlice(m.ServerIdentifier().To4())
	if !usableUnicast(l.Server) {
		return l, fmt.Errorf("server identifier %v is not a unicast address", m.ServerIdentifier())
	}
	for _, r := range m.Router() {
		if a, ok := netip.AddrFromSlice(r.To4()); ok && usableUnicast(a) && l.Addr.Masked().Contains(a) && a != addr {
			l.Router = a
			break
		}
	}
	for _, d := range m.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && usableUnicast(a) {
			l.DNS = append(l.DNS, a)
		}
	}
	l.Duration = m.IPAddressLeaseTime(0)
	return l, nil
}

// usableUnicast reports whether a can be a host's IPv4 address.
func usableUnicast(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// classfulBits is the pre-CIDR prefix length of a, used when a server sends
// no subnet mask (as RFC 2131 allows).
func classfulBits(a netip.Addr) int {
	switch b := a.As4(); {
	case b[0] < 128:
		return 8
	case b[0] < 192:
		return 16
	default:
		return 24
	}
}
