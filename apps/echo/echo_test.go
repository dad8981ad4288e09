package echo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/molt-os/molt/internal/streamcheck"
)

// The tests use package net on loopback: the host's TCP stack is the peer.

func serve(t *testing.T, cfg Config) (*Server, string, string) {
	t.Helper()
	srv := NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- srv.ServeTCP(ln) }()
	go func() { errs <- srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		for range 2 {
			if err := <-errs; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		}
	})
	return srv, ln.Addr().String(), pc.LocalAddr().String()
}

func TestTCPStreamIntact(t *testing.T) {
	srv, addr, _ := serve(t, Config{BufferSize: 1000})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 8 << 20
	if err := streamcheck.Echo(c, size, 1); err != nil {
		t.Fatal(err)
	}
	if s := srv.Stats(); s.TCPBytes != size || s.Accepted != 1 || s.Errors != 0 {
		t.Errorf("Stats = %+v; want TCPBytes %d, Accepted 1, Errors 0", s, size)
	}
}

func TestTCPConcurrent(t *testing.T) {
	srv, addr, _ := serve(t, Config{})
	const conns, size = 200, 64 << 10
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	for _, err := range streamcheck.EchoAll(cs, size, 0) {
		t.Error(err)
	}
	for _, c := range cs {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Open != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := srv.Stats(); s.Accepted != conns || s.TCPBytes != conns*size || s.Open != 0 || s.Errors != 0 {
		t.Errorf("Stats = %+v; want %d accepted, %d bytes, none open, no errors", s, conns, conns*size)
	}
}

func TestUDPEcho(t *testing.T) {
	srv, _, uaddr := serve(t, Config{})
	c, err := net.Dial("udp", uaddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, MaxDatagram+1)
	for _, n := range []int{0, 1, 512, 1472, 9000, MaxDatagram - 28} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
		got, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read echo of %d bytes: %v", n, err)
		}
		if !bytes.Equal(buf[:got], msg) {
			t.Fatalf("echo of %d bytes came back as %d bytes", n, got)
		}
	}
	// The server counts a datagram after sending its echo, so the count
	// may trail the last echo by a moment.
	for deadline := time.Now().Add(5 * time.Second); srv.Stats().Datagrams < 6 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if s := srv.Stats(); s.Datagrams != 6 || s.UDPTruncated != 0 {
		t.Errorf("Stats = %+v; want 6 datagrams, none truncated", s)
	}
}

func TestMaxConns(t *testing.T) {
	srv, addr, _ := serve(t, Config{MaxConns: 2})
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A round trip proves the server accepted and tracks it.
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("third connection read %d bytes; want it closed", n)
	}
	if s := srv.Stats(); s.Rejected != 1 || s.Open != 2 {
		t.Errorf("Stats = %+v; want 1 rejected, 2 open", s)
	}
}

func TestIdleTimeout(t *testing.T) {
	_, addr, _ := serve(t, Config{IdleTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: Read = %v; want EOF from the server's close", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("closed after %v; before the idle timeout", d)
	}
}

// A client that writes but never reads must not hold a connection
// goroutine forever: the write timeout closes it.
func TestClientThatDoesNotRead(t *testing.T) {
	srv, addr, _ := serve(t, Config{WriteTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	junk := make([]byte, 64<<10)
	c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	for srv.Stats().Open > 0 || srv.Stats().Accepted == 0 {
		if _, err := c.Write(junk); err != nil {
			break // the server closed the connection
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().Open != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := srv.Stats(); s.Open != 0 {
		t.Errorf("Stats = %+v; the stalled connection is still open", s)
	}
}

func TestShutdownClosesStuckConnections(t *testing.T) {
	srv := NewServer(Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTCP(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with an open connection = %v; want DeadlineExceeded", err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeTCP = %v; want ErrServerClosed", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Shutdown's deadline")
	}
	if err := srv.ServeTCP(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeTCP after Shutdown = %v; want ErrServerClosed", err)
	}
}
