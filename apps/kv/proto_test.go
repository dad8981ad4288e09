package kv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCommands runs every command, with its edge cases, on one connection
// and checks the exact reply lines.
func TestCommands(t *testing.T) {
	clk := newFakeClock()
	st := newTestStore(t, Config{Now: clk.Now, MaxItemSize: 1024})
	_, addr := startServer(t, st, ServerConfig{})
	c := dial(t, addr)
	steps := []struct {
		send string
		want []string
	}{
		// Unknown and empty commands.
		{"bogus\r\n", []string{"ERROR"}},
		{"\r\n", []string{"ERROR"}},
		{"GET a\r\n", []string{"ERROR"}}, // command names are case-sensitive
		{"version\r\n", []string{"VERSION " + DefaultVersion}},
		{"version extra args\r\n", []string{"VERSION " + DefaultVersion}},

		// Storage commands.
		{"set k 5 0 3\r\nabc\r\n", []string{"STORED"}},
		{"get k\r\n", []string{"VALUE k 5 3", "abc", "END"}},
		{"set k 5 0 3\nabc\r\n", []string{"STORED"}}, // bare \n ends a command line
		{"set k 0 0 3 noreply\r\nxyz\r\n", nil},
		{"get k\r\n", []string{"VALUE k 0 3", "xyz", "END"}},
		{"set k 4294967295 0 1\r\nz\r\n", []string{"STORED"}},
		{"get k\r\n", []string{"VALUE k 4294967295 1", "z", "END"}},
		{"set k 4294967296 0 1\r\nz\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set k -1 0 1\r\nz\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set k 0 x 1\r\nz\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set k 0 0 -1\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set k 0 0 x\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set k 0 0\r\n", []string{"ERROR"}},
		{"set k 0 0 1 noreply extra\r\n", []string{"ERROR"}},
		{"set " + strings.Repeat("x", 251) + " 0 0 1\r\nz\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set " + strings.Repeat("x", 250) + " 0 0 1\r\nz\r\n", []string{"STORED"}},
		{"set k\x01 0 0 1\r\nz\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set k 0 0 3\r\nabcd\r\n", []string{"CLIENT_ERROR bad data chunk", "ERROR"}}, // "d\r\n" is then a command
		{"set k 0 0 0\r\n\r\n", []string{"STORED"}},
		{"get k\r\n", []string{"VALUE k 0 0", "", "END"}},
		{"set bin 0 0 4\r\n\x00\xff\ra\r\n", []string{"STORED"}},
		{"get bin\r\n", []string{"VALUE bin 0 4", "\x00\xff\ra", "END"}},
		{"add k 0 0 1\r\na\r\n", []string{"NOT_STORED"}},
		{"add k 0 0 1 noreply\r\na\r\n", nil},
		{"add k2 0 0 1\r\na\r\n", []string{"STORED"}},
		{"replace nope 0 0 1\r\na\r\n", []string{"NOT_STORED"}},
		{"replace k2 7 0 1\r\nb\r\n", []string{"STORED"}},
		{"append nope 0 0 1\r\na\r\n", []string{"NOT_STORED"}},
		{"prepend nope 0 0 1\r\na\r\n", []string{"NOT_STORED"}},
		{"append k2 0 0 2\r\ncd\r\n", []string{"STORED"}},
		{"prepend k2 0 0 1\r\na\r\n", []string{"STORED"}},
		{"get k2\r\n", []string{"VALUE k2 7 4", "abcd", "END"}},

		// Retrieval.
		{"get\r\n", []string{"ERROR"}},
		{"gets\r\n", []string{"ERROR"}},
		{"get nope\r\n", []string{"END"}},
		{"get k2 nope k2\r\n", []string{"VALUE k2 7 4", "abcd", "VALUE k2 7 4", "abcd", "END"}},
		{"get   k2   \r\n", []string{"VALUE k2 7 4", "abcd", "END"}},
		{"get " + strings.Repeat("x", 251) + "\r\n", []string{"CLIENT_ERROR bad command line format"}},

		// cas.
		{"cas nope 0 0 1 1\r\na\r\n", []string{"NOT_FOUND"}},
		{"cas k2 0 0 1 x\r\na\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"cas k2 0 0 1\r\n", []string{"ERROR"}},

		// delete.
		{"delete\r\n", []string{"ERROR"}},
		{"delete a b c d e\r\n", []string{"ERROR"}},
		{"delete k2 bogus\r\n", []string{"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}},
		{"delete k2 0 bogus\r\n", []string{"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}},
		{"delete k2\r\n", []string{"DELETED"}},
		{"delete k2\r\n", []string{"NOT_FOUND"}},
		{"delete k2 noreply\r\n", nil},
		{"delete k 0\r\n", []string{"DELETED"}},
		{"delete " + strings.Repeat("x", 251) + "\r\n", []string{"CLIENT_ERROR bad command line format"}},

		// incr/decr.
		{"incr n 1\r\n", []string{"NOT_FOUND"}},
		{"decr n 1\r\n", []string{"NOT_FOUND"}},
		{"set n 0 0 2\r\n10\r\n", []string{"STORED"}},
		{"incr n 5\r\n", []string{"15"}},
		{"decr n 20\r\n", []string{"0"}},
		{"incr n 18446744073709551615\r\n", []string{"18446744073709551615"}},
		{"incr n 2\r\n", []string{"1"}}, // wrapped at 2^64
		{"incr n 18446744073709551616\r\n", []string{"CLIENT_ERROR invalid numeric delta argument"}},
		{"incr n -1\r\n", []string{"CLIENT_ERROR invalid numeric delta argument"}},
		{"incr n x\r\n", []string{"CLIENT_ERROR invalid numeric delta argument"}},
		{"incr n\r\n", []string{"ERROR"}},
		{"incr n 1 noreply\r\n", nil},
		{"get n\r\n", []string{"VALUE n 0 1", "2", "END"}},
		{"set s 0 0 3\r\nabc\r\n", []string{"STORED"}},
		{"incr s 1\r\n", []string{"CLIENT_ERROR cannot increment or decrement non-numeric value"}},
		{"decr s 1\r\n", []string{"CLIENT_ERROR cannot increment or decrement non-numeric value"}},

		// touch and gat.
		{"touch nope 10\r\n", []string{"NOT_FOUND"}},
		{"touch s 10\r\n", []string{"TOUCHED"}},
		{"touch s x\r\n", []string{"CLIENT_ERROR invalid exptime argument"}},
		{"touch s\r\n", []string{"ERROR"}},
		{"touch s 10 noreply\r\n", nil},
		{"gat 100 s nope\r\n", []string{"VALUE s 0 3", "abc", "END"}},
		{"gat x s\r\n", []string{"CLIENT_ERROR invalid exptime argument"}},
		{"gat 100\r\n", []string{"ERROR"}},

		// verbosity, flush_all, stats.
		{"verbosity\r\n", []string{"ERROR"}},
		{"verbosity 1\r\n", []string{"OK"}},
		{"verbosity 1 noreply\r\n", nil},
		{"verbosity noreply\r\n", nil},
		{"verbosity x\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"verbosity a b c\r\n", []string{"ERROR"}},
		{"stats noreply\r\n", []string{"ERROR"}},
		{"stats bogus\r\n", []string{"ERROR"}},
		{"stats reset\r\n", []string{"RESET"}},
		{"flush_all x\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"flush_all 1 2 3\r\n", []string{"ERROR"}},
		{"flush_all\r\n", []string{"OK"}},
		{"get s n\r\n", []string{"END"}},
		{"set s 0 0 1\r\na\r\n", []string{"STORED"}},
		{"flush_all noreply\r\n", nil},
		{"get s\r\n", []string{"END"}},
		{"set s 0 0 1\r\na\r\n", []string{"STORED"}},
		{"flush_all 0 noreply\r\n", nil},
		{"get s\r\n", []string{"END"}},
		{"version\r\n", []string{"VERSION " + DefaultVersion}}, // every noreply above stayed silent
	}
	for i, s := range steps {
		t.Logf("step %d: %q", i, s.send)
		c.expect(s.send, s.want...)
	}

	// gets and cas with the unique it returns.
	c.expect("set c 0 0 1\r\na\r\n", "STORED")
	c.send("gets c\r\n")
	var key string
	var flags, n int
	var cas uint64
	if _, err := fmt.Sscanf(c.line(), "VALUE %s %d %d %d", &key, &flags, &n, &cas); err != nil {
		t.Fatalf("gets: %v", err)
	}
	c.line()
	c.line()
	c.expect(fmt.Sprintf("cas c 0 0 1 %d\r\nb\r\n", cas+1), "EXISTS")
	c.expect(fmt.Sprintf("cas c 0 0 1 %d\r\nb\r\n", cas), "STORED")
	c.expect(fmt.Sprintf("cas c 0 0 1 %d\r\nc\r\n", cas), "EXISTS")
	c.expect(fmt.Sprintf("cas c 0 0 1 %d noreply\r\nc\r\n", cas), nil...)
	c.expect("gets c\r\n", fmt.Sprintf("VALUE c 0 1 %d", cas+1), "b", "END")

	// Expiry through the protocol, on the injected clock.
	c.expect("set e 0 10 1\r\na\r\n", "STORED")
	c.expect("set e2 0 100 1\r\na\r\n", "STORED")
	c.expect("set e3 0 -1 1\r\na\r\n", "STORED")
	c.expect("get e3\r\n", "END")
	clk.Advance(9 * time.Second)
	c.expect("get e\r\n", "VALUE e 0 1", "a", "END")
	c.expect("gat 1 e2\r\n", "VALUE e2 0 1", "a", "END")
	clk.Advance(time.Second)
	c.expect("get e e2\r\n", "END")
	c.expect("flush_all 5\r\n", "OK")
	c.expect("set f 0 0 1\r\na\r\n", "STORED")
	clk.Advance(4 * time.Second)
	c.expect("get f\r\n", "VALUE f 0 1", "a", "END")
	clk.Advance(time.Second)
	c.expect("get f\r\n", "END")

	// quit closes the connection.
	c.send("quit\r\n")
	c.expectClosed()
}

func TestStatsCommand(t *testing.T) {
	st := newTestStore(t, Config{})
	srv, addr := startServer(t, st, ServerConfig{MaxConns: 7})
	c := dial(t, addr)
	c.expect("set a 0 0 1\r\nx\r\n", "STORED")
	c.expect("get a b\r\n", "VALUE a 0 1", "x", "END")
	m := c.stats()
	want := map[string]string{
		"pid":               strconv.Itoa(srv.pid),
		"version":           DefaultVersion,
		"curr_items":        "1",
		"total_items":       "1",
		"bytes":             strconv.Itoa(itemOverhead + 2),
		"curr_connections":  "1",
		"total_connections": "1",
		"cmd_get":           "2",
		"cmd_set":           "1",
		"get_hits":          "1",
		"get_misses":        "1",
		"evictions":         "0",
		"limit_maxbytes":    strconv.Itoa(DefaultMaxBytes),
		"max_connections":   "7",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("stats %s = %q; want %q", k, m[k], v)
		}
	}
	for _, k := range []string{"uptime", "time", "threads", "bytes_read", "bytes_written", "pointer_size"} {
		if _, ok := m[k]; !ok {
			t.Errorf("stats lacks %s", k)
		}
	}
	c.send("stats settings\r\n")
	settings := ""
	for l := c.line(); l != "END"; l = c.line() {
		settings += l + "\n"
	}
	if !strings.Contains(settings, "STAT item_size_max 1048576\n") || !strings.Contains(settings, "STAT maxconns 7\n") {
		t.Errorf("stats settings =\n%s; want item_size_max 1048576 and maxconns 7", settings)
	}
}

// TestOversizedValue: a value over MaxItemSize is refused with the
// protocol's SERVER_ERROR, its data block is swallowed, and the connection
// goes on.
func TestOversizedValue(t *testing.T) {
	st := newTestStore(t, Config{MaxItemSize: 1000})
	_, addr := startServer(t, st, ServerConfig{})
	c := dial(t, addr)
	c.expect("set k 0 0 1\r\na\r\n", "STORED")
	big := strings.Repeat("v", 5000)
	c.expect("set k 0 0 5000\r\n"+big+"\r\n", "SERVER_ERROR object too large for cache")
	c.expect("get k\r\n", "END") // the failed set removed the old value
	c.expect("set k 0 0 5000 noreply\r\n"+big+"\r\n", nil...)
	// A data block that arrives in pieces is swallowed as well.
	c.send("add k 0 0 5000\r\n" + big[:100])
	time.Sleep(10 * time.Millisecond)
	c.send(big[100:] + "\r\n")
	if l := c.line(); l != "SERVER_ERROR object too large for cache" {
		t.Fatalf("reply = %q; want SERVER_ERROR object too large for cache", l)
	}
	c.expect("set k 0 0 1000\r\n"+big[:1000]+"\r\n", "STORED")
	c.expect("append k 0 0 1\r\nx\r\n", "SERVER_ERROR object too large for cache")
	// An absurd length is refused the same way; the client then closes.
	c.expect("set k 0 0 2147483645\r\n", "SERVER_ERROR object too large for cache")
	c2 := dial(t, addr)
	c2.expect("set k 0 0 2147483646\r\n", "CLIENT_ERROR bad command line format")
	c2.expect("version\r\n", "VERSION "+DefaultVersion)
}

// TestLineTooLong: a command line over MaxLineLen is answered and the
// connection closed (it cannot be resynchronised); other clients go on.
func TestLineTooLong(t *testing.T) {
	st := newTestStore(t, Config{})
	_, addr := startServer(t, st, ServerConfig{})
	for _, n := range []int{2049, 5000, 100000} {
		c := dial(t, addr)
		c.send("set " + strings.Repeat("k", n) + " 0 0 1\r\na\r\n")
		if l := c.line(); l != "CLIENT_ERROR line too long" {
			t.Fatalf("reply to a %d-byte line = %q; want CLIENT_ERROR line too long", n, l)
		}
		c.expectClosed()
	}
	// Exactly at the limit (2048 bytes with \r\n) is fine.
	c := dial(t, addr)
	line := "verbosity 1 " + strings.Repeat(" ", 2048-len("verbosity 1 ")-2) + "\r\n"
	c.expect(line, "OK")
	c.send("verbosity 1 " + strings.Repeat(" ", 2048-len("verbosity 1 ")-1) + "\r\n")
	c.line()
	c.expectClosed()
}

// TestLongMultiGet: retrieval lines are streamed, so a get of thousands of
// keys (far over MaxLineLen) works, and keys split across read chunks are
// reassembled.
func TestLongMultiGet(t *testing.T) {
	st := newTestStore(t, Config{})
	_, addr := startServer(t, st, ServerConfig{})
	c := dial(t, addr)
	var keys []string
	for i := 0; i < 3000; i++ {
		k := fmt.Sprintf("key-%d-%s", i, strings.Repeat("x", i%40))
		keys = append(keys, k)
		if i%2 == 0 {
			c.expect(fmt.Sprintf("set %s %d 0 %d noreply\r\n%s\r\n", k, i, len(k), k), nil...)
		}
	}
	line := "gets " + strings.Join(keys, " ") + "\r\n"
	if len(line) < 50000 {
		t.Fatalf("line is only %d bytes", len(line))
	}
	// Send in odd-sized pieces so keys straddle reads.
	go func() {
		for i := 0; i < len(line); i += 997 {
			c.nc.Write([]byte(line[i:min(i+997, len(line))]))
			time.Sleep(time.Millisecond / 10)
		}
	}()
	for i := 0; i < len(keys); i += 2 {
		var k string
		var flags, n int
		var cas uint64
		l := c.line()
		if _, err := fmt.Sscanf(l, "VALUE %s %d %d %d", &k, &flags, &n, &cas); err != nil || k != keys[i] || flags != i {
			t.Fatalf("line %q; want VALUE %s %d ...", l, keys[i], i)
		}
		if v := c.line(); v != keys[i] {
			t.Fatalf("value %q; want %q", v, keys[i])
		}
	}
	if l := c.line(); l != "END" {
		t.Fatalf("last line %q; want END", l)
	}
	// An over-long key in a long line is an error, and the rest of the
	// line is drained so the next command works.
	c.expect("get a "+strings.Repeat("y", 5000)+" "+strings.Repeat("b ", 3000)+"\r\n", "CLIENT_ERROR bad command line format")
	c.expect("version\r\n", "VERSION "+DefaultVersion)
}

// TestPipelined sends many commands in one write and reads the replies in
// order.
func TestPipelined(t *testing.T) {
	st := newTestStore(t, Config{})
	_, addr := startServer(t, st, ServerConfig{})
	c := dial(t, addr)
	var req bytes.Buffer
	var want []string
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&req, "set p%d 0 0 %d\r\n%d\r\n", i, len(strconv.Itoa(i)), i)
		want = append(want, "STORED")
		fmt.Fprintf(&req, "incr p%d 1\r\nget p%d\r\nbogus\r\n", i, i)
		want = append(want, strconv.Itoa(i+1), "VALUE p"+strconv.Itoa(i)+" 0 "+strconv.Itoa(len(strconv.Itoa(i+1))), strconv.Itoa(i+1), "END", "ERROR")
	}
	go c.nc.Write(req.Bytes())
	for i, w := range want {
		if got := c.line(); got != w {
			t.Fatalf("reply %d = %q; want %q", i, got, w)
		}
	}
}

// TestBinaryGarbage: binary junk gets error lines, never a crash or a hang,
// and the connection keeps working once a newline resynchronises it.
func TestBinaryGarbage(t *testing.T) {
	st := newTestStore(t, Config{})
	_, addr := startServer(t, st, ServerConfig{})
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		c := dial(t, addr)
		junk := make([]byte, 1+rng.Intn(1500))
		rng.Read(junk)
		junk[0] = 'x' // not a binary-protocol magic byte
		c.send(string(junk) + "\r\n")
		c.send("\r\nversion\r\n")
		for {
			c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			l, err := c.br.ReadString('\n')
			if err != nil {
				t.Fatalf("junk %q: %v", junk, err)
			}
			l = strings.TrimSuffix(l, "\r\n")
			if strings.HasPrefix(l, "VERSION ") {
				break
			}
			if l != "ERROR" && !strings.HasPrefix(l, "CLIENT_ERROR ") && !strings.HasPrefix(l, "SERVER_ERROR ") {
				t.Fatalf("reply to junk = %q; want an error line", l)
			}
		}
	}
	// A binary-protocol request is refused and the connection closed.
	c := dial(t, addr)
	c.send("\x80\x01\x00\x03\x08\x00\x00\x00\x00\x00\x00\x0e\x00\x00\x00\x00")
	if l := c.line(); l != lineBinary {
		t.Fatalf("reply to a binary request = %q; want %q", l, lineBinary)
	}
	c.expectClosed()
}

// TestConcurrentClients runs many clients at once (under -race in CI).
func TestConcurrentClients(t *testing.T) {
	st := newTestStore(t, Config{MaxBytes: 1 << 20, MaxItemSize: 1 << 12})
	_, addr := startServer(t, st, ServerConfig{})
	const clients, ops = 16, 100
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			r := bufioReader(nc)
			for j := 0; j < ops; j++ {
				key := fmt.Sprintf("c%d-%d", id, j%10)
				val := strings.Repeat(strconv.Itoa(j%10), 1+j%100)
				fmt.Fprintf(nc, "set %s 0 0 %d\r\n%s\r\nget %s\r\nincr shared 1\r\n", key, len(val), val, key)
				if l, _ := r.ReadString('\n'); l != "STORED\r\n" {
					errs <- fmt.Errorf("client %d: set reply %q", id, l)
					return
				}
				if l, _ := r.ReadString('\n'); l != fmt.Sprintf("VALUE %s 0 %d\r\n", key, len(val)) {
					errs <- fmt.Errorf("client %d: get reply %q", id, l)
					return
				}
				if l, _ := r.ReadString('\n'); l != val+"\r\n" {
					errs <- fmt.Errorf("client %d: value %q; want %q", id, l, val)
					return
				}
				if l, _ := r.ReadString('\n'); l != "END\r\n" {
					errs <- fmt.Errorf("client %d: %q; want END", id, l)
					return
				}
				if l, _ := r.ReadString('\n'); l == "" {
					errs <- fmt.Errorf("client %d: no incr reply", id)
					return
				}
			}
		}(i)
	}
	c := dial(t, addr)
	c.expect("set shared 0 0 1\r\n0\r\n", "STORED")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMaxConns: connections past MaxConns get the protocol's error line and
// are closed; once one closes, a new one is accepted.
func TestMaxConns(t *testing.T) {
	st := newTestStore(t, Config{})
	srv, addr := startServer(t, st, ServerConfig{MaxConns: 2})
	a, b := dial(t, addr), dial(t, addr)
	a.expect("version\r\n", "VERSION "+DefaultVersion)
	b.expect("version\r\n", "VERSION "+DefaultVersion)
	c := dial(t, addr)
	if l := c.line(); l != lineTooManyConns {
		t.Fatalf("third connection got %q; want %q", l, lineTooManyConns)
	}
	c.expectClosed()
	a.send("quit\r\n")
	a.expectClosed()
	waitFor(t, func() bool { return srv.currConns.Load() == 1 })
	d := dial(t, addr)
	d.expect("version\r\n", "VERSION "+DefaultVersion)
	if m := d.stats(); m["rejected_connections"] != "1" || m["curr_connections"] != "2" {
		t.Errorf("rejected_connections %s curr_connections %s; want 1 2", m["rejected_connections"], m["curr_connections"])
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTimeouts: an idle client and a client stalled mid-command are
// disconnected, and a client that never reads its replies is disconnected
// by the write timeout, while another client is served meanwhile.
func TestTimeouts(t *testing.T) {
	st := newTestStore(t, Config{MaxItemSize: 1 << 20, MaxBytes: 8 << 20})
	srv, addr := startServer(t, st, ServerConfig{
		IdleTimeout:  300 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
	})
	idle := dial(t, addr)
	idle.expect("version\r\n", "VERSION "+DefaultVersion)
	stalled := dial(t, addr)
	stalled.send("set k 0 0 10\r\nabc") // and never the rest
	partial := dial(t, addr)
	partial.send("get k") // a command line without its end
	start := time.Now()
	idle.expectClosed()
	stalled.expectClosed()
	partial.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeouts took %v", d)
	}

	// The slow reader: fetch a 1 MiB value over and over without reading.
	other := dial(t, addr)
	other.expect("set big 0 0 1048576\r\n"+strings.Repeat("b", 1<<20)+"\r\n", "STORED")
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if tc, ok := slow.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	go func() {
		for i := 0; i < 200; i++ {
			slow.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := slow.Write([]byte("get big\r\n")); err != nil {
				return
			}
		}
	}()
	// Meanwhile others are served promptly, and the slow one is dropped.
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		other2 := dial(t, addr)
		other2.expect("version\r\n", "VERSION "+DefaultVersion)
		if d := time.Since(t0); d > 3*time.Second {
			t.Fatalf("a command took %v while a client was not reading", d)
		}
		other2.nc.Close()
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, func() bool { return srv.currConns.Load() <= 1 })
}

// TestShutdown: Shutdown closes idle connections, lets a command in
// progress finish, and forces the rest closed when its context ends.
func TestShutdown(t *testing.T) {
	st := newTestStore(t, Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(st, ServerConfig{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	addr := l.Addr().String()
	idle := dial(t, addr)
	idle.expect("set k 0 0 1\r\na\r\n", "STORED")
	busy := dial(t, addr)
	// Mid data block: not idle. The server flushes the version reply
	// before it waits for the data, so once it arrives the server is there.
	busy.expect("version\r\nset k2 0 0 5\r\nab", "VERSION "+DefaultVersion)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	idle.expectClosed()
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve = %v; want ErrServerClosed", err)
	}
	if err := <-shut; err != context.DeadlineExceeded {
		t.Errorf("Shutdown = %v; want DeadlineExceeded (busy client never finished)", err)
	}
	busy.expectClosed()
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("dial after Shutdown succeeded; want refused")
	}
	if err := srv.Serve(l); err != ErrServerClosed {
		t.Errorf("Serve after Shutdown = %v; want ErrServerClosed", err)
	}
	// The store is intact for a save.
	mustGet(t, st, "k", "a")

	// A graceful shutdown that completes: the client finishes its command.
	st2 := newTestStore(t, Config{})
	srv2, addr2 := NewServer(st2, ServerConfig{}), ""
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	addr2 = l2.Addr().String()
	go srv2.Serve(l2)
	c := dial(t, addr2)
	c.expect("version\r\nset k 0 0 5\r\nab", "VERSION "+DefaultVersion)
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.send("cde\r\n")
	}()
	if err := srv2.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown = %v; want nil", err)
	}
	mustGet(t, st2, "k", "abcde")
}

// TestInflightLimit: data blocks being received count against
// MaxInflightBytes across connections; one over it is refused and
// swallowed, and the budget comes back when the first block completes.
func TestInflightLimit(t *testing.T) {
	st := newTestStore(t, Config{})
	srv, addr := startServer(t, st, ServerConfig{MaxInflightBytes: 100})
	a, b := dial(t, addr), dial(t, addr)
	a.expect("version\r\nset a 0 0 80\r\n"+strings.Repeat("a", 10), "VERSION "+DefaultVersion)
	b.expect("set b 0 0 50\r\n"+strings.Repeat("b", 50)+"\r\n", "SERVER_ERROR out of memory storing object")
	b.expect("set b 0 0 10\r\n"+strings.Repeat("b", 10)+"\r\n", "STORED") // 82+12 fits
	a.expect(strings.Repeat("a", 70)+"\r\n", "STORED")
	b.expect("set b 0 0 50\r\n"+strings.Repeat("b", 50)+"\r\n", "STORED")
	if n := srv.inflight.Load(); n != 0 {
		t.Errorf("inflight = %d after all blocks completed; want 0", n)
	}
}
