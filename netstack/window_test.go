package netstack

import (
	"testing"
	"time"

	"github.com/molt-os/molt/netstack/internal/tcpinternals"
)

// TestNoWindowScaling: connections negotiate window scale 0 (New keeps
// receive buffers below 64 KiB), which keeps gVisor clear of the stall of
// a scaled, rounded-down window (docs/netstack.md).
func TestNoWindowScaling(t *testing.T) {
	a, b := staticPair(t)
	_, ln, err := a.st.Listen("tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	_, c, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer s.Close()
	for _, h := range []*host{a, b} {
		n := 0
		for info, te := range tcpConns(h.st) {
			te.LockUser()
			v, err := tcpinternals.Open(te)
			var rcv, snd uint8
			if err == nil {
				rcv, snd = v.Receiver().RcvWndScale, v.Sender().SndWndScale
			}
			te.UnlockUser()
			if err != nil || rcv != 0 || snd != 0 {
				t.Errorf("%s: window scales receive %d, send %d (%v); want 0 and 0", info, rcv, snd, err)
			}
			n++
		}
		if n != 1 {
			t.Errorf("%d TCP connections on a stack; want 1", n)
		}
	}
}
