package main

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/molt-os/molt/qemu/netns"
)

// sendMalformed writes raw Ethernet frames into the TAP interface from the
// namespace side (an AF_PACKET socket): runts, truncated and corrupt IPv4,
// bad TCP and UDP checksums, garbage of every EtherType, oversized frames,
// and a bounded SYN flood of valid SYNs from many source ports. It returns
// how many frames it sent.
func sendMalformed(t *testing.T, ns *netns.NS, guest netip.Addr) int {
	t.Helper()
	var fd int
	var ifindex int
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ns.TAP)
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	})
	if err != nil {
		t.Fatalf("raw socket on %s: %v", ns.TAP, err)
	}
	defer unix.Close(fd)

	guestMAC, _ := net.ParseMAC(tapMAC)
	hostIP := tcpip.AddrFrom4(ns.HostIPv4.Addr().As4())
	guestIP := tcpip.AddrFrom4(guest.As4())
	r := rand.New(rand.NewPCG(1, 2))
	sent := 0
	send := func(f []byte) {
		if err := unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
			t.Errorf("send a %d-byte frame: %v", len(f), err)
			return
		}
		sent++
	}
	eth := func(etherType tcpip.NetworkProtocolNumber, payload []byte) []byte {
		f := make([]byte, header.EthernetMinimumSize+len(payload))
		header.Ethernet(f).Encode(&header.EthernetFields{
			SrcAddr: tcpip.LinkAddress(ns.MAC), DstAddr: tcpip.LinkAddress(guestMAC), Type: etherType,
		})
		copy(f[header.EthernetMinimumSize:], payload)
		return f
	}
	// ipv4 builds a valid IPv4 packet around a transport payload.
	ipv4 := func(proto tcpip.TransportProtocolNumber, payload []byte) []byte {
		p := make([]byte, header.IPv4MinimumSize+len(payload))
		ip := header.IPv4(p)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(p)), TTL: 64, Protocol: uint8(proto), SrcAddr: hostIP, DstAddr: guestIP,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		copy(p[header.IPv4MinimumSize:], payload)
		return p
	}
	tcpSegment := func(srcPort, dstPort uint16, flags header.TCPFlags, good bool) []byte {
		b := make([]byte, header.TCPMinimumSize)
		tcp := header.TCP(b)
		tcp.Encode(&header.TCPFields{SrcPort: srcPort, DstPort: dstPort, SeqNum: r.Uint32(), DataOffset: header.TCPMinimumSize, Flags: flags, WindowSize: 65535})
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, hostIP, guestIP, uint16(len(b)))
		c := ^tcp.CalculateChecksum(xsum)
		if !good {
			c ^= 0x5a5a
		}
		tcp.SetChecksum(c)
		return b
	}

	// Bare headers and runts (AF_PACKET refuses frames shorter than the
	// Ethernet header, so the shortest runt is the header alone).
	for _, n := range []int{0, 1, 7, 19} {
		send(eth(header.IPv4ProtocolNumber, make([]byte, n)))
		send(eth(header.IPv6ProtocolNumber, make([]byte, n)))
		send(eth(header.ARPProtocolNumber, make([]byte, n)))
	}
	good := ipv4(header.TCPProtocolNumber, tcpSegment(40000, echoPort, header.TCPFlagSyn, true))
	for i := 0; i < 50; i++ {
		p := append([]byte(nil), good...)
		switch i % 5 {
		case 0: // bad IPv4 header checksum
			p[10] ^= 0xff
		case 1: // total length beyond the frame
			binary.BigEndian.PutUint16(p[2:], 1500)
		case 2: // header length below 5 words
			p[0] = 0x43
		case 3: // truncated in the middle of the header
			p = p[:12]
		case 4: // wrong version
			p[0] = 0x75
		}
		send(eth(header.IPv4ProtocolNumber, p))
	}
	// Bad transport checksums to the listening ports.
	for i := 0; i < 50; i++ {
		send(eth(header.IPv4ProtocolNumber, ipv4(header.TCPProtocolNumber, tcpSegment(uint16(41000+i), kvPort, header.TCPFlagSyn, false))))
		u := make([]byte, header.UDPMinimumSize+8)
		header.UDP(u).Encode(&header.UDPFields{SrcPort: uint16(42000 + i), DstPort: echoPort, Length: uint16(len(u)), Checksum: 0x1234})
		send(eth(header.IPv4ProtocolNumber, ipv4(header.UDPProtocolNumber, u)))
	}
	// ACKs and RSTs for connections that do not exist.
	for i := 0; i < 50; i++ {
		send(eth(header.IPv4ProtocolNumber, ipv4(header.TCPProtocolNumber, tcpSegment(uint16(43000+i), echoPort, header.TCPFlagAck, true))))
		send(eth(header.IPv4ProtocolNumber, ipv4(header.TCPProtocolNumber, tcpSegment(uint16(43000+i), kvPort, header.TCPFlagRst, true))))
	}
	// Garbage payloads under IPv4, IPv6, ARP and unknown EtherTypes.
	for i := 0; i < 200; i++ {
		junk := make([]byte, r.IntN(1500))
		for j := range junk {
			junk[j] = byte(r.Uint32())
		}
		types := []tcpip.NetworkProtocolNumber{header.IPv4ProtocolNumber, header.IPv6ProtocolNumber, header.ARPProtocolNumber, 0x88b5, 0x0001}
		send(eth(types[i%len(types)], junk))
	}
	// Frames longer than the guest's MTU (the TAP's MTU is raised for
	// them; QEMU or the driver must drop them).
	for _, n := range []int{1515, 1600, 4000, 9000} {
		send(eth(header.IPv4ProtocolNumber, make([]byte, n)))
	}
	// A SYN flood: valid SYNs to kv from 3,000 source ports. The guest's
	// SYN-ACKs reach Linux, which has no such connections and resets them.
	for i := 0; i < 3000; i++ {
		send(eth(header.IPv4ProtocolNumber, ipv4(header.TCPProtocolNumber, tcpSegment(uint16(20000+i), kvPort, header.TCPFlagSyn, true))))
	}
	return sent
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
