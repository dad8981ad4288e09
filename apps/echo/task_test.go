package echo

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/molt-os/molt/internal/streamcheck"
	"github.com/molt-os/molt/updater/handoff"
	"github.com/molt-os/molt/updater/task"
)

type echoKernel struct {
	tab  *task.Table
	echo *Task
}

func newEchoKernel(t *testing.T, sm *task.SocketMap, l net.Listener, pc net.PacketConn) *echoKernel {
	t.Helper()
	et, err := NewTask(TaskConfig{
		Config:    Config{BufferSize: 1000, Logf: t.Logf},
		Sockets:   sm,
		ListenTCP: func() (net.Listener, error) { sm.ID(l); return l, nil },
		ListenUDP: func() (net.PacketConn, error) { sm.ID(pc); return pc, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	tab := task.NewTable()
	if err := tab.Register(TaskSpec(), et); err != nil {
		t.Fatal(err)
	}
	return &echoKernel{tab: tab, echo: et}
}

// handover moves the echo task to a new kernel through a handoff region,
// keeping the same live sockets (looked up by ID in sm).
func handover(t *testing.T, old *echoKernel, sm *task.SocketMap, l net.Listener, pc net.PacketConn) *echoKernel {
	t.Helper()
	if _, err := old.tab.QuiesceAll(context.Background(), 2*time.Second); err != nil {
		t.Fatalf("QuiesceAll: %v", err)
	}
	reg := handoff.Builtin()
	task.RegisterSections(reg)
	enc, _ := reg.NewEncoder(make([]byte, 1<<20), handoff.Header{Generation: 1})
	if _, err := old.tab.Save(enc, nil); err != nil {
		t.Fatalf("Save: %v", err)
	}
	region, _ := enc.Finish()
	if err := old.echo.Server().Detach(); err != nil {
		t.Fatal(err)
	}
	r, err := handoff.Decode(region)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := reg.DecodeAll(r)
	nk := newEchoKernel(t, sm, l, pc)
	if rep := nk.tab.Restore(ds); rep.Err != nil || rep.Restored != 1 {
		t.Fatalf("Restore: %+v", rep)
	}
	if _, err := nk.tab.Start(); err != nil {
		t.Fatal(err)
	}
	return nk
}

// TestEchoHandoverUnderLoad: 8 clients stream checksummed data through echo
// while it is handed over 4 times: no byte is lost, reordered or
// duplicated, and UDP keeps answering.
func TestEchoHandoverUnderLoad(t *testing.T) {
	sm := task.NewSocketMap()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	k := newEchoKernel(t, sm, l, pc)
	if _, err := k.tab.Start(); err != nil {
		t.Fatal(err)
	}
	cs := make([]net.Conn, 8)
	for i := range cs {
		if cs[i], err = net.Dial("tcp", l.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer cs[i].Close()
	}
	done := make(chan []error)
	go func() { done <- streamcheck.EchoAll(cs, 4<<20, 7) }()
	for range 4 {
		time.Sleep(30 * time.Millisecond)
		k = handover(t, k, sm, l, pc)
	}
	for _, err := range <-done {
		if err != nil {
			t.Error(err)
		}
	}
	if s := k.echo.Server().Stats(); s.Errors != 0 {
		t.Errorf("Stats = %+v", s)
	}
	u, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := streamcheck.Datagrams(u, 20, time.Second); err != nil {
		t.Error(err)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := streamcheck.Echo(c, 1<<16, 1); err != nil {
		t.Errorf("a new connection after the handovers: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k.echo.Server().Shutdown(ctx)
}

// TestEchoQuiesceAbortResumes: an aborted update leaves echo serving the
// same connections.
func TestEchoQuiesceAbortResumes(t *testing.T) {
	sm := task.NewSocketMap()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc.Close()
	k := newEchoKernel(t, sm, l, pc)
	k.tab.Start()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error)
	go func() { done <- streamcheck.Echo(c, 2<<20, 3) }()
	for range 5 {
		time.Sleep(10 * time.Millisecond)
		if _, err := k.tab.QuiesceAll(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := k.tab.ResumeAll(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k.echo.Server().Shutdown(ctx)
}

func TestEchoStateErrors(t *testing.T) {
	good := (&State{Listeners: []task.SocketID{1}, UDP: []task.SocketID{2}, Conns: []ConnRecord{{ID: 3, Pending: []byte("abc")}, {ID: 4}}}).Append(nil)
	st, err := DecodeState(good)
	if err != nil || len(st.Conns) != 2 || string(st.Conns[0].Pending) != "abc" || st.UDP[0] != 2 {
		t.Fatalf("round trip: %+v, %v", st, err)
	}
	mut := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for name, p := range map[string][]byte{
		"short": good[:10], "magic": mut(0, 'x'), "count": mut(16, 9), "reserved": mut(20, 1),
		"zero ID": mut(24, 0), "repeated": mut(28, 1), "pending": mut(36, 99),
		"trailing": append(bytes.Clone(good), 1), "truncated": good[:len(good)-1],
	} {
		if _, err := DecodeState(p); !errors.Is(err, ErrState) {
			t.Errorf("%s: %v; want ErrState", name, err)
		}
	}
}

// FuzzEchoState: the echo task-state decoder never panics, fails only
// with ErrState, and what it accepts re-encodes to the same bytes.
func FuzzEchoState(f *testing.F) {
	f.Add((&State{Listeners: []task.SocketID{1}, UDP: []task.SocketID{2}, Conns: []ConnRecord{{ID: 3, Pending: []byte("abc")}}}).Append(nil))
	f.Add((&State{}).Append(nil))
	f.Fuzz(func(t *testing.T, p []byte) {
		st, err := DecodeState(p)
		if err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatal(err)
			}
			return
		}
		if again := st.Append(nil); !bytes.Equal(again, p) {
			t.Fatalf("re-encoding differs: %x vs %x", again, p)
		}
	})
}

func TestManifestLine(t *testing.T) {
	if got := task.ManifestLine(TaskSpec()); got != ManifestLine {
		t.Errorf("ManifestLine = %q; the spec says %q", ManifestLine, got)
	}
}
