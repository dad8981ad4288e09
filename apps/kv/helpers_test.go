package kv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatalf("NewStore(%+v) = %v", cfg, err)
	}
	return s
}

// startServer serves st on 127.0.0.1:0 until the test ends and returns the
// address. Server log lines go to t.Logf.
func startServer(t testing.TB, st *Store, cfg ServerConfig) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if cfg.Logf == nil {
		var mu sync.Mutex
		done := false
		t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
		cfg.Logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				t.Logf(format, args...)
			}
		}
	}
	srv := NewServer(st, cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v; want nil", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v; want ErrServerClosed", err)
		}
	})
	return srv, l.Addr().String()
}

// client is a minimal text-protocol client for tests.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// line reads one reply line without its "\r\n".
func (c *client) line() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		c.t.Fatalf("reply line %q does not end in \\r\\n", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// expect sends cmd and checks the reply lines.
func (c *client) expect(cmd string, want ...string) {
	c.t.Helper()
	c.send(cmd)
	for _, w := range want {
		if got := c.line(); got != w {
			c.t.Fatalf("reply to %q = %q; want %q", cmd, got, w)
		}
	}
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.br.ReadString('\n')
	if err == nil || s != "" {
		c.t.Fatalf("read after close = %q, %v; want EOF", s, err)
	}
}

// stats returns the general stats.
func (c *client) stats() map[string]string {
	c.t.Helper()
	c.send("stats\r\n")
	m := map[string]string{}
	for {
		l := c.line()
		if l == "END" {
			return m
		}
		var name, val string
		if _, err := fmt.Sscanf(l, "STAT %s %s", &name, &val); err != nil {
			c.t.Fatalf("stats line %q: %v", l, err)
		}
		m[name] = val
	}
}

func bufioReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }
