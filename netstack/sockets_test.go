package netstack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitState polls st.List until socket id shows state, or fails.
func waitState(t *testing.T, st *Stack, id SocketID, state string) SocketInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last []SocketInfo
	for time.Now().Before(deadline) {
		last = st.List()
		for _, row := range last {
			if row.ID == id && row.State == state {
				return row
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("socket %d never reached %s; List() = %v", id, state, last)
	return SocketInfo{}
}

func TestSocketTableIDsAndLookup(t *testing.T) {
	a, b := staticPair(t)
	lnID, ln, err := a.st.Listen("tcp4", ":80")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	udpID, pc, err := a.st.ListenPacket("udp4", ":53")
	if err != nil {
		t.Fatalf("ListenPacket: %v", err)
	}
	dialID, dc, err := b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	ac, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	acID, ok := SocketIDOf(ac)
	if !ok {
		t.Fatalf("SocketIDOf(accepted conn) = _, false; want its ID")
	}

	if lnID == 0 || udpID <= lnID || acID <= udpID {
		t.Errorf("IDs listener %d, udp %d, accepted %d; want non-zero and increasing", lnID, udpID, acID)
	}
	if dialID != 1 {
		t.Errorf("first ID on B = %d; want 1", dialID)
	}
	for _, tc := range []struct {
		st   *Stack
		id   SocketID
		want any
	}{{a.st, lnID, ln}, {a.st, udpID, pc}, {a.st, acID, ac}, {b.st, dialID, dc}} {
		got, ok := tc.st.Lookup(tc.id)
		if !ok || got != tc.want {
			t.Errorf("Lookup(%d) = %v, %v; want the value Listen/Dial/Accept returned", tc.id, got, ok)
		}
		if gotID, _ := SocketIDOf(got); gotID != tc.id {
			t.Errorf("SocketIDOf(Lookup(%d)) = %d", tc.id, gotID)
		}
	}
	if _, ok := a.st.Lookup(999); ok {
		t.Errorf("Lookup(999) found a socket")
	}

	// The types are the net interfaces apps use.
	var _ net.Listener = ln
	var _ net.PacketConn = pc
	var _ net.Conn = ac
	if _, ok := ac.(*Conn); !ok {
		t.Errorf("Accept returned %T; want *Conn", ac)
	}
}

func TestSocketTableList(t *testing.T) {
	a, b := staticPair(t)
	lnID, ln, err := a.st.Listen("tcp4", ":80")
	if err != nil {
		t.Fatal(err)
	}
	udpID, _, err := a.st.ListenPacket("udp4", "10.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	_, dc, err := b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp4", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	ac, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	acID, _ := SocketIDOf(ac)
	clientPort := dc.LocalAddr().(*net.TCPAddr).Port

	want := []SocketInfo{
		{SocketState{ID: lnID, Kind: KindTCPListener, Network: "tcp4", Local: netip.MustParseAddrPort("0.0.0.0:80")}, "LISTEN"},
		{SocketState{ID: udpID, Kind: KindUDP, Network: "udp4", Local: netip.MustParseAddrPort("10.0.0.1:53")}, "BOUND"},
		{SocketState{ID: acID, Kind: KindTCPConn, Network: "tcp4", Local: netip.MustParseAddrPort("10.0.0.1:80"),
			Remote: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), uint16(clientPort)), Parent: lnID}, "ESTABLISHED"},
	}
	got := a.st.List()
	if len(got) != len(want) {
		t.Fatalf("List() = %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("List()[%d] = %v; want %v", i, got[i], want[i])
		}
	}
	if s := got[2].String(); !strings.Contains(s, "tcp 10.0.0.1:80 10.0.0.2:") || !strings.HasSuffix(s, "ESTABLISHED") {
		t.Errorf("SocketInfo.String() = %q", s)
	}

	// The peer closes: the accepted socket stays in the table (like a file
	// descriptor) and shows CLOSE-WAIT until the app closes it.
	dc.Close()
	waitState(t, a.st, acID, "CLOSE-WAIT")
	if n, err := ac.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after peer close = %d, %v; want 0, EOF", n, err)
	}

	// Closing by ID removes it and tells the app's value.
	if err := a.st.Close(acID); err != nil {
		t.Fatalf("Close(%d): %v", acID, err)
	}
	if _, ok := a.st.Lookup(acID); ok {
		t.Errorf("Lookup(%d) after Close found it", acID)
	}
	if err := a.st.Close(acID); !errors.Is(err, ErrUnknownSocket) {
		t.Errorf("second Close(%d) = %v; want ErrUnknownSocket", acID, err)
	}
	if _, err := ac.Write([]byte("x")); err == nil {
		t.Errorf("Write on a socket closed by ID succeeded")
	}
	ac.Close() // the value's own Close after Close(id) is harmless

	// Closing the listener's own value removes it too; Accept then fails
	// with net.ErrClosed.
	acceptErr := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		acceptErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
	rows := a.st.List()
	if len(rows) != 1 || rows[0].ID != udpID {
		t.Errorf("List() after closing = %v; want only the UDP socket %d", rows, udpID)
	}
}

func TestSocketTableState(t *testing.T) {
	a, b := staticPair(t)
	_, ln, _ := a.st.Listen("tcp", ":7")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	id1, c1, err := b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp", "10.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	c1.Close()
	id2, c2, err := b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp", "10.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if id2 <= id1 {
		t.Errorf("ID after closing %d = %d; want a fresh, larger ID (never reused)", id1, id2)
	}
	ts := b.st.TableState()
	if ts.NextID != id2+1 || len(ts.Sockets) != 1 {
		t.Fatalf("TableState() = %+v; want NextID %d and one socket", ts, id2+1)
	}
	s := ts.Sockets[0]
	if s.ID != id2 || s.Kind != KindTCPConn || s.Network != "tcp" || s.Remote != netip.MustParseAddrPort("10.0.0.1:7") ||
		s.Local.Addr() != netip.MustParseAddr("10.0.0.2") || s.Parent != 0 {
		t.Errorf("TableState().Sockets[0] = %+v", s)
	}
}

func TestSocketTableConcurrent(t *testing.T) {
	a, b := staticPair(t)
	lnID, ln, err := a.st.Listen("tcp4", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()

	var mu sync.Mutex
	seen := map[SocketID]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				id, c, err := b.st.Dial(ctxTimeout(t, 10*time.Second), "tcp4", "10.0.0.1:9000")
				if err != nil {
					t.Errorf("Dial: %v", err)
					return
				}
				mu.Lock()
				if seen[id] {
					t.Errorf("ID %d handed out twice", id)
				}
				seen[id] = true
				mu.Unlock()
				c.Write([]byte("hello"))
				if got, ok := b.st.Lookup(id); !ok || got != c {
					t.Errorf("Lookup(%d) = %v, %v; want the dialled conn", id, got, ok)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 80 {
		t.Errorf("%d distinct IDs; want 80", len(seen))
	}
	if rows := b.st.List(); len(rows) != 0 {
		t.Errorf("B's table after closing everything = %v; want empty", rows)
	}
	// A's accepted connections close when their readers see EOF.
	deadline := time.Now().Add(10 * time.Second)
	for len(a.st.List()) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rows := a.st.List(); len(rows) != 1 || rows[0].ID != lnID {
		t.Errorf("A's table = %v; want only the listener", rows)
	}
}

func TestShutdownClosesSockets(t *testing.T) {
	a, b := staticPair(t)
	_, ln, _ := a.st.Listen("tcp4", ":80")
	_, c, err := b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp4", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := ln.Accept()
	a.st.Shutdown()
	a.st.Shutdown() // idempotent
	if rows := a.st.List(); len(rows) != 0 {
		t.Errorf("List() after Shutdown = %v; want empty", rows)
	}
	if _, err := ac.Write([]byte("x")); err == nil {
		t.Errorf("Write on a socket of a shut-down stack succeeded")
	}
	if _, _, err := a.st.Listen("tcp4", ":81"); err == nil {
		t.Errorf("Listen after Shutdown succeeded")
	}
	if err := a.st.Configure(ctxTimeout(t, time.Second), IPConfig{Mode: IPOff}); !errors.Is(err, ErrStackClosed) {
		t.Errorf("Configure after Shutdown = %v; want ErrStackClosed", err)
	}
	c.Close()
}

func TestSocketErrors(t *testing.T) {
	a, b := staticPair(t)
	if _, _, err := a.st.Listen("tcp4", ":80"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string // substring of the error
	}{
		{"bad network", func() error { _, _, err := a.st.Listen("tcp5", ":1"); return err }, "unknown network"},
		{"udp to Listen", func() error { _, _, err := a.st.Listen("udp", ":1"); return err }, "unknown network"},
		{"tcp to ListenPacket", func() error { _, _, err := a.st.ListenPacket("tcp", ":1"); return err }, "unknown network"},
		{"host name", func() error { _, _, err := a.st.Listen("tcp", "localhost:1"); return err }, "not an IP address"},
		{"service name", func() error { _, _, err := a.st.Listen("tcp", ":http"); return err }, "not a number"},
		{"no port", func() error { _, _, err := a.st.Listen("tcp", "10.0.0.1"); return err }, "missing port"},
		{"v6 on tcp4", func() error { _, _, err := a.st.Listen("tcp4", "[::1]:1"); return err }, "not IPv4"},
		{"v4 on udp6", func() error { _, _, err := a.st.ListenPacket("udp6", "10.0.0.1:1"); return err }, "not IPv6"},
		{"unknown zone", func() error { _, _, err := a.st.Listen("tcp6", "[fe80::1%eth7]:1"); return err }, "unknown zone"},
		{"foreign address", func() error { _, _, err := a.st.Listen("tcp4", "10.9.9.9:1"); return err }, "bind"},
		{"dial without host", func() error { _, _, err := b.st.Dial(ctxTimeout(t, time.Second), "tcp", ":80"); return err }, "needs a host"},
		{"dial port 0", func() error { _, _, err := b.st.Dial(ctxTimeout(t, time.Second), "tcp", "10.0.0.1:0"); return err }, "non-zero port"},
		{"dial unspecified", func() error { _, _, err := b.st.Dial(ctxTimeout(t, time.Second), "tcp", "0.0.0.0:80"); return err }, "unspecified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want one containing %q", err, tc.want)
			}
		})
	}
	if _, _, err := a.st.Listen("tcp4", ":80"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen on :80 = %v; want EADDRINUSE", err)
	}
	if _, _, err := b.st.Dial(ctxTimeout(t, 5*time.Second), "tcp4", "10.0.0.1:81"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial to a closed port = %v; want ECONNREFUSED", err)
	}
	// A canceled dial leaves nothing behind.
	ctx := ctxTimeout(t, 50*time.Millisecond)
	if _, _, err := b.st.Dial(ctx, "tcp4", "10.0.0.99:80"); err == nil {
		t.Errorf("Dial with an expiring context succeeded")
	}
	if rows := b.st.List(); len(rows) != 0 {
		t.Errorf("failed dials left %v in the table", rows)
	}
	if rows := a.st.List(); len(rows) != 1 {
		t.Errorf("failed listens left %v in the table", rows)
	}
}
