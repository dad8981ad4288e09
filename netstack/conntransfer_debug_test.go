package netstack

import (
	"fmt"
	"iter"
	"reflect"
	"strings"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/molt-os/molt/netstack/internal/tcpinternals"
)

// debugConns describes the TCP state of the stack's connections whose
// remote port is in ports (all if empty), for failure messages.
func debugConns(st *Stack, ports ...uint16) string {
	var b strings.Builder
	for info, te := range tcpConns(st) {
		if len(ports) > 0 && !containsPort(ports, info.Remote.Port()) {
			continue
		}
		te.LockUser()
		v, err := tcpinternals.Open(te)
		if err != nil {
			te.UnlockUser()
			fmt.Fprintf(&b, "%s: %v\n", info, err)
			continue
		}
		ss, rs := v.Sender(), v.Receiver()
		memUsed := reflect.ValueOf(te).Elem().FieldByName("rcvMemUsed").FieldByName("value").Int()
		// The endpoint's counters are read one by one (atomically):
		// printing the stats struct with %v would race with the stack.
		es := te.Stats().(*tcp.Stats)
		fmt.Fprintf(&b, "rcvMemUsed=%d rcvbuf=%d inboundQueued=%v segments in=%d out=%d retransmits=%d\n", memUsed, te.SocketOptions().GetReceiveBufferSize(), v.InboundQueued(),
			es.SegmentsReceived.Value(), es.SegmentsSent.Value(), es.SendErrors.Retransmits.Value())
		fmt.Fprintf(&b, "%s: una=%d nxt=%d wnd=%d(<<%d) cwnd=%d ssthresh=%d outstanding=%d rto=%v | rcvnxt=%d rcvacc=%d rcvwnd=%d wup=%d scale=%d rcvbufused=%d sndbufused=%d\n",
			info, ss.SndUna, ss.SndNxt, ss.SndWnd, ss.SndWndScale, ss.SndCwnd, ss.Ssthresh, ss.Outstanding, ss.RTO,
			rs.RcvNxt, rs.RcvAcc, *v.RcvWnd(), *v.RcvWUP(), rs.RcvWndScale, te.RcvBufUsed, te.SocketOptions().GetSendBufferSize())
		te.UnlockUser()
		for _, re := range st.s.RegisteredEndpoints() {
			ret, ok := re.(*tcp.Endpoint)
			if !ok {
				continue
			}
			id := ret.Info().(*stack.TransportEndpointInfo).ID
			if id.RemotePort == info.Remote.Port() {
				fmt.Fprintf(&b, "  registered %p (table's %p) state %v id %+v\n", ret, te, tcp.EndpointState(ret.State()), id)
			}
		}
	}
	return b.String()
}

func containsPort(ports []uint16, p uint16) bool {
	for _, q := range ports {
		if q == p {
			return true
		}
	}
	return false
}

// sendBackedUp reports whether some TCP connection of st has bytes in its
// send queue that its peer's exhausted window keeps there.
func sendBackedUp(st *Stack) bool {
	for _, te := range tcpConns(st) {
		te.LockUser()
		v, err := tcpinternals.Open(te)
		// Window-limited (the peer's window, zero or tiny, is used up)
		// with bytes queued: they cannot drain while the peer does not
		// read.
		held := false
		if err == nil {
			ss := v.Sender()
			held = !v.SendQueueEmpty() && ss.SndUna.Size(ss.SndNxt) >= ss.SndWnd
		}
		te.UnlockUser()
		if held {
			return true
		}
	}
	return false
}

// tcpConns iterates over st's TCP connections and their gVisor endpoints.
func tcpConns(st *Stack) iter.Seq2[SocketInfo, *tcp.Endpoint] {
	return func(yield func(SocketInfo, *tcp.Endpoint) bool) {
		for _, info := range st.List() {
			if info.Kind != KindTCPConn {
				continue
			}
			st.mu.Lock()
			e, ok := st.table.entries[info.ID]
			st.mu.Unlock()
			if !ok {
				continue
			}
			if te, ok := e.ep.(*tcp.Endpoint); ok && !yield(info, te) {
				return
			}
		}
	}
}
