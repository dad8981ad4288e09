package netstack

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/molt-os/molt/netstack/dhcp"
	"github.com/molt-os/molt/netstack/internal/dhcpserver"
	"github.com/molt-os/molt/netstack/link"
	"github.com/molt-os/molt/netstack/link/wire"
)

func hasRoute(routes []tcpip.Route, dest netip.Prefix, gw netip.Addr) bool {
	for _, r := range routes {
		if r.Destination == subnetOf(dest) && fromTCPIP(r.Gateway) == gw && r.NIC == ethNIC {
			return true
		}
	}
	return false
}

func TestConfigureStatic(t *testing.T) {
	a, b := newPair(t)
	a.static(t, "ip=10.0.2.2/24")
	b.static(t, "console=ttyS0 ip=10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3,dns=1.1.1.1 quiet")

	info, ok := b.st.Info()
	if !ok {
		t.Fatal("Info() = _, false after AttachNIC")
	}
	wantCfg := "ip=10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3,dns=1.1.1.1"
	if info.Config.String() != wantCfg || info.Lease != nil {
		t.Errorf("Info().Config = %s, Lease %v; want %s, nil", info.Config, info.Lease, wantCfg)
	}
	if !slices.Contains(info.Addrs, netip.MustParsePrefix("10.0.2.15/24")) {
		t.Errorf("Info().Addrs = %v; want 10.0.2.15/24 among them", info.Addrs)
	}
	if info.Name != "eth0" || info.MAC.String() != net.HardwareAddr(macB[:]).String() || info.MTU != wire.MTU {
		t.Errorf("Info() = %s %s MTU %d; want eth0 %x MTU %d", info.Name, info.MAC, info.MTU, macB, wire.MTU)
	}
	if !slices.Equal(info.DNS, []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("1.1.1.1")}) {
		t.Errorf("Info().DNS = %v", info.DNS)
	}
	routes := b.st.s.GetRouteTable()
	if !hasRoute(routes, netip.MustParsePrefix("10.0.2.0/24"), netip.Addr{}) ||
		!hasRoute(routes, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.0.2.2")) {
		t.Errorf("route table %v lacks 10.0.2.0/24 on-link or default via 10.0.2.2", routes)
	}
	ping(t, b, netip.MustParseAddr("10.0.2.2"), []byte("static"))

	if err := b.st.Configure(ctxTimeout(t, time.Second), IPConfig{Mode: IPOff}); !errors.Is(err, ErrConfigured) {
		t.Errorf("second Configure = %v; want ErrConfigured", err)
	}
	bad := IPConfig{Mode: IPStatic, Addr: netip.MustParsePrefix("10.0.2.0/24")}
	if err := a.st.Configure(ctxTimeout(t, time.Second), bad); err == nil {
		t.Errorf("Configure(%s) accepted a network address", bad)
	}
}

func TestConfigureDHCP(t *testing.T) {
	a, b := newPair(t)
	a.static(t, "ip=10.0.2.2/24")
	srv, err := dhcpserver.Start(a.st.s, ethNIC, dhcpserver.Config{
		ServerID: netip.MustParseAddr("10.0.2.2"),
		Offer:    netip.MustParsePrefix("10.0.2.15/24"),
		Router:   netip.MustParseAddr("10.0.2.2"),
		DNS:      []netip.Addr{netip.MustParseAddr("10.0.2.3")},
		Lease:    24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	c, err := ParseIPConfig("console=ttyS0")
	if err != nil || c.Mode != IPDHCP {
		t.Fatalf("ParseIPConfig without ip= = %v, %v; want DHCP", c, err)
	}
	if err := b.st.Configure(ctxTimeout(t, 30*time.Second), c); err != nil {
		t.Fatalf("Configure(dhcp): %v", err)
	}
	info, _ := b.st.Info()
	if info.Config.Mode != IPDHCP || info.Config.Addr != netip.MustParsePrefix("10.0.2.15/24") ||
		info.Config.Gateway != netip.MustParseAddr("10.0.2.2") || info.Lease == nil || info.Lease.Duration != 24*time.Hour {
		t.Fatalf("Info() after DHCP = %+v", info)
	}
	if !slices.Contains(info.Addrs, netip.MustParsePrefix("10.0.2.15/24")) {
		t.Errorf("Info().Addrs = %v; want 10.0.2.15/24", info.Addrs)
	}
	if slices.ContainsFunc(info.Addrs, func(p netip.Prefix) bool { return p.Addr().IsUnspecified() }) {
		t.Errorf("Info().Addrs = %v still holds 0.0.0.0", info.Addrs)
	}
	if !hasRoute(b.st.s.GetRouteTable(), netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.0.2.2")) {
		t.Errorf("no default route via the DHCP router: %v", b.st.s.GetRouteTable())
	}

	// The leased address works: A sees the connection come from it.
	checkDialFrom(t, a, b, "10.0.2.2:22", "10.0.2.15")
}

// checkDialFrom dials server (an address of a) from b and checks that a
// sees the connection come from wantSrc.
func checkDialFrom(t *testing.T, a, b *host, server, wantSrc string) {
	t.Helper()
	_, ln, err := a.st.Listen("tcp4", ":"+strings.Split(server, ":")[1])
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, dc, err := b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp4", server)
	if err != nil {
		t.Fatalf("Dial %s: %v", server, err)
	}
	defer dc.Close()
	ac, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if got := ac.RemoteAddr().(*net.TCPAddr).IP.String(); got != wantSrc {
		t.Errorf("server sees peer %s; want %s", got, wantSrc)
	}
}

func TestConfigureDHCPNoServer(t *testing.T) {
	pa, pb := wire.Pair(macA, macB)
	defer pb.Close()
	st, err := New(Config{DHCP: dhcp.Config{Timeout: 50 * time.Millisecond, Attempts: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Shutdown(); pa.Close() }()
	ep, _ := link.New(pa)
	if err := st.Configure(ctxTimeout(t, time.Second), IPConfig{}); !errors.Is(err, ErrNoNIC) {
		t.Errorf("Configure before AttachNIC = %v; want ErrNoNIC", err)
	}
	if err := st.AttachNIC(ep, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.AttachNIC(ep, nil); !errors.Is(err, ErrNICAttached) {
		t.Errorf("second AttachNIC = %v; want ErrNICAttached", err)
	}

	err = st.Configure(ctxTimeout(t, 10*time.Second), IPConfig{Mode: IPDHCP})
	if !errors.Is(err, dhcp.ErrNoLease) {
		t.Fatalf("Configure(dhcp) with no server = %v; want dhcp.ErrNoLease", err)
	}
	// A failed DHCP run leaves the NIC unconfigured, so a fallback works.
	if info, _ := st.Info(); info.Config.Addr.IsValid() || slices.ContainsFunc(info.Addrs, func(p netip.Prefix) bool { return p.Addr().Is4() }) {
		t.Errorf("Info() after failed DHCP = %+v; want no IPv4 configuration", info)
	}
	if err := st.Configure(ctxTimeout(t, time.Second), IPConfig{Mode: IPStatic, Addr: netip.MustParsePrefix("10.0.2.15/24")}); err != nil {
		t.Errorf("static Configure after failed DHCP: %v", err)
	}
}

func TestAttachNICMAC(t *testing.T) {
	pa, pb := wire.Pair(macA, macB)
	defer pb.Close()
	defer pa.Close()
	st, _ := New(Config{})
	defer st.Shutdown()
	ep, _ := link.New(pa)
	if err := st.AttachNIC(ep, net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}); err == nil {
		t.Errorf("AttachNIC with a multicast MAC succeeded")
	}
	if err := st.AttachNIC(nil, nil); err == nil {
		t.Errorf("AttachNIC(nil) succeeded")
	}
	mac := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	if err := st.AttachNIC(ep, mac); err != nil {
		t.Fatalf("AttachNIC: %v", err)
	}
	if info, _ := st.Info(); info.MAC.String() != mac.String() || ep.LinkAddress() != tcpip.LinkAddress(mac) {
		t.Errorf("MAC after AttachNIC(%s) = %s (endpoint %s)", mac, info.MAC, ep.LinkAddress())
	}
}

// routerAdvert builds an Ethernet frame carrying an IPv6 Router
// Advertisement (RFC 4861 §4.2) from router (link-local) with one prefix
// for SLAAC and one RDNSS server (RFC 8106).
func routerAdvert(routerMAC [6]byte, router netip.Addr, prefix netip.Prefix, dns netip.Addr) []byte {
	be := binary.BigEndian
	var opts []byte
	// Source link-layer address.
	opts = append(opts, 1, 1)
	opts = append(opts, routerMAC[:]...)
	// Prefix information: on-link and autonomous.
	pi := make([]byte, 32)
	pi[0], pi[1], pi[2], pi[3] = 3, 4, byte(prefix.Bits()), 0xc0
	be.PutUint32(pi[4:], 3600) // valid lifetime
	be.PutUint32(pi[8:], 1800) // preferred lifetime
	p16 := prefix.Addr().As16()
	copy(pi[16:], p16[:])
	opts = append(opts, pi...)
	// Recursive DNS server.
	rd := make([]byte, 24)
	rd[0], rd[1] = 25, 3
	be.PutUint32(rd[4:], 600)
	d16 := dns.As16()
	copy(rd[8:], d16[:])
	opts = append(opts, rd...)

	icmp := header.ICMPv6(make([]byte, header.ICMPv6HeaderSize+header.NDPRAMinimumSize+len(opts)))
	icmp.SetType(header.ICMPv6RouterAdvert)
	body := icmp.MessageBody()
	body[0] = 64                 // current hop limit
	be.PutUint16(body[2:], 1800) // router lifetime: a default router
	copy(body[header.NDPRAMinimumSize:], opts)
	allNodes := netip.MustParseAddr("ff02::1")
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: icmp, Src: toTCPIP(router), Dst: toTCPIP(allNodes),
	}))

	frame := make([]byte, header.EthernetMinimumSize+header.IPv6MinimumSize+len(icmp))
	header.Ethernet(frame).Encode(&header.EthernetFields{
		SrcAddr: tcpip.LinkAddress(routerMAC[:]),
		DstAddr: header.EthernetAddressFromMulticastIPv6Address(toTCPIP(allNodes)),
		Type:    header.IPv6ProtocolNumber,
	})
	header.IPv6(frame[header.EthernetMinimumSize:]).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(len(icmp)),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          header.NDPHopLimit,
		SrcAddr:           toTCPIP(router),
		DstAddr:           toTCPIP(allNodes),
	})
	copy(frame[header.EthernetMinimumSize+header.IPv6MinimumSize:], icmp)
	return frame
}

func TestRouterAdvertisementSLAAC(t *testing.T) {
	a, b := newPair(t)
	router := netip.MustParseAddr("fe80::99")
	prefix := netip.MustParsePrefix("2001:db8:1::/64")
	dns := netip.MustParseAddr("2001:db8:1::53")
	// The frame enters A through the wire as if sent by a router behind B's
	// port.
	if err := b.port.Transmit([][]byte{routerAdvert([6]byte{0x02, 0, 0, 0, 0, 0x99}, router, prefix, dns)}); err != nil {
		t.Fatal(err)
	}
	// EUI-64 of macA inside the advertised prefix, usable after DAD.
	want := netip.MustParsePrefix("2001:db8:1::ff:fe00:a/64")
	deadline := time.Now().Add(10 * time.Second)
	var info NICInfo
	for time.Now().Before(deadline) {
		info, _ = a.st.Info()
		if slices.Contains(info.Addrs, want) && len(a.st.s.GetRouteTable()) >= 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Contains(info.Addrs, want) {
		t.Fatalf("Info().Addrs = %v; want the SLAAC address %s", info.Addrs, want)
	}
	if !slices.Contains(info.DNS, dns) {
		t.Errorf("Info().DNS = %v; want the RDNSS server %s", info.DNS, dns)
	}
	routes := a.st.s.GetRouteTable()
	if !hasRoute(routes, prefix, netip.Addr{}) || !hasRoute(routes, netip.MustParsePrefix("::/0"), router) {
		t.Errorf("route table %v lacks %s on-link or ::/0 via %s", routes, prefix, router)
	}
}
