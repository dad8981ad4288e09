package streamcheck

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs handle on each connection accepted on a loopback listener.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().String()
}

func dialEcho(t *testing.T, handle func(net.Conn), size int) error {
	c, err := net.Dial("tcp", serve(t, handle))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return Echo(c, size, 7)
}

// brokenEchoes are servers whose echo differs from what they received.
var brokenEchoes = map[string]func(net.Conn){
	"drops a byte": func(c net.Conn) {
		b := make([]byte, 1)
		io.ReadFull(c, b)
		io.Copy(c, c)
	},
	"flips a byte": func(c net.Conn) {
		b := make([]byte, 100)
		n, _ := io.ReadFull(c, b)
		b[50] ^= 1
		c.Write(b[:n])
		io.Copy(c, c)
	},
	"duplicates": func(c net.Conn) {
		b := make([]byte, 10)
		n, _ := io.ReadFull(c, b)
		c.Write(b[:n])
		c.Write(b[:n])
		io.Copy(c, c)
	},
	"stops early": func(c net.Conn) { io.CopyN(c, c, 1000) },
}

func TestEcho(t *testing.T) {
	good := func(c net.Conn) { io.Copy(c, c) }
	if err := dialEcho(t, good, 1<<20); err != nil {
		t.Errorf("true echo: %v", err)
	}
	// Each kind of broken echo must be caught.
	for name, bad := range brokenEchoes {
		if err := dialEcho(t, bad, 64<<10); err == nil {
			t.Errorf("an echo that %s passed", name)
		}
	}
}

func runStream(t *testing.T, handle func(net.Conn)) (*Stream, error) {
	c, err := net.Dial("tcp", serve(t, handle))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	s, err := NewStream(c, 3, 4096, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	s.Stop()
	return s, s.Wait()
}

func TestStream(t *testing.T) {
	s, err := runStream(t, func(c net.Conn) { io.Copy(c, c) })
	if err != nil {
		t.Errorf("true echo: %v", err)
	}
	if s.Written() == 0 || s.Echoed() != s.Written() {
		t.Errorf("written %d, echoed %d", s.Written(), s.Echoed())
	}
	for name, bad := range brokenEchoes {
		if _, err := runStream(t, bad); err == nil {
			t.Errorf("an echo that %s passed", name)
		}
	}
}

func TestDatagrams(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var dropAll atomic.Bool
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if dropAll.Load() {
				continue
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Datagrams(c, 100, time.Second); err != nil {
		t.Errorf("true echo: %v", err)
	}
	dropAll.Store(true)
	if err := Datagrams(c, 1, 50*time.Millisecond); !errors.Is(err, ErrLost) {
		t.Errorf("an echo that drops everything: %v; want ErrLost", err)
	}
	if err := Echo(c, 10, 1); err == nil || !strings.Contains(err.Error(), "cannot close") {
		t.Errorf("Echo on UDP = %v; want a refusal", err)
	}
}
