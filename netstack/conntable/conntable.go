// Package conntable is the plain-data form of a molt stack's connection
// table, and its compact binary encoding: what one kernel's netstack hands
// to the next across a self-update (handoff section type 5, conn-table).
//
// A Table holds, for every socket of the socket table, what is needed to
// rebuild it in another stack: TCP listeners (address, backlog), established
// TCP connections (4-tuple and the RFC 793/7323/2018/6298/5681 state:
// sequence numbers, windows and scales, MSS, timestamps, RTT estimator,
// congestion window, the bytes still to be acknowledged or sent, the bytes
// received but not yet read) and UDP sockets (address and queued datagrams
// with their senders). Nothing in it is a gVisor type or depends on gVisor's
// memory layout, so a table written by one gVisor version can be imported by
// another (netstack.Stack.ExportConns / ImportConns build and consume it).
//
// The encoding (Encode, Decode) is little-endian, versioned (Version) and
// canonical: Decode accepts exactly the bytes Encode writes for a valid
// table, so Encode(Decode(b)) == b. docs/conntransfer.md specifies it byte
// by byte. Decode checks every length against the input before allocating
// and every value against the rules in Validate, and reports the first
// problem as a *FormatError naming the field and its offset.
package conntable

import (
	"net/netip"
)

// Version is the encoding version Encode writes and Decode reads.
const Version = 1

// Magic opens every encoded table.
const Magic = "MCTB"

// Family is the address family an app asked for when it opened the socket,
// the suffix of its network name in package net terms.
type Family uint8

// Families. The values are part of the encoding.
const (
	// FamilyAny is "tcp"/"udp": the family follows the address; an
	// unspecified address is dual-stack (IPv6 taking IPv4-mapped peers).
	FamilyAny Family = 0
	Family4   Family = 4 // "tcp4"/"udp4"
	Family6   Family = 6 // "tcp6"/"udp6"
)

func (f Family) valid() bool { return f == FamilyAny || f == Family4 || f == Family6 }

// Suffix returns the network-name suffix: "", "4" or "6".
func (f Family) Suffix() string {
	switch f {
	case Family4:
		return "4"
	case Family6:
		return "6"
	}
	return ""
}

// Table is a stack's connection table at one instant.
type Table struct {
	// NextID is the socket table's next ID; the importing table continues
	// from it so that IDs are never reused.
	NextID uint32
	// SavedAtUnixNano is the wall-clock time of the export. The importer
	// advances TCP timestamps by the time elapsed since, so that TSval
	// keeps increasing for the peer (RFC 7323 §5.4).
	SavedAtUnixNano int64
	// Neighbors are the link-layer addresses the exporting stack had
	// resolved (ARP and NDP); the importer answers its own stack's
	// resolution requests from them while it rebuilds connections.
	Neighbors []Neighbor
	Listeners []Listener
	UDP       []UDPSocket
	TCP       []TCPConn
}

// Neighbor is one resolved link-layer address.
type Neighbor struct {
	Addr netip.Addr // IPv4 or IPv6, no zone
	MAC  [6]byte
}

// Listener is a listening TCP socket.
type Listener struct {
	ID     uint32
	Family Family
	// Local is the bound address; an unspecified address means any.
	Local   netip.AddrPort
	Backlog uint32
}

// UDPSocket is a bound UDP socket.
type UDPSocket struct {
	ID     uint32
	Family Family
	Local  netip.AddrPort
	// Remote is the connected peer; the zero value for an unconnected
	// socket.
	Remote netip.AddrPort
	// Queued are the datagrams received but not yet read, oldest first.
	Queued []Datagram
}

// Datagram is one queued UDP datagram.
type Datagram struct {
	From    netip.AddrPort
	Payload []byte
}

// TCPFlags are per-connection option and state bits.
type TCPFlags uint16

// TCP flags. The values are part of the encoding.
const (
	// TCPSACK: SACK was negotiated (RFC 2018).
	TCPSACK TCPFlags = 1 << 0
	// TCPTimestamps: timestamps were negotiated (RFC 7323 §3).
	TCPTimestamps TCPFlags = 1 << 1
	// TCPWindowScale: window scaling was negotiated (RFC 7323 §2); without
	// it both scales are 0.
	TCPWindowScale TCPFlags = 1 << 2
	// TCPUnaccepted: the connection was established but still in its
	// listener's accept queue (ID is 0, Parent names the listener); the
	// importer queues it for the app's next Accept.
	TCPUnaccepted TCPFlags = 1 << 3

	knownTCPFlags = TCPSACK | TCPTimestamps | TCPWindowScale | TCPUnaccepted
)

// TCPConn is one ESTABLISHED TCP connection. Sequence numbers are the
// exporting stack's, modulo 2^32; sizes are in bytes.
type TCPConn struct {
	// ID is the socket table ID; 0 only with TCPUnaccepted.
	ID uint32
	// Parent is the listener that accepted the connection; 0 for a
	// connection the app dialed.
	Parent uint32
	Family Family
	Flags  TCPFlags
	Local  netip.AddrPort
	Remote netip.AddrPort

	// SndUna is the oldest unacknowledged sequence number, SndNxt the next
	// one to send: [SndUna, SndNxt) is in flight.
	SndUna, SndNxt uint32
	// RcvNxt is the next sequence number expected from the peer.
	RcvNxt uint32
	// RcvWndEdge is the right edge of the receive window last advertised
	// to the peer; the importer never advertises less (RFC 793 §3.7:
	// a window must not shrink).
	RcvWndEdge uint32
	// SndWnd is the peer's receive window, unscaled, in bytes.
	SndWnd uint32
	// SndWndScale and RcvWndScale are the peer's and our window shift
	// counts (0 to 14).
	SndWndScale, RcvWndScale uint8
	// MSS is the largest payload the sender puts in one segment (the
	// negotiated MSS less the TCP options it carries).
	MSS uint16
	// TSVal is our timestamp clock at export, TSRecent the last timestamp
	// received from the peer (both 0 without TCPTimestamps).
	TSVal, TSRecent uint32
	// SRTTMicros, RTTVarMicros and RTOMicros are the RTT estimator and
	// retransmission timeout (RFC 6298); SRTTMicros 0 means no sample yet.
	SRTTMicros, RTTVarMicros, RTOMicros uint32
	// Cwnd and Ssthresh are the congestion window and slow-start threshold
	// in segments (RFC 5681).
	Cwnd, Ssthresh uint32
	// RcvBuf and SndBuf are the socket buffer sizes.
	RcvBuf, SndBuf uint32
	// SendData is every byte from SndUna on: the first SndNxt-SndUna bytes
	// are in flight, the rest were written by the app but not yet sent.
	SendData []byte
	// RecvData is what was received and acknowledged but not yet read by
	// the app: it ends at RcvNxt.
	RecvData []byte
}

// InFlight returns the number of bytes sent but not acknowledged.
func (c *TCPConn) InFlight() uint32 { return c.SndNxt - c.SndUna }

// Sockets returns the number of sockets the table describes.
func (t *Table) Sockets() int { return len(t.Listeners) + len(t.UDP) + len(t.TCP) }
