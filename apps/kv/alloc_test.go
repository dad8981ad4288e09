package kv

import (
	"bytes"
	"strings"
	"testing"
)

// loopbackConn serves a fixed input repeatedly, for allocation counts.
func benchConn(tb testing.TB, input string) (*conn, *scriptConn) {
	st := newTestStore(tb, Config{})
	st.Store(ModeSet, "key", 0, 0, []byte("value"), 0)
	st.Store(ModeSet, "n", 0, 0, []byte("1"), 0)
	srv := NewServer(st, ServerConfig{})
	sc := &scriptConn{in: bytes.NewReader([]byte(input))}
	return newConn(srv, sc), sc
}

// TestHotPathAllocations: get, gets, a miss, delete, touch and version
// do not allocate; a set allocates its value (and a new item's key) only.
func TestHotPathAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	for _, tt := range []struct {
		cmd  string
		want float64
	}{
		{"get key\r\n", 0},
		{"gets key\r\n", 0},
		{"get nokey other\r\n", 0},
		{"touch key 0\r\n", 0},
		{"version\r\n", 0},
		{"delete nokey\r\n", 0},
		{"set key 0 0 5\r\nvalue\r\n", 1}, // the value's buffer
		{"incr n 1\r\n", 1},               // the new value
	} {
		const n = 100
		c, sc := benchConn(t, strings.Repeat(tt.cmd, n*2+1))
		allocs := testing.AllocsPerRun(n, func() {
			line, _ := c.br.ReadSlice('\n')
			if isRetrieval(line) {
				c.retrieval(line, false)
			} else {
				c.command(trimEOL(line))
			}
			c.bw.Flush()
			sc.out.Reset()
		})
		if allocs > tt.want {
			t.Errorf("%q: %.1f allocations per command; want <= %.0f", tt.cmd, allocs, tt.want)
		}
	}
}
