package netstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/molt-os/molt/netstack/conntable"
	"github.com/molt-os/molt/netstack/internal/taplink"
	"github.com/molt-os/molt/netstack/link"
	"github.com/molt-os/molt/qemu/netns"
)

// The tests in this file run a molt stack over a TAP interface in a network
// namespace, with Linux's TCP/IP stack as the peer, and move its live
// connections to a second stack on the same TAP interface.

const (
	tapEchoPort = 7000
	tapUDPPort  = 27500
	tapPeerPort = 9000 // a Linux listener that the molt stack dials
)

var tapMAC = [6]byte{0x02, 0, 0, 0, 0x03, 0x02}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: creates a network namespace and a TAP interface (CI runs as root)")
	}
}

// tapStack is a molt stack on the namespace's TAP interface.
type tapStack struct {
	st  *Stack
	dev *taplink.Device
	ep  *link.Endpoint
}

func newTAPStack(t testing.TB, ns *netns.NS, gated bool) *tapStack {
	t.Helper()
	var dev *taplink.Device
	if err := ns.Do(func() (err error) {
		dev, err = taplink.Open(ns.TAP, tapMAC, ns.MTU)
		return err
	}); err != nil {
		t.Fatalf("open TAP %s: %v", ns.TAP, err)
	}
	st, err := New(Config{SkipDAD: true, StartGated: gated, Logf: t.Logf})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ep, err := link.New(dev)
	if err != nil {
		t.Fatalf("link.New: %v", err)
	}
	if err := st.AttachNIC(ep, nil); err != nil {
		t.Fatalf("AttachNIC: %v", err)
	}
	ipc, err := ParseIPConfig(fmt.Sprintf("ip=%s,gw=%s", ns.GuestIPv4, ns.HostIPv4.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Configure(context.Background(), ipc); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	ts := &tapStack{st: st, dev: dev, ep: ep}
	t.Cleanup(ts.close)
	return ts
}

// close shuts the stack down and detaches from the TAP interface. For a
// frozen stack nothing reaches the wire: the gate discards the resets.
func (ts *tapStack) close() {
	ts.st.Shutdown()
	ts.dev.Close()
}

// echoApp is the app under transfer: it echoes every byte of every TCP
// connection, and answers UDP datagrams once told to. Its state (which
// sockets it has, the bytes read and not yet echoed) is what a task's Save
// would carry.
type echoApp struct {
	st  *Stack
	t   testing.TB
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
	// +checklocks:mu
	conns map[SocketID]*Conn
	// +checklocks:mu
	state appState
	stop  atomic.Bool
}

// appState is the echo app's saved state.
type appState struct {
	Listener, UDP SocketID
	Pending       map[SocketID][]byte // read, not yet echoed; nil entry: done
}

func newEchoApp(t testing.TB, st *Stack, s appState) *echoApp {
	a := &echoApp{st: st, t: t, conns: map[SocketID]*Conn{}, state: s}
	if a.state.Pending == nil {
		a.state.Pending = map[SocketID][]byte{}
	}
	return a
}

func (a *echoApp) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}

func (a *echoApp) firstErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// resume starts an echo goroutine for every connection in the state.
func (a *echoApp) resume() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, p := range a.state.Pending {
		v, ok := a.st.Lookup(id)
		if !ok {
			a.err = fmt.Errorf("Lookup(%d) after import: not found", id)
			continue
		}
		c, ok := v.(*Conn)
		if !ok {
			a.err = fmt.Errorf("Lookup(%d) = %T, want *Conn", id, v)
			continue
		}
		a.startLocked(id, c, p)
	}
}

// startLocked starts echoing c, first writing pending.
//
// Preconditions:
//   - a.mu is held.
func (a *echoApp) startLocked(id SocketID, c *Conn, pending []byte) {
	a.conns[id] = c
	a.state.Pending[id] = pending
	a.wg.Add(1)
	go a.echo(id, c, pending)
}

// accept accepts n connections from the app's listener, then stops
// accepting (further connections wait in the accept queue).
func (a *echoApp) accept(n int) {
	v, _ := a.st.Lookup(a.state.Listener)
	ln := v.(*Listener)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for i := 0; i < n; i++ {
			c, err := ln.Accept()
			if err != nil {
				a.fail(fmt.Errorf("Accept: %w", err))
				return
			}
			id, _ := SocketIDOf(c)
			a.mu.Lock()
			a.startLocked(id, c.(*Conn), nil)
			a.mu.Unlock()
		}
	}()
}

// adopt echoes a connection the app dialed itself.
func (a *echoApp) adopt(id SocketID, c net.Conn) {
	a.mu.Lock()
	a.startLocked(id, c.(*Conn), nil)
	a.mu.Unlock()
}

func (a *echoApp) echo(id SocketID, c *Conn, pending []byte) {
	defer a.wg.Done()
	save := func(p []byte) {
		a.mu.Lock()
		a.state.Pending[id] = p
		a.mu.Unlock()
	}
	buf := make([]byte, 32<<10)
	for {
		if len(pending) > 0 {
			n, err := c.Write(pending)
			pending = pending[n:]
			if err != nil {
				if a.stop.Load() && isTimeout(err) {
					save(pending)
					return
				}
				a.fail(fmt.Errorf("socket %d: write: %w", id, err))
				return
			}
			continue
		}
		if a.stop.Load() {
			save(nil)
			return
		}
		n, err := c.Read(buf)
		if n > 0 {
			pending = append([]byte(nil), buf[:n]...)
		}
		switch {
		case err == io.EOF:
			if werr := c.CloseWrite(); werr != nil {
				a.fail(fmt.Errorf("socket %d: CloseWrite: %w", id, werr))
			}
			a.mu.Lock()
			delete(a.state.Pending, id)
			a.mu.Unlock()
			return
		case err != nil && n == 0:
			if a.stop.Load() && isTimeout(err) {
				save(nil)
				return
			}
			a.fail(fmt.Errorf("socket %d: read: %w", id, err))
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// quiesce stops every goroutine of the app at a safe point and returns
// its state, as a task's Quiesce and Save would.
func (a *echoApp) quiesce() appState {
	a.stop.Store(true)
	a.mu.Lock()
	for _, c := range a.conns {
		c.SetDeadline(time.Now())
	}
	a.mu.Unlock()
	a.wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.state
	s.Pending = make(map[SocketID][]byte, len(a.state.Pending))
	for id, p := range a.state.Pending {
		s.Pending[id] = bytes.Clone(p)
	}
	return s
}

// peerStream is the Linux side of one connection: it writes a
// pseudo-random stream and hashes what comes back.
type peerStream struct {
	c          net.Conn
	sent, recv hash.Hash
	nSent      atomic.Int64
	nRecv      atomic.Int64
	werr, rerr error
	done       chan struct{}
	paused     atomic.Bool // the reader does not read
}

// runPeer streams over c until stop is closed, then half-closes and reads
// the echo to its end. pace > 0 sleeps that long between chunks.
func runPeer(c net.Conn, seed uint64, pace time.Duration, stop <-chan struct{}) *peerStream {
	if seed == 1 || seed == 1001 {
		// Paused at the freeze (see runScenario), with a small receive
		// buffer: their echoes back up into A's send queue.
		c.(*net.TCPConn).SetReadBuffer(4 << 10)
	}
	p := &peerStream{c: c, sent: sha256.New(), recv: sha256.New(), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // writer
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 1))
		src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-stop:
				p.werr = c.(*net.TCPConn).CloseWrite()
				return
			default:
			}
			n := 1 + rng.IntN(len(buf))
			if pace > 0 {
				n = 1 + rng.IntN(1024)
			}
			src.Read(buf[:n])
			c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			w, err := c.Write(buf[:n])
			p.sent.Write(buf[:w])
			p.nSent.Add(int64(w))
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				p.werr = err
				return
			}
			if pace > 0 {
				time.Sleep(pace)
			}
		}
	}()
	go func() { // reader
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			for p.paused.Load() {
				time.Sleep(time.Millisecond)
			}
			n, err := c.Read(buf)
			p.recv.Write(buf[:n])
			p.nRecv.Add(int64(n))
			if err == io.EOF {
				return
			}
			if err != nil {
				p.rerr = err
				return
			}
		}
	}()
	go func() { wg.Wait(); close(p.done) }()
	return p
}

// check waits for the stream's end and compares both directions.
func (p *peerStream) check(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("stream not finished: sent %d, echoed %d: %w", p.nSent.Load(), p.nRecv.Load(), ctx.Err())
	}
	if p.werr != nil || p.rerr != nil {
		return fmt.Errorf("write error %v, read error %v (sent %d, echoed %d)", p.werr, p.rerr, p.nSent.Load(), p.nRecv.Load())
	}
	if s, r := p.nSent.Load(), p.nRecv.Load(); s != r || !bytes.Equal(p.sent.Sum(nil), p.recv.Sum(nil)) {
		return fmt.Errorf("sent %d bytes, echoed %d; SHA-256 equal: %v", s, r, bytes.Equal(p.sent.Sum(nil), p.recv.Sum(nil)))
	}
	return nil
}

// snmpTCP reads a counter of the Tcp: lines of /proc/net/snmp in the
// namespace.
func snmpTCP(t testing.TB, ns *netns.NS, name string) int64 {
	t.Helper()
	out, err := ns.Command(context.Background(), "cat", "/proc/net/snmp").Output()
	if err != nil {
		t.Fatalf("read /proc/net/snmp in %s: %v", ns.Name, err)
	}
	var keys []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if keys == nil {
			keys = f
			continue
		}
		for i, k := range keys {
			if k == name && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	t.Fatalf("no Tcp counter %s in /proc/net/snmp", name)
	return 0
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// sameDatagrams reports whether a and b hold the same datagrams, in any
// order.
func sameDatagrams(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, d := range a {
		count[string(d)]++
	}
	for _, d := range b {
		count[string(d)]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// udpTry sends with send and waits for want on r, up to 10 times.
func udpTry(send func() error, r net.PacketConn, want string) error {
	buf := make([]byte, 64)
	var last error
	for i := 0; i < 10; i++ {
		if err := send(); err != nil {
			return err
		}
		r.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := r.ReadFrom(buf)
		if err == nil && string(buf[:n]) == want {
			return nil
		}
		last = fmt.Errorf("read %q, %v", buf[:n], err)
	}
	return last
}

// scenario describes one transfer run.
type scenario struct {
	conns  int           // accepted, streaming connections
	pace   time.Duration // between a peer's chunks (0: as fast as it goes)
	dgrams int           // UDP datagrams queued at the freeze
}

// runScenario builds stack A with the echo app, connects the Linux peer,
// streams, quiesces and freezes A, exports, and hands the table to move.
// Then it checks that every stream continued without loss, duplication or
// reset, that the not-yet-accepted and the dialed connections survived,
// and that the queued datagrams are delivered.
// queueDatagrams sends n datagrams to the guest's UDP echo port from a
// socket in ns, while the link is quiet (UDP has no retransmission to
// recover from a full TAP queue), and waits until received, the guest
// stack's count of UDP packets received, has counted them. It returns the
// socket (closed when the test ends), the guest's address and what it sent.
func queueDatagrams(t *testing.T, ctx context.Context, ns *netns.NS, n int, received func() uint64) (net.PacketConn, *net.UDPAddr, [][]byte) {
	t.Helper()
	pc, err := ns.ListenPacket(ctx, "udp4", ns.HostIPv4.Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dst := &net.UDPAddr{IP: ns.GuestIPv4.Addr().AsSlice(), Port: tapUDPPort}
	var dgrams [][]byte
	before := received()
	for i := 0; i < n; i++ {
		d := []byte(fmt.Sprintf("datagram %d %s", i, strings.Repeat("x", i*7)))
		dgrams = append(dgrams, d)
		if _, err := pc.WriteTo(d, dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitFor(ctx, "datagrams queued at A", func() bool { return received() >= before+uint64(n) }); err != nil {
		t.Fatal(err)
	}
	return pc, dst, dgrams
}

// linuxPeers is the Linux side of a transfer scenario: checksummed echo
// streams to the stack under test, plus one the stack dials to a Linux
// listener. Closing stop (finish) makes every stream half-close and
// drain; the test's end closes the connections.
type linuxPeers struct {
	stop    chan struct{}
	streams []*peerStream
}

func newLinuxPeers(t *testing.T) *linuxPeers {
	lp := &linuxPeers{stop: make(chan struct{})}
	t.Cleanup(func() {
		lp.finish()
		for _, p := range lp.streams {
			p.c.Close()
		}
	})
	return lp
}

// finish tells every stream to end; it may be called more than once.
func (lp *linuxPeers) finish() {
	select {
	case <-lp.stop:
	default:
		close(lp.stop)
	}
}

// dial opens n streams to the guest's echo port, one chunk per pace.
func (lp *linuxPeers) dial(t *testing.T, ctx context.Context, ns *netns.NS, n int, pace time.Duration) {
	t.Helper()
	for i := 0; i < n; i++ {
		c, err := ns.Dial(ctx, "tcp4", netip.AddrPortFrom(ns.GuestIPv4.Addr(), tapEchoPort).String())
		if err != nil {
			t.Fatalf("peer dial %d: %v", i, err)
		}
		lp.streams = append(lp.streams, runPeer(c, uint64(i), pace, lp.stop))
	}
}

// acceptDialed listens on the host's tapPeerPort, runs dial (which makes
// the stack under test connect to listenAddr), and adds the accepted
// connection as a stream: on import it has no listener of its own.
func (lp *linuxPeers) acceptDialed(t *testing.T, ctx context.Context, ns *netns.NS, dial func(listenAddr string)) {
	t.Helper()
	addr := netip.AddrPortFrom(ns.HostIPv4.Addr(), tapPeerPort).String()
	pln, err := ns.Listen(ctx, "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pln.Close()
	dialed := make(chan *peerStream, 1)
	go func() {
		c, err := pln.Accept()
		if err != nil {
			close(dialed)
			return
		}
		dialed <- runPeer(c, 1001, time.Millisecond, lp.stop)
	}()
	dial(addr)
	select {
	case p, ok := <-dialed:
		if !ok {
			t.Fatal("Linux listener: accept failed")
		}
		lp.streams = append(lp.streams, p)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

func runScenario(t *testing.T, sc scenario, move func(t *testing.T, ns *netns.NS, table []byte, s appState) (*Stack, func() error)) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ns := netns.NewT(t)
	a := newTAPStack(t, ns, false)
	guest := ns.GuestIPv4.Addr()

	lnID, _, err := a.st.Listen("tcp", fmt.Sprintf(":%d", tapEchoPort))
	if err != nil {
		t.Fatal(err)
	}
	udpID, _, err := a.st.ListenPacket("udp", fmt.Sprintf(":%d", tapUDPPort))
	if err != nil {
		t.Fatal(err)
	}
	app := newEchoApp(t, a.st, appState{Listener: lnID, UDP: udpID})
	app.accept(sc.conns)

	udpStats := a.st.s.Stats().UDP.PacketsReceived
	pc, udpDst, dgrams := queueDatagrams(t, ctx, ns, sc.dgrams, udpStats.Value)
	peers := newLinuxPeers(t)
	peers.dial(t, ctx, ns, sc.conns, sc.pace)
	peers.acceptDialed(t, ctx, ns, func(addr string) {
		did, dc, err := a.st.Dial(ctx, "tcp4", addr)
		if err != nil {
			t.Fatalf("Dial Linux listener: %v", err)
		}
		app.adopt(did, dc)
	})
	streams := peers.streams
	// Let every stream get going.
	for i, p := range streams {
		if err := waitFor(ctx, fmt.Sprintf("stream %d to echo 32 KiB", i), func() bool { return p.nRecv.Load() >= 32<<10 || app.firstErr() != nil }); err != nil {
			t.Fatalf("%v (sent %d, echoed %d)", err, p.nSent.Load(), p.nRecv.Load())
		}
		if err := app.firstErr(); err != nil {
			t.Fatalf("app on A: %v", err)
		}
	}

	// One more connection, which the app does not accept before the
	// transfer (its accept loop took its count).
	late, err := ns.Dial(ctx, "tcp4", netip.AddrPortFrom(guest, tapEchoPort).String())
	if err != nil {
		t.Fatalf("peer dial (late): %v", err)
	}
	defer late.Close()
	if _, err := late.Write([]byte("late hello")); err != nil {
		t.Fatal(err)
	}
	lnV, _ := a.st.Lookup(lnID)
	if err := waitFor(ctx, "late connection in the accept queue", func() bool {
		return lnV.(*Listener).ep.Readiness(waiter.ReadableEvents) != 0
	}); err != nil {
		t.Fatal(err)
	}
	resetsBefore := snmpTCP(t, ns, "EstabResets")

	// Half the peers stop reading, so that their echoes pile up in A's
	// send queues; the others keep A sending until the freeze, so that
	// bytes are in flight. The app stops, and at once the stack freezes.
	for i, p := range streams {
		if i%2 == 1 {
			p.paused.Store(true)
		}
	}
	// Wait until a paused peer has closed its window on bytes A still
	// holds: those stay queued through the quiesce and the freeze
	// whatever the machine's speed (a fixed pause let Linux absorb and
	// acknowledge everything on a loaded host).
	if err := waitFor(ctx, "a paused peer's echo backed up in A's send queue", func() bool { return sendBackedUp(a.st) }); err != nil {
		t.Fatalf("%v\n%s", err, debugConns(a.st))
	}
	state := app.quiesce()
	if err := app.firstErr(); err != nil {
		t.Fatalf("app on A: %v", err)
	}
	t0 := time.Now()
	if err := a.st.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	table, err := a.st.ExportConns(ctx)
	if err != nil {
		t.Fatalf("ExportConns: %v", err)
	}
	tExport := time.Since(t0)
	enc, err := table.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	var sendBytes, recvBytes, inflight int
	for _, c := range table.TCP {
		sendBytes += len(c.SendData)
		recvBytes += len(c.RecvData)
		inflight += int(c.InFlight())
	}
	t.Logf("export: %d sockets, %d B encoded, %v; send queues %d B (%d in flight), unread %d B; neighbors %d",
		table.Sockets(), len(enc), tExport, sendBytes, inflight, recvBytes, len(table.Neighbors))
	// The order the datagrams reached A is the order B must return them
	// in. It may differ from the send order: Linux holds packets while
	// it resolves the guest's address and can let a later one overtake
	// the held ones as the resolution completes.
	var queued [][]byte
	for _, u := range table.UDP {
		if u.ID == uint32(udpID) {
			for _, d := range u.Queued {
				queued = append(queued, bytes.Clone(d.Payload))
			}
		}
	}
	if !sameDatagrams(queued, dgrams) {
		t.Errorf("the export queued %d datagrams, not the %d sent", len(queued), len(dgrams))
	}
	for _, u := range table.UDP {
		var first string
		if len(u.Queued) > 0 {
			first = string(u.Queued[0].Payload[:min(12, len(u.Queued[0].Payload))])
		}
		t.Logf("export: UDP socket %d: %d datagrams queued, first %q", u.ID, len(u.Queued), first)
	}
	if want := sc.conns + 2; len(table.TCP) != want {
		t.Errorf("exported %d TCP connections, want %d", len(table.TCP), want)
	}
	if len(enc) > conntable.MaxEncodedSize {
		t.Errorf("the table is %d bytes, above the conn-table section's cap of %d", len(enc), conntable.MaxEncodedSize)
	}
	if sendBytes == 0 || recvBytes == 0 {
		t.Errorf("the export carried %d bytes of send queues and %d unread: the scenario did not load the queues", sendBytes, recvBytes)
	}
	// The old stack goes away without a word: it is frozen, so the
	// resets Shutdown sends end in the gate.
	a.close()

	b, appErr := move(t, ns, enc, state)
	t.Logf("swap: %v from Freeze to GoLive", time.Since(t0))
	for _, p := range streams {
		p.paused.Store(false)
	}

	// The not-yet-accepted connection is the next Accept's.
	bl, ok := b.Lookup(lnID)
	if !ok {
		t.Fatalf("listener %d missing after import", lnID)
	}
	lc, err := bl.(*Listener).Accept()
	if err != nil {
		t.Fatalf("Accept after import: %v", err)
	}
	lbuf := make([]byte, 64)
	lc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadAtLeast(lc, lbuf, len("late hello"))
	if err != nil || string(lbuf[:n]) != "late hello" {
		t.Fatalf("late connection read %q, %v", lbuf[:n], err)
	}
	if _, err := lc.Write([]byte("late reply")); err != nil {
		t.Fatal(err)
	}
	late.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadAtLeast(late, lbuf, len("late reply")); err != nil || string(lbuf[:n]) != "late reply" {
		t.Fatalf("peer read on late connection %q, %v", lbuf[:n], err)
	}

	// The queued datagrams, in order, from their sender; then the socket
	// still answers.
	uv, ok := b.Lookup(udpID)
	if !ok {
		t.Fatalf("UDP socket %d missing after import", udpID)
	}
	bu := uv.(*PacketConn)
	bu.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for i, want := range queued {
		buf := make([]byte, 2048)
		n, from, err := bu.ReadFrom(buf)
		got = append(got, string(buf[:min(n, 12)]))
		if err != nil || !bytes.Equal(buf[:n], want) || from.(*net.UDPAddr).Port != pc.LocalAddr().(*net.UDPAddr).Port {
			for j := i + 1; j < len(queued); j++ {
				bu.SetReadDeadline(time.Now().Add(time.Second))
				if n, _, err := bu.ReadFrom(buf); err == nil {
					got = append(got, string(buf[:min(n, 12)]))
				}
			}
			t.Fatalf("datagram %d after import: %q from %v, %v; want %q from %v; read in all: %q", i, buf[:n], from, err, want, pc.LocalAddr(), got)
		}
	}
	// The socket still works both ways. UDP over a loaded TAP queue may
	// lose a datagram, so each direction gets a few tries.
	if err := udpTry(func() error { _, err := bu.WriteTo([]byte("pong"), pc.LocalAddr()); return err }, pc, "pong"); err != nil {
		t.Fatalf("B -> peer over the imported UDP socket: %v", err)
	}
	if err := udpTry(func() error { _, err := pc.WriteTo([]byte("ping"), udpDst); return err }, bu, "ping"); err != nil {
		t.Fatalf("peer -> B over the imported UDP socket: %v", err)
	}

	// Streams go on for a while on the new stack, then end; every byte
	// must have come back exactly once.
	before := make([]int64, len(streams))
	for i, p := range streams {
		before[i] = p.nRecv.Load()
	}
	for i, p := range streams {
		if err := waitFor(ctx, fmt.Sprintf("stream %d to continue after the transfer", i), func() bool { return p.nRecv.Load() >= before[i]+16<<10 }); err != nil {
			port := uint16(p.c.LocalAddr().(*net.TCPAddr).Port)
			ss, _ := ns.Command(context.Background(), "ss", "-tin", fmt.Sprintf("sport = :%d or dport = :%d", port, port)).CombinedOutput()
			t.Fatalf("%v: sent %d, echoed %d; B: %s; Linux:\n%s", err, p.nSent.Load(), p.nRecv.Load(), debugConns(b, port), ss)
		}
	}
	peers.finish()
	for i, p := range streams {
		if err := p.check(ctx); err != nil {
			port := uint16(p.c.LocalAddr().(*net.TCPAddr).Port)
			ss, _ := ns.Command(context.Background(), "ss", "-tin", fmt.Sprintf("sport = :%d or dport = :%d", port, port)).CombinedOutput()
			t.Errorf("stream %d: %v; B: %s; Linux:\n%s", i, err, debugConns(b, port), ss)
		}
	}
	if err := appErr(); err != nil {
		t.Errorf("app on B: %v", err)
	}
	if d := snmpTCP(t, ns, "EstabResets") - resetsBefore; d != 0 {
		t.Errorf("Linux counted %d resets of established connections", d)
	}
}

// moveInProcess decodes the table into a new gated stack on the same TAP
// interface, with the same MAC and address, imports, and goes live.
func moveInProcess(t *testing.T, ns *netns.NS, enc []byte, s appState) (*Stack, func() error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	table, err := conntable.Decode(enc)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	b := newTAPStack(t, ns, true)
	t0 := time.Now()
	if err := b.st.ImportConns(ctx, table); err != nil {
		t.Fatalf("ImportConns: %v", err)
	}
	tImport := time.Since(t0)
	if err := b.st.GoLive(); err != nil {
		t.Fatalf("GoLive: %v", err)
	}
	t.Logf("import: %d sockets in %v", table.Sockets(), tImport)
	if got := b.st.TableState().NextID; got != SocketID(table.NextID) {
		t.Errorf("NextID after import %d, want %d", got, table.NextID)
	}
	app := newEchoApp(t, b.st, s)
	app.resume()
	return b.st, app.firstErr
}

func TestTransferTAP1(t *testing.T) {
	runScenario(t, scenario{conns: 1, dgrams: 5}, moveInProcess)
}

// TestTransferTAP100 moves many loaded connections at once: 100, or 20
// under the race detector. The race detector makes gVisor's stack running
// in this process an order of magnitude slower; with 100 streams on a
// 2-core machine the peers then see round trips of a quarter second and
// the test spends its whole budget getting the streams going. The 100-
// (and more-) connection case also runs, in a real kernel, in
// cmd/kernel's TestUpdate.
func TestTransferTAP100(t *testing.T) {
	conns := 100
	if raceEnabled {
		conns = 20
	}
	runScenario(t, scenario{conns: conns, pace: 10 * time.Millisecond, dgrams: 20}, moveInProcess)
}
