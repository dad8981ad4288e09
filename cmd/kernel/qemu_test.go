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
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/internal/moltvm"
	"github.com/molt-os/molt/internal/streamcheck"
	"github.com/molt-os/molt/qemu"
)

// kernelImage builds this package as a kernel image (see qemu.BuildT).
func kernelImage(t *testing.T) string {
	t.Helper()
	return qemu.BuildT(t, "../..", "./cmd/kernel", "test")
}

// guest is a booted default image (internal/moltvm) with test-shaped
// helpers.
type guest struct{ *moltvm.Guest }

// bootGuest starts the image with opts through start (qemu.Start, or a
// namespace's StartVM) and waits for its services.
func bootGuest(t *testing.T, start moltvm.Starter, opts ...qemu.Option) *guest {
	t.Helper()
	img := kernelImage(t)
	opts = append([]qemu.Option{qemu.Kernel(img), qemu.Accel("tcg"), qemu.Timeout(10 * time.Minute), qemu.Logf(t.Logf)}, opts...)
	g, err := moltvm.Boot(t.Context(), start, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &guest{g}
}

// poweroff stops the guest through its shell and checks how it ended: the
// services must still be up and the machine must exit 0. Tests defer it
// (it must run before the test's context ends, which kills QEMU).
func (g *guest) poweroff(t *testing.T) {
	t.Helper()
	if err := g.Poweroff(); err != nil {
		t.Errorf("guest: %v", err)
	}
	t.Logf("qemu: reproduce with: %s", g.VM.CommandLine())
}

// shell runs a shell command until the console shows want (30 s).
func (g *guest) shell(t *testing.T, cmd, want string) {
	t.Helper()
	if err := g.Shell(t.Context(), cmd, want, 30*time.Second); err != nil {
		t.Error(err)
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
	hostKV, hostEcho := freePort(t), freePort(t)
	g := bootGuest(t, qemu.Start,
		qemu.UserNet("52:54:00:12:34:56",
			qemu.Forward{Proto: "tcp", HostPort: hostKV, GuestPort: kvPort},
			qemu.Forward{Proto: "tcp", HostPort: hostEcho, GuestPort: echoPort},
			qemu.Forward{Proto: "udp", HostPort: hostEcho, GuestPort: echoPort}))
	defer g.poweroff(t)
	if !strings.Contains(g.Console.String(), "dhcp: bound to 10.0.2.15/24 via 10.0.2.2") {
		t.Errorf("no DHCP lease from libslirp in the boot log")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", hostKV))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := kvVersion(c); err != nil {
		t.Errorf("kv through the forward: %v", err)
	}

	ec, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", hostEcho))
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	if err := streamcheck.Echo(ec, 256<<10, 1); err != nil {
		t.Errorf("echo through the forward: %v", err)
	}

	uc, err := d.DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", hostEcho))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if err := streamcheck.Datagrams(uc, 20, 2*time.Second); err != nil {
		t.Errorf("udp echo through the forward: %v", err)
	}
	g.shell(t, "net", "lease from 10.0.2.2")
}
