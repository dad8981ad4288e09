package main

// These tests boot the default image on QEMU and talk to its services with
// real peers: QEMU user networking (libslirp) with host forwards, as `make
// run` does, and Linux's own TCP/IP stack on a TAP interface inside a
// network namespace the test creates (qemu/netns), with Debian's
// memcapable, memcslap and ping. They need root and QEMU, and are skipped
// with -short.

import (
	"bufio"
	"context"
	"fmt"
	"github.com/molt-os/molt/internal/syncbuf"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/internal/streamcheck"
	"github.com/molt-os/molt/qemu"
)

const bootTimeout = 2 * time.Minute

var built struct {
	once sync.Once
	path string
	err  error
}

// kernelImage builds this package as a kernel image, once per test binary.
func kernelImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	if err := qemu.Available(); err != nil {
		t.Skip(err)
	}
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "molt-kernel-test")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "molt.elf")
		_, built.err = image.Build(context.Background(), image.BuildOptions{
			Dir: "../..", Package: "./cmd/kernel", Output: built.path, Version: "test",
		})
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// guest is a booted default image with its console.
type guest struct {
	vm      *qemu.VM
	stdin   io.WriteCloser
	console *syncbuf.Buffer // everything the guest printed
}

// bootGuest starts the image with opts and waits for "services ready".
// start starts the VM (netns starts it inside a namespace).
func bootGuest(t *testing.T, start func(opts ...qemu.Option) *qemu.VM, opts ...qemu.Option) *guest {
	t.Helper()
	img := kernelImage(t)
	inR, inW := io.Pipe()
	con := &syncbuf.Buffer{}
	opts = append([]qemu.Option{qemu.Kernel(img), qemu.Accel("tcg"), qemu.Timeout(10 * time.Minute), qemu.Stdin(inR), qemu.Console(con)}, opts...)
	g := &guest{vm: start(opts...), stdin: inW, console: con}
	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	if err := g.vm.Expect(ctx, "molt: services ready on"); err != nil {
		t.Fatalf("guest never reported its services ready: %v", err)
	}
	return g
}

// poweroff stops the guest through its shell and checks how it ended: the
// services must still be up and the machine must exit 0. Tests defer it
// (it must run before the test's context ends, which kills QEMU).
func (g *guest) poweroff(t *testing.T) {
	t.Helper()
	fmt.Fprintln(g.stdin, "poweroff")
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err := g.vm.Wait()
		if err != nil {
			t.Errorf("guest: %v", err)
		} else if !r.OK() {
			t.Errorf("guest ended with %s", r.Describe())
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		g.vm.Kill()
		<-done
		t.Errorf("guest did not power off within a minute")
	}
	g.stdin.Close()
}

// shell runs a shell command on the console until its output contains
// want: the command is repeated every 2 s for up to 30 s, since what it
// reports (say, connections the service has accepted) may still be
// catching up with what the peer sees.
func (g *guest) shell(t *testing.T, cmd, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		fmt.Fprintln(g.stdin, cmd)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := g.vm.Expect(ctx, want)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("shell %q: no %q in the console within 30 s: %v", cmd, want, err)
			return
		}
	}
}

// kvVersion asks the kv service at addr for its version over conn.
func kvVersion(c net.Conn) error {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "version\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the version reply: %w", err)
	}
	if !strings.HasPrefix(line, "VERSION 1.6") {
		return fmt.Errorf("version reply %q; want VERSION 1.6...", line)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that is free now (and very
// likely when QEMU binds it a moment later); UDP is checked on the same
// number.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port on 127.0.0.1")
	return 0
}

// TestUserNet boots the image the way `make run` does, on QEMU user
// networking with host forwards: the kernel leases its address by DHCP
// from libslirp, and kv and echo answer through the forwards.
func TestUserNet(t *testing.T) {
	kvPort, echoPort := freePort(t), freePort(t)
	g := bootGuest(t, func(opts ...qemu.Option) *qemu.VM { return qemu.StartT(t, opts...) },
		qemu.UserNet("52:54:00:12:34:56",
			qemu.Forward{Proto: "tcp", HostPort: kvPort, GuestPort: kvPortGuest},
			qemu.Forward{Proto: "tcp", HostPort: echoPort, GuestPort: echoPortGuest},
			qemu.Forward{Proto: "udp", HostPort: echoPort, GuestPort: echoPortGuest}))
	defer g.poweroff(t)
	if !strings.Contains(g.console.String(), "dhcp: bound to 10.0.2.15/24 via 10.0.2.2") {
		t.Errorf("no DHCP lease from libslirp in the boot log")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", kvPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := kvVersion(c); err != nil {
		t.Errorf("kv through the forward: %v", err)
	}

	ec, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", echoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	if err := streamcheck.Echo(ec, 256<<10, 1); err != nil {
		t.Errorf("echo through the forward: %v", err)
	}

	uc, err := d.DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", echoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if err := streamcheck.Datagrams(uc, 20, 2*time.Second); err != nil {
		t.Errorf("udp echo through the forward: %v", err)
	}
	g.shell(t, "net", "lease from 10.0.2.2")
}

// The guest's ports, as main's constants (the test reads them from there).
const (
	kvPortGuest   = kvPort
	echoPortGuest = echoPort
)
