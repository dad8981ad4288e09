package kv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// scriptConn is a net.Conn that reads a fixed input, then EOF, and records
// what is written.
type scriptConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)         { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)        { return c.out.Write(p) }
func (c *scriptConn) Close() error                       { return nil }
func (c *scriptConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// runScript serves input on one connection to a fresh server and returns
// the output. It runs the loop without serve's recover, so a panic fails.
func runScript(t testing.TB, input []byte) []byte {
	st := newTestStore(t, Config{MaxBytes: 1 << 16, MaxItemSize: 4096, Now: newFakeClock().Now})
	srv := NewServer(st, ServerConfig{MaxLineLen: 256})
	sc := &scriptConn{in: bytes.NewReader(input)}
	c := newConn(srv, sc)
	c.loop()
	return sc.out.Bytes()
}

// checkReplies verifies that out is a sequence of protocol reply lines, each
// VALUE line followed by its data block.
func checkReplies(out []byte) error {
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return fmt.Errorf("unterminated reply %q", line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		switch {
		case line == "STORED", line == "NOT_STORED", line == "EXISTS", line == "NOT_FOUND",
			line == "DELETED", line == "TOUCHED", line == "OK", line == "END", line == "RESET",
			line == "ERROR":
		case strings.HasPrefix(line, "CLIENT_ERROR "), strings.HasPrefix(line, "SERVER_ERROR "),
			strings.HasPrefix(line, "VERSION "), strings.HasPrefix(line, "STAT "):
		case strings.HasPrefix(line, "VALUE "):
			var key string
			var flags uint32
			var n int
			if _, err := fmt.Sscanf(line, "VALUE %s %d %d", &key, &flags, &n); err != nil {
				return fmt.Errorf("bad VALUE line %q: %v", line, err)
			}
			data := make([]byte, n+2)
			if _, err := io.ReadFull(r, data); err != nil || string(data[n:]) != "\r\n" {
				return fmt.Errorf("VALUE %q: bad data block", line)
			}
		default:
			if _, ok := parseUint64([]byte(line)); !ok {
				return fmt.Errorf("not a protocol reply: %q", line)
			}
		}
	}
}

// FuzzProtocol feeds arbitrary bytes to a connection: it must never panic
// or hang, and everything it writes must be protocol reply lines.
func FuzzProtocol(f *testing.F) {
	for _, s := range []string{
		"set k 0 0 1\r\na\r\nget k\r\n",
		"gets a b c\r\ngat 10 a\r\ngats 1 b\r\n",
		"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr n x\r\n",
		"cas k 0 0 1 1\r\nb\r\nappend k 0 0 1\r\nc\r\nprepend k 0 0 1 noreply\r\nd\r\n",
		"delete k\r\ndelete k 0 noreply\r\ntouch k 10\r\nflush_all 10\r\nflush_all\r\n",
		"stats\r\nstats settings\r\nstats reset\r\nversion\r\nverbosity 1\r\nquit\r\n",
		"set k 0 0 99999\r\nxx\r\n",
		"set k 0 0 3\r\nabcdef\r\n",
		"get " + strings.Repeat("k ", 200) + "\r\n",
		"\x80\x00\x00\x00",
		"\x00\xff\r\n\r\n\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		done := make(chan []byte, 1)
		go func() { done <- runScript(t, input) }()
		select {
		case out := <-done:
			if err := checkReplies(out); err != nil {
				t.Fatalf("input %q: %v\noutput %q", input, err, out)
			}
			if len(input) > 0 && input[0] != 0x80 && bytes.IndexByte(input, '\n') >= 0 && len(out) == 0 &&
				!bytes.Contains(input, []byte("noreply")) && !bytes.HasPrefix(bytes.TrimLeft(input, " "), []byte("quit")) &&
				!bytes.Contains(input, []byte("set")) && !bytes.Contains(input, []byte("add")) &&
				!bytes.Contains(input, []byte("replace")) && !bytes.Contains(input, []byte("pend")) &&
				!bytes.Contains(input, []byte("cas")) {
				t.Fatalf("input %q: a complete command line got no reply", input)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("input %q: connection loop did not finish", input)
		}
	})
}

// TestScriptEndsEveryCommand: after any prefix, a resynchronising newline
// and a version command are answered (the connection is never wedged),
// unless the prefix legitimately ended it (quit, an over-long line,
// binary) or left a data block open.
func TestScriptAnswersAfterGarbage(t *testing.T) {
	for _, junk := range []string{"", "bogus", "get", "set k", "set k 0 0", "\x00\x01\x02", "incr", "stats x y z", "gat x"} {
		out := runScript(t, []byte(junk+"\r\nversion\r\n"))
		if !bytes.HasSuffix(out, []byte("VERSION "+DefaultVersion+"\r\n")) {
			t.Errorf("output after %q = %q; want it to end with the version reply", junk, out)
		}
		if err := checkReplies(out); err != nil {
			t.Errorf("after %q: %v", junk, err)
		}
	}
}

// FuzzRestore feeds arbitrary bytes to the snapshot decoder: it must never
// panic, and whatever it accepts must re-encode to the same bytes and
// restore into a store.
func FuzzRestore(f *testing.F) {
	clk := newFakeClock()
	st := newTestStore(f, Config{Now: clk.Now})
	var empty bytes.Buffer
	if err := st.Save(&empty); err != nil {
		f.Fatal(err)
	}
	f.Add(empty.Bytes())
	st.Store(ModeSet, "a", 1, 0, []byte("alpha"), 0)
	st.Store(ModeSet, "b", 2, 100, []byte(""), 0)
	st.Store(ModeSet, "c", 3, 0, bytes.Repeat([]byte{0xff}, 300), 0)
	st.FlushAll(1000)
	var full bytes.Buffer
	if err := st.Save(&full); err != nil {
		f.Fatal(err)
	}
	f.Add(full.Bytes())
	f.Add(full.Bytes()[:full.Len()-3])
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		state, err := DecodeState(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrChecksum) &&
				!errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("DecodeState error %v is none of the sentinels", err)
			}
			return
		}
		var again bytes.Buffer
		if _, err := state.WriteTo(&again); err != nil {
			t.Fatalf("re-encoding an accepted snapshot: %v", err)
		}
		if !bytes.HasPrefix(data, again.Bytes()) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again.Bytes(), data)
		}
		s := newTestStore(t, Config{MaxBytes: 1 << 16, MaxItemSize: 1 << 10, Now: clk.Now})
		s.RestoreState(state)
		if got := s.Stats(); got.Bytes > 1<<16 {
			t.Fatalf("restored store holds %d bytes over its limit", got.Bytes)
		}
	})
}

// FuzzStatsState feeds arbitrary bytes to the stats-block decoder: it must
// never panic, fail only with ErrCorrupt, and what it accepts must
// re-encode to the same bytes, or, for a block of another length than
// this version's, to the same counters.
//
//	go test -run '^$' -fuzz FuzzStatsState ./apps/kv
func FuzzStatsState(f *testing.F) {
	good := sampleStats().Append(nil)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add((&StatsState{}).Append(nil))
	f.Add(statsBlock(0, nil))
	f.Add(statsBlock(1, func(int) uint64 { return 1 }))
	f.Add(statsBlock(statsCounters+3, func(i int) uint64 { return ^uint64(i) }))
	f.Add([]byte(statsMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := DecodeStatsState(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		checkStatsReencoding(t, data, ss)
	})
}
