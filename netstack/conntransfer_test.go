package netstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/netstack/conntable"
	"github.com/molt-os/molt/netstack/internal/tcpinternals"
	"github.com/molt-os/molt/netstack/link"
	"github.com/molt-os/molt/netstack/link/wire"
)

// Refusals of the connection transfer, in one process over the in-memory
// wire: the transfer must say no, name the reason, and change nothing.

// connectedPair returns A with a listener and an accepted connection from
// B, and both ends.
func connectedPair(t *testing.T) (a, b *host, srv, cli net.Conn) {
	t.Helper()
	a, b = staticPair(t)
	_, ln, err := a.st.Listen("tcp", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	_, cli, err = b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp", "10.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	srv, ok := <-accepted
	if !ok {
		t.Fatal("Accept failed")
	}
	return a, b, srv, cli
}

// echoOnce checks that srv and cli still talk.
func echoOnce(t *testing.T, srv, cli net.Conn) {
	t.Helper()
	if _, err := cli.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestExportNeedsFreeze(t *testing.T) {
	a, _, srv, cli := connectedPair(t)
	if _, err := a.st.ExportConns(context.Background()); !errors.Is(err, ErrNotFrozen) {
		t.Fatalf("ExportConns on a live stack = %v; want ErrNotFrozen", err)
	}
	echoOnce(t, srv, cli)
}

func TestImportPreconditions(t *testing.T) {
	a, _ := staticPair(t)
	tb := &conntable.Table{NextID: 5}
	if err := a.st.ImportConns(context.Background(), tb); !errors.Is(err, ErrLive) {
		t.Errorf("ImportConns on a live stack = %v; want ErrLive", err)
	}
	if err := a.st.Freeze(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.st.Listen("tcp", ":1"); err != nil {
		t.Fatal(err)
	}
	if err := a.st.ImportConns(context.Background(), tb); !errors.Is(err, ErrTableNotEmpty) {
		t.Errorf("ImportConns into a used table = %v; want ErrTableNotEmpty", err)
	}
	st, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown()
	if err := st.ImportConns(context.Background(), tb); !errors.Is(err, ErrNoNIC) {
		t.Errorf("ImportConns without a NIC = %v; want ErrNoNIC", err)
	}
}

// TestTransferRefusesBadLayout: a gVisor whose private layout differs from
// the one checked makes export and import refuse; the stack carries on.
func TestTransferRefusesBadLayout(t *testing.T) {
	a, _, srv, cli := connectedPair(t)
	bad := fmt.Errorf("%w: tcp.sender.rtt: no such field (test)", tcpinternals.ErrLayout)
	checkLayout = func() error { return bad }
	t.Cleanup(func() { checkLayout = tcpinternals.Check })
	if err := a.st.Freeze(); err != nil {
		t.Fatal(err)
	}
	_, err := a.st.ExportConns(context.Background())
	if !errors.Is(err, tcpinternals.ErrLayout) || !strings.Contains(err.Error(), "tcp.sender.rtt") {
		t.Fatalf("ExportConns with a bad layout = %v; want ErrLayout naming the field", err)
	}
	if err := a.st.GoLive(); err != nil {
		t.Fatal(err)
	}
	echoOnce(t, srv, cli)

	st := gatedHost(t)
	tb := &conntable.Table{NextID: 3, TCP: []conntable.TCPConn{{
		ID: 2, Local: netip.MustParseAddrPort("10.0.0.1:7000"), Remote: netip.MustParseAddrPort("10.0.0.2:40000"),
		MSS: 1460, RTOMicros: 1e6, Cwnd: 10,
	}}}
	if err := st.ImportConns(context.Background(), tb); !errors.Is(err, tcpinternals.ErrLayout) {
		t.Fatalf("ImportConns with a bad layout = %v; want ErrLayout", err)
	}
}

// gatedHost returns a stack made for an import: gated NIC on a wire, with
// 10.0.0.1/24.
func gatedHost(t *testing.T) *Stack {
	t.Helper()
	pa, pb := wire.Pair(macA, macB)
	t.Cleanup(func() { pa.Close(); pb.Close() })
	st, err := New(Config{StartGated: true, SkipDAD: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Shutdown)
	ep, err := link.New(pa)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AttachNIC(ep, nil); err != nil {
		t.Fatal(err)
	}
	c, _ := ParseIPConfig("ip=10.0.0.1/24")
	if err := st.Configure(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestExportRefusesHalfClosed: CLOSE-WAIT (the peer sent FIN) and
// FIN-WAIT (the app closed its side) are not carried by version 1; the
// error names the socket, and the stack carries on after GoLive.
func TestExportRefusesHalfClosed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(srv, cli net.Conn) error
		state string
	}{
		{"peer closed", func(_, cli net.Conn) error { return cli.(*Conn).CloseWrite() }, "CLOSE-WAIT"},
		{"app closed", func(srv, _ net.Conn) error { return srv.(*Conn).CloseWrite() }, "FIN-WAIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, srv, cli := connectedPair(t)
			id, _ := SocketIDOf(srv)
			if err := tc.close(srv, cli); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.HasPrefix(a.st.List()[1].State, tc.state) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if err := a.st.Freeze(); err != nil {
				t.Fatal(err)
			}
			_, err := a.st.ExportConns(context.Background())
			if !errors.Is(err, ErrNotTransferable) || !strings.Contains(err.Error(), fmt.Sprintf("socket %d ", id)) || !strings.Contains(err.Error(), tc.state) {
				t.Fatalf("ExportConns = %v; want ErrNotTransferable naming socket %d in %s", err, id, tc.state)
			}
			if err := a.st.GoLive(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestImportRefusesForeignAddress: a connection whose local address the
// new stack does not have cannot be rebuilt; the error names it.
func TestImportRefusesForeignAddress(t *testing.T) {
	st := gatedHost(t)
	tb := &conntable.Table{NextID: 3, TCP: []conntable.TCPConn{{
		ID: 2, Local: netip.MustParseAddrPort("10.9.9.9:7000"), Remote: netip.MustParseAddrPort("10.0.0.2:40000"),
		MSS: 1460, RTOMicros: 1e6, Cwnd: 10,
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := st.ImportConns(ctx, tb)
	if err == nil || !strings.Contains(err.Error(), "10.9.9.9:7000") {
		t.Fatalf("ImportConns(foreign local address) = %v; want an error naming it", err)
	}
	if _, ok := st.Lookup(2); ok {
		t.Error("a failed import left socket 2 in the table")
	}
}
