package kv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/molt-os/molt/updater/handoff"
	"github.com/molt-os/molt/updater/task"
)

// The task tests run the kv task over real TCP on loopback. A handover
// does what a kernel update does to the task: quiesce, save into a handoff
// region, restore into a fresh Task in the "new kernel", and resume on the
// SAME live net.Conn objects, which a task.SocketMap hands back by ID (as
// the netstack's table would).

type kvKernel struct {
	tab *task.Table
	kv  *Task
	cfg TaskConfig // what handover configures the next kernel's task with
}

func newKVKernel(t *testing.T, sm *task.SocketMap, l net.Listener, schema uint32) *kvKernel {
	t.Helper()
	return newKVKernelWith(t, sm, l, TaskConfig{Schema: schema})
}

// newKVKernelWith is newKVKernel with store and server settings (limits,
// clock); the socket table, Listen, and a Logf and no idle timeout
// where unset, are filled in.
func newKVKernelWith(t *testing.T, sm *task.SocketMap, l net.Listener, cfg TaskConfig) *kvKernel {
	t.Helper()
	if cfg.Server.Logf == nil {
		cfg.Server.Logf = t.Logf
	}
	if cfg.Server.IdleTimeout == 0 {
		cfg.Server.IdleTimeout = -1
	}
	cfg.Sockets = sm
	cfg.Listen = func() (net.Listener, error) { sm.ID(l); return l, nil }
	kt, err := NewTask(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tab := task.NewTable()
	if err := tab.Register(kt.Spec(), kt); err != nil {
		t.Fatal(err)
	}
	return &kvKernel{tab: tab, kv: kt, cfg: cfg}
}

// handover moves the kv task from old to a new kernel through a handoff
// region and returns the new kernel, serving.
func handover(t *testing.T, old *kvKernel, sm *task.SocketMap, l net.Listener, schema uint32, targets task.Targets) (*kvKernel, *task.RestoreReport) {
	t.Helper()
	if _, err := old.tab.QuiesceAll(context.Background(), 2*time.Second); err != nil {
		t.Fatalf("QuiesceAll: %v", err)
	}
	reg := handoff.Builtin()
	if err := task.RegisterSections(reg); err != nil {
		t.Fatal(err)
	}
	enc, err := reg.NewEncoder(make([]byte, 8<<20), handoff.Header{Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.tab.Save(enc, targets); err != nil {
		t.Fatalf("Save: %v", err)
	}
	region, err := enc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	// The old kernel stops here.
	if err := old.kv.Server().Detach(); err != nil {
		t.Fatal(err)
	}
	r, err := handoff.Decode(region)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := reg.DecodeAll(r)
	if err != nil {
		t.Fatal(err)
	}
	cfg := old.cfg
	cfg.Schema = schema
	nk := newKVKernelWith(t, sm, l, cfg)
	rep := nk.tab.Restore(ds)
	if rep.Err != nil || rep.Restored != 1 {
		t.Fatalf("Restore: %+v", rep)
	}
	if _, err := nk.tab.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return nk, rep
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// pump is one client: it runs requests whose replies it can predict
// exactly (a private counter, private keys) and fails on anything lost,
// duplicated or wrong. Each request is written in two pieces with a pause
// between, so quiesces catch connections with half a request received.
func pump(ctx context.Context, addr string, id int, done *atomic.Int64) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	readLine := func() (string, error) {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		s, err := br.ReadString('\n')
		return strings.TrimSuffix(s, "\r\n"), err
	}
	send := func(s string) error {
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		cut := len(s) / 2
		if _, err := io.WriteString(nc, s[:cut]); err != nil {
			return err
		}
		time.Sleep(200 * time.Microsecond)
		_, err := io.WriteString(nc, s[cut:])
		return err
	}
	ctr := fmt.Sprintf("ctr%d", id)
	if err := send("set " + ctr + " 0 0 1\r\n0\r\n"); err != nil {
		return err
	}
	if l, err := readLine(); l != "STORED" {
		return fmt.Errorf("client %d: set counter: %q, %v", id, l, err)
	}
	for i := 1; ctx.Err() == nil; i++ {
		key, val := fmt.Sprintf("k%d.%d", id, i), strings.Repeat(fmt.Sprintf("%d-%d;", id, i), 1+i%40)
		// One write: a set with its data block, an incr, a get of the
		// set key (pipelined: three replies).
		req := fmt.Sprintf("set %s %d 0 %d\r\n%s\r\nincr %s 1\r\nget %s\r\n", key, i, len(val), val, ctr, key)
		if err := send(req); err != nil {
			return fmt.Errorf("client %d request %d: %w", id, i, err)
		}
		want := []string{"STORED", fmt.Sprint(i), fmt.Sprintf("VALUE %s %d %d", key, i, len(val)), val, "END"}
		for _, w := range want {
			l, err := readLine()
			if err != nil || l != w {
				return fmt.Errorf("client %d request %d: reply %q, %v; want %q", id, i, l, err, w)
			}
		}
		done.Add(1)
	}
	return nil
}

// TestKVHandoverUnderLoad: clients pump requests while the task is handed
// over five times, alternating the schema (v2, v1, v2, ...): no request is
// lost or duplicated (each client's counter matches its count of replies),
// every reply is right, and the store holds every key afterwards.
func TestKVHandoverUnderLoad(t *testing.T) {
	sm := task.NewSocketMap()
	l := listen(t)
	k := newKVKernel(t, sm, l, 0)
	if _, err := k.tab.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	const clients = 6
	var done atomic.Int64
	errs := make(chan error, clients)
	for i := range clients {
		go func() { errs <- pump(ctx, l.Addr().String(), i, &done) }()
	}
	// The images updated to: a "v1 image" (writes and reads v1 only)
	// and v2 ones, so the state goes v2→v1, v1→v2, v2→v2, v2→v1, v1→v2.
	prev := uint32(2)
	for hop, schema := range []uint32{1, 2, 2, 1, 2} {
		for start := done.Load(); done.Load() < start+30; {
			time.Sleep(time.Millisecond)
		}
		var targets task.Targets
		if schema == 1 {
			targets = task.Targets{TaskName: {Oldest: 1, Newest: 1}}
		}
		var rep *task.RestoreReport
		k, rep = handover(t, k, sm, l, schema, targets)
		if got, want := rep.Tasks[0].FromVersion, min(prev, schema); got != want {
			t.Errorf("hop %d: restored from v%d; want v%d", hop, got, want)
		}
		prev = schema
		if len(rep.Tasks[0].Sockets) < clients+1 {
			t.Errorf("hop %d: the process table lists %d sockets; want the listener and %d connections", hop, len(rep.Tasks[0].Sockets), clients)
		}
	}
	for start := done.Load(); done.Load() < start+30; {
		time.Sleep(time.Millisecond)
	}
	cancel()
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d requests across 5 handovers", done.Load())
	st := k.kv.Store()
	for i := range clients {
		it, ok := st.Get(fmt.Sprintf("ctr%d", i))
		if !ok {
			t.Fatalf("counter %d lost", i)
		}
		n := 0
		fmt.Sscan(string(it.Value), &n)
		for j := 1; j <= n; j++ {
			if _, ok := st.Get(fmt.Sprintf("k%d.%d", i, j)); !ok {
				t.Fatalf("key k%d.%d lost", i, j)
			}
		}
	}
	k.kv.Server().Close()
}

// TestKVQuiesceAbort: a connection in the middle of a long multi-get line
// keeps the kv task from reaching a safe point; the update is aborted at
// the deadline, the error names kv, and every connection is served again,
// the stuck one included.
func TestKVQuiesceAbort(t *testing.T) {
	sm := task.NewSocketMap()
	l := listen(t)
	k := newKVKernel(t, sm, l, 0)
	k.tab.Start()
	defer k.kv.Server().Close()
	addr := l.Addr().String()
	busy, other := dial(t, addr), dial(t, addr)
	busy.expect("set a 0 0 1\r\nA\r\n", "STORED")
	other.expect("set b 0 0 1\r\nB\r\n", "STORED")
	// A get line longer than the read buffer, without its end yet.
	busy.send("get a " + strings.Repeat("x ", 5000))
	time.Sleep(20 * time.Millisecond)
	rep, err := k.tab.QuiesceAll(context.Background(), 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `task "kv": quiesce: deadline 100ms exceeded`) {
		t.Fatalf("QuiesceAll = %v; want the kv deadline error", err)
	}
	if !rep.Aborted {
		t.Errorf("report = %+v", rep)
	}
	other.expect("get b\r\n", "VALUE b 0 1", "B", "END")
	busy.send("\r\n")
	if got := busy.line(); got != "VALUE a 0 1" {
		t.Fatalf("the stuck get's reply = %q", got)
	}
	busy.line()
	if got := busy.line(); got != "END" {
		t.Fatalf("got %q; want END", got)
	}
	busy.expect("get b\r\n", "VALUE b 0 1", "B", "END")
	// New connections are accepted again.
	dial(t, addr).expect("get a\r\n", "VALUE a 0 1", "A", "END")
	// And a later update goes through.
	if _, err := k.tab.QuiesceAll(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	k.tab.ResumeAll()
	other.expect("get b\r\n", "VALUE b 0 1", "B", "END")
}

// TestKVHandoverKeepsStreamState: what a connection had received but not
// executed (half a command line, a command line and half its data block,
// a refused block still to skip), and replies a client has not read, all
// survive a handover.
func TestKVHandoverKeepsStreamState(t *testing.T) {
	sm := task.NewSocketMap()
	l := listen(t)
	k := newKVKernel(t, sm, l, 0)
	k.tab.Start()
	addr := l.Addr().String()
	half, block, refused, reader := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	big := bytes.Repeat([]byte("v"), 512<<10)
	reader.expect(fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(big), big), "STORED")
	half.send("set h 0 0 2\r")
	block.send("set b 0 0 10\r\n01234")
	refused.send(fmt.Sprintf("set r 0 0 %d\r\n%s", DefaultMaxItemSize+10, bytes.Repeat([]byte("z"), 1000)))
	if got := refused.line(); got != lineObjectTooLong {
		t.Fatalf("refused: %q", got)
	}
	// The reader asks for more than the socket buffers take, and does
	// not read.
	reader.send(strings.Repeat("get big\r\n", 40))
	time.Sleep(50 * time.Millisecond)

	k2, _ := handover(t, k, sm, l, 0, nil)
	defer k2.kv.Server().Close()
	parked := 0
	for _, c := range k2.kv.lastRestored.Conns {
		if len(c.Pending) > 0 || len(c.Unwritten) > 0 || c.Discard > 0 {
			parked++
		}
	}
	if parked < 4 {
		t.Errorf("only %d connections carried stream state; want 4 (%+v)", parked, k2.kv.lastRestored)
	}
	half.expect("\n12\r\n", "STORED")
	block.expect("56789\r\n", "STORED")
	refused.send(string(bytes.Repeat([]byte("z"), DefaultMaxItemSize+10-1000)) + "\r\nget b\r\n")
	for _, w := range []string{"VALUE b 0 10", "0123456789", "END"} {
		if got := refused.line(); got != w {
			t.Fatalf("after the refused block: %q; want %q", got, w)
		}
	}
	for i := range 40 {
		if got := reader.line(); got != fmt.Sprintf("VALUE big 0 %d", len(big)) {
			t.Fatalf("reply %d: %q", i, got)
		}
		reader.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		v := make([]byte, len(big)+2)
		if _, err := io.ReadFull(reader.br, v); err != nil || !bytes.Equal(v[:len(big)], big) {
			t.Fatalf("reply %d: value %v", i, err)
		}
		if got := reader.line(); got != "END" {
			t.Fatalf("reply %d: %q; want END", i, got)
		}
	}
	half.expect("get h\r\n", "VALUE h 0 2", "12", "END")
}

// TestKVRestoreFromV1: a v1 task state (as a v1 image writes it) restores
// into the v2 task with every item, value, flag, exptime and CAS identical;
// and v2 → v1 → v2 keeps them too (LastAccess falls back to saved_at).
func TestKVRestoreFromV1(t *testing.T) {
	clk := newFakeClock()
	src := newTestStore(t, Config{Now: clk.Now})
	const n = 10000
	for i := range n {
		src.Store(ModeSet, fmt.Sprintf("key%05d", i), uint32(i*7), int64(i%3)*1000, []byte(strings.Repeat("x", i%100)), 0)
		if i%10 == 0 {
			clk.Advance(time.Second)
		}
	}
	for i := 0; i < n; i += 97 {
		src.Get(fmt.Sprintf("key%05d", i)) // reorders the LRU, moves LastAccess
	}
	want := src.State()
	cs := &ConnState{Listeners: []task.SocketID{1}, Conns: []ConnRecord{{ID: 4, Pending: []byte("get a"), Discard: 3}}}
	taskState := func(v uint32, st *State) []byte {
		var b bytes.Buffer
		if _, err := st.WriteVersion(&b, v); err != nil {
			t.Fatal(err)
		}
		b.Write(cs.Append(nil))
		return b.Bytes()
	}
	restore := func(p []byte, from uint32) *Task {
		// The v2 task, also in a kv_schema1 build (whose default would
		// read v1 only).
		tk, err := NewTask(TaskConfig{Store: Config{Now: clk.Now}, Sockets: task.NewSocketMap(), Schema: CurrentSchema})
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Restore(bytes.NewReader(p), from); err != nil {
			t.Fatalf("Restore v%d: %v", from, err)
		}
		return tk
	}
	same := func(name string, got *State, lastAccess func(i int) int64) {
		t.Helper()
		if len(got.Items) != len(want.Items) || got.LastCAS != want.LastCAS {
			t.Fatalf("%s: %d items, last CAS %d; want %d, %d", name, len(got.Items), got.LastCAS, len(want.Items), want.LastCAS)
		}
		for i, w := range want.Items {
			g := got.Items[i]
			if g.Key != w.Key || !bytes.Equal(g.Value, w.Value) || g.Flags != w.Flags || g.Exptime != w.Exptime || g.CAS != w.CAS {
				t.Fatalf("%s: item %d = %+v; want %+v", name, i, g, w)
			}
			if la := lastAccess(i); g.LastAccess != la {
				t.Fatalf("%s: item %d LastAccess %d; want %d", name, i, g.LastAccess, la)
			}
		}
	}
	// v1 → v2.
	v1 := taskState(1, want)
	tk := restore(v1, 1)
	same("v1→v2", tk.Store().State(), func(int) int64 { return want.SavedAt })
	if got := tk.lastRestored; len(got.Conns) != 1 || string(got.Conns[0].Pending) != "get a" || got.Conns[0].Discard != 3 {
		t.Errorf("connection state from v1 = %+v", got)
	}
	// v2 → v1 → v2: identical but for LastAccess, which v1 drops.
	v2 := taskState(2, want)
	tk = restore(v2, 2)
	same("v2", tk.Store().State(), func(i int) int64 { return want.Items[i].LastAccess })
	var b bytes.Buffer
	tk.srv.Quiesce(context.Background()) // nothing to park, but Parked needs it
	if err := tk.SaveVersion(&b, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes()[:100], v1[:100]) {
		t.Errorf("v2 state saved as v1 differs from the v1 bytes")
	}
	tk = restore(b.Bytes(), 1)
	b.Reset()
	tk.srv.Quiesce(context.Background())
	if err := tk.SaveVersion(&b, 2); err != nil {
		t.Fatal(err)
	}
	tk = restore(b.Bytes(), 2)
	same("v2→v1→v2", tk.Store().State(), func(int) int64 { return want.SavedAt })
	// A v1 image refuses v2 state; a mislabelled state is refused too.
	if err := restore(v1, 1).Restore(bytes.NewReader(v2), 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("v2 bytes labelled v1: %v; want ErrCorrupt", err)
	}
	if err := restore(v1, 1).Restore(bytes.NewReader(v2), 3); !errors.Is(err, ErrVersion) {
		t.Errorf("v3: %v; want ErrVersion", err)
	}
}

func TestKVTaskStart(t *testing.T) {
	sm := task.NewSocketMap()
	l := listen(t)
	lid, _ := sm.ID(l)
	// A connection handed over without its state (the task lost it).
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	cid, _ := sm.ID(sc)
	tk, err := NewTask(TaskConfig{Sockets: sm})
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Start([]task.SocketID{lid, cid, 999}); err != nil {
		t.Fatal(err)
	}
	defer tk.Server().Close()
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.expect("set a 0 0 1\r\n1\r\n", "STORED")
	dial(t, l.Addr().String()).expect("get a\r\n", "VALUE a 0 1", "1", "END")
	// Without a listener and a Listen function, Start refuses.
	tk2, _ := NewTask(TaskConfig{Sockets: sm})
	if err := tk2.Start(nil); err == nil {
		t.Error("Start without a listener succeeded")
	}
	if _, err := NewTask(TaskConfig{}); err == nil {
		t.Error("NewTask without a socket table succeeded")
	}
}

func TestConnStateErrors(t *testing.T) {
	good := (&ConnState{Listeners: []task.SocketID{1, 2}, Conns: []ConnRecord{{ID: 3, Pending: []byte("ab"), Unwritten: []byte("c")}, {ID: 5}}}).Append(nil)
	got, err := DecodeConnState(good)
	if err != nil || len(got.Conns) != 2 || string(got.Conns[0].Unwritten) != "c" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	mut := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for name, p := range map[string][]byte{
		"short":      good[:10],
		"magic":      mut(0, 'X'),
		"count":      mut(12, 200),
		"listener 0": mut(16, 0),
		"order":      mut(20, 1),
		"reserved":   mut(28, 1),
		"pending":    mut(40, 200),
		"trailing":   append(bytes.Clone(good), 0),
		"truncated":  good[:len(good)-1],
		"repeated":   mut(len(good)-24, 3),
	} {
		if _, err := DecodeConnState(p); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadMagic) {
			t.Errorf("%s: %v; want ErrCorrupt", name, err)
		}
	}
}

// FuzzTaskState feeds arbitrary bytes to the task-state decoder (snapshot
// of either version + connection block + optional stats block): no panic,
// only sentinel errors, and what it accepts re-encodes to the same bytes
// (a stats block of another length than this version's to the same
// counters).
//
//	go test -run '^$' -fuzz FuzzTaskState ./apps/kv
func FuzzTaskState(f *testing.F) {
	clk := newFakeClock()
	st := newTestStore(f, Config{Now: clk.Now})
	st.Store(ModeSet, "a", 1, 0, []byte("alpha"), 0)
	st.Store(ModeSet, "b", 2, 100, nil, 0)
	cs := &ConnState{Listeners: []task.SocketID{1}, Conns: []ConnRecord{{ID: 2, Pending: []byte("get a\r\nset"), Unwritten: []byte("END\r\n"), Discard: 5}}}
	ss := sampleStats()
	for v := uint32(1); v <= CurrentSchema; v++ {
		var b bytes.Buffer
		st.SaveVersion(&b, v)
		b.Write(cs.Append(nil))
		f.Add(b.Bytes()) // no stats block, as written before it existed
		f.Add(b.Bytes()[:b.Len()-3])
		withStats := ss.Append(bytes.Clone(b.Bytes()))
		f.Add(withStats)
		f.Add(withStats[:len(withStats)-3])
		f.Add(append(bytes.Clone(b.Bytes()), statsBlock(3, func(i int) uint64 { return uint64(i + 1) })...))
		f.Add(append(bytes.Clone(b.Bytes()), statsBlock(statsCounters+2, func(i int) uint64 { return uint64(i + 1) })...))
		f.Add(append(bytes.Clone(b.Bytes()), statsMagic...))
	}
	f.Add([]byte(connMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := DecodeTaskState(bytes.NewReader(data))
		if err != nil {
			for _, s := range []error{ErrBadMagic, ErrVersion, ErrChecksum, ErrCorrupt, io.ErrUnexpectedEOF} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v is none of the sentinels", err)
		}
		var again bytes.Buffer
		if _, err := ts.Store.WriteTo(&again); err != nil {
			t.Fatal(err)
		}
		again.Write(ts.Conns.Append(nil))
		if ts.Stats == nil {
			if !bytes.Equal(again.Bytes(), data) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", again.Bytes(), data)
			}
			return
		}
		if !bytes.HasPrefix(data, again.Bytes()) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again.Bytes(), data)
		}
		checkStatsReencoding(t, data[again.Len():], ts.Stats)
	})
}

func TestManifestLine(t *testing.T) {
	if got := task.ManifestLine(TaskSpec()); got != ManifestLine {
		t.Errorf("ManifestLine = %q; the spec says %q", ManifestLine, got)
	}
}
