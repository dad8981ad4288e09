package netstack

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// streamResult is what one side of a checksummed stream saw.
type streamResult struct {
	n   int64
	sum [32]byte
	err error
}

// serveEcho accepts one connection on ln, echoes every byte back while
// hashing what it received, and reports once the client has finished
// sending and everything is echoed.
func serveEcho(ln net.Listener) <-chan streamResult {
	out := make(chan streamResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			out <- streamResult{err: fmt.Errorf("Accept: %w", err)}
			return
		}
		defer c.Close()
		h := sha256.New()
		n, err := io.Copy(c, io.TeeReader(c, h))
		if err == nil {
			err = c.(*Conn).CloseWrite()
		}
		r := streamResult{n: n, err: err}
		copy(r.sum[:], h.Sum(nil))
		out <- r
	}()
	return out
}

// checkStream sends size pseudo-random bytes over c while reading the echo,
// and checks that the server received and returned exactly those bytes.
func checkStream(t *testing.T, c net.Conn, size int64, server <-chan streamResult) {
	t.Helper()
	sent := make(chan streamResult, 1)
	go func() {
		h := sha256.New()
		src := io.LimitReader(rand.NewChaCha8([32]byte{1, 2, 3}), size)
		n, err := io.Copy(io.MultiWriter(c, h), src)
		if err == nil {
			err = c.(*Conn).CloseWrite()
		}
		r := streamResult{n: n, err: err}
		copy(r.sum[:], h.Sum(nil))
		sent <- r
	}()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("reading echo: %v after %d bytes", err, n)
	}
	var echoed [32]byte
	copy(echoed[:], h.Sum(nil))

	s := <-sent
	if s.err != nil || s.n != size {
		t.Fatalf("client sent %d bytes, err %v; want %d, nil", s.n, s.err, size)
	}
	r := <-server
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if r.n != size || r.sum != s.sum {
		t.Errorf("server received %d bytes (sha256 %x); want %d (sha256 %x)", r.n, r.sum[:4], size, s.sum[:4])
	}
	if n != size || echoed != s.sum {
		t.Errorf("client got %d echoed bytes (sha256 %x); want %d (sha256 %x)", n, echoed[:4], size, s.sum[:4])
	}
}

func TestTCPEchoIPv4(t *testing.T) {
	a, b := staticPair(t)
	_, ln, err := a.st.Listen("tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	server := serveEcho(ln)
	_, c, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got, want := c.RemoteAddr().String(), "10.0.0.1:7"; got != want {
		t.Errorf("RemoteAddr() = %s; want %s", got, want)
	}
	checkStream(t, c, 4<<20, server)
	// Both stacks counted the segments; nothing was malformed.
	for _, h := range []*host{a, b} {
		if n := h.st.Counters(); n.TCPSegmentsSent < 100 || n.TCPSegmentsReceived < 100 || n.TCPChecksumErrs != 0 || n.IPMalformed != 0 {
			t.Errorf("Counters() = %+v; want segments both ways and no errors", n)
		}
	}
}

func TestTCPEchoIPv6LinkLocal(t *testing.T) {
	a, b := newPair(t)
	for _, h := range []*host{a, b} {
		if err := h.st.Configure(ctxTimeout(t, time.Second), IPConfig{Mode: IPOff}); err != nil {
			t.Fatalf("Configure(off): %v", err)
		}
	}
	lla := a.linkLocal(t)
	b.linkLocal(t)
	if want := netip.AddrFrom16([16]byte{0xfe, 0x80, 8: 0x00, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x0a}); lla != want {
		t.Errorf("A's link-local address = %s; want %s (EUI-64 of %x)", lla, want, macA)
	}
	_, ln, err := a.st.Listen("tcp6", ":7")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	// Without a zone the only Ethernet NIC is used; with one it is named.
	for _, addr := range []string{
		netip.AddrPortFrom(lla, 7).String(),
		netip.AddrPortFrom(lla.WithZone("eth0"), 7).String(),
	} {
		t.Run(addr, func(t *testing.T) {
			server := serveEcho(ln)
			_, c, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp6", addr)
			if err != nil {
				t.Fatalf("Dial(%s): %v", addr, err)
			}
			defer c.Close()
			checkStream(t, c, 1<<20, server)
		})
	}
	// Neighbour discovery resolved A's MAC.
	entries, terr := b.st.s.Neighbors(ethNIC, ipv6.ProtocolNumber)
	if terr != nil {
		t.Fatalf("Neighbors: %s", terr)
	}
	if !hasNeighbor(entries, lla, macA) {
		t.Errorf("B's NDP cache %v has no %s -> %x", entries, lla, macA)
	}
}

func TestTCPDualStackListener(t *testing.T) {
	a, b := staticPair(t)
	lla := a.linkLocal(t)
	b.linkLocal(t)
	_, ln, err := a.st.Listen("tcp", ":8080")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	for _, addr := range []string{"10.0.0.1:8080", netip.AddrPortFrom(lla, 8080).String()} {
		server := serveEcho(ln)
		_, c, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp", addr)
		if err != nil {
			t.Fatalf("Dial(%s) to a dual-stack listener: %v", addr, err)
		}
		checkStream(t, c, 64<<10, server)
		c.Close()
	}
}

func TestLoopback(t *testing.T) {
	st, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown()
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:9"}, {"tcp6", "[::1]:9"}} {
		_, ln, err := st.Listen(tc.network, tc.addr)
		if err != nil {
			t.Fatalf("Listen(%s): %v", tc.addr, err)
		}
		server := serveEcho(ln)
		_, c, err := st.Dial(ctxTimeout(t, 5*time.Second), tc.network, tc.addr)
		if err != nil {
			t.Fatalf("Dial(%s): %v", tc.addr, err)
		}
		checkStream(t, c, 256<<10, server)
		c.Close()
		ln.Close()
	}
}

func TestUDPEcho(t *testing.T) {
	a, b := staticPair(t)
	_, server, err := a.st.ListenPacket("udp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("ListenPacket: %v", err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := server.ReadFrom(buf)
			if err != nil {
				return
			}
			server.WriteTo(buf[:n], from)
		}
	}()
	// A dual-stack client socket sending to an IPv4 address exercises the
	// address-form fix-up in PacketConn.WriteTo.
	_, client, err := b.st.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatalf("ListenPacket: %v", err)
	}
	defer client.Close()
	to := &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 7}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2048)
	for i := range 100 {
		msg := make([]byte, 1+rng.IntN(1400))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		if _, err := client.WriteTo(msg, to); err != nil {
			t.Fatalf("datagram %d: WriteTo: %v", i, err)
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := client.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: ReadFrom: %v", i, err)
		}
		if !bytes.Equal(buf[:n], msg) {
			t.Fatalf("datagram %d: echo of %d bytes differs from the %d sent", i, n, len(msg))
		}
		if got := from.(*net.UDPAddr); !got.IP.Equal(to.IP) || got.Port != 7 {
			t.Fatalf("datagram %d: echo from %v; want %v", i, got, to)
		}
	}
	if _, err := client.WriteTo([]byte("x"), &net.TCPAddr{}); err == nil {
		t.Errorf("WriteTo(*net.TCPAddr) succeeded; want an error")
	}
}

func hasNeighbor(entries []stack.NeighborEntry, ip netip.Addr, mac [6]byte) bool {
	for _, e := range entries {
		if fromTCPIP(e.Addr) == ip && e.LinkAddr == tcpip.LinkAddress(mac[:]) {
			return true
		}
	}
	return false
}

// etherType of an Ethernet frame, 0 for runts.
func etherType(frame []byte) uint16 {
	if len(frame) < header.EthernetMinimumSize {
		return 0
	}
	return uint16(header.Ethernet(frame).Type())
}

func TestARPResolution(t *testing.T) {
	a, b := staticPair(t)
	var requests, replies atomic.Int32
	b.port.SetFilter(func(f []byte) bool {
		if etherType(f) == uint16(header.ARPProtocolNumber) {
			if header.ARP(f[header.EthernetMinimumSize:]).Op() == header.ARPRequest {
				requests.Add(1)
			}
		}
		return true
	})
	a.port.SetFilter(func(f []byte) bool {
		if etherType(f) == uint16(header.ARPProtocolNumber) && header.ARP(f[header.EthernetMinimumSize:]).Op() == header.ARPReply {
			replies.Add(1)
		}
		return true
	})
	ipA := netip.MustParseAddr("10.0.0.1")
	ipB := netip.MustParseAddr("10.0.0.2")
	if e, _ := b.st.s.Neighbors(ethNIC, ipv4.ProtocolNumber); hasNeighbor(e, ipA, macA) {
		t.Fatalf("B knows A's MAC before any traffic")
	}

	ping(t, b, ipA, []byte("arp"))

	if e, _ := b.st.s.Neighbors(ethNIC, ipv4.ProtocolNumber); !hasNeighbor(e, ipA, macA) {
		t.Errorf("B's ARP cache %v has no 10.0.0.1 -> %x", e, macA)
	}
	if e, _ := a.st.s.Neighbors(ethNIC, ipv4.ProtocolNumber); !hasNeighbor(e, ipB, macB) {
		t.Errorf("A's ARP cache %v has no 10.0.0.2 -> %x (learned from the request)", e, macB)
	}
	if requests.Load() != 1 || replies.Load() != 1 {
		t.Errorf("saw %d ARP requests from B and %d replies from A; want 1 and 1", requests.Load(), replies.Load())
	}
}

func TestDialUnresolvableNeighbor(t *testing.T) {
	_, b := staticPair(t)
	start := time.Now()
	_, _, err := b.st.Dial(ctxTimeout(t, 20*time.Second), "tcp4", "10.0.0.99:80")
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("Dial to a host that does not answer ARP: err = %v; want EHOSTUNREACH", err)
	}
	t.Logf("gave up after %v", time.Since(start))
}

func TestDefaultRouteUsesGateway(t *testing.T) {
	_, b := staticPair(t) // B: gw=10.0.0.1 (A)
	viaGateway := make(chan struct{}, 1)
	dst := netip.MustParseAddr("192.0.2.1")
	b.port.SetFilter(func(f []byte) bool {
		if etherType(f) == uint16(header.IPv4ProtocolNumber) {
			ip := header.IPv4(f[header.EthernetMinimumSize:])
			if fromTCPIP(ip.DestinationAddress()) == dst && header.Ethernet(f).DestinationAddress() == tcpip.LinkAddress(macA[:]) {
				select {
				case viaGateway <- struct{}{}:
				default:
				}
			}
		}
		return true
	})
	go b.st.Dial(ctxTimeout(t, 2*time.Second), "tcp4", "192.0.2.1:80")
	select {
	case <-viaGateway:
	case <-time.After(5 * time.Second):
		t.Fatalf("no frame for 192.0.2.1 went to the gateway's MAC %x", macA)
	}
}

// ping sends one ICMP echo request from h to dst through an ICMP datagram
// ("ping") endpoint and checks the reply.
func ping(t *testing.T, h *host, dst netip.Addr, payload []byte) {
	t.Helper()
	netProto, transProto := ipv4.ProtocolNumber, icmp.ProtocolNumber4
	if dst.Is6() {
		netProto, transProto = ipv6.ProtocolNumber, icmp.ProtocolNumber6
	}
	var wq waiter.Queue
	ep, terr := h.st.s.NewEndpoint(transProto, netProto, &wq)
	if terr != nil {
		t.Fatalf("NewEndpoint(ICMP): %s", terr)
	}
	defer ep.Close()
	entry, readable := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)

	const seq = 7
	var req []byte
	if dst.Is4() {
		m := header.ICMPv4(make([]byte, header.ICMPv4MinimumSize+len(payload)))
		m.SetType(header.ICMPv4Echo)
		m.SetSequence(seq)
		copy(m.Payload(), payload)
		req = m
	} else {
		m := header.ICMPv6(make([]byte, header.ICMPv6EchoMinimumSize+len(payload)))
		m.SetType(header.ICMPv6EchoRequest)
		m.SetSequence(seq)
		copy(m[header.ICMPv6EchoMinimumSize:], payload)
		req = m
	}
	to := tcpip.FullAddress{Addr: toTCPIP(dst)}
	if dst.IsLinkLocalUnicast() {
		to.NIC = ethNIC
	}
	if _, terr := ep.Write(bytes.NewReader(req), tcpip.WriteOptions{To: &to}); terr != nil {
		t.Fatalf("write echo request to %s: %s", dst, terr)
	}

	deadline := time.After(10 * time.Second)
	for {
		var buf bytes.Buffer
		res, terr := ep.Read(&buf, tcpip.ReadOptions{NeedRemoteAddr: true})
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-readable:
				continue
			case <-deadline:
				t.Fatalf("no echo reply from %s within 10s", dst)
			}
		}
		if terr != nil {
			t.Fatalf("read echo reply: %s", terr)
		}
		if from := fromTCPIP(res.RemoteAddr.Addr); from != dst {
			t.Fatalf("echo reply from %s; want %s", from, dst)
		}
		b := buf.Bytes()
		if dst.Is4() {
			m := header.ICMPv4(b)
			if len(b) < header.ICMPv4MinimumSize || m.Type() != header.ICMPv4EchoReply || m.Sequence() != seq || !bytes.Equal(m.Payload(), payload) {
				t.Fatalf("echo reply %x; want type %d seq %d payload %q", b, header.ICMPv4EchoReply, seq, payload)
			}
		} else {
			m := header.ICMPv6(b)
			if len(b) < header.ICMPv6EchoMinimumSize || m.Type() != header.ICMPv6EchoReply || m.Sequence() != seq || !bytes.Equal(b[header.ICMPv6EchoMinimumSize:], payload) {
				t.Fatalf("echo reply %x; want type %d seq %d payload %q", b, header.ICMPv6EchoReply, seq, payload)
			}
		}
		return
	}
}

func TestICMPEcho(t *testing.T) {
	a, b := staticPair(t)
	ping(t, b, netip.MustParseAddr("10.0.0.1"), []byte("molt ping v4"))
	b.linkLocal(t) // B needs a source address that has passed DAD
	ping(t, b, a.linkLocal(t), []byte("molt ping v6"))

	icmpStats := a.st.s.Stats().ICMP
	if got := icmpStats.V4.PacketsReceived.EchoRequest.Value(); got != 1 {
		t.Errorf("A received %d ICMPv4 echo requests; want 1", got)
	}
	if got := icmpStats.V4.PacketsSent.EchoReply.Value(); got != 1 {
		t.Errorf("A sent %d ICMPv4 echo replies; want 1", got)
	}
	if got := icmpStats.V6.PacketsSent.EchoReply.Value(); got != 1 {
		t.Errorf("A sent %d ICMPv6 echo replies; want 1", got)
	}
}
