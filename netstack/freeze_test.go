package netstack

import (
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/molt-os/molt/netstack/conntable"
)

// tcpFrame returns the TCP header of an Ethernet frame carrying IPv4/TCP,
// or nil.
func tcpFrame(frame []byte) header.TCP {
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize+header.TCPMinimumSize ||
		header.Ethernet(frame).Type() != header.IPv4ProtocolNumber {
		return nil
	}
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if ip.Protocol() != uint8(header.TCPProtocolNumber) {
		return nil
	}
	t := header.TCP(ip[ip.HeaderLength():])
	if len(t) < header.TCPMinimumSize {
		return nil
	}
	return t
}

// TestFreezeWaitsForHandshakes: a handshake in progress when Freeze is
// called (the client's final ACK lost) holds the freeze until it completes
// (the server's SYN-ACK retransmission draws a new ACK), so the connection
// is exported, unaccepted, instead of being reset by the next stack; and a
// connection request that arrives meanwhile is not answered.
func TestFreezeWaitsForHandshakes(t *testing.T) {
	a, b := staticPair(t)
	if _, _, err := a.st.Listen("tcp4", "10.0.0.1:7"); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	// B loses its ACKs to port 7 (not its SYNs) while dropACK is set.
	var dropACK atomic.Bool
	var synsSent atomic.Int32
	dropACK.Store(true)
	b.port.SetFilter(func(frame []byte) bool {
		tcp := tcpFrame(frame)
		if tcp == nil || tcp.DestinationPort() != 7 {
			return true
		}
		f := tcp.Flags()
		if f.Contains(header.TCPFlagSyn) && !f.Contains(header.TCPFlagAck) {
			synsSent.Add(1)
			return true
		}
		return !(dropACK.Load() && f.Contains(header.TCPFlagAck))
	})
	_, client, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer client.Close()
	if n, err := a.st.pendingHandshakes(); err != nil || n != 1 {
		t.Fatalf("pendingHandshakes() = %d, %v; want 1 (B's ACK was dropped)", n, err)
	}

	frozen := make(chan error, 1)
	go func() { frozen <- a.st.Freeze() }()
	// A second client asks to connect while the freeze waits: its SYN
	// must find the gate holding connection requests.
	g, _ := a.st.gateLocked()
	for deadline := time.Now().Add(5 * time.Second); !g.holdSYN.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("Freeze did not start holding connection requests")
		}
		time.Sleep(time.Millisecond)
	}
	dialed := make(chan error, 1)
	go func() {
		_, c, err := b.st.Dial(ctxTimeout(t, 300*time.Millisecond), "tcp4", "10.0.0.1:7")
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	if err := <-dialed; err == nil {
		t.Error("a connection request during the freeze was answered")
	}
	if g.heldSYNs.Load() == 0 {
		t.Errorf("the gate held no SYN (B sent %d)", synsSent.Load())
	}
	select {
	case err := <-frozen:
		t.Fatalf("Freeze returned (%v) with a handshake in progress", err)
	default:
	}
	// Let the handshake complete: B's first data segment carries the ACK
	// A is waiting for.
	dropACK.Store(false)
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatalf("client write: %v", err)
	}
	select {
	case err := <-frozen:
		if err != nil {
			t.Fatalf("Freeze: %v", err)
		}
	case <-time.After(handshakeDrainTimeout + 2*time.Second):
		t.Fatal("Freeze did not return")
	}
	table, err := a.st.ExportConns(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatalf("ExportConns: %v", err)
	}
	if len(table.TCP) != 1 || table.TCP[0].Flags&conntable.TCPUnaccepted == 0 || string(table.TCP[0].RecvData) != "hello" {
		t.Errorf("exported %d connections (%+v); want the one whose handshake completed during the freeze, unaccepted, with its first bytes", len(table.TCP), table.TCP)
	}
}

// TestFreezeAbandonsStuckHandshakes: a handshake that never completes
// delays the freeze by handshakeDrainTimeout, no more.
func TestFreezeAbandonsStuckHandshakes(t *testing.T) {
	a, b := staticPair(t)
	if _, _, err := a.st.Listen("tcp4", "10.0.0.1:7"); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	b.port.SetFilter(func(frame []byte) bool {
		tcp := tcpFrame(frame)
		return tcp == nil || tcp.DestinationPort() != 7 || !tcp.Flags().Contains(header.TCPFlagAck) || tcp.Flags().Contains(header.TCPFlagSyn)
	})
	if _, c, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp4", "10.0.0.1:7"); err != nil {
		t.Fatalf("Dial: %v", err)
	} else {
		defer c.Close()
	}
	t0 := time.Now()
	if err := a.st.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if d := time.Since(t0); d < handshakeDrainTimeout {
		t.Errorf("Freeze returned after %v with a handshake in progress; want it to wait %v", d, handshakeDrainTimeout)
	}
	if err := a.st.GoLive(); err != nil {
		t.Fatalf("GoLive: %v", err)
	}
	if g, _ := a.st.gateLocked(); g.holdSYN.Load() {
		t.Error("the gate still holds connection requests after GoLive")
	}
}

// TestGateHoldsFramesUntilLive: what a peer sends while the gate is closed
// is held and delivered, in order, when the stack goes live (on a new
// kernel: what peers sent during the jump), not dropped for the peer to
// retransmit after a timeout.
func TestGateHoldsFramesUntilLive(t *testing.T) {
	a, b := staticPair(t)
	_, ln, err := a.st.Listen("tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	_, client, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer server.Close()
	if err := a.st.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	g, _ := a.st.gateLocked()
	if _, err := client.Write([]byte("sent while frozen")); err != nil {
		t.Fatalf("client write: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		g.heldMu.Lock()
		n := len(g.held)
		g.heldMu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the frozen gate held nothing of what the client sent")
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.st.GoLive(); err != nil {
		t.Fatalf("GoLive: %v", err)
	}
	if g.replayedIn.Load() == 0 {
		t.Error("GoLive delivered none of the held frames")
	}
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := server.Read(buf)
	if err != nil || string(buf[:n]) != "sent while frozen" {
		t.Errorf("server read %q, %v; want what the client sent while the gate was closed", buf[:n], err)
	}
}
