package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/molt-os/molt/netstack/dhcp"
)

// NIC numbering inside the gVisor stack. There is one loopback and at most
// one Ethernet NIC; the numbers are fixed so that saved state can name them.
const (
	loopbackNIC tcpip.NICID = 1
	ethNIC      tcpip.NICID = 2

	loopbackName = "lo"
	ethName      = "eth0"
)

// Errors callers can test for with errors.Is.
var (
	ErrStackClosed    = errors.New("netstack: stack is shut down")
	ErrNoNIC          = errors.New("netstack: no NIC attached")
	ErrNICAttached    = errors.New("netstack: a NIC is already attached")
	ErrConfigured     = errors.New("netstack: IP configuration already applied")
	ErrUnknownSocket  = errors.New("netstack: no such socket")
	errUnknownNetwork = errors.New("unknown network")
)

// Config holds the stack's settings. The zero value works.
type Config struct {
	// Hostname is sent to DHCP servers (option 12) unless DHCP.Hostname is
	// set.
	Hostname string
	// DHCP tunes the DHCP client's timeouts and retries.
	DHCP dhcp.Config
	// Logf receives diagnostics (DHCP progress, duplicate addresses). Nil
	// discards them.
	Logf func(format string, args ...any)
	// SkipDAD turns off IPv6 duplicate address detection, which otherwise
	// holds every new IPv6 address back for one second (one probe, RFC
	// 4862). Meant for a warm start after a kernel update, when the
	// addresses were verified before, and for tests.
	SkipDAD bool
	// StartGated attaches the Ethernet NIC with its gate closed: no frame is
	// delivered to the stack or transmitted until GoLive. A kernel that
	// imports a connection table (ImportConns) starts this way, so that
	// nothing it does before the import (IPv6 router solicitations, ARP,
	// the import's own handshakes) reaches the network.
	StartGated bool
}

// Stack is molt's TCP/IP stack: gVisor's netstack with IPv4, IPv6, ARP,
// NDP, ICMP, TCP and UDP, one loopback NIC, at most one Ethernet NIC, and
// the socket table through which apps hold their sockets.
type Stack struct {
	logf func(string, ...any) // immutable
	cfg  Config               // immutable
	s    *stack.Stack         // immutable
	ndp  *ndpDispatcher       // immutable
	done chan struct{}        // closed by Shutdown; stops the route worker
	wg   sync.WaitGroup       // the route worker

	// cfgMu serializes the steps that change the NIC or its addresses
	// (AttachNIC, Configure, Shutdown). It is held across gVisor calls and
	// the whole DHCP exchange, so it is never taken while holding mu.
	cfgMu sync.Mutex
	// leftover is what ImportConns leaves for GoLive.
	// +checklocks:cfgMu
	leftover importLeftover

	// mu guards the fields below and the socket table. It is a leaf: no
	// gVisor call and no blocking operation happens while it is held.
	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	nic *nicRecord
	// +checklocks:mu
	ip *appliedIP
	// +checklocks:mu
	table socketTable
}

// nicRecord describes the attached Ethernet NIC.
type nicRecord struct {
	mac  net.HardwareAddr
	ep   stack.LinkEndpoint // the caller's endpoint
	gate *gate              // wraps ep; what the gVisor NIC holds
}

// appliedIP is the IP configuration that Configure installed.
type appliedIP struct {
	cfg   IPConfig
	lease *dhcp.Lease
}

// New creates a stack with the loopback NIC (127.0.0.1/8, ::1) and no
// Ethernet NIC. ICMP echo requests to any of its addresses are answered by
// gVisor's IPv4 and IPv6 endpoints; nothing needs to be switched on.
func New(cfg Config) (*Stack, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ndp := newNDPDispatcher(logf)
	ndpConfigs := ipv6.DefaultNDPConfigurations()
	ndpConfigs.HandleRAs = ipv6.HandlingRAsAlwaysEnabled
	ndpConfigs.DiscoverDefaultRouters = true
	ndpConfigs.DiscoverOnLinkPrefixes = true
	ndpConfigs.AutoGenGlobalAddresses = true

	dad := stack.DefaultDADConfigurations()
	if cfg.SkipDAD {
		dad.DupAddrDetectTransmits = 0
	}

	gs := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			ipv4.NewProtocol,
			arp.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{
				NDPConfigs:       ndpConfigs,
				AutoGenLinkLocal: true,
				NDPDisp:          ndp,
				DADConfigs:       dad,
			}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{
			tcp.NewProtocol,
			udp.NewProtocol,
			icmp.NewProtocol4,
			icmp.NewProtocol6,
		},
		// Traffic to the stack's own addresses loops back inside gVisor.
		HandleLocal: true,
	})
	sack := tcpip.TCPSACKEnabled(true)
	if err := gs.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		gs.Destroy()
		return nil, fmt.Errorf("netstack: enable SACK: %s", err)
	}
	// Receive windows stay below 64 KiB, so TCP window scaling is 0.
	// With a scale, gVisor rounds the window it advertises down to the
	// scale's granularity, then judges a peer's segment against the
	// rounded window and drops one that is outside it together with its
	// acknowledgment: when its buffer fills, a segment the peer sent up
	// to an edge advertised earlier is dropped, every later ACK of the
	// peer too, and a connection whose both directions are full stalls
	// for good (docs/netstack.md; seen in TestTransferTAP1 and
	// TestTCPEchoIPv4). Without scaling the edge is exact. 64 KiB per
	// round trip is far above what the guest moves under TCG, and enough
	// for a LAN; it limits long-distance bulk transfers.
	rcvBuf := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: maxReceiveWindow, Max: maxReceiveWindow}
	if err := gs.SetTransportProtocolOption(tcp.ProtocolNumber, &rcvBuf); err != nil {
		gs.Destroy()
		return nil, fmt.Errorf("netstack: receive buffer sizes: %s", err)
	}
	if err := addLoopback(gs); err != nil {
		gs.Destroy()
		return nil, err
	}

	st := &Stack{
		logf: logf,
		cfg:  cfg,
		s:    gs,
		ndp:  ndp,
		done: make(chan struct{}),
	}
	st.mu.Lock()
	st.table.init()
	st.mu.Unlock()
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		ndp.routeWorker(gs, st.done)
	}()
	return st, nil
}

func addLoopback(gs *stack.Stack) error {
	if err := gs.CreateNICWithOptions(loopbackNIC, loopback.New(), stack.NICOptions{Name: loopbackName}); err != nil {
		return fmt.Errorf("netstack: create loopback NIC: %s", err)
	}
	// No duplicate address detection on loopback (Linux skips it too):
	// otherwise ::1 stays tentative, and unusable, for the first second.
	if nep, err := gs.GetNetworkEndpoint(loopbackNIC, ipv6.ProtocolNumber); err == nil {
		if d, ok := nep.(stack.DuplicateAddressDetector); ok {
			d.SetDADConfigurations(stack.DADConfigurations{DupAddrDetectTransmits: 0})
		}
	}
	for _, p := range []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")} {
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{
			Protocol:          proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(p.Addr()), PrefixLen: p.Bits()},
		}
		if err := gs.AddProtocolAddress(loopbackNIC, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("netstack: add %s to loopback: %s", p, err)
		}
		gs.AddRoute(tcpip.Route{Destination: subnetOf(p), NIC: loopbackNIC})
	}
	return nil
}

// AttachNIC makes ep the stack's Ethernet NIC ("eth0") and enables it; IPv6
// link-local addressing, router solicitation and SLAAC start at once, IPv4
// waits for Configure. The stack reaches ep through a gate that Freeze and
// GoLive close and open (conntransfer.go); with Config.StartGated it starts
// closed. mac, if not nil, replaces the endpoint's link address
// (it must be a unicast Ethernet address); the endpoint's own address is
// used otherwise. Only one NIC can be attached.
func (s *Stack) AttachNIC(ep stack.LinkEndpoint, mac net.HardwareAddr) error {
	if ep == nil {
		return errors.New("netstack: AttachNIC: nil link endpoint")
	}
	if mac != nil {
		if len(mac) != 6 || !header.IsValidUnicastEthernetAddress(tcpip.LinkAddress(mac)) {
			return fmt.Errorf("netstack: AttachNIC: %s is not a unicast Ethernet address", mac)
		}
		ep.SetLinkAddress(tcpip.LinkAddress(mac))
	} else {
		la := ep.LinkAddress()
		if len(la) != 6 || !header.IsValidUnicastEthernetAddress(la) {
			return fmt.Errorf("netstack: AttachNIC: link endpoint address %q is not a unicast Ethernet address", la)
		}
		mac = net.HardwareAddr(la)
	}

	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.mu.Lock()
	closed, attached := s.closed, s.nic != nil
	s.mu.Unlock()
	switch {
	case closed:
		return ErrStackClosed
	case attached:
		return ErrNICAttached
	}
	mode := gateLive
	if s.cfg.StartGated {
		mode = gateFrozen
	}
	g := newGate(ep, mode)
	if err := s.s.CreateNICWithOptions(ethNIC, g, stack.NICOptions{Name: ethName}); err != nil {
		return fmt.Errorf("netstack: create NIC %s: %s", ethName, err)
	}
	s.mu.Lock()
	s.nic = &nicRecord{mac: slices.Clone(mac), ep: ep, gate: g}
	s.mu.Unlock()
	return nil
}

// Configure applies c to the Ethernet NIC: a static address, gateway and
// name servers; a DHCPv4 exchange (bounded by ctx and Config.DHCP); or, for
// IPOff, nothing. It runs once per stack; a DHCP lease is not renewed.
func (s *Stack) Configure(ctx context.Context, c IPConfig) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.mu.Lock()
	closed, attached, configured := s.closed, s.nic != nil, s.ip != nil
	s.mu.Unlock()
	switch {
	case closed:
		return ErrStackClosed
	case !attached:
		return ErrNoNIC
	case configured:
		return ErrConfigured
	}

	applied := &appliedIP{cfg: c}
	switch c.Mode {
	case IPOff:
	case IPStatic:
		if err := checkHostPrefix(c.Addr); err != nil {
			return fmt.Errorf("netstack: Configure: %w", err)
		}
		if c.Gateway.IsValid() {
			if err := checkGateway(c.Addr, c.Gateway); err != nil {
				return fmt.Errorf("netstack: Configure: %w", err)
			}
		}
		if err := s.installLocked(c.Addr, c.Gateway); err != nil {
			return err
		}
	case IPDHCP:
		dc := s.cfg.DHCP
		if dc.Hostname == "" {
			dc.Hostname = s.cfg.Hostname
		}
		if dc.Logf == nil {
			dc.Logf = s.logf
		}
		lease, err := dhcp.Acquire(ctx, s.s, ethNIC, dc)
		if err != nil {
			return fmt.Errorf("netstack: Configure ip=dhcp: %w", err)
		}
		if err := s.installLocked(lease.Addr, lease.Router); err != nil {
			return err
		}
		applied.cfg = IPConfig{Mode: IPDHCP, Addr: lease.Addr, Gateway: lease.Router, DNS: lease.DNS}
		applied.lease = &lease
	default:
		return fmt.Errorf("netstack: Configure: unknown mode %v", c.Mode)
	}
	s.mu.Lock()
	s.ip = applied
	s.mu.Unlock()
	return nil
}

// installLocked adds addr to the Ethernet NIC with an on-link route for its
// prefix and, if gw is valid, a default route through gw.
//
// Preconditions:
//   - s.cfgMu is held.
func (s *Stack) installLocked(addr netip.Prefix, gw netip.Addr) error {
	proto := ipv4.ProtocolNumber
	if addr.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          proto,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(addr.Addr()), PrefixLen: addr.Bits()},
	}
	if err := s.s.AddProtocolAddress(ethNIC, pa, stack.AddressProperties{}); err != nil {
		return fmt.Errorf("netstack: add address %s to %s: %s", addr, ethName, err)
	}
	s.s.AddRoute(tcpip.Route{Destination: subnetOf(addr), NIC: ethNIC})
	if gw.IsValid() {
		s.s.AddRoute(tcpip.Route{Destination: defaultSubnet(gw), Gateway: toTCPIP(gw), NIC: ethNIC})
	}
	return nil
}

// NICInfo describes the Ethernet NIC and its addressing.
type NICInfo struct {
	Name string
	MAC  net.HardwareAddr
	MTU  uint32
	// Config is what Configure applied; after DHCP, Mode is IPDHCP and
	// Addr, Gateway and DNS come from the lease. The zero value (Mode
	// IPDHCP, no address) means Configure has not run.
	Config IPConfig
	// Lease is the DHCP lease, nil unless Config came from DHCP.
	Lease *dhcp.Lease
	// Addrs lists every address in use: IPv4 and IPv6, link-local and SLAAC
	// addresses included, tentative (still in DAD) ones excluded.
	Addrs []netip.Prefix
	// DNS lists the configured name servers, then those learned from IPv6
	// Router Advertisements.
	DNS []netip.Addr
}

// Info reports the Ethernet NIC's state. ok is false if none is attached.
func (s *Stack) Info() (info NICInfo, ok bool) {
	s.mu.Lock()
	nic, ip := s.nic, s.ip
	s.mu.Unlock()
	if nic == nil {
		return NICInfo{}, false
	}
	info = NICInfo{Name: ethName, MAC: slices.Clone(nic.mac), MTU: nic.ep.MTU()}
	if ip != nil {
		info.Config = ip.cfg
		info.Config.DNS = slices.Clone(ip.cfg.DNS)
		if ip.lease != nil {
			l := *ip.lease
			l.DNS = slices.Clone(l.DNS)
			info.Lease = &l
		}
	}
	if gi, ok := s.s.NICInfo()[ethNIC]; ok {
		for _, pa := range gi.ProtocolAddresses {
			if pa.AddressWithPrefix.Address == header.IPv4Any {
				continue // present only during a DHCP exchange
			}
			info.Addrs = append(info.Addrs, prefixFromTCPIP(pa.AddressWithPrefix))
		}
	}
	info.DNS = append(slices.Clone(info.Config.DNS), s.ndp.nameServers(time.Now())...)
	return info, true
}

// Shutdown closes every socket in the table, aborts whatever else is open,
// detaches the NICs (their link endpoints are closed) and waits for gVisor's
// goroutines. The stack is unusable afterwards. A kernel update does not
// call this: it must not send RSTs for the connections it carries over.
func (s *Stack) Shutdown() {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	entries := s.table.drainLocked()
	s.mu.Unlock()

	for _, e := range entries {
		e.live.closeLive()
	}
	s.s.Close()
	for _, id := range []tcpip.NICID{ethNIC, loopbackNIC} {
		s.s.RemoveNIC(id) // ErrUnknownNICID for a NIC never attached: fine
	}
	s.s.Wait()
	close(s.done)
	s.wg.Wait()
}

// maxReceiveWindow is every TCP socket's receive buffer: the largest
// window without window scaling (see New).
const maxReceiveWindow = 0xffff
