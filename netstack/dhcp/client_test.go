package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/refs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/molt-os/molt/netstack/internal/dhcpserver"
	"github.com/molt-os/molt/netstack/link"
	"github.com/molt-os/molt/netstack/link/wire"
)

// TestMain fails the run if any gVisor packet buffer leaks.
func TestMain(m *testing.M) {
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

const nicID tcpip.NICID = 1

var (
	clientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x0c}
	serverMAC = [6]byte{0x02, 0, 0, 0, 0, 0x05}
	serverIP  = netip.MustParseAddr("10.0.2.2")
	offered   = netip.MustParsePrefix("10.0.2.15/24")
	dnsIP     = netip.MustParseAddr("10.0.2.3")
)

// newStack builds a bare gVisor stack (IPv4, ARP, UDP) over port.
func newStack(t *testing.T, port *wire.Port) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
	})
	ep, err := link.New(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateNIC(nicID, ep); err != nil {
		t.Fatalf("CreateNIC: %s", err)
	}
	t.Cleanup(func() {
		s.Close()
		s.RemoveNIC(nicID)
		s.Wait()
		port.Close()
	})
	return s
}

// newNet returns a client stack with no address and a server stack that owns
// serverIP, joined by a wire.
func newNet(t *testing.T) (client, server *stack.Stack) {
	t.Helper()
	pc, ps := wire.Pair(clientMAC, serverMAC)
	client, server = newStack(t, pc), newStack(t, ps)
	addr := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(serverIP.As4()), PrefixLen: 24},
	}
	if err := server.AddProtocolAddress(nicID, addr, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %s", err)
	}
	server.AddRoute(tcpip.Route{Destination: addr.AddressWithPrefix.Subnet(), NIC: nicID})
	return client, server
}

func serverConfig() dhcpserver.Config {
	return dhcpserver.Config{
		ServerID: serverIP,
		Offer:    offered,
		Router:   serverIP,
		DNS:      []netip.Addr{dnsIP},
		Lease:    time.Hour,
	}
}

func startServer(t *testing.T, s *stack.Stack, cfg dhcpserver.Config) *dhcpserver.Server {
	t.Helper()
	srv, err := dhcpserver.Start(s, nicID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (r *logRecorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func fastConfig(logf func(string, ...any)) Config {
	return Config{Timeout: 200 * time.Millisecond, MaxTimeout: 400 * time.Millisecond, Attempts: 3, Logf: logf}
}

// hasUnspecified reports whether the NIC still carries 0.0.0.0.
func hasUnspecified(s *stack.Stack) bool {
	for _, pa := range s.AllAddresses()[nicID] {
		if pa.AddressWithPrefix.Address == header.IPv4Any {
			return true
		}
	}
	return false
}

func TestAcquire(t *testing.T) {
	client, server := newNet(t)
	srv := startServer(t, server, serverConfig())
	var log logRecorder

	lease, err := Acquire(context.Background(), client, nicID, fastConfig(log.logf))
	if err != nil {
		t.Fatalf("Acquire: %v (log: %q)", err, log.lines)
	}
	if lease.Addr != offered || lease.Router != serverIP || lease.Server != serverIP ||
		!slices.Equal(lease.DNS, []netip.Addr{dnsIP}) || lease.Duration != time.Hour {
		t.Errorf("Acquire() = %+v; want %s via %s, DNS %s, server %s, 1h", lease, offered, serverIP, dnsIP, serverIP)
	}
	if lease.Acquired.IsZero() {
		t.Errorf("Acquire().Acquired is zero")
	}
	if d, r := srv.Counts(); d != 1 || r != 1 {
		t.Errorf("server saw %d DISCOVER, %d REQUEST; want 1, 1", d, r)
	}
	if hasUnspecified(client) {
		t.Errorf("0.0.0.0 still assigned to the NIC after Acquire")
	}
}

func TestAcquireNoServer(t *testing.T) {
	client, _ := newNet(t)
	cfg := Config{Timeout: 50 * time.Millisecond, MaxTimeout: 100 * time.Millisecond, Attempts: 3}
	start := time.Now()
	_, err := Acquire(context.Background(), client, nicID, cfg)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrNoLease) {
		t.Fatalf("Acquire without a server: err = %v; want ErrNoLease", err)
	}
	// 50 + 100 + 100 ms of waiting, with slack for -race.
	if elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("Acquire gave up after %v; want about 250ms", elapsed)
	}
	if hasUnspecified(client) {
		t.Errorf("0.0.0.0 still assigned to the NIC after a failed Acquire")
	}
}

func TestAcquireServerSilentRetries(t *testing.T) {
	client, server := newNet(t)
	cfg := serverConfig()
	cfg.NoOffer = true
	srv := startServer(t, server, cfg)
	_, err := Acquire(context.Background(), client, nicID, Config{Timeout: 30 * time.Millisecond, Attempts: 4})
	if !errors.Is(err, ErrNoLease) {
		t.Fatalf("Acquire with a silent server: err = %v; want ErrNoLease", err)
	}
	if d, _ := srv.Counts(); d != 4 {
		t.Errorf("server saw %d DISCOVERs; want one per attempt (4)", d)
	}
}

func TestAcquireContextCanceled(t *testing.T) {
	client, _ := newNet(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Acquire(ctx, client, nicID, Config{Timeout: 10 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a canceled context: err = %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Acquire returned %v after cancel; want promptly", d)
	}
}

func TestAcquireUnknownNIC(t *testing.T) {
	client, _ := newNet(t)
	if _, err := Acquire(context.Background(), client, 42, Config{}); err == nil {
		t.Errorf("Acquire on NIC 42 succeeded; want an error")
	}
}

func TestAcquireAfterNAK(t *testing.T) {
	client, server := newNet(t)
	cfg := serverConfig()
	cfg.NAKs = 1
	srv := startServer(t, server, cfg)
	var log logRecorder
	lease, err := Acquire(context.Background(), client, nicID, fastConfig(log.logf))
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if lease.Addr != offered {
		t.Errorf("lease.Addr = %s; want %s", lease.Addr, offered)
	}
	if d, r := srv.Counts(); d != 2 || r != 2 {
		t.Errorf("server saw %d DISCOVER, %d REQUEST; want 2, 2 (restart after NAK)", d, r)
	}
	if log.count("NAK") != 1 {
		t.Errorf("log mentions NAK %d times; want 1: %q", log.count("NAK"), log.lines)
	}
}

// junkReplies returns replies the client must ignore, each with the reason.
func junkReplies(cfg dhcpserver.Config, d *dhcpv4.DHCPv4) [][]byte {
	offer := func(edit func(m *dhcpv4.DHCPv4)) []byte {
		m := dhcpserver.Reply(cfg, d, dhcpv4.MessageTypeOffer)
		edit(m)
		return m.ToBytes()
	}
	valid := dhcpserver.Reply(cfg, d, dhcpv4.MessageTypeOffer).ToBytes()
	return [][]byte{
		[]byte("not a DHCP message at all"),
		valid[:200], // truncated
		offer(func(m *dhcpv4.DHCPv4) { m.TransactionID[0] ^= 0xff }),
		offer(func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = net.HardwareAddr{2, 9, 9, 9, 9, 9} }),
		offer(func(m *dhcpv4.DHCPv4) { m.OpCode = dhcpv4.OpcodeBootRequest }),
		offer(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck)) }),
		offer(func(m *dhcpv4.DHCPv4) { m.DeleteOption(dhcpv4.OptionDHCPMessageType) }),
		offer(func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4zero }),
		offer(func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4bcast }),
		offer(func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4(224, 0, 0, 1) }),
		offer(func(m *dhcpv4.DHCPv4) { m.YourIPAddr = net.IPv4(127, 0, 0, 1) }),
		offer(func(m *dhcpv4.DHCPv4) { m.DeleteOption(dhcpv4.OptionServerIdentifier) }),
		offer(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptServerIdentifier(net.IPv4zero)) }),
		offer(func(m *dhcpv4.DHCPv4) {
			m.UpdateOption(dhcpv4.OptSubnetMask(net.IPv4Mask(255, 0, 255, 0)))
		}),
		offer(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptSubnetMask(net.IPv4Mask(0, 0, 0, 0))) }),
	}
}

func TestAcquireIgnoresMalformedOffers(t *testing.T) {
	client, server := newNet(t)
	cfg := serverConfig()
	var junk int
	cfg.BeforeOffer = func(d *dhcpv4.DHCPv4) [][]byte {
		j := junkReplies(cfg, d)
		junk = len(j)
		return j
	}
	startServer(t, server, cfg)
	var log logRecorder
	lease, err := Acquire(context.Background(), client, nicID, fastConfig(log.logf))
	if err != nil {
		t.Fatalf("Acquire: %v (log: %q)", err, log.lines)
	}
	if lease.Addr != offered || lease.Router != serverIP {
		t.Errorf("Acquire() = %+v; want the server's real offer %s", lease, offered)
	}
	// Under load a burst may overflow the socket buffer and cost an
	// attempt; what matters is that junk was seen and none of it won.
	// TestCheckReply rejects each kind of junk deterministically.
	if got := log.count("ignoring reply"); got == 0 {
		t.Errorf("client ignored no replies; want up to %d (log: %q)", junk, log.lines)
	}
}

func TestCheckReply(t *testing.T) {
	cfg := serverConfig()
	mac := net.HardwareAddr(clientMAC[:])
	xid := dhcpv4.TransactionID{1, 2, 3, 4}
	req := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: 1, TransactionID: xid, ClientHWAddr: mac, Options: dhcpv4.Options{}}

	good := dhcpserver.Reply(cfg, req, dhcpv4.MessageTypeOffer).ToBytes()
	if _, err := checkReply(good, xid, mac, dhcpv4.MessageTypeOffer); err != nil {
		t.Errorf("checkReply(valid offer) = %v; want nil", err)
	}
	if _, err := checkReply(good, xid, mac, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak); err == nil {
		t.Errorf("checkReply(offer while waiting for ACK) = nil; want an error")
	}
	for i, j := range junkReplies(cfg, req) {
		if _, err := checkReply(j, xid, mac, dhcpv4.MessageTypeOffer); err == nil {
			t.Errorf("checkReply(junk %d) = nil; want an error", i)
		}
	}
}

func TestLeaseFrom(t *testing.T) {
	mac := net.HardwareAddr(clientMAC[:])
	req := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: 1, ClientHWAddr: mac, Options: dhcpv4.Options{}}
	for _, tc := range []struct {
		name string
		edit func(*dhcpv4.DHCPv4)
		want Lease
	}{
		{"complete", func(*dhcpv4.DHCPv4) {}, Lease{Addr: offered, Router: serverIP, DNS: []netip.Addr{dnsIP}, Server: serverIP, Duration: time.Hour}},
		{"no mask: classful /8", func(m *dhcpv4.DHCPv4) { m.DeleteOption(dhcpv4.OptionSubnetMask) },
			Lease{Addr: netip.MustParsePrefix("10.0.2.15/8"), Router: serverIP, DNS: []netip.Addr{dnsIP}, Server: serverIP, Duration: time.Hour}},
		{"router outside subnet dropped", func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptRouter(net.IPv4(192, 168, 0, 1))) },
			Lease{Addr: offered, DNS: []netip.Addr{dnsIP}, Server: serverIP, Duration: time.Hour}},
		{"first usable router", func(m *dhcpv4.DHCPv4) {
			m.UpdateOption(dhcpv4.OptRouter(net.IPv4zero, net.IPv4(10, 0, 2, 1)))
		}, Lease{Addr: offered, Router: netip.MustParseAddr("10.0.2.1"), DNS: []netip.Addr{dnsIP}, Server: serverIP, Duration: time.Hour}},
		{"bad DNS entries dropped", func(m *dhcpv4.DHCPv4) {
			m.UpdateOption(dhcpv4.OptDNS(net.IPv4bcast, net.IPv4(1, 1, 1, 1)))
		}, Lease{Addr: offered, Router: serverIP, DNS: []netip.Addr{netip.MustParseAddr("1.1.1.1")}, Server: serverIP, Duration: time.Hour}},
		{"no lease time", func(m *dhcpv4.DHCPv4) { m.DeleteOption(dhcpv4.OptionIPAddressLeaseTime) },
			Lease{Addr: offered, Router: serverIP, DNS: []netip.Addr{dnsIP}, Server: serverIP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := dhcpserver.Reply(serverConfig(), req, dhcpv4.MessageTypeAck)
			tc.edit(m)
			got, err := leaseFrom(m)
			if err != nil {
				t.Fatalf("leaseFrom: %v", err)
			}
			if got.Addr != tc.want.Addr || got.Router != tc.want.Router || got.Server != tc.want.Server ||
				!slices.Equal(got.DNS, tc.want.DNS) || got.Duration != tc.want.Duration {
				t.Errorf("leaseFrom() = %+v; want %+v", got, tc.want)
			}
		})
	}
}

// FuzzCheckReply feeds arbitrary bytes to the reply parser: it must never
// panic, and whatever it accepts must yield a usable lease.
func FuzzCheckReply(f *testing.F) {
	mac := net.HardwareAddr(clientMAC[:])
	xid := dhcpv4.TransactionID{1, 2, 3, 4}
	req := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: 1, TransactionID: xid, ClientHWAddr: mac, Options: dhcpv4.Options{}}
	f.Add(dhcpserver.Reply(serverConfig(), req, dhcpv4.MessageTypeOffer).ToBytes())
	f.Add(dhcpserver.Reply(serverConfig(), req, dhcpv4.MessageTypeAck).ToBytes())
	for _, j := range junkReplies(serverConfig(), req) {
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := checkReply(b, xid, mac, dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck)
		if err != nil {
			return
		}
		l, err := leaseFrom(m)
		if err != nil {
			t.Fatalf("checkReply accepted a reply leaseFrom rejects: %v", err)
		}
		if !l.Addr.IsValid() || !usableUnicast(l.Addr.Addr()) || !usableUnicast(l.Server) {
			t.Fatalf("accepted lease %+v has unusable addresses", l)
		}
	})
}
