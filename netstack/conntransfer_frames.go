package netstack

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Synthetic frames for ImportConns: segments "from the peer" that drive
// gVisor's own handshake code, and answers to the stack's own address
// resolution while its NIC is gated. Nothing built here reaches a network:
// the gate delivers it to the stack, and what the stack answers goes to the
// importer, never to the device.

// tcpSegment describes a synthetic TCP segment.
type tcpSegment struct {
	src, dst netip.AddrPort
	srcMAC   tcpip.LinkAddress
	dstMAC   tcpip.LinkAddress
	seq, ack uint32
	flags    header.TCPFlags
	window   uint16
	options  []byte
	payload  []byte
}

// frame returns the segment as an Ethernet frame (IPv4 or IPv6, by the
// addresses' family).
func (s *tcpSegment) frame() []byte {
	optLen := (len(s.options) + 3) &^ 3
	tcpLen := header.TCPMinimumSize + optLen
	ipLen := header.IPv4MinimumSize
	proto := header.IPv4ProtocolNumber
	if s.src.Addr().Is6() {
		ipLen, proto = header.IPv6MinimumSize, header.IPv6ProtocolNumber
	}
	b := make([]byte, header.EthernetMinimumSize+ipLen+tcpLen+len(s.payload))
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: s.srcMAC, DstAddr: s.dstMAC, Type: proto})
	ipb := b[header.EthernetMinimumSize:]
	src, dst := toTCPIP(s.src.Addr()), toTCPIP(s.dst.Addr())
	if proto == header.IPv4ProtocolNumber {
		ip := header.IPv4(ipb)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(ipb)),
			TTL:         64,
			Protocol:    uint8(header.TCPProtocolNumber),
			SrcAddr:     src,
			DstAddr:     dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	} else {
		header.IPv6(ipb).Encode(&header.IPv6Fields{
			PayloadLength:     uint16(tcpLen + len(s.payload)),
			TransportProtocol: header.TCPProtocolNumber,
			HopLimit:          64,
			SrcAddr:           src,
			DstAddr:           dst,
		})
	}
	t := header.TCP(ipb[ipLen:])
	t.Encode(&header.TCPFields{
		SrcPort:    s.src.Port(),
		DstPort:    s.dst.Port(),
		SeqNum:     s.seq,
		AckNum:     s.ack,
		DataOffset: uint8(tcpLen),
		Flags:      s.flags,
		WindowSize: s.window,
	})
	copy(t[header.TCPMinimumSize:], s.options) // padding stays 0 (end of options)
	copy(t[tcpLen:], s.payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen+len(s.payload)))
	xsum = checksum.Checksum(s.payload, xsum)
	t.SetChecksum(^t.CalculateChecksum(xsum))
	return b
}

// synOptions are the options of the peer's SYN: MSS, window scale (ws < 0:
// none), SACK-permitted and timestamps, as a Linux peer orders them.
func synOptions(mss uint16, ws int, sack, ts bool, tsVal uint32) []byte {
	b := make([]byte, header.TCPOptionsMaximumSize)
	n := header.EncodeMSSOption(uint32(mss), b)
	if ws >= 0 {
		n += header.EncodeNOP(b[n:])
		n += header.EncodeWSOption(ws, b[n:])
	}
	if sack {
		n += header.EncodeNOP(b[n:])
		n += header.EncodeNOP(b[n:])
		n += header.EncodeSACKPermittedOption(b[n:])
	}
	if ts {
		n += header.EncodeNOP(b[n:])
		n += header.EncodeNOP(b[n:])
		n += header.EncodeTSOption(tsVal, 0, b[n:])
	}
	return b[:n]
}

// tsOption is a timestamp option (RFC 7323 §3), NOP-padded to 12 bytes.
func tsOption(tsVal, tsEcr uint32) []byte {
	b := make([]byte, 12)
	n := header.EncodeNOP(b)
	n += header.EncodeNOP(b[n:])
	n += header.EncodeTSOption(tsVal, tsEcr, b[n:])
	return b[:n]
}

// outboundSegment is what the importer needs from a transmitted frame.
type outboundSegment struct {
	local, remote netip.AddrPort
	seq           uint32
	flags         header.TCPFlags
	tsVal         uint32
}

// parseTCPFrame extracts a TCP segment from an Ethernet frame the stack
// transmitted; ok is false for anything else.
func parseTCPFrame(frame []byte) (seg outboundSegment, ok bool) {
	if len(frame) < header.EthernetMinimumSize {
		return seg, false
	}
	b := frame[header.EthernetMinimumSize:]
	var src, dst tcpip.Address
	var payload []byte
	switch header.Ethernet(frame).Type() {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(b)
		if !ip.IsValid(len(b)) || ip.TransportProtocol() != header.TCPProtocolNumber {
			return seg, false
		}
		src, dst, payload = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(b)
		if !ip.IsValid(len(b)) || ip.TransportProtocol() != header.TCPProtocolNumber {
			return seg, false
		}
		src, dst, payload = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	default:
		return seg, false
	}
	t := header.TCP(payload)
	if len(payload) < header.TCPMinimumSize || int(t.DataOffset()) > len(payload) || t.DataOffset() < header.TCPMinimumSize {
		return seg, false
	}
	seg.local = netip.AddrPortFrom(fromTCPIP(src), t.SourcePort())
	seg.remote = netip.AddrPortFrom(fromTCPIP(dst), t.DestinationPort())
	seg.seq, seg.flags = t.SequenceNumber(), t.Flags()
	if seg.flags&header.TCPFlagSyn != 0 {
		seg.tsVal = header.ParseSynOptions(t.Options(), true).TSVal
	}
	return seg, true
}

// resolutionRequest recognizes an ARP request or an IPv6 neighbor
// solicitation the stack transmitted, and returns the address it asks for.
func resolutionRequest(frame []byte) (target netip.Addr, ok bool) {
	if len(frame) < header.EthernetMinimumSize {
		return target, false
	}
	b := frame[header.EthernetMinimumSize:]
	switch header.Ethernet(frame).Type() {
	case header.ARPProtocolNumber:
		a := header.ARP(b)
		if !a.IsValid() || a.Op() != header.ARPRequest {
			return target, false
		}
		t, _ := netip.AddrFromSlice(a.ProtocolAddressTarget())
		return t, t.IsValid()
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(b)
		if !ip.IsValid(len(b)) || ip.TransportProtocol() != header.ICMPv6ProtocolNumber {
			return target, false
		}
		ic := header.ICMPv6(ip.Payload())
		if len(ic) < header.ICMPv6NeighborSolicitMinimumSize || ic.Type() != header.ICMPv6NeighborSolicit {
			return target, false
		}
		t := header.NDPNeighborSolicit(ic.MessageBody()).TargetAddress()
		return fromTCPIP(t), true
	}
	return target, false
}

// resolutionReply answers the stack's ARP request or neighbor solicitation
// for target: "target is at mac", addressed to the stack (ourMAC, ourAddr).
func resolutionReply(target netip.Addr, mac, ourMAC tcpip.LinkAddress, ourAddr netip.Addr) []byte {
	if target.Is4() {
		b := make([]byte, header.EthernetMinimumSize+header.ARPSize)
		header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: mac, DstAddr: ourMAC, Type: header.ARPProtocolNumber})
		a := header.ARP(b[header.EthernetMinimumSize:])
		a.SetIPv4OverEthernet()
		a.SetOp(header.ARPReply)
		copy(a.HardwareAddressSender(), mac)
		copy(a.ProtocolAddressSender(), target.AsSlice())
		copy(a.HardwareAddressTarget(), ourMAC)
		copy(a.ProtocolAddressTarget(), ourAddr.AsSlice())
		return b
	}
	// Neighbor advertisement (RFC 4861 §4.4), solicited, override, with the
	// target link-layer address option.
	const optLen = 8
	icLen := header.ICMPv6NeighborAdvertMinimumSize + optLen
	b := make([]byte, header.EthernetMinimumSize+header.IPv6MinimumSize+icLen)
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: mac, DstAddr: ourMAC, Type: header.IPv6ProtocolNumber})
	src, dst := toTCPIP(target), toTCPIP(ourAddr)
	header.IPv6(b[header.EthernetMinimumSize:]).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(icLen),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          header.NDPHopLimit,
		SrcAddr:           src,
		DstAddr:           dst,
	})
	ic := header.ICMPv6(b[header.EthernetMinimumSize+header.IPv6MinimumSize:])
	ic.SetType(header.ICMPv6NeighborAdvert)
	na := header.NDPNeighborAdvert(ic.MessageBody())
	na.SetSolicitedFlag(true)
	na.SetOverrideFlag(true)
	na.SetTargetAddress(src)
	header.NDPOptions(na.Options()).Serialize(header.NDPOptionsSerializer{header.NDPTargetLinkLayerAddressOption(mac)})
	ic.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: ic, Src: src, Dst: dst}))
	return b
}
