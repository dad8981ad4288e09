package netstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/molt-os/molt/netstack/conntable"
	"github.com/molt-os/molt/qemu/netns"
)

// TestTransferAcrossGVisorVersions moves live connections between stacks
// built with two gVisor versions, both ways: the conn-table format is
// molt's own precisely so that an update may also change the gVisor
// version.
//
// A Go binary links one version of a module, so each stack runs in a
// process of its own (conntransfer_xversion_child_test.go): this test
// binary itself for the pinned version, and the netstack test binary built
// here against oldGVisor with a copy of go.mod (go test -c -modfile). The
// test process is the Linux peer, as in runScenario: it streams over the
// TAP interface of a network namespace, has stack A export, starts stack B
// on the other version with a fresh attachment to the same TAP interface,
// has it import the table, and checks that every byte came back exactly
// once, with no reset.
//
// On a gVisor bump, set oldGVisor to the version pinned before: the test
// then moves connections between the last two versions, in both
// directions, as an update and its rollback would.
func TestTransferAcrossGVisorVersions(t *testing.T) {
	needRoot(t)
	newBin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pinned := gvisorVersion()
	if pinned == oldGVisor {
		t.Fatalf("go.mod pins gVisor %s, the version this test compares with: set oldGVisor to the previous pin", pinned)
	}
	t0 := time.Now()
	oldBin := buildOldGVisorTestBinary(t)
	t.Logf("built the netstack test binary against gVisor %s in %v", oldGVisor, time.Since(t0).Round(time.Millisecond))
	old, cur := xvBinary{oldBin, oldGVisor}, xvBinary{newBin, pinned}

	t.Run("old-to-new", func(t *testing.T) { runCrossVersion(t, old, cur) })
	t.Run("new-to-old", func(t *testing.T) { runCrossVersion(t, cur, old) })
}

// oldGVisor is the gVisor version the pinned one is tested against, about
// five months older (the module proxy serves it; netstack and its tests
// compile against it unchanged, and tcpinternals.Check passes there).
// Between the two, gVisor's TCP sender gained a field (finSent, a bool),
// the endpoint one (terminateAtRestore), the SACK scoreboard's ranges
// became a generic B-tree, the sender is built by initSender instead of
// newSender, and RSTs are checked as RFC 5961 says; none of the fields
// tcpinternals resolves changed name or type.
const oldGVisor = "v0.0.0-20260122175437-89a5d21be8f0"

// xvBinary is a netstack test binary and the gVisor version it links.
type xvBinary struct {
	path, gvisor string
}

// buildOldGVisorTestBinary builds this package's test binary against
// oldGVisor, with the race detector if this binary has it (so that both
// stack processes run alike), and returns its path. The main module's
// go.mod and go.sum are not touched: the build uses copies in a temporary
// directory (-modfile; its go.sum is the .sum beside it), with -mod=mod so
// that the go command may add the old version's checksums to the copy.
// Nothing is skipped: a failed build fails the test with the go
// command's output.
func buildOldGVisorTestBinary(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("the go command is needed to build the test against gVisor %s: %v", oldGVisor, err)
	}
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	root := filepath.Dir(gomod)
	dir := t.TempDir()
	mod, sum := filepath.Join(dir, "old.mod"), filepath.Join(dir, "old.sum")
	for from, to := range map[string]string{gomod: mod, filepath.Join(root, "go.sum"): sum} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = root
		// A go.work would refuse -modfile; this build is of the main
		// module alone.
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("mod", "edit", "-require=gvisor.dev/gvisor@"+oldGVisor, mod)
	bin := filepath.Join(dir, "netstack-gvisor-old.test")
	args := []string{"test", "-c", "-mod=mod", "-modfile=" + mod, "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	run(append(args, "./netstack")...)
	return bin
}

// xvConns is the number of accepted, streaming connections moved. With the
// dialed connection that makes 4 streams: 0 and 2 keep both directions
// busy up to the freeze (bytes in flight both ways), 1 and the dialed one
// stop reading just before it (their echoes fill A's send queues).
const xvConns = 3

// xvPace spaces each peer's writes (up to 1 KiB each), as runScenario's
// paced runs do. Unpaced, the streams hit a gVisor receive-window stall
// that has nothing to do with the transfer (see docs/conntransfer.md).
const xvPace = time.Millisecond

// runCrossVersion is runScenario with stack A a process of binary from
// and stack B a process of binary to.
func runCrossVersion(t *testing.T, from, to xvBinary) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ns := netns.NewT(t)
	guest := ns.GuestIPv4.Addr()
	start := xvReq{Op: "start", MTU: ns.MTU, IPConfig: fmt.Sprintf("ip=%s,gw=%s", ns.GuestIPv4, ns.HostIPv4.Addr())}

	a := startXVProc(t, ns, "A (gVisor "+from.gvisor+")", from.path)
	if v := a.call(start).GVisor; v != from.gvisor {
		t.Fatalf("stack A runs gVisor %s, want %s", v, from.gvisor)
	}
	ids := a.call(xvReq{Op: "listen", Conns: xvConns})

	const nDgrams = 5
	pc, udpDst, dgrams := queueDatagrams(t, ctx, ns, nDgrams, func() uint64 { return a.call(xvReq{Op: "udpReceived"}).Count })
	peers := newLinuxPeers(t)
	peers.dial(t, ctx, ns, xvConns, xvPace)
	peers.acceptDialed(t, ctx, ns, func(addr string) { a.call(xvReq{Op: "dial", Addr: addr}) })
	streams := peers.streams
	for i, p := range streams {
		if err := waitFor(ctx, fmt.Sprintf("stream %d to echo 32 KiB", i), func() bool { return p.nRecv.Load() >= 32<<10 }); err != nil {
			_, aerr := a.try(xvReq{Op: "appErr"})
			t.Fatalf("%v (sent %d, echoed %d); %v", err, p.nSent.Load(), p.nRecv.Load(), aerr)
		}
	}
	a.call(xvReq{Op: "appErr"})

	// A connection the app does not accept before the transfer.
	late, err := ns.Dial(ctx, "tcp4", netip.AddrPortFrom(guest, tapEchoPort).String())
	if err != nil {
		t.Fatalf("peer dial (late): %v", err)
	}
	defer late.Close()
	if _, err := late.Write([]byte("late hello")); err != nil {
		t.Fatal(err)
	}
	a.call(xvReq{Op: "waitAccept"})
	resetsBefore := snmpTCP(t, ns, "EstabResets")

	// As in runScenario: half the peers stop reading so that their echoes
	// pile up in A's send queues, the others keep both directions busy,
	// and the writers go on, so that unread bytes wait in A's receive
	// queues. Then A quiesces its app, freezes, exports and goes away.
	for i, p := range streams {
		if i%2 == 1 {
			p.paused.Store(true)
		}
	}
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	// A has closed its TAP attachment when it answers (B could not attach
	// otherwise). Its exit is checked after B's import: a race-detector
	// binary sleeps a second at exit, which is no part of the transfer.
	exp := a.call(xvReq{Op: "export"})
	// What Linux has sent and A never acknowledged: from the freeze on A
	// dropped every segment, so this is the peer-to-molt data in flight
	// across the transfer (sent before or after the freeze), which only B
	// can acknowledge, once Linux retransmits it.
	peerSegs, peerBytes := peerUnacked(t, streams)

	// The test process reads the table with its own conntable, which is
	// the point of the format: whatever version wrote it.
	table, err := conntable.Decode(exp.Table)
	if err != nil {
		t.Fatalf("Decode the table of gVisor %s: %v", from.gvisor, err)
	}
	var sendBytes, recvBytes, streamUnread, inflight int
	for _, c := range table.TCP {
		sendBytes += len(c.SendData)
		recvBytes += len(c.RecvData)
		if c.Flags&conntable.TCPUnaccepted == 0 {
			streamUnread += len(c.RecvData)
		}
		inflight += int(c.InFlight())
	}
	t.Logf("export on gVisor %s: %d sockets, %d B encoded, %v; send queues %d B (%d in flight), unread %d B (%d of streams)",
		from.gvisor, table.Sockets(), len(exp.Table), exp.Dur, sendBytes, inflight, recvBytes, streamUnread)
	var queued [][]byte
	for _, u := range table.UDP {
		if u.ID == uint32(ids.UDPID) {
			for _, d := range u.Queued {
				queued = append(queued, bytes.Clone(d.Payload))
			}
		}
	}
	if !sameDatagrams(queued, dgrams) {
		t.Errorf("the export queued %d datagrams, not the %d sent", len(queued), len(dgrams))
	}
	if want := xvConns + 2; len(table.TCP) != want {
		t.Errorf("exported %d TCP connections, want %d (accepted, dialed, un-accepted)", len(table.TCP), want)
	}
	t.Logf("Linux has %d segments (about %d B) in flight that A never acknowledged", peerSegs, peerBytes)
	if inflight == 0 || peerSegs == 0 || sendBytes == 0 || streamUnread == 0 {
		t.Errorf("the export carried %d bytes of send queues (%d in flight) and %d unread bytes of streams, Linux had %d segments in flight: the scenario did not load both directions",
			sendBytes, inflight, streamUnread, peerSegs)
	}

	b := startXVProc(t, ns, "B (gVisor "+to.gvisor+")", to.path)
	gated := start
	gated.Gated = true
	if v := b.call(gated).GVisor; v != to.gvisor {
		t.Fatalf("stack B runs gVisor %s, want %s", v, to.gvisor)
	}
	imp := b.call(xvReq{Op: "import", Table: exp.Table, State: exp.State})
	t.Logf("import on gVisor %s: %d sockets in %v; %v from the export request to GoLive (with B's process start)", to.gvisor, table.Sockets(), imp.Dur, time.Since(t0))
	a.wait()
	for _, p := range streams {
		p.paused.Store(false)
	}

	// The un-accepted connection is the next Accept's, with its data.
	b.call(xvReq{Op: "acceptLate", Want: []byte("late hello"), Data: []byte("late reply")})
	lbuf := make([]byte, 64)
	late.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadAtLeast(late, lbuf, len("late reply")); err != nil || string(lbuf[:n]) != "late reply" {
		t.Fatalf("peer read on late connection %q, %v", lbuf[:n], err)
	}

	// The queued datagrams, in the order A had queued them, from their
	// sender; then the socket still works both ways (a few tries each:
	// UDP over a loaded TAP queue may lose one).
	got := b.call(xvReq{Op: "udpRead", N: len(queued), Timeout: 10 * time.Second}).Dgrams
	for i, d := range got {
		if !bytes.Equal(d.Payload, queued[i]) || d.FromPort != pc.LocalAddr().(*net.UDPAddr).Port {
			t.Fatalf("datagram %d after import: %q from port %d; want %q from %v", i, d.Payload, d.FromPort, queued[i], pc.LocalAddr())
		}
	}
	if err := udpTry(func() error {
		_, err := b.try(xvReq{Op: "udpWrite", Data: []byte("pong"), Addr: pc.LocalAddr().String()})
		return err
	}, pc, "pong"); err != nil {
		t.Fatalf("B -> peer over the imported UDP socket: %v", err)
	}
	var pingErr error
	for i := 0; i < 10; i++ {
		if _, err := pc.WriteTo([]byte("ping"), udpDst); err != nil {
			t.Fatal(err)
		}
		r, err := b.try(xvReq{Op: "udpRead", N: 1, Timeout: 300 * time.Millisecond})
		if pingErr = err; err == nil && string(r.Dgrams[0].Payload) != "ping" {
			pingErr = fmt.Errorf("read %q", r.Dgrams[0].Payload)
		}
		if pingErr == nil {
			break
		}
	}
	if pingErr != nil {
		t.Fatalf("peer -> B over the imported UDP socket: %v", pingErr)
	}

	// The streams go on on the new stack for a while, then end; every
	// byte must have come back exactly once.
	describe := func(p *peerStream) string {
		port := uint16(p.c.LocalAddr().(*net.TCPAddr).Port)
		ss, _ := ns.Command(context.Background(), "ss", "-tin", fmt.Sprintf("sport = :%d or dport = :%d", port, port)).CombinedOutput()
		d, err := b.try(xvReq{Op: "debug", Port: port})
		return fmt.Sprintf("B: %s%v; Linux:\n%s", d.Text, err, ss)
	}
	before := make([]int64, len(streams))
	for i, p := range streams {
		before[i] = p.nRecv.Load()
	}
	for i, p := range streams {
		if err := waitFor(ctx, fmt.Sprintf("stream %d to continue after the transfer", i), func() bool { return p.nRecv.Load() >= before[i]+16<<10 }); err != nil {
			t.Fatalf("%v: sent %d, echoed %d; %s", err, p.nSent.Load(), p.nRecv.Load(), describe(p))
		}
	}
	peers.finish()
	for i, p := range streams {
		if err := p.check(ctx); err != nil {
			t.Errorf("stream %d: %v; %s", i, err, describe(p))
		}
	}
	if _, err := b.try(xvReq{Op: "appErr"}); err != nil {
		t.Error(err)
	}
	if d := snmpTCP(t, ns, "EstabResets") - resetsBefore; d != 0 {
		t.Errorf("Linux counted %d resets of established connections", d)
	}
	b.call(xvReq{Op: "exit"})
	b.wait()
}

// peerUnacked sums, over the Linux side of the streams, the segments sent
// and not yet acknowledged (tcpi_unacked) and an estimate of their bytes
// (bytes sent, less retransmitted, less acknowledged).
func peerUnacked(t *testing.T, streams []*peerStream) (segs int, bytes int64) {
	t.Helper()
	for _, p := range streams {
		rc, err := p.c.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var info *unix.TCPInfo
		var ierr error
		if err := rc.Control(func(fd uintptr) {
			info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		}); err != nil || ierr != nil {
			t.Fatalf("TCP_INFO: %v %v", err, ierr)
		}
		segs += int(info.Unacked)
		bytes += int64(info.Bytes_sent) - int64(info.Bytes_retrans) - int64(info.Bytes_acked)
	}
	return segs, bytes
}
