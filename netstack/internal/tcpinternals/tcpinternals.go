// Package tcpinternals reads and writes the few unexported fields of
// gVisor's TCP endpoint that a connection transfer needs and gVisor's API
// does not expose: the sender's and receiver's sequence-space state, the
// RTT estimator, the congestion state, the timestamp offset and the queued
// send segments; and, of a listener, how many handshakes are in progress.
//
// It is the only code in molt that knows gVisor's private layout. Every
// field is found once, by name and exact type, with reflect (Check); from
// then on it is a plain offset. If any field is missing, renamed or of
// another type (a gVisor upgrade changed the layout), Check reports every
// such field and callers must refuse to export or import: fail safe, never
// guess. The field list below says why each one is needed; the cross-version
// test (netstack's TestCrossVersion) runs the whole transfer against two
// gVisor versions, and must be run again on every gVisor bump.
//
// Synchronization: a View is valid only while the caller holds the
// endpoint's user lock (tcp.Endpoint.LockUser), which is gVisor's e.mu: it
// keeps the endpoint's processor goroutine and its timers out, so that
// nothing else reads or writes these fields meanwhile.
package tcpinternals

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	gsync "gvisor.dev/gvisor/pkg/sync"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// ErrLayout wraps every self-check failure.
var ErrLayout = errors.New("gVisor TCP layout self-check failed")

// field is one unexported field path: a dotted path of direct (non-
// promoted) struct fields from a root type, and the exact type it must have
// (a reflect.Type, or the type's String() for gVisor's unexported types).
type field struct {
	root string // "endpoint", "sender", "receiver", "segment", "scoreboard"
	path string
	want any
	why  string
}

var (
	seqT   = reflect.TypeOf(seqnum.Value(0))
	sizeT  = reflect.TypeOf(seqnum.Size(0))
	u8T    = reflect.TypeOf(uint8(0))
	u16T   = reflect.TypeOf(uint16(0))
	u32T   = reflect.TypeOf(uint32(0))
	pbufT  = reflect.TypeOf((*stack.PacketBuffer)(nil))
	sbPtrT = reflect.TypeOf((*tcp.SACKScoreboard)(nil))
)

// fields is the complete list. The order of the first four matters: the
// sender, receiver and segment types are found through them.
var fields = []field{
	{"endpoint", "snd", "*tcp.sender", "the sender: SND.UNA/NXT, window, cwnd, RTO, queued segments"},
	{"endpoint", "rcv", "*tcp.receiver", "the receiver: RCV.NXT and the advertised window"},
	{"sender", "writeList.writeList.head", "*tcp.segment", "first queued send segment (from SND.UNA): exported bytes, shifted sequence numbers"},
	{"endpoint", "scoreboard", sbPtrT, "SACK scoreboard: its maxSACKED is a send-space sequence number, its smss follows the MSS"},
	{"endpoint", "TCPEndpointStateInner.TSOffset.milliseconds", u32T, "TSval = clock + offset: set so that our timestamps keep increasing for the peer"},
	{"endpoint", "segmentQueue.list.head", "*tcp.segment", "inbound segments not yet processed: export waits until none are left"},
	{"sender", "TCPSenderState", reflect.TypeOf(tcp.TCPSenderState{}), "SND.UNA, SND.NXT, SND.WND and scale, cwnd, ssthresh, RTO, MSS, fast-recovery marks"},
	{"sender", "rtt.TCPRTTState", reflect.TypeOf(tcp.TCPRTTState{}), "SRTT and RTTVAR (RFC 6298)"},
	{"sender", "rc.TCPRACKState", reflect.TypeOf(tcp.TCPRACKState{}), "RACK marks, three of them send-space sequence numbers"},
	{"sender", "rc.tlpHighRxt", seqT, "tail-loss-probe mark, a send-space sequence number"},
	{"sender", "cc", "tcp.congestionControl", "the congestion control, whose cubic state holds a send-space sequence number"},
	{"receiver", "TCPReceiverState", reflect.TypeOf(tcp.TCPReceiverState{}), "RCV.NXT, RcvAcc (window edge), our window scale"},
	{"receiver", "rcvWnd", sizeT, "receive window last advertised, with rcvWUP its left edge: the edge must not shrink"},
	{"receiver", "rcvWUP", seqT, "left edge of the last advertised window"},
	{"segment", "segmentEntry.next", "*tcp.segment", "walks the send queue"},
	{"segment", "pkt", pbufT, "a queued segment's bytes"},
	{"segment", "sequenceNumber", seqT, "a queued segment's sequence number, shifted on import"},
	{"segment", "flags", "header.TCPFlags", "a queued FIN makes the connection unexportable in version 1"},
	{"scoreboard", "maxSACKED", seqT, "highest SACKed sequence number, shifted on import"},
	{"scoreboard", "smss", u16T, "sender MSS used for loss detection; follows the restored MSS"},
	{"endpoint", "acceptMu", reflect.TypeOf(gsync.Mutex{}), "guards a listener's accept queue, for PendingHandshakes"},
	{"endpoint", "acceptQueue.pendingEndpoints", "map[*tcp.Endpoint]struct {}", "a listener's handshakes in progress (SYN-RCVD), which a transfer cannot carry: the freeze waits for them"},
}

// layout holds the resolved offsets.
type layout struct {
	epSnd, epRcv, epScoreboard, epTSOffset, epSegQueueHead        uintptr
	sndState, sndRTT, sndRACK, sndTLPHighRxt, sndCC, sndWriteHead uintptr
	rcvState, rcvWnd, rcvWUP                                      uintptr
	segNext, segPkt, segSeq, segFlags                             uintptr
	sbMaxSACKed, sbSMSS                                           uintptr
	epAcceptMu, epPendingHandshakes                               uintptr

	sndType, rcvType, ccType reflect.Type

	cubicOnce   sync.Once
	cubicType   reflect.Type // *tcp.cubicState, once seen
	cubicOffset uintptr      // of its TCPCubicState
}

var (
	once   sync.Once
	lay    layout
	layErr error
)

// Check resolves the layout (once) and returns nil if every field is
// present with its expected type, or an error wrapping ErrLayout that lists
// every problem.
func Check() error {
	once.Do(func() { layErr = resolve(&lay, fields) })
	return layErr
}

// resolve fills l from the field list. It is separate from Check so that
// tests can run it on a doctored list.
func resolve(l *layout, list []field) error {
	roots := map[string]reflect.Type{
		"endpoint":   reflect.TypeOf(tcp.Endpoint{}),
		"scoreboard": reflect.TypeOf(tcp.SACKScoreboard{}),
	}
	offsets := map[string]uintptr{}
	var errs []string
	for _, f := range list {
		root := roots[f.root]
		if root == nil {
			errs = append(errs, fmt.Sprintf("%s.%s: root type unknown (an earlier field failed)", f.root, f.path))
			continue
		}
		off, typ, err := walk(root, f.path, f.want)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		offsets[f.root+"."+f.path] = off
		// The pointee types of these fields are the roots of the others.
		switch f.root + "." + f.path {
		case "endpoint.snd":
			roots["sender"] = typ.Elem()
			l.sndType = typ.Elem()
		case "endpoint.rcv":
			roots["receiver"] = typ.Elem()
			l.rcvType = typ.Elem()
		case "sender.writeList.writeList.head":
			roots["segment"] = typ.Elem()
		case "sender.cc":
			l.ccType = typ
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (gVisor changed; update netstack/internal/tcpinternals): %s", ErrLayout, strings.Join(errs, "; "))
	}
	o := func(k string) uintptr { return offsets[k] }
	l.epSnd, l.epRcv, l.epScoreboard = o("endpoint.snd"), o("endpoint.rcv"), o("endpoint.scoreboard")
	l.epTSOffset, l.epSegQueueHead = o("endpoint.TCPEndpointStateInner.TSOffset.milliseconds"), o("endpoint.segmentQueue.list.head")
	l.sndState, l.sndRTT, l.sndRACK = o("sender.TCPSenderState"), o("sender.rtt.TCPRTTState"), o("sender.rc.TCPRACKState")
	l.sndTLPHighRxt, l.sndCC = o("sender.rc.tlpHighRxt"), o("sender.cc")
	l.sndWriteHead = o("sender.writeList.writeList.head")
	l.rcvState, l.rcvWnd, l.rcvWUP = o("receiver.TCPReceiverState"), o("receiver.rcvWnd"), o("receiver.rcvWUP")
	l.segNext, l.segPkt, l.segSeq, l.segFlags = o("segment.segmentEntry.next"), o("segment.pkt"), o("segment.sequenceNumber"), o("segment.flags")
	l.sbMaxSACKed, l.sbSMSS = o("scoreboard.maxSACKED"), o("scoreboard.smss")
	l.epAcceptMu, l.epPendingHandshakes = o("endpoint.acceptMu"), o("endpoint.acceptQueue.pendingEndpoints")
	return nil
}

// walk follows path through direct struct fields of root and checks the
// final type against want.
func walk(root reflect.Type, path string, want any) (uintptr, reflect.Type, error) {
	var off uintptr
	cur := root
	for _, name := range strings.Split(path, ".") {
		if cur.Kind() != reflect.Struct {
			return 0, nil, fmt.Errorf("%s.%s: %s is not a struct", root, path, cur)
		}
		f, ok := cur.FieldByName(name)
		if !ok || len(f.Index) != 1 {
			return 0, nil, fmt.Errorf("%s.%s: %s has no field %q", root, path, cur, name)
		}
		off += f.Offset
		cur = f.Type
	}
	var ok bool
	switch w := want.(type) {
	case reflect.Type:
		ok = cur == w
	case string:
		ok = cur.String() == w
	}
	if !ok {
		return 0, nil, fmt.Errorf("%s.%s: type %s, want %v", root, path, cur, want)
	}
	return off, cur, nil
}

// KnownSendSpace lists, as SeqFields names them, the fields that hold send
// sequence numbers and that an importer shifts. Anything else that holds a
// send-space value after an import's handshake is a field this package does
// not know, and the import must stop.
var KnownSendSpace = map[string]bool{
	"snd.TCPSenderState.SndUna":                 true,
	"snd.TCPSenderState.SndNxt":                 true,
	"snd.TCPSenderState.RTTMeasureSeqNum":       true,
	"snd.TCPSenderState.FastRecovery.First":     true,
	"snd.TCPSenderState.FastRecovery.Last":      true,
	"snd.TCPSenderState.FastRecovery.HighRxt":   true,
	"snd.TCPSenderState.FastRecovery.RescueRxt": true,
	"snd.rc.TCPRACKState.EndSequence":           true,
	"snd.rc.TCPRACKState.FACK":                  true,
	"snd.rc.TCPRACKState.RTTSeq":                true,
	"snd.rc.tlpHighRxt":                         true,
	"scoreboard.maxSACKED":                      true,
	"cubic.EndSeq":                              true,
}

// scanSeq collects every seqnum.Value reachable by value (not through
// pointers) from v.
func scanSeq(v reflect.Value, path string, out map[string]seqnum.Value) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			scanSeq(v.Field(i), path+"."+t.Field(i).Name, out)
		}
	case reflect.Uint32:
		if v.Type() == seqT {
			out[path] = seqnum.Value(v.Uint())
		}
	}
}
