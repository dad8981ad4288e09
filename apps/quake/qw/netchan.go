package qw

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Netchan: QuakeWorld's sequenced, partly reliable channel over UDP, as in
// id's net_chan.c (mvdsv and ezquake still use it unchanged).
//
// Every packet starts with
//
//	u32 sequence  bit 31: this packet carries the reliable block
//	u32 ack       newest sequence received from the peer; bit 31: even/odd
//	              bit of the newest reliable block received from the peer
//	u16 qport     client to server only (survives NAT port remapping)
//
// then the payload: the reliable block (if any), then the unreliable part,
// concatenated, with no length fields between them; the receiver cannot
// tell them apart and parses one run of messages.
//
// A receiver drops every packet whose sequence is not newer than the newest
// it accepted: lost packets leave gaps, late and duplicated ones are
// discarded. One reliable block is in flight at a time. Its sender flips
// its even/odd bit when it starts a block; the receiver flips its own bit
// each time a packet with the reliable flag arrives and echoes it in every
// ack. When an ack arrives for a packet sent after the one that carried the
// block and its bit still differs, the block was lost and is sent again;
// when the bit matches, the block arrived and the next one may start.
// Reliable data queued meanwhile waits behind it. Since a receiver only
// accepts newer sequences, a resent block can never be delivered twice.
//
// Channel implements both ends without sockets or clocks: Transmit returns
// the packet to send, Process takes a received packet and returns its
// payload or the reason it was dropped. Timeouts, rate limiting and choke
// accounting belong to the caller.

// Side says which end of the connection a Channel is; it decides whether
// the qport field is written (client) or checked (server).
type Side uint8

const (
	ClientSide Side = 1 // sends qport, receives 8-byte headers
	ServerSide Side = 2 // receives qport, sends 8-byte headers
)

func (s Side) String() string {
	switch s {
	case ClientSide:
		return "client"
	case ServerSide:
		return "server"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

func (s Side) valid() bool { return s == ClientSide || s == ServerSide }

// sendHeaderLen is the header this side writes; recvHeaderLen the one it
// reads.
func (s Side) sendHeaderLen() int {
	if s == ClientSide {
		return 10
	}
	return 8
}

func (s Side) recvHeaderLen() int {
	if s == ServerSide {
		return 10
	}
	return 8
}

// MaxReliableBlock returns the largest reliable block a side sends: what
// fits in MaxPacketLen after its header (1450 for a server, 1448 for a
// client). A message group queued with QueueReliable must not be larger.
func (s Side) MaxReliableBlock() int { return MaxPacketLen - s.sendHeaderLen() }

// MaxQueuedReliable bounds the reliable bytes a Channel holds, the block in
// flight excluded. mvdsv's equivalent (a 1450-byte buffer plus a few
// backbuffers) is smaller; a client that lets more pile up is not reading,
// and the server should drop it, as mvdsv does on overflow.
const MaxQueuedReliable = 32 << 10

// maxSequence is the largest 31-bit sequence number.
const maxSequence = 1<<31 - 1

// Netchan errors. Errors from Process wrap one of the drop reasons; errors
// from QueueReliable and Transmit wrap the others.
var (
	ErrShortPacket    = errors.New("qw: netchan: packet shorter than its header")
	ErrConnectionless = errors.New("qw: netchan: connectionless packet")
	ErrDuplicate      = errors.New("qw: netchan: duplicate packet")
	ErrOutOfOrder     = errors.New("qw: netchan: stale (out of order) packet")
	ErrQPort          = errors.New("qw: netchan: qport does not match")
	ErrBadAck         = errors.New("qw: netchan: acknowledges a sequence never sent")

	ErrReliableTooLarge  = errors.New("qw: netchan: reliable message group larger than a block")
	ErrReliableOverflow  = errors.New("qw: netchan: too much reliable data queued")
	ErrSequenceExhausted = errors.New("qw: netchan: 31-bit sequence space exhausted")
)

// Channel is one end of a netchan. It is not safe for concurrent use; a
// server keeps one per client and drives it from one goroutine.
type Channel struct {
	side  Side
	qport uint16

	outgoingSequence     uint32 // sequence of the next packet Transmit sends
	incomingSequence     uint32 // newest sequence accepted from the peer
	incomingAcknowledged uint32 // newest of our sequences the peer acknowledged
	incomingReliableAck  bool   // peer's echo of our reliable bit, from its newest packet
	incomingReliableSeq  bool   // our bit for the peer's reliable blocks
	reliableSequence     bool   // bit of our current (or last) reliable block
	reliableSentSequence uint32 // sequence of the last packet that carried the block

	reliable []byte   // block in flight; nil when none
	queue    [][]byte // message groups waiting, oldest first
	queued   int      // bytes in queue

	dropped   uint32 // packets missing just before the newest accepted one
	dropCount uint32 // packets accepted after a gap (mvdsv's drop_count)
	goodCount uint32 // packets accepted
}

// NewChannel returns a fresh channel. qport is the client's qport: the one
// it sends (client side) or the one its packets must carry (server side).
//
// Its first packet has sequence 1. id's channels (mvdsv's Netchan_Setup)
// start at 0, and since a fresh receiver has accepted sequence 0 already,
// their first packet is always dropped (the reliable "new" a client sends
// first is resent later); starting at 1 avoids that and is otherwise
// indistinguishable to the peer.
func NewChannel(side Side, qport uint16) *Channel {
	if !side.valid() {
		panic(fmt.Sprintf("qw: NewChannel: invalid side %d", side))
	}
	return &Channel{side: side, qport: qport, outgoingSequence: 1}
}

// Side returns which end the channel is.
func (c *Channel) Side() Side { return c.side }

// QPort returns the client's qport.
func (c *Channel) QPort() uint16 { return c.qport }

// OutgoingSequence returns the sequence the next Transmit will use. A
// server indexes its per-client frame history with it.
func (c *Channel) OutgoingSequence() uint32 { return c.outgoingSequence }

// IncomingSequence returns the newest sequence accepted from the peer.
func (c *Channel) IncomingSequence() uint32 { return c.incomingSequence }

// IncomingAcknowledged returns the newest of our sequences the peer has
// acknowledged.
func (c *Channel) IncomingAcknowledged() uint32 { return c.incomingAcknowledged }

// Dropped returns how many packets were missing just before the newest
// accepted one.
func (c *Channel) Dropped() uint32 { return c.dropped }

// Counts returns the packets accepted after a gap and all packets accepted,
// for a packet-loss figure (svc_updatepl).
func (c *Channel) Counts() (dropCount, goodCount uint32) { return c.dropCount, c.goodCount }

// ReliableInFlight reports whether a reliable block awaits its ack.
func (c *Channel) ReliableInFlight() bool { return len(c.reliable) > 0 }

// QueuedReliable returns the reliable bytes waiting behind the block in
// flight (or waiting for the next Transmit).
func (c *Channel) QueuedReliable() int { return c.queued }

// QueueReliable queues msgs, one or more complete messages, for reliable
// delivery in order, exactly once. A group is never split across blocks,
// so it must fit in one (Side.MaxReliableBlock). When the total queued
// would exceed MaxQueuedReliable it returns ErrReliableOverflow and queues
// nothing. msgs is copied.
func (c *Channel) QueueReliable(msgs []byte) error {
	if len(msgs) == 0 {
		return nil
	}
	if max := c.side.MaxReliableBlock(); len(msgs) > max {
		return fmt.Errorf("%w: %d bytes, a %s block holds %d", ErrReliableTooLarge, len(msgs), c.side, max)
	}
	if c.queued+len(msgs) > MaxQueuedReliable {
		return fmt.Errorf("%w: %d bytes queued, %d more exceed %d", ErrReliableOverflow, c.queued, len(msgs), MaxQueuedReliable)
	}
	c.queue = append(c.queue, append([]byte(nil), msgs...))
	c.queued += len(msgs)
	return nil
}

// Sent describes a packet Transmit built.
type Sent struct {
	Sequence   uint32 // the packet's sequence number
	Reliable   bool   // it carries the reliable block
	Resend     bool   // the block is a retransmission
	Unreliable bool   // the unreliable data fitted and is included
}

// Transmit appends the next packet to dst and returns it: the header, the
// reliable block if one is due (first sending or retransmission), then
// unreliable if it still fits in MaxPacketLen (else unreliable is left out,
// as mvdsv does, and Sent.Unreliable is false). A packet with no payload
// still carries the acks. It fails only when the 31-bit sequence space is
// used up (after 2^31-2 packets, some 320 days at 77 packets a second).
func (c *Channel) Transmit(dst, unreliable []byte) ([]byte, Sent, error) {
	if c.outgoingSequence >= maxSequence {
		// 0x7fffffff with the reliable bit would be 0xffffffff, the
		// connectionless marker; id's code would send it anyway.
		return dst, Sent{}, ErrSequenceExhausted
	}
	var s Sent
	if len(c.reliable) > 0 && c.incomingAcknowledged > c.reliableSentSequence && c.incomingReliableAck != c.reliableSequence {
		s.Reliable, s.Resend = true, true
	}
	if len(c.reliable) == 0 && len(c.queue) > 0 {
		c.startBlock()
		s.Reliable = true
	}
	s.Sequence = c.outgoingSequence
	w1 := c.outgoingSequence
	if s.Reliable {
		w1 |= 1 << 31
		c.reliableSentSequence = c.outgoingSequence
	}
	w2 := c.incomingSequence
	if c.incomingReliableSeq {
		w2 |= 1 << 31
	}
	c.outgoingSequence++

	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, w1)
	dst = binary.LittleEndian.AppendUint32(dst, w2)
	if c.side == ClientSide {
		dst = binary.LittleEndian.AppendUint16(dst, c.qport)
	}
	if s.Reliable {
		dst = append(dst, c.reliable...)
	}
	if len(dst)-start+len(unreliable) <= MaxPacketLen {
		dst = append(dst, unreliable...)
		s.Unreliable = true
	}
	return dst, s, nil
}

// startBlock moves as many queued groups as fit into a new reliable block
// and flips the reliable bit.
func (c *Channel) startBlock() {
	max := c.side.MaxReliableBlock()
	n, size := 0, 0
	for n < len(c.queue) && size+len(c.queue[n]) <= max {
		size += len(c.queue[n])
		n++
	}
	block := make([]byte, 0, size)
	for _, g := range c.queue[:n] {
		block = append(block, g...)
	}
	c.queue = append(c.queue[:0:0], c.queue[n:]...)
	c.queued -= size
	c.reliable = block
	c.reliableSequence = !c.reliableSequence
}

// Process accepts a packet from the peer and returns its payload (aliasing
// pkt), or an error naming why it was dropped; a dropped packet changes
// nothing. It updates the acks: a block the peer now acknowledges is
// released, and the next Transmit starts the next one.
func (c *Channel) Process(pkt []byte) ([]byte, error) {
	hl := c.side.recvHeaderLen()
	if len(pkt) < hl {
		return nil, fmt.Errorf("%w: %d bytes, header is %d", ErrShortPacket, len(pkt), hl)
	}
	if IsConnectionless(pkt) {
		return nil, ErrConnectionless
	}
	w1 := binary.LittleEndian.Uint32(pkt)
	w2 := binary.LittleEndian.Uint32(pkt[4:])
	seq, reliable := w1&maxSequence, w1>>31 != 0
	ack, reliableAck := w2&maxSequence, w2>>31 != 0
	if c.side == ServerSide {
		if q := binary.LittleEndian.Uint16(pkt[8:]); q != c.qport {
			return nil, fmt.Errorf("%w: packet has %d, channel %d", ErrQPort, q, c.qport)
		}
	}
	switch {
	case seq == c.incomingSequence:
		return nil, fmt.Errorf("%w: sequence %d received already", ErrDuplicate, seq)
	case seq < c.incomingSequence:
		return nil, fmt.Errorf("%w: sequence %d, newest received %d", ErrOutOfOrder, seq, c.incomingSequence)
	case ack >= c.outgoingSequence:
		// Also keeps the saved state consistent (ChannelState.Validate):
		// no peer input can make the acknowledged sequence run ahead.
		return nil, fmt.Errorf("%w: ack %d, next sequence to send %d", ErrBadAck, ack, c.outgoingSequence)
	}

	c.dropped = seq - c.incomingSequence - 1
	if c.dropped > 0 {
		c.dropCount++
	}
	c.goodCount++
	if reliableAck == c.reliableSequence {
		c.reliable = nil // acknowledged
	}
	c.incomingSequence = seq
	c.incomingAcknowledged = ack
	c.incomingReliableAck = reliableAck
	if reliable {
		c.incomingReliableSeq = !c.incomingReliableSeq
	}
	return pkt[hl:], nil
}

// PacketHeader is a netchan header read without a Channel, so a server can
// find the client a packet belongs to (by address and QPort) first.
type PacketHeader struct {
	Sequence    uint32
	Reliable    bool
	Ack         uint32
	ReliableAck bool
	QPort       uint16 // client-to-server packets only
}

// ParseHeader reads the header of a packet sent by from (ClientSide for a
// packet a server receives).
func ParseHeader(pkt []byte, from Side) (PacketHeader, error) {
	hl := from.sendHeaderLen()
	if !from.valid() || len(pkt) < hl {
		return PacketHeader{}, fmt.Errorf("%w: %d bytes, header is %d", ErrShortPacket, len(pkt), hl)
	}
	if IsConnectionless(pkt) {
		return PacketHeader{}, ErrConnectionless
	}
	w1 := binary.LittleEndian.Uint32(pkt)
	w2 := binary.LittleEndian.Uint32(pkt[4:])
	h := PacketHeader{Sequence: w1 & maxSequence, Reliable: w1>>31 != 0, Ack: w2 & maxSequence, ReliableAck: w2>>31 != 0}
	if from == ClientSide {
		h.QPort = binary.LittleEndian.Uint16(pkt[8:])
	}
	return h, nil
}
