package qw

import (
	"fmt"
	"math"
)

// ClientMessage is one clc_* message; see ServerMessage.
type ClientMessage interface {
	Op() ClcOp
	Encode(w *Writer)
	decode(r *Reader)
}

// ClientNop is clc_nop: no body.
type ClientNop struct{}

// Move is clc_move: u8 checksum, u8 packet loss percent, then three
// commands, each a delta usercmd against the one before (the first against
// the null command): the two previous commands and the current one, so a
// server that missed a packet can still run what it missed.
//
// The checksum is id's COM_BlockSequenceCRCByte over the bytes after it
// (loss through the third command), salted with the packet's outgoing
// sequence. mvdsv silently ignores moves that fail it; this package writes
// and reads the byte as given and does not compute it.
type Move struct {
	Checksum uint8
	Loss     uint8
	Cmds     [3]UserCmd // oldest first; Cmds[2] is the newest
}

// StringCmd is clc_stringcmd: a console command for the server ("new",
// "soundlist 1 0", "begin 1", "say hi", "download maps/box.bsp", ...).
type StringCmd struct{ Text string }

// DeltaRequest is clc_delta: u8 the frame (sequence & 255) the client
// would like svc_deltapacketentities against. A server may ignore it and
// send full svc_packetentities.
type DeltaRequest struct{ Sequence uint8 }

// TMove is clc_tmove: 3 coords, a spectator's teleport request.
type TMove struct{ Origin [3]float32 }

// Upload is clc_upload: i16 size, u8 percent, size bytes.
type Upload struct {
	Percent uint8
	Data    []byte
}

func (*ClientNop) Op() ClcOp    { return ClcNop }
func (*Move) Op() ClcOp         { return ClcMove }
func (*StringCmd) Op() ClcOp    { return ClcStringCmd }
func (*DeltaRequest) Op() ClcOp { return ClcDelta }
func (*TMove) Op() ClcOp        { return ClcTMove }
func (*Upload) Op() ClcOp       { return ClcUpload }

func newClientMessage(op ClcOp) ClientMessage {
	switch op {
	case ClcNop:
		return &ClientNop{}
	case ClcMove:
		return &Move{}
	case ClcStringCmd:
		return &StringCmd{}
	case ClcDelta:
		return &DeltaRequest{}
	case ClcTMove:
		return &TMove{}
	case ClcUpload:
		return &Upload{}
	}
	return nil
}

func (w *Writer) clc(op ClcOp) { w.Byte(uint8(op)) }

func (m *ClientNop) Encode(w *Writer) { w.clc(m.Op()) }
func (m *ClientNop) decode(r *Reader) {}

func (m *Move) Encode(w *Writer) {
	w.clc(m.Op())
	w.Byte(m.Checksum)
	w.Byte(m.Loss)
	prev := &UserCmd{}
	for i := range m.Cmds {
		w.DeltaUserCmd(prev, &m.Cmds[i])
		prev = &m.Cmds[i]
	}
}

func (m *Move) decode(r *Reader) {
	m.Checksum, m.Loss = r.Byte(), r.Byte()
	prev := UserCmd{}
	for i := range m.Cmds {
		m.Cmds[i] = r.DeltaUserCmd(&prev)
		prev = m.Cmds[i]
	}
}

func (m *StringCmd) Encode(w *Writer) { w.clc(m.Op()); w.Str(m.Text) }
func (m *StringCmd) decode(r *Reader) { m.Text = r.Str() }

func (m *DeltaRequest) Encode(w *Writer) { w.clc(m.Op()); w.Byte(m.Sequence) }
func (m *DeltaRequest) decode(r *Reader) { m.Sequence = r.Byte() }

func (m *TMove) Encode(w *Writer) { w.clc(m.Op()); w.coords(m.Origin) }
func (m *TMove) decode(r *Reader) { m.Origin = r.coords() }

func (m *Upload) Encode(w *Writer) {
	if len(m.Data) > math.MaxInt16 {
		w.Fail(fmt.Errorf("%w: clc_upload chunk of %d bytes, max %d", ErrUnencodable, len(m.Data), math.MaxInt16))
		return
	}
	w.clc(m.Op())
	w.Short(int16(len(m.Data)))
	w.Byte(m.Percent)
	w.Data(m.Data)
}

func (m *Upload) decode(r *Reader) {
	size := r.Short()
	m.Percent = r.Byte()
	if size < 0 {
		if r.Err() == nil {
			r.Failf("clc_upload: size %d", size)
		}
		return
	}
	if size > 0 {
		m.Data = append([]byte(nil), r.Bytes(int(size))...)
	}
}
