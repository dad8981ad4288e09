package netstack

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/molt-os/molt/netstack/conntable"
	"github.com/molt-os/molt/netstack/internal/taplink"
	"github.com/molt-os/molt/netstack/link"
	"github.com/molt-os/molt/qemu/netns"
)

// This file is the stack-process half of TestTransferAcrossGVisorVersions
// (conntransfer_xversion_test.go). Two gVisor versions cannot be linked
// into one Go binary, so each molt stack of that test runs in a process of
// its own: a re-executed netstack test binary, built against one gVisor
// version or the other, running only TestXVersionChild. The test process
// drives it over a Unix socket with gob-encoded requests (xvReq/xvResp)
// and hands it the TAP interface as an open file. Being the netstack test
// binary, the stack process reuses the echo app and the stack set-up of
// the in-process TAP tests, so both runs exercise the same app code.

const (
	// xvChildEnv marks a stack process: TestXVersionChild does nothing
	// without it.
	xvChildEnv = "MOLT_XVERSION_CHILD"
	// File descriptors of the stack process (ExtraFiles 0 and 1).
	xvTAPFD = 3 // the attached TAP interface (taplink.OpenFile)
	xvCtlFD = 4 // the control socket
	// xvCallTimeout bounds every request, so that a hung stack process
	// fails the test instead of hanging it.
	xvCallTimeout = 60 * time.Second
)

// xvReq is one request to a stack process. Op selects what it does; the
// other fields are its arguments, named after the ops that use them.
type xvReq struct {
	Op string

	Gated    bool   // start: Config.StartGated (the import target)
	MTU      int    // start
	IPConfig string // start: "ip=...,gw=..."

	Conns int // listen: connections the echo app accepts

	Addr string // dial: a Linux listener; udpWrite: the destination

	N       int           // udpRead: datagrams to read
	Timeout time.Duration // udpRead: per datagram

	Want []byte // acceptLate: what the accepted connection must carry
	Data []byte // acceptLate: the reply; udpWrite: the datagram

	Table []byte   // import: the encoded conntable
	State appState // import: the echo app's saved state

	Port uint16 // debug: the remote port of the connections to describe
}

// xvResp is a stack process's answer. Err is empty on success.
type xvResp struct {
	Err string

	GVisor string // start: the gVisor version the process is built with

	LnID, UDPID SocketID // listen

	Count uint64 // udpReceived: UDP packets the stack has received

	Table []byte        // export: the encoded conntable
	State appState      // export: the echo app's state at the quiesce
	Dur   time.Duration // export: Freeze to encoded; import: ImportConns

	Dgrams []xvDgram // udpRead

	Text string // debug
}

// xvDgram is a datagram read by a stack process.
type xvDgram struct {
	Payload  []byte
	FromPort int
}

// gvisorVersion returns the version of gvisor.dev/gvisor this binary was
// built with, so that the test can check that the two stack processes
// really run different versions (and the old one is the one it asked for).
// Test binaries carry no module list in their build info, so the version
// is read from the source path the compiler recorded for a gVisor function:
// ".../gvisor.dev/gvisor@<version>/pkg/...", with or without -trimpath.
func gvisorVersion() string {
	pc := reflect.ValueOf(tcp.NewProtocol).Pointer()
	file, _ := runtime.FuncForPC(pc).FileLine(pc)
	const mod = "gvisor.dev/gvisor@"
	_, rest, ok := strings.Cut(file, mod)
	v, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return fmt.Sprintf("(no gVisor version in the source path %q)", file)
	}
	return v
}

// TestXVersionChild is the stack process of TestTransferAcrossGVisorVersions.
// Run by `go test` it does nothing.
func TestXVersionChild(t *testing.T) {
	if os.Getenv(xvChildEnv) != "1" {
		return // not a stack process: nothing to test on its own
	}
	f := os.NewFile(xvCtlFD, "control")
	ctl, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	defer ctl.Close()
	c := &xvChild{t: t}
	defer c.close() // also when the test process goes away mid-run
	dec, enc := gob.NewDecoder(ctl), gob.NewEncoder(ctl)
	for {
		var req xvReq
		if err := dec.Decode(&req); err != nil {
			t.Fatalf("read request: %v", err)
		}
		resp, err := c.do(req)
		if err != nil {
			resp.Err = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			t.Fatalf("send answer to %s: %v", req.Op, err)
		}
		// After the export the stack is gone (as the old kernel is after
		// the jump); after exit the test is done.
		if req.Op == "export" || req.Op == "exit" {
			return
		}
	}
}

// xvChild is the state of a stack process.
type xvChild struct {
	t           *testing.T
	ts          *tapStack
	app         *echoApp
	lnID, udpID SocketID
}

// close shuts the stack down, if there is one: a frozen (exported) stack
// sends nothing, its gate discards the resets.
func (c *xvChild) close() {
	if c.ts != nil {
		c.ts.close()
		c.ts = nil
	}
}

func (c *xvChild) do(req xvReq) (xvResp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp xvResp
	if req.Op != "start" && c.ts == nil {
		return resp, fmt.Errorf("%s: no stack (start first)", req.Op)
	}
	switch req.Op {
	case "start":
		ts, err := c.start(ctx, req)
		if err != nil {
			return resp, err
		}
		c.ts = ts
		resp.GVisor = gvisorVersion()

	case "listen": // the source stack's sockets and echo app, as runScenario's
		lnID, _, err := c.ts.st.Listen("tcp", fmt.Sprintf(":%d", tapEchoPort))
		if err != nil {
			return resp, err
		}
		udpID, _, err := c.ts.st.ListenPacket("udp", fmt.Sprintf(":%d", tapUDPPort))
		if err != nil {
			return resp, err
		}
		c.lnID, c.udpID = lnID, udpID
		c.app = newEchoApp(c.t, c.ts.st, appState{Listener: lnID, UDP: udpID})
		c.app.accept(req.Conns)
		resp.LnID, resp.UDPID = lnID, udpID

	case "udpReceived":
		resp.Count = c.ts.st.s.Stats().UDP.PacketsReceived.Value()

	case "dial": // a connection the app dials itself: no listener on import
		id, conn, err := c.ts.st.Dial(ctx, "tcp4", req.Addr)
		if err != nil {
			return resp, fmt.Errorf("Dial %s: %w", req.Addr, err)
		}
		c.app.adopt(id, conn)

	case "appErr":
		if c.app != nil {
			if err := c.app.firstErr(); err != nil {
				return resp, fmt.Errorf("app: %w", err)
			}
		}

	case "waitAccept": // the late connection is in the accept queue
		v, _ := c.ts.st.Lookup(c.lnID)
		if err := waitFor(ctx, "late connection in the accept queue", func() bool {
			return v.(*Listener).ep.Readiness(waiter.ReadableEvents) != 0
		}); err != nil {
			return resp, err
		}

	case "export":
		return c.export(ctx)

	case "import":
		return c.importTable(ctx, req)

	case "acceptLate":
		v, ok := c.ts.st.Lookup(c.lnID)
		if !ok {
			return resp, fmt.Errorf("listener %d missing after import", c.lnID)
		}
		lc, err := v.(*Listener).Accept()
		if err != nil {
			return resp, fmt.Errorf("Accept after import: %w", err)
		}
		buf := make([]byte, 64)
		lc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.ReadAtLeast(lc, buf, len(req.Want))
		if err != nil || !bytes.Equal(buf[:n], req.Want) {
			return resp, fmt.Errorf("late connection read %q, %v; want %q", buf[:n], err, req.Want)
		}
		if _, err := lc.Write(req.Data); err != nil {
			return resp, fmt.Errorf("late connection write: %w", err)
		}

	case "udpRead":
		pc, err := c.packetConn()
		if err != nil {
			return resp, err
		}
		buf := make([]byte, 2048)
		for i := 0; i < req.N; i++ {
			pc.SetReadDeadline(time.Now().Add(req.Timeout))
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return resp, fmt.Errorf("datagram %d of %d: %w", i, req.N, err)
			}
			resp.Dgrams = append(resp.Dgrams, xvDgram{Payload: bytes.Clone(buf[:n]), FromPort: from.(*net.UDPAddr).Port})
		}

	case "udpWrite":
		pc, err := c.packetConn()
		if err != nil {
			return resp, err
		}
		to, err := net.ResolveUDPAddr("udp4", req.Addr)
		if err != nil {
			return resp, err
		}
		if _, err := pc.WriteTo(req.Data, to); err != nil {
			return resp, err
		}

	case "debug":
		resp.Text = debugConns(c.ts.st, req.Port)

	case "exit":
		c.close()

	default:
		return resp, fmt.Errorf("unknown op %q", req.Op)
	}
	return resp, nil
}

// start attaches a stack to the TAP file the test process passed, with
// the MAC and address of the in-process TAP tests.
func (c *xvChild) start(ctx context.Context, req xvReq) (*tapStack, error) {
	// os/exec hands ExtraFiles over in blocking mode (File.Fd); taplink
	// wants the fd non-blocking so that reads park in the runtime poller
	// and Close wakes them. os.NewFile sees the flag and uses the poller.
	if err := unix.SetNonblock(xvTAPFD, true); err != nil {
		return nil, fmt.Errorf("TAP fd: %w", err)
	}
	dev, err := taplink.New(os.NewFile(xvTAPFD, "tap"), tapMAC, req.MTU)
	if err != nil {
		return nil, err
	}
	st, err := New(Config{SkipDAD: true, StartGated: req.Gated, Logf: c.t.Logf})
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("New: %w", err)
	}
	ts := &tapStack{st: st, dev: dev}
	if ts.ep, err = link.New(dev); err != nil {
		ts.close()
		return nil, fmt.Errorf("link.New: %w", err)
	}
	if err := st.AttachNIC(ts.ep, nil); err != nil {
		ts.close()
		return nil, fmt.Errorf("AttachNIC: %w", err)
	}
	ipc, err := ParseIPConfig(req.IPConfig)
	if err != nil {
		ts.close()
		return nil, err
	}
	if err := st.Configure(ctx, ipc); err != nil {
		ts.close()
		return nil, fmt.Errorf("Configure: %w", err)
	}
	return ts, nil
}

// export quiesces the app, freezes and exports, encodes, and drops the
// stack without a word on the wire, as the old kernel does before the jump.
func (c *xvChild) export(ctx context.Context) (xvResp, error) {
	var resp xvResp
	if c.app == nil {
		return resp, errors.New("export: no app")
	}
	resp.State = c.app.quiesce()
	if err := c.app.firstErr(); err != nil {
		return resp, fmt.Errorf("app before the export: %w", err)
	}
	// The peers write on while the app is stopped: wait (briefly, so
	// that the bytes the app sent last are still in flight) until some
	// stream has bytes the app has not read, so that the table carries
	// unread data of a live stream and not only of the un-accepted
	// connection. If none come, the test process reports it.
	wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	waitFor(wctx, "unread stream bytes", func() bool { return c.unreadBytes() > 0 })
	wcancel()
	t0 := time.Now()
	if err := c.ts.st.Freeze(); err != nil {
		return resp, fmt.Errorf("Freeze: %w", err)
	}
	table, err := c.ts.st.ExportConns(ctx)
	if err != nil {
		return resp, fmt.Errorf("ExportConns: %w", err)
	}
	if resp.Table, err = table.Encode(); err != nil {
		return resp, fmt.Errorf("Encode: %w", err)
	}
	resp.Dur = time.Since(t0)
	c.close()
	return resp, nil
}

// importTable rebuilds the exported sockets in a gated stack, goes live
// and resumes the echo app from its saved state.
func (c *xvChild) importTable(ctx context.Context, req xvReq) (xvResp, error) {
	var resp xvResp
	table, err := conntable.Decode(req.Table)
	if err != nil {
		return resp, fmt.Errorf("Decode: %w", err)
	}
	t0 := time.Now()
	if err := c.ts.st.ImportConns(ctx, table); err != nil {
		return resp, fmt.Errorf("ImportConns: %w", err)
	}
	resp.Dur = time.Since(t0)
	if err := c.ts.st.GoLive(); err != nil {
		return resp, fmt.Errorf("GoLive: %w", err)
	}
	if got := c.ts.st.TableState().NextID; got != SocketID(table.NextID) {
		return resp, fmt.Errorf("NextID after import %d, want %d", got, table.NextID)
	}
	c.lnID, c.udpID = req.State.Listener, req.State.UDP
	c.app = newEchoApp(c.t, c.ts.st, req.State)
	c.app.resume()
	return resp, nil
}

// unreadBytes sums the receive queues of the stack's table connections
// (the un-accepted connection is not in the table).
func (c *xvChild) unreadBytes() int {
	n := 0
	for _, te := range tcpConns(c.ts.st) {
		if q, err := te.GetSockOptInt(tcpip.ReceiveQueueSizeOption); err == nil {
			n += q
		}
	}
	return n
}

func (c *xvChild) packetConn() (*PacketConn, error) {
	v, ok := c.ts.st.Lookup(c.udpID)
	if !ok {
		return nil, fmt.Errorf("UDP socket %d missing", c.udpID)
	}
	pc, ok := v.(*PacketConn)
	if !ok {
		return nil, fmt.Errorf("Lookup(%d) = %T, want *PacketConn", c.udpID, v)
	}
	return pc, nil
}

// xvProc is the test process's handle on a stack process.
type xvProc struct {
	t    *testing.T
	name string // for messages: "A (gVisor v0.0.0-...)"
	cmd  *exec.Cmd
	ctl  net.Conn
	enc  *gob.Encoder
	dec  *gob.Decoder
	out  *lockedBuffer // the process's test output (-test.v)

	waitOnce sync.Once
	waitErr  error
}

// startXVProc starts bin as a stack process with a fresh attachment to the
// namespace's TAP interface (the previous stack process has detached, as a
// replaced kernel has, so Linux saw the carrier drop).
func startXVProc(t *testing.T, ns *netns.NS, name, bin string) *xvProc {
	t.Helper()
	var tap *os.File
	if err := ns.Do(func() (err error) {
		tap, err = taplink.OpenFile(ns.TAP)
		return err
	}); err != nil {
		t.Fatalf("attach to TAP %s for %s: %v", ns.TAP, name, err)
	}
	defer tap.Close() // the stack process has its own copy
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control (child)")
	defer theirs.Close()
	ctl, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := &xvProc{t: t, name: name, ctl: ctl, enc: gob.NewEncoder(ctl), dec: gob.NewDecoder(ctl), out: &lockedBuffer{}}
	p.cmd = exec.Command(bin, "-test.run=^TestXVersionChild$", "-test.count=1", "-test.v", "-test.timeout=5m")
	p.cmd.Env = append(os.Environ(), xvChildEnv+"=1")
	p.cmd.ExtraFiles = []*os.File{tap, theirs} // fds 3 and 4
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		ctl.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Normally the process has exited (export or exit); after a
		// failure it may not have: end it.
		p.ctl.Close()
		select {
		case <-p.exited():
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited()
		}
		if t.Failed() {
			t.Logf("output of stack process %s:\n%s", p.name, p.out.String())
		}
	})
	return p
}

// exited returns a channel closed when the process has exited.
func (p *xvProc) exited() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		p.waitOnce.Do(func() { p.waitErr = p.cmd.Wait() })
		close(ch)
	}()
	return ch
}

// wait waits for the process to exit on its own (after export or exit)
// and fails the test unless its test run passed.
func (p *xvProc) wait() {
	p.t.Helper()
	select {
	case <-p.exited():
	case <-time.After(30 * time.Second):
		p.t.Fatalf("stack process %s did not exit", p.name)
	}
	if p.waitErr != nil || !strings.Contains(p.out.String(), "\nPASS") {
		p.t.Fatalf("stack process %s: %v", p.name, p.waitErr)
	}
}

// try sends req and returns the answer, or the transport's or the
// process's error.
func (p *xvProc) try(req xvReq) (xvResp, error) {
	var resp xvResp
	p.ctl.SetDeadline(time.Now().Add(xvCallTimeout))
	if err := p.enc.Encode(req); err != nil {
		return resp, fmt.Errorf("%s: send %s: %w", p.name, req.Op, err)
	}
	if err := p.dec.Decode(&resp); err != nil {
		return resp, fmt.Errorf("%s: answer to %s: %w", p.name, req.Op, err)
	}
	if resp.Err != "" {
		return resp, fmt.Errorf("%s: %s: %s", p.name, req.Op, resp.Err)
	}
	return resp, nil
}

// call is try that fails the test on an error.
func (p *xvProc) call(req xvReq) xvResp {
	p.t.Helper()
	resp, err := p.try(req)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp
}

// lockedBuffer is a bytes.Buffer for a process's stdout and stderr.
type lockedBuffer struct {
	mu sync.Mutex
	// +checklocks:mu
	b bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
