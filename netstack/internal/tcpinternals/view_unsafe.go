package tcpinternals

import (
	"errors"
	"reflect"
	"unsafe"

	gsync "gvisor.dev/gvisor/pkg/sync"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// View gives typed access to one endpoint's unexported state.
//
// Preconditions for every method:
//   - the caller holds the endpoint's user lock (LockUser).
type View struct {
	ep       *tcp.Endpoint
	snd, rcv unsafe.Pointer
}

// ErrNotConnected: the endpoint has no sender or receiver (it is not, or no
// longer, a connected endpoint).
var ErrNotConnected = errors.New("endpoint has no sender/receiver")

// Open returns a View of ep, or an error if the layout check failed or ep
// is not connected.
//
// Preconditions:
//   - the caller holds ep's user lock.
func Open(ep *tcp.Endpoint) (View, error) {
	if err := Check(); err != nil {
		return View{}, err
	}
	p := unsafe.Pointer(ep)
	v := View{ep: ep, snd: ptrAt(p, lay.epSnd), rcv: ptrAt(p, lay.epRcv)}
	if v.snd == nil || v.rcv == nil {
		return View{}, ErrNotConnected
	}
	return v, nil
}

func ptrAt(p unsafe.Pointer, off uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Add(p, off))
}

// InboundQueued reports whether received segments wait for the endpoint's
// processor.
func (v View) InboundQueued() bool { return ptrAt(unsafe.Pointer(v.ep), lay.epSegQueueHead) != nil }

// Sender is the sender's protocol state.
func (v View) Sender() *tcp.TCPSenderState {
	return (*tcp.TCPSenderState)(unsafe.Add(v.snd, lay.sndState))
}

// RTT is the sender's RTT estimator.
func (v View) RTT() *tcp.TCPRTTState { return (*tcp.TCPRTTState)(unsafe.Add(v.snd, lay.sndRTT)) }

// RACK is the sender's RACK loss-detection state.
func (v View) RACK() *tcp.TCPRACKState {
	return (*tcp.TCPRACKState)(unsafe.Add(v.snd, lay.sndRACK))
}

// TLPHighRxt is the tail-loss-probe retransmission mark.
func (v View) TLPHighRxt() *seqnum.Value {
	return (*seqnum.Value)(unsafe.Add(v.snd, lay.sndTLPHighRxt))
}

// Receiver is the receiver's protocol state.
func (v View) Receiver() *tcp.TCPReceiverState {
	return (*tcp.TCPReceiverState)(unsafe.Add(v.rcv, lay.rcvState))
}

// RcvWnd is the receive window last advertised; RcvWUP its left edge.
func (v View) RcvWnd() *seqnum.Size { return (*seqnum.Size)(unsafe.Add(v.rcv, lay.rcvWnd)) }

// RcvWUP is the left edge of the last advertised receive window.
func (v View) RcvWUP() *seqnum.Value { return (*seqnum.Value)(unsafe.Add(v.rcv, lay.rcvWUP)) }

// TSOffset is the offset added to the stack clock (ms) to make TSval.
func (v View) TSOffset() *uint32 {
	return (*uint32)(unsafe.Add(unsafe.Pointer(v.ep), lay.epTSOffset))
}

func (v View) scoreboard() unsafe.Pointer { return ptrAt(unsafe.Pointer(v.ep), lay.epScoreboard) }

// MaxSACKed is the scoreboard's highest SACKed sequence number.
func (v View) MaxSACKed() *seqnum.Value {
	return (*seqnum.Value)(unsafe.Add(v.scoreboard(), lay.sbMaxSACKed))
}

// SetScoreboardMSS sets the scoreboard's sender MSS.
func (v View) SetScoreboardMSS(mss uint16) {
	*(*uint16)(unsafe.Add(v.scoreboard(), lay.sbSMSS)) = mss
}

// Cubic returns the CUBIC state of the sender's congestion control, or nil
// if it is not gVisor's cubic (reno has no sequence-space state).
func (v View) Cubic() *tcp.TCPCubicState {
	iv := reflect.NewAt(lay.ccType, unsafe.Add(v.snd, lay.sndCC)).Elem()
	if iv.IsNil() {
		return nil
	}
	cv := iv.Elem()
	if cv.Kind() != reflect.Pointer || cv.Type().String() != "*tcp.cubicState" {
		return nil
	}
	lay.cubicOnce.Do(func() {
		if f, ok := cv.Type().Elem().FieldByName("TCPCubicState"); ok && len(f.Index) == 1 && f.Type == reflect.TypeOf(tcp.TCPCubicState{}) {
			lay.cubicType, lay.cubicOffset = cv.Type(), f.Offset
		}
	})
	if cv.Type() != lay.cubicType {
		return nil
	}
	return (*tcp.TCPCubicState)(unsafe.Add(cv.UnsafePointer(), lay.cubicOffset))
}

// Segment is one queued send segment.
type Segment struct{ p unsafe.Pointer }

// Seq is the segment's first sequence number.
func (s Segment) Seq() *seqnum.Value { return (*seqnum.Value)(unsafe.Add(s.p, lay.segSeq)) }

// Flags are the segment's TCP flags.
func (s Segment) Flags() header.TCPFlags { return *(*header.TCPFlags)(unsafe.Add(s.p, lay.segFlags)) }

// Packet holds the segment's payload.
func (s Segment) Packet() *stack.PacketBuffer {
	return (*stack.PacketBuffer)(ptrAt(s.p, lay.segPkt))
}

// SendQueue calls fn for every segment of the send queue, oldest first:
// the segments hold every byte from SND.UNA on, sent or not. (Which ones
// were sent is not a property of the queue: after a retransmission timeout
// gVisor marks them all unsent again while SND.NXT stays; SND.NXT-SND.UNA
// is what is in flight.) It stops at the first error.
func (v View) SendQueue(fn func(seg Segment) error) error {
	for p := ptrAt(v.snd, lay.sndWriteHead); p != nil; p = ptrAt(p, lay.segNext) {
		if err := fn(Segment{p}); err != nil {
			return err
		}
	}
	return nil
}

// SendQueueEmpty reports whether the send queue holds no segment.
func (v View) SendQueueEmpty() bool { return ptrAt(v.snd, lay.sndWriteHead) == nil }

// SeqFields returns every sequence number held by value in the sender, the
// receiver, the scoreboard, the cubic state and the receive-buffer state,
// by path ("snd.TCPSenderState.SndUna", ...). An importer compares them with
// KnownSendSpace to detect send-space fields added by a newer gVisor.
func (v View) SeqFields() map[string]seqnum.Value {
	out := map[string]seqnum.Value{}
	scanSeq(reflect.NewAt(lay.sndType, v.snd).Elem(), "snd", out)
	scanSeq(reflect.NewAt(lay.rcvType, v.rcv).Elem(), "rcv", out)
	scanSeq(reflect.NewAt(reflect.TypeOf(tcp.SACKScoreboard{}), v.scoreboard()).Elem(), "scoreboard", out)
	if c := v.Cubic(); c != nil {
		scanSeq(reflect.ValueOf(*c), "cubic", out)
	}
	scanSeq(reflect.ValueOf(v.ep.TCPRcvBufState), "ep.TCPRcvBufState", out)
	return out
}

// PendingHandshakes returns how many handshakes the listening endpoint ep
// has in progress: SYNs answered whose final ACK has not been processed.
// Unlike the View methods it needs no user lock: it takes the listener's
// accept lock itself, as gVisor does when it reads the set.
func PendingHandshakes(ep *tcp.Endpoint) (int, error) {
	if err := Check(); err != nil {
		return 0, err
	}
	p := unsafe.Pointer(ep)
	mu := (*gsync.Mutex)(unsafe.Add(p, lay.epAcceptMu))
	mu.Lock()
	defer mu.Unlock()
	return len(*(*map[*tcp.Endpoint]struct{})(unsafe.Add(p, lay.epPendingHandshakes))), nil
}
