package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/updater/task"
)

// statNames are the `stats` names of the stats block's slots, in slot
// order (statsSlots), except the two times, which come out as uptime.
var statNames = []string{
	"total_items", "evictions", "reclaimed", "cmd_get", "cmd_set", "cmd_flush", "cmd_touch",
	"get_hits", "get_misses", "get_expired", "delete_hits", "delete_misses",
	"incr_hits", "incr_misses", "decr_hits", "decr_misses",
	"cas_hits", "cas_misses", "cas_badval", "touch_hits", "touch_misses",
	"total_connections", "rejected_connections", "bytes_read", "bytes_written",
}

// The slots of the two times in statsSlots (TestStatsStateErrors checks).
const startSlot, uptimeSlot = 25, 26

// sampleStats is a stats block with every counter distinct.
func sampleStats() *StatsState {
	ss := &StatsState{}
	for i, p := range ss.statsSlots() {
		*p = uint64(i+1) * 1001
	}
	ss.StartedAt, ss.UptimeNs = uint64(time.Unix(1_700_000_000, 0).UnixNano()), uint64(time.Hour)
	return ss
}

// statsBlock builds a stats block of n counters, counter i holding
// val(i) (0 if val is nil): blocks as older or newer writers write them.
func statsBlock(n int, val func(i int) uint64) []byte {
	b := []byte(statsMagic)
	b = binary.LittleEndian.AppendUint16(b, statsVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for i := range n {
		v := uint64(0)
		if val != nil {
			v = val(i)
		}
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// checkStatsReencoding checks that the accepted block data, decoded as
// ss, re-encodes to data when it has this version's count of counters,
// and in any case to a block that decodes to ss again; and that counters
// the block lacks are zero.
func checkStatsReencoding(t *testing.T, data []byte, ss *StatsState) {
	t.Helper()
	again := ss.Append(nil)
	n := int(binary.LittleEndian.Uint32(data[12:]))
	if n == statsCounters && !bytes.Equal(again, data) {
		t.Fatalf("stats block re-encodes differently:\n got %x\nwant %x", again, data)
	}
	back, err := DecodeStatsState(again)
	if err != nil || *back != *ss {
		t.Fatalf("re-encoded stats block decodes to %+v, %v; want %+v", back, err, ss)
	}
	for i, p := range ss.statsSlots() {
		if i >= n && *p != 0 {
			t.Fatalf("counter %d is %d; the block has %d counters", i, *p, n)
		}
	}
}

// rawStats sends "stats" and returns the values and the reply's length in
// bytes (what it adds to bytes_written).
func (c *client) rawStats() (map[string]string, int) {
	c.t.Helper()
	c.send("stats\r\n")
	m, n := map[string]string{}, 0
	for {
		l := c.line()
		n += len(l) + 2
		if l == "END" {
			return m, n
		}
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "STAT" {
			c.t.Fatalf("stats line %q", l)
		}
		m[f[1]] = f[2]
	}
}

func statUint(t *testing.T, m map[string]string, name string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(m[name], 10, 64)
	if err != nil {
		t.Fatalf("stats %s = %q: %v", name, m[name], err)
	}
	return v
}

// TestKVHandoverKeepsStats: after traffic that moves every counter (hits,
// misses, sets, deletes, incr/decr, cas, touch, flush, an expiry, an
// eviction, a rejected connection), a handover to a fresh task reports the
// same stats over the same connection, in each pair of schemas: only
// bytes_read and bytes_written move, by exactly the stats request and its
// reply; uptime continues; curr_connections counts the connections handed
// over, total_connections does not count them again; new connections
// count on top, and stats reset still resets.
func TestKVHandoverKeepsStats(t *testing.T) {
	for _, hop := range []struct{ from, to uint32 }{{2, 2}, {2, 1}, {1, 2}, {1, 1}} {
		t.Run(fmt.Sprintf("v%d-v%d", hop.from, hop.to), func(t *testing.T) {
			testHandoverKeepsStats(t, hop.from, hop.to)
		})
	}
}

func testHandoverKeepsStats(t *testing.T, from, to uint32) {
	sm := task.NewSocketMap()
	l := listen(t)
	clk := newFakeClock()
	k := newKVKernelWith(t, sm, l, TaskConfig{
		Store:  Config{MaxBytes: 4096, MaxItemSize: 1024, Now: clk.Now},
		Server: ServerConfig{MaxConns: 3},
		Schema: from,
	})
	if _, err := k.tab.Start(); err != nil {
		t.Fatal(err)
	}
	// Up for an hour already: uptime must continue from there.
	t0 := time.Now().Add(-time.Hour)
	k.kv.srv.start.Store(&t0)
	addr := l.Addr().String()
	a, b, c := dial(t, addr), dial(t, addr), dial(t, addr)
	b.expect("version\r\n", "VERSION "+DefaultVersion)
	c.expect("version\r\n", "VERSION "+DefaultVersion)
	rejected := dial(t, addr)
	if got := rejected.line(); got != lineTooManyConns {
		t.Fatalf("fourth connection: %q; want %q", got, lineTooManyConns)
	}
	rejected.expectClosed()

	a.expect("flush_all\r\n", "OK")
	a.expect("set k 0 0 1\r\nv\r\n", "STORED")
	a.expect("set n 0 0 1\r\n5\r\n", "STORED")
	a.expect("get k nope\r\n", "VALUE k 0 1", "v", "END")
	a.expect("delete n\r\ndelete n\r\n", "DELETED", "NOT_FOUND")
	a.expect("set n 0 0 1\r\n5\r\nincr n 2\r\nincr x 1\r\ndecr n 1\r\ndecr x 1\r\n", "STORED", "7", "NOT_FOUND", "6", "NOT_FOUND")
	a.send("gets k\r\n")
	var cas uint64
	if _, err := fmt.Sscanf(a.line(), "VALUE k 0 1 %d", &cas); err != nil {
		t.Fatal(err)
	}
	a.line()
	a.line()
	a.expect(fmt.Sprintf("cas k 0 0 1 %d\r\nw\r\n", cas+100), "EXISTS")
	a.expect(fmt.Sprintf("cas k 0 0 1 %d\r\nw\r\n", cas), "STORED")
	a.expect("cas x 0 0 1 1\r\nw\r\n", "NOT_FOUND")
	a.expect("touch k 100\r\ntouch x 100\r\n", "TOUCHED", "NOT_FOUND")
	a.expect("gat 100 k\r\n", "VALUE k 0 1", "w", "END")
	a.expect("set e 0 1 1\r\ne\r\n", "STORED")
	clk.Advance(2 * time.Second)
	a.expect("get e\r\n", "END") // expired: get_expired, reclaimed
	big := strings.Repeat("b", 1000)
	for i := range 5 { // past MaxBytes: evictions
		a.expect(fmt.Sprintf("set big%d 0 0 %d\r\n%s\r\n", i, len(big), big), "STORED")
	}
	before, beforeLen := a.rawStats()
	for _, name := range statNames {
		if statUint(t, before, name) == 0 {
			t.Errorf("stats %s is 0 before the handover: the traffic should move it", name)
		}
	}
	if before["curr_connections"] != "3" || before["total_connections"] != "3" || before["rejected_connections"] != "1" {
		t.Errorf("before: curr %s total %s rejected %s; want 3 3 1", before["curr_connections"], before["total_connections"], before["rejected_connections"])
	}

	var targets task.Targets
	if to == 1 {
		targets = task.Targets{TaskName: {Oldest: 1, Newest: 1}}
	}
	k2, rep := handover(t, k, sm, l, to, targets)
	defer k2.kv.Server().Close()
	if got := rep.Tasks[0].FromVersion; got != min(from, to) {
		t.Errorf("restored from v%d; want v%d", got, min(from, to))
	}
	after, _ := a.rawStats()
	for _, name := range append(statNames, "curr_connections", "curr_items", "bytes") {
		want := before[name]
		switch name {
		case "bytes_read":
			want = strconv.FormatUint(statUint(t, before, name)+uint64(len("stats\r\n")), 10)
		case "bytes_written":
			want = strconv.FormatUint(statUint(t, before, name)+uint64(beforeLen), 10)
		}
		if after[name] != want {
			t.Errorf("stats %s = %s after the handover; want %s (before: %s)", name, after[name], want, before[name])
		}
	}
	if up, was := statUint(t, after, "uptime"), statUint(t, before, "uptime"); up < was || up > was+60 {
		t.Errorf("uptime %d after the handover; it was %d before", up, was)
	}

	// A new connection counts on top of the carried ones.
	b.send("quit\r\n")
	b.expectClosed()
	waitFor(t, func() bool { return k2.kv.srv.currConns.Load() == 2 })
	e := dial(t, addr)
	m := e.stats()
	if m["curr_connections"] != "3" || m["total_connections"] != "4" || m["rejected_connections"] != "1" {
		t.Errorf("with a new connection: curr %s total %s rejected %s; want 3 4 1", m["curr_connections"], m["total_connections"], m["rejected_connections"])
	}
	// stats reset resets the carried counters (but not uptime).
	e.expect("stats reset\r\n", "RESET")
	m = e.stats()
	for _, name := range statNames {
		want := "0"
		switch name {
		case "total_connections":
			want = "3" // as memcached: the open connections
		case "bytes_read":
			want = strconv.Itoa(len("stats\r\n"))
		case "bytes_written":
			want = strconv.Itoa(len("RESET\r\n"))
		}
		if m[name] != want {
			t.Errorf("after stats reset: %s = %s; want %s", name, m[name], want)
		}
	}
	if up := statUint(t, m, "uptime"); up < 3600 {
		t.Errorf("uptime %d after stats reset; want ≥ 3600", up)
	}
}

// taskStateBytes is a task state as an image writes it: a snapshot of st
// in version v, an empty connection block, then tail.
func taskStateBytes(t *testing.T, st *State, v uint32, tail []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := st.WriteVersion(&b, v); err != nil {
		t.Fatal(err)
	}
	b.Write((&ConnState{}).Append(nil))
	b.Write(tail)
	return b.Bytes()
}

// restoreAndServe restores p (schema from) into a fresh v2 task, serves
// it on a new listener and returns a client of it.
func restoreAndServe(t *testing.T, cfg Config, p []byte, from uint32) (*Task, *client) {
	t.Helper()
	l := listen(t)
	sm := task.NewSocketMap()
	// Schema 2 reads both schemas, also in a kv_schema1 build.
	tk, err := NewTask(TaskConfig{Store: cfg, Server: ServerConfig{Logf: t.Logf}, Sockets: sm, Listen: func() (net.Listener, error) { return l, nil }, Schema: CurrentSchema})
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Restore(bytes.NewReader(p), from); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if err := tk.Resume(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Server().Close() })
	return tk, dial(t, l.Addr().String())
}

// TestKVRestoreWithoutStats: a task state without a stats block (as an
// image from before the block wrote it) restores its items, with the
// counters at zero and uptime from now, in both schemas.
func TestKVRestoreWithoutStats(t *testing.T) {
	clk := newFakeClock()
	src := newTestStore(t, Config{Now: clk.Now})
	src.Store(ModeSet, "a", 0, 0, []byte("1"), 0)
	src.Get("a")
	for v := uint32(OldestSchema); v <= CurrentSchema; v++ {
		_, c := restoreAndServe(t, Config{Now: clk.Now}, taskStateBytes(t, src.State(), v, nil), v)
		m := c.stats()
		for _, name := range statNames {
			want := "0"
			switch name {
			case "total_connections":
				want = "1" // this client
			case "bytes_read":
				want = strconv.Itoa(len("stats\r\n"))
			}
			if m[name] != want {
				t.Errorf("v%d: %s = %s; want %s", v, name, m[name], want)
			}
		}
		if m["curr_items"] != "1" || m["curr_connections"] != "1" || statUint(t, m, "uptime") > 60 {
			t.Errorf("v%d: curr_items %s curr_connections %s uptime %s; want 1 1 ~0", v, m["curr_items"], m["curr_connections"], m["uptime"])
		}
		c.expect("get a\r\n", "VALUE a 0 1", "1", "END")
	}
}

// TestKVRestoreStats: each counter of a stats block comes out under its
// stats name, in both schemas; a block with fewer counters than this
// version knows leaves the rest at zero, one with more is read for the
// ones known; uptime continues from the start time (or from the saved
// uptime if the clock went back); items the restore drops for the new
// limits count as evictions on top of the carried ones.
func TestKVRestoreStats(t *testing.T) {
	now := time.Now()
	st := &State{SavedAt: now.Unix(), LastCAS: 2, Items: []ItemState{
		{Key: "small", Value: []byte("s"), CAS: 1, LastAccess: now.Unix()},
		{Key: "large", Value: bytes.Repeat([]byte("l"), 600), CAS: 2, LastAccess: now.Unix()},
	}}
	cfg := Config{MaxItemSize: 500} // "large" is dropped: one more eviction
	val := func(i int) uint64 { return uint64(i+1) * 1001 }
	times := func(n int, startedAt time.Time, up time.Duration) []byte {
		b := statsBlock(n, val)
		if n > uptimeSlot {
			binary.LittleEndian.PutUint64(b[statsHeaderLen+8*startSlot:], uint64(startedAt.UnixNano()))
			binary.LittleEndian.PutUint64(b[statsHeaderLen+8*uptimeSlot:], uint64(up))
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		block    []byte
		counters int    // how many of statNames the block carries
		uptime   uint64 // seconds, ± 60
	}{
		{"current", times(statsCounters, now.Add(-2*time.Hour), time.Hour), len(statNames), 7200},
		{"clock went back", times(statsCounters, now.Add(time.Hour), time.Hour), len(statNames), 3600},
		{"no start", times(statsCounters, time.Unix(0, 0), 0), len(statNames), 0},
		{"older writer", statsBlock(10, val), 10, 0},
		{"newer writer", append(times(statsCounters+4, now.Add(-2*time.Hour), 0)[:statsHeaderLen+8*statsCounters], make([]byte, 32)...), len(statNames), 7200},
	} {
		for v := uint32(OldestSchema); v <= CurrentSchema; v++ {
			block := tc.block
			if tc.name == "newer writer" {
				block = bytes.Clone(block)
				binary.LittleEndian.PutUint32(block[12:], uint32(statsCounters+4))
				for i := statsCounters; i < statsCounters+4; i++ {
					binary.LittleEndian.PutUint64(block[statsHeaderLen+8*i:], 0xdead)
				}
			}
			_, c := restoreAndServe(t, cfg, taskStateBytes(t, st, v, block), v)
			m := c.stats()
			for i, name := range statNames {
				want := uint64(0)
				if i < tc.counters {
					want = val(i)
				}
				switch name {
				case "evictions":
					want++
				case "total_connections":
					want++ // this client
				case "bytes_read":
					want += uint64(len("stats\r\n"))
				}
				if got := statUint(t, m, name); got != want {
					t.Errorf("%s, v%d: %s = %d; want %d", tc.name, v, name, got, want)
				}
			}
			if up := statUint(t, m, "uptime"); up+60 < tc.uptime || up > tc.uptime+60 {
				t.Errorf("%s, v%d: uptime %d; want about %d", tc.name, v, up, tc.uptime)
			}
			if m["curr_items"] != "1" || m["curr_connections"] != "1" {
				t.Errorf("%s, v%d: curr_items %s, curr_connections %s; want 1 1", tc.name, v, m["curr_items"], m["curr_connections"])
			}
		}
	}
}

// TestStatsStateErrors: each malformed stats block gets its own error,
// wrapping ErrCorrupt, from the block decoder and from a task restore,
// which then changes nothing: items, counters, uptime and connection
// state stay as they were.
func TestStatsStateErrors(t *testing.T) {
	good := sampleStats().Append(nil)
	if got, err := DecodeStatsState(good); err != nil || *got != *sampleStats() {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	var ss StatsState
	if sl := ss.statsSlots(); len(sl) != len(statNames)+2 || sl[startSlot] != &ss.StartedAt || sl[uptimeSlot] != &ss.UptimeNs {
		t.Fatalf("statsSlots has %d slots, the times at %d and %d: the tests' names are out of date", len(sl), startSlot, uptimeSlot)
	}
	put16 := func(off int, v uint16) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint16(b[off:], v)
		return b
	}
	put32 := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	put64 := func(off int, v uint64) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint64(b[off:], v)
		return b
	}
	slot := func(i int) int { return statsHeaderLen + 8*i }
	for _, tc := range []struct {
		name string
		p    []byte
		want string
	}{
		{"short header", good[:10], "stats block of 10 bytes, its header needs 16"},
		{"garbage", []byte("xyz"), "stats block of 3 bytes"},
		{"magic", append([]byte("MOLTKVX\n"), good[8:]...), `stats block magic "MOLTKVX\n"`},
		{"connection magic", append([]byte(connMagic), good[8:]...), `stats block magic "MOLTKVC\n"`},
		{"version 0", put16(8, 0), "stats block version 0 (this kernel reads 1)"},
		{"version 2", put16(8, 2), "stats block version 2"},
		{"reserved", put16(10, 1), "stats block reserved field 0x1"},
		{"count too large", put32(12, maxStatsCounters+1), "stats block of 1025 counters, at most 1024"},
		{"count huge", put32(12, math.MaxUint32), "stats block of 4294967295 counters"},
		{"count past the data", put32(12, uint32(statsCounters+1)), fmt.Sprintf("stats block truncated: %d counters need %d bytes, %d left", statsCounters+1, 8*(statsCounters+1), 8*statsCounters)},
		{"truncated", good[:len(good)-1], "stats block truncated"},
		{"header only", good[:statsHeaderLen], "stats block truncated"},
		{"trailing", append(bytes.Clone(good), 0), "1 bytes after the stats block's 27 counters"},
		{"count short of the data", put32(12, uint32(statsCounters-1)), "8 bytes after the stats block's 26 counters"},
		{"start out of range", put64(slot(startSlot), 1<<63), "out of range"},
		{"uptime out of range", put64(slot(uptimeSlot), math.MaxUint64), "out of range"},
	} {
		_, err := DecodeStatsState(tc.p)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrCorrupt, %q", tc.name, err, tc.want)
		}
	}

	// A task with items, counters, an uptime and connection state.
	clk := newFakeClock()
	tk, err := NewTask(TaskConfig{Store: Config{Now: clk.Now}, Sockets: task.NewSocketMap()})
	if err != nil {
		t.Fatal(err)
	}
	cs := &ConnState{Listeners: []task.SocketID{1}, Conns: []ConnRecord{{ID: 2, Pending: []byte("get")}}}
	var okState bytes.Buffer
	src := newTestStore(t, Config{Now: clk.Now})
	src.Store(ModeSet, "kept", 0, 0, []byte("yes"), 0)
	src.Save(&okState)
	okState.Write(sampleStats().Append(cs.Append(nil)))
	if err := tk.Restore(bytes.NewReader(okState.Bytes()), SchemaVersion()); err != nil {
		t.Fatal(err)
	}
	tk.Store().Get("kept")
	tk.Store().Get("missing")
	wantItems, wantCounters := tk.Store().State(), tk.Store().Stats()
	wantServer, wantStart := tk.srv.statsState(), tk.srv.startTime()
	// Each bad state would replace "kept" by "replaced", were it read.
	other := newTestStore(t, Config{Now: clk.Now})
	other.Store(ModeSet, "replaced", 0, 0, []byte("no"), 0)
	var snap bytes.Buffer
	other.Save(&snap)
	conns := (&ConnState{Listeners: []task.SocketID{7}}).Append(nil)
	for _, tc := range []struct {
		name string
		tail []byte
		want string
	}{
		{"garbage", []byte("xyz"), "3 bytes after the connection block"},
		{"magic", append([]byte("MOLTKVX\n"), good[8:]...), "stats block magic"},
		{"reserved", put16(10, 7), "reserved field 0x7"},
		{"count", put32(12, 5000), "5000 counters"},
		{"truncated", good[:len(good)-5], "truncated"},
		{"trailing", append(bytes.Clone(good), good...), "bytes after the stats block"},
	} {
		p := append(append(bytes.Clone(snap.Bytes()), conns...), tc.tail...)
		err := tk.Restore(bytes.NewReader(p), SchemaVersion())
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Restore with %s: %v; want ErrCorrupt, %q", tc.name, err, tc.want)
		}
		if got := tk.Store().State(); len(got.Items) != 1 || got.Items[0].Key != "kept" || got.LastCAS != wantItems.LastCAS {
			t.Errorf("after a failed Restore (%s), the store holds %+v; want %+v", tc.name, got, wantItems)
		}
		if got := tk.Store().Stats(); got != wantCounters {
			t.Errorf("after a failed Restore (%s), the counters are %+v; want %+v", tc.name, got, wantCounters)
		}
		if got := tk.srv.statsState(); got.TotalConns != wantServer.TotalConns || got.BytesRead != wantServer.BytesRead || tk.srv.startTime() != wantStart {
			t.Errorf("after a failed Restore (%s), the server counters are %+v, start %v; want %+v, %v", tc.name, tk.srv.statsState(), tk.srv.startTime(), wantServer, wantStart)
		}
		if tk.lastRestored != tk.restored || len(tk.restored.Conns) != 1 || string(tk.restored.Conns[0].Pending) != "get" {
			t.Errorf("after a failed Restore (%s), the connection state is %+v", tc.name, tk.restored)
		}
	}
}

// TestStatsBlockLayout pins the stats block's bytes (docs/tasks.md §5):
// the header, and N = 27 counters in slot order (TestKVRestoreStats ties
// each slot to its stats name).
func TestStatsBlockLayout(t *testing.T) {
	le := binary.LittleEndian
	want := []byte("MOLTKVS\n")
	want = le.AppendUint16(want, 1)  // version
	want = le.AppendUint16(want, 0)  // reserved
	want = le.AppendUint32(want, 27) // N
	for i := range 25 {
		want = le.AppendUint64(want, uint64(i+1)*1001)
	}
	want = le.AppendUint64(want, 1_700_000_000*1e9) // start, Unix ns
	want = le.AppendUint64(want, uint64(time.Hour)) // uptime, ns
	if got := sampleStats().Append(nil); !bytes.Equal(got, want) || len(got) != 232 {
		t.Errorf("stats block =\n%x\nwant\n%x", got, want)
	}
}
