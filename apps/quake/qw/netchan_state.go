package qw

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ChannelState is the saved form of a Channel: plain data that a kernel
// update carries for every client, so that the sequences continue, the
// reliable even/odd handshake goes on and the block in flight and the
// queued reliable data are delivered exactly once by the new kernel. The
// live Channel is rebuilt from it with RestoreChannel.
type ChannelState struct {
	Side  Side
	QPort uint16

	OutgoingSequence     uint32 // sequence of the next packet to send, 1..2^31-1
	IncomingSequence     uint32 // newest sequence accepted from the peer
	IncomingAcknowledged uint32 // newest of our sequences the peer acknowledged (< OutgoingSequence)
	// IncomingReliableAck is the peer's echo of our reliable bit, as of its
	// newest packet.
	IncomingReliableAck bool
	// IncomingReliableSeq is the even/odd bit of the newest reliable block
	// received from the peer (echoed in every ack we send).
	IncomingReliableSeq bool
	// ReliableSequence is the even/odd bit of our current or last block.
	ReliableSequence bool
	// ReliableSentSequence is the sequence of the last packet that carried
	// the block (< OutgoingSequence).
	ReliableSentSequence uint32

	Reliable []byte   // the unacknowledged block in flight; empty if none
	Queued   [][]byte // reliable message groups waiting, oldest first, each non-empty

	Dropped   uint32 // packets missing just before the newest accepted one
	DropCount uint32
	GoodCount uint32
}

// ErrChannelState is wrapped by every error about a malformed ChannelState
// or its encoding.
var ErrChannelState = errors.New("qw: bad netchan state")

// State returns the channel's state. The byte slices are copies.
func (c *Channel) State() ChannelState {
	st := ChannelState{
		Side: c.side, QPort: c.qport,
		OutgoingSequence: c.outgoingSequence, IncomingSequence: c.incomingSequence,
		IncomingAcknowledged: c.incomingAcknowledged, IncomingReliableAck: c.incomingReliableAck,
		IncomingReliableSeq: c.incomingReliableSeq, ReliableSequence: c.reliableSequence,
		ReliableSentSequence: c.reliableSentSequence,
		Dropped:              c.dropped, DropCount: c.dropCount, GoodCount: c.goodCount,
	}
	if len(c.reliable) > 0 {
		st.Reliable = append([]byte(nil), c.reliable...)
	}
	for _, g := range c.queue {
		st.Queued = append(st.Queued, append([]byte(nil), g...))
	}
	return st
}

// RestoreChannel rebuilds a Channel from a saved state, after checking it
// with Validate. The channel behaves exactly as the one State was taken
// from: the same packets for the same calls. The byte slices are copied.
func RestoreChannel(st ChannelState) (*Channel, error) {
	if err := st.Validate(); err != nil {
		return nil, err
	}
	c := &Channel{
		side: st.Side, qport: st.QPort,
		outgoingSequence: st.OutgoingSequence, incomingSequence: st.IncomingSequence,
		incomingAcknowledged: st.IncomingAcknowledged, incomingReliableAck: st.IncomingReliableAck,
		incomingReliableSeq: st.IncomingReliableSeq, reliableSequence: st.ReliableSequence,
		reliableSentSequence: st.ReliableSentSequence,
		dropped:              st.Dropped, dropCount: st.DropCount, goodCount: st.GoodCount,
	}
	if len(st.Reliable) > 0 {
		c.reliable = append([]byte(nil), st.Reliable...)
	}
	for _, g := range st.Queued {
		c.queue = append(c.queue, append([]byte(nil), g...))
		c.queued += len(g)
	}
	return c, nil
}

// Validate checks what a live Channel guarantees whatever its peer sends:
// a valid side, 31-bit sequences, acknowledged and reliable-sent sequences
// below the outgoing one, a gap no larger than the sequence it ended at,
// and reliable data within the size limits. (It does not check invariants
// a misbehaving peer could break, such as the reliable bits agreeing when
// no block is in flight, so a saved state of a live channel always passes.)
func (st *ChannelState) Validate() error {
	if !st.Side.valid() {
		return fmt.Errorf("%w: side %d is neither client (1) nor server (2)", ErrChannelState, st.Side)
	}
	if st.OutgoingSequence == 0 || st.OutgoingSequence > maxSequence {
		return fmt.Errorf("%w: outgoing sequence %d outside 1..%d", ErrChannelState, st.OutgoingSequence, maxSequence)
	}
	if st.IncomingSequence > maxSequence {
		return fmt.Errorf("%w: incoming sequence %d over %d", ErrChannelState, st.IncomingSequence, maxSequence)
	}
	if st.IncomingAcknowledged >= st.OutgoingSequence {
		return fmt.Errorf("%w: acknowledged sequence %d not below outgoing sequence %d", ErrChannelState, st.IncomingAcknowledged, st.OutgoingSequence)
	}
	if st.ReliableSentSequence >= st.OutgoingSequence {
		return fmt.Errorf("%w: reliable sent sequence %d not below outgoing sequence %d", ErrChannelState, st.ReliableSentSequence, st.OutgoingSequence)
	}
	if st.Dropped != 0 && st.Dropped >= st.IncomingSequence {
		return fmt.Errorf("%w: %d dropped before incoming sequence %d", ErrChannelState, st.Dropped, st.IncomingSequence)
	}
	max := st.Side.MaxReliableBlock()
	if len(st.Reliable) > max {
		return fmt.Errorf("%w: reliable block of %d bytes, a %s block holds %d", ErrChannelState, len(st.Reliable), st.Side, max)
	}
	total := 0
	for i, g := range st.Queued {
		if len(g) == 0 || len(g) > max {
			return fmt.Errorf("%w: queued group %d is %d bytes, want 1..%d", ErrChannelState, i, len(g), max)
		}
		total += len(g)
		if total > MaxQueuedReliable {
			return fmt.Errorf("%w: more than %d queued reliable bytes", ErrChannelState, MaxQueuedReliable)
		}
	}
	return nil
}

// Channel state encoding, version 1. Little-endian:
//
//	offset  size  field
//	0       4     magic "QWNC"
//	4       2     version, 1
//	6       1     side: 1 client, 2 server
//	7       1     flags: bit 0 ReliableSequence, bit 1 IncomingReliableSeq,
//	              bit 2 IncomingReliableAck; bits 3..7 zero
//	8       2     qport
//	10      2     reliable block length R
//	12      2     queued group count Q
//	14      2     reserved, zero
//	16      4     outgoing sequence
//	20      4     incoming sequence
//	24      4     incoming acknowledged
//	28      4     reliable sent sequence
//	32      4     dropped
//	36      4     drop count
//	40      4     good count
//	44      R     reliable block
//	44+R          Q groups: u16 length L (1..max block), L bytes
//
// It is self-delimiting (DecodeChannelState returns the length used), so
// it can sit in a larger task state; that container carries the checksum.
// Any layout change bumps the version; a reader keeps decoding the
// versions before it. docs/quake.md has the same table.
const (
	channelStateMagic   = "QWNC"
	channelStateVersion = 1
	channelStateHeader  = 44
	flagReliableSeq     = 1 << 0
	flagIncomingRelSeq  = 1 << 1
	flagIncomingRelAck  = 1 << 2
)

// AppendBinary appends the encoded state to dst (encoding.BinaryAppender).
// It refuses a state that does not Validate.
func (st ChannelState) AppendBinary(dst []byte) ([]byte, error) {
	if err := st.Validate(); err != nil {
		return dst, err
	}
	var flags uint8
	if st.ReliableSequence {
		flags |= flagReliableSeq
	}
	if st.IncomingReliableSeq {
		flags |= flagIncomingRelSeq
	}
	if st.IncomingReliableAck {
		flags |= flagIncomingRelAck
	}
	le := binary.LittleEndian
	dst = append(dst, channelStateMagic...)
	dst = le.AppendUint16(dst, channelStateVersion)
	dst = append(dst, uint8(st.Side), flags)
	dst = le.AppendUint16(dst, st.QPort)
	dst = le.AppendUint16(dst, uint16(len(st.Reliable)))
	dst = le.AppendUint16(dst, uint16(len(st.Queued)))
	dst = le.AppendUint16(dst, 0)
	for _, v := range [...]uint32{st.OutgoingSequence, st.IncomingSequence, st.IncomingAcknowledged,
		st.ReliableSentSequence, st.Dropped, st.DropCount, st.GoodCount} {
		dst = le.AppendUint32(dst, v)
	}
	dst = append(dst, st.Reliable...)
	for _, g := range st.Queued {
		dst = le.AppendUint16(dst, uint16(len(g)))
		dst = append(dst, g...)
	}
	return dst, nil
}

// MarshalBinary returns the encoded state (encoding.BinaryMarshaler).
func (st ChannelState) MarshalBinary() ([]byte, error) { return st.AppendBinary(nil) }

// UnmarshalBinary decodes exactly one encoded state filling all of data
// (encoding.BinaryUnmarshaler); trailing bytes are an error. On error st is
// unchanged.
func (st *ChannelState) UnmarshalBinary(data []byte) error {
	s, n, err := DecodeChannelState(data)
	if err != nil {
		return err
	}
	if n != len(data) {
		return fmt.Errorf("%w: %d bytes after the state", ErrChannelState, len(data)-n)
	}
	*st = s
	return nil
}

// DecodeChannelState decodes one state from the start of data and returns
// it with the number of bytes it used. It rejects a short buffer, a wrong
// magic or version, nonzero reserved bits and fields, and anything
// Validate rejects, with an error (wrapping ErrChannelState) that names the
// problem. The returned slices do not alias data.
func DecodeChannelState(data []byte) (ChannelState, int, error) {
	var st ChannelState
	if len(data) < channelStateHeader {
		return st, 0, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrChannelState, len(data), channelStateHeader)
	}
	if string(data[:4]) != channelStateMagic {
		return st, 0, fmt.Errorf("%w: magic %q, want %q", ErrChannelState, data[:4], channelStateMagic)
	}
	le := binary.LittleEndian
	if v := le.Uint16(data[4:]); v != channelStateVersion {
		return st, 0, fmt.Errorf("%w: version %d, this build reads %d", ErrChannelState, v, channelStateVersion)
	}
	st.Side = Side(data[6])
	flags := data[7]
	if flags&^(flagReliableSeq|flagIncomingRelSeq|flagIncomingRelAck) != 0 {
		return st, 0, fmt.Errorf("%w: unknown flag bits %#02x", ErrChannelState, flags)
	}
	st.ReliableSequence = flags&flagReliableSeq != 0
	st.IncomingReliableSeq = flags&flagIncomingRelSeq != 0
	st.IncomingReliableAck = flags&flagIncomingRelAck != 0
	st.QPort = le.Uint16(data[8:])
	rlen := int(le.Uint16(data[10:]))
	qcount := int(le.Uint16(data[12:]))
	if r := le.Uint16(data[14:]); r != 0 {
		return st, 0, fmt.Errorf("%w: reserved field is %#04x, want 0", ErrChannelState, r)
	}
	st.OutgoingSequence = le.Uint32(data[16:])
	st.IncomingSequence = le.Uint32(data[20:])
	st.IncomingAcknowledged = le.Uint32(data[24:])
	st.ReliableSentSequence = le.Uint32(data[28:])
	st.Dropped = le.Uint32(data[32:])
	st.DropCount = le.Uint32(data[36:])
	st.GoodCount = le.Uint32(data[40:])
	if !st.Side.valid() {
		return st, 0, fmt.Errorf("%w: side %d is neither client (1) nor server (2)", ErrChannelState, st.Side)
	}
	max := st.Side.MaxReliableBlock()
	if rlen > max {
		return st, 0, fmt.Errorf("%w: reliable block of %d bytes, a %s block holds %d", ErrChannelState, rlen, st.Side, max)
	}
	off := channelStateHeader
	if len(data)-off < rlen {
		return st, 0, fmt.Errorf("%w: reliable block of %d bytes, %d left", ErrChannelState, rlen, len(data)-off)
	}
	if rlen > 0 {
		st.Reliable = append([]byte(nil), data[off:off+rlen]...)
	}
	off += rlen
	for i := 0; i < qcount; i++ {
		if len(data)-off < 2 {
			return st, 0, fmt.Errorf("%w: queued group %d of %d: length missing", ErrChannelState, i, qcount)
		}
		l := int(le.Uint16(data[off:]))
		off += 2
		if l == 0 || l > max {
			return st, 0, fmt.Errorf("%w: queued group %d is %d bytes, want 1..%d", ErrChannelState, i, l, max)
		}
		if len(data)-off < l {
			return st, 0, fmt.Errorf("%w: queued group %d of %d bytes, %d left", ErrChannelState, i, l, len(data)-off)
		}
		st.Queued = append(st.Queued, append([]byte(nil), data[off:off+l]...))
		off += l
	}
	if err := st.Validate(); err != nil {
		return ChannelState{}, 0, err
	}
	return st, off, nil
}
