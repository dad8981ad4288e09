package netns_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/molt-os/molt/qemu/netns"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and TAP interfaces")
	}
}

func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func TestCreateClose(t *testing.T) {
	needRoot(t)
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ns.Name, netns.Prefix) || len(ns.TAP) > 15 || len(ns.MAC) != 6 {
		t.Errorf("name %q, tap %q, mac %v", ns.Name, ns.TAP, ns.MAC)
	}
	if list := run(t, exec.Command("ip", "netns", "list")); !strings.Contains(list, ns.Name) {
		t.Errorf("ip netns list lacks %s:\n%s", ns.Name, list)
	}
	link := run(t, exec.Command("ip", "-n", ns.Name, "-o", "link", "show", "dev", ns.TAP))
	if !strings.Contains(link, ",UP") || !strings.Contains(link, "mtu 1500") {
		t.Errorf("tap is not up with mtu 1500: %s", link)
	}
	if root := run(t, exec.Command("ip", "-o", "link")); strings.Contains(root, ns.TAP+":") {
		t.Errorf("tap %s is in the root namespace:\n%s", ns.TAP, root)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if list := run(t, exec.Command("ip", "netns", "list")); strings.Contains(list, ns.Name) {
		t.Errorf("ip netns list still has %s:\n%s", ns.Name, list)
	}
	if root := run(t, exec.Command("ip", "-o", "link")); strings.Contains(root, ns.TAP+":") {
		t.Errorf("tap %s left in the root namespace:\n%s", ns.TAP, root)
	}
	if _, err := os.Stat("/run/netns/" + ns.Name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/run/netns/%s: %v", ns.Name, err)
	}
	if err := ns.Do(func() error { return nil }); err == nil {
		t.Error("Do after Close succeeded")
	}
}

func TestCleanStale(t *testing.T) {
	needRoot(t)
	dead := exec.Command("true")
	run(t, dead)
	name := netns.Prefix + strconv.Itoa(dead.Process.Pid) + "-0"
	run(t, exec.Command("ip", "netns", "add", name))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	netns.NewT(t)
	if list := run(t, exec.Command("ip", "netns", "list")); strings.Contains(list, name) {
		t.Errorf("New left the stale namespace %s:\n%s", name, list)
	}
}

func TestOptions(t *testing.T) {
	needRoot(t)
	ns := netns.NewT(t, netns.IPv4("10.0.2.2/24", "10.0.2.15/24"), netns.IPv6("", ""),
		netns.MTU(1400), netns.MAC("02:00:0a:00:02:02"))
	if ns.HostIPv4.String() != "10.0.2.2/24" || ns.GuestIPv4.Addr().String() != "10.0.2.15" ||
		ns.HostIPv6.IsValid() || ns.MTU != 1400 || ns.MAC.String() != "02:00:0a:00:02:02" {
		t.Errorf("ns = %+v", ns)
	}
	out := run(t, ns.Command(t.Context(), "ip", "-o", "addr", "show", "dev", ns.TAP))
	if !strings.Contains(out, "inet 10.0.2.2/24") || strings.Contains(out, "inet6 fd00") {
		t.Errorf("addresses:\n%s", out)
	}
	for _, bad := range [][2]string{{"10.0.2.2/24", "10.0.3.2/24"}, {"fd00:3::1/64", "fd00:3::2/64"}, {"10.0.2.2/24", "10.0.2.2/24"}, {"x", "y"}} {
		if _, err := netns.New(netns.IPv4(bad[0], bad[1])); err == nil {
			t.Errorf("IPv4(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestCommand(t *testing.T) {
	needRoot(t)
	ns := netns.NewT(t)
	out := run(t, ns.Command(t.Context(), "ip", "-o", "addr"))
	for _, want := range []string{"inet 10.0.3.1/24", "inet6 fd00:3::1/64", "inet 127.0.0.1/8"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip -o addr in %s lacks %q:\n%s", ns.Name, want, out)
		}
	}
	if strings.Contains(out, "eth0") {
		t.Errorf("ip -o addr shows the root namespace:\n%s", out)
	}
	// ip netns exec mounts the namespace's own /sys.
	if out := run(t, ns.Command(t.Context(), "cat", "/sys/class/net/"+ns.TAP+"/address")); strings.TrimSpace(out) != ns.MAC.String() {
		t.Errorf("tap address from /sys %q, want %v", out, ns.MAC)
	}
}

// echo serves l until it is closed: each connection gets back what it sends.
func echo(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); io.Copy(c, c) }()
	}
}

func roundTrip(c net.Conn, msg string) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo returned " + string(buf))
	}
	return nil
}

func TestListenDial(t *testing.T) {
	needRoot(t)
	ns := netns.NewT(t)
	ctx := t.Context()
	for _, addr := range []string{"127.0.0.1:0", "10.0.3.1:0", "[fd00:3::1]:0"} {
		l, err := ns.Listen(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go echo(l)
		c, err := ns.Dial(ctx, "tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("Dial %s in the namespace: %v", l.Addr(), err)
		}
		if err := roundTrip(c, "hello "+addr); err != nil {
			t.Errorf("%s: %v", l.Addr(), err)
		}
	}

	// Loopback in the namespace is not the root namespace's loopback, in
	// either direction.
	inside, err := ns.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	if c, err := net.DialTimeout("tcp", inside.Addr().String(), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("listener %s in the namespace is reachable from the root namespace", inside.Addr())
	}
	outside, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	if c, err := ns.Dial(ctx, "tcp", outside.Addr().String()); err == nil {
		c.Close()
		t.Errorf("root-namespace listener %s is reachable from the namespace", outside.Addr())
	}

	// UDP.
	pc, err := ns.ListenPacket(ctx, "udp", "10.0.3.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc, err := ns.Dial(ctx, "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	if n, from, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "ping" || from.String() != uc.LocalAddr().String() {
		t.Errorf("ReadFrom = %q from %v, %v", buf[:n], from, err)
	}
}

func TestConcurrentDial(t *testing.T) {
	needRoot(t)
	ns := netns.NewT(t)
	const n = 200
	l, err := ns.Listen(t.Context(), "tcp", "10.0.3.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echo(l)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			c, err := ns.Dial(ctx, "tcp", l.Addr().String())
			if err == nil {
				err = roundTrip(c, "conn "+strconv.Itoa(i))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestDialsKeepChildrenAlive starts processes the way qemu starts QEMU
// (forked inside Do, with a parent-death signal, which Linux ties to the
// forking thread), then dials a lot: no dial may end a thread, or the
// children forked from it would be killed.
func TestDialsKeepChildrenAlive(t *testing.T) {
	needRoot(t)
	ns := netns.NewT(t)
	var children []*exec.Cmd
	for range 8 {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := ns.Do(cmd.Start); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		children = append(children, cmd)
	}
	l, err := ns.Listen(t.Context(), "tcp", "10.0.3.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echo(l)
	var wg sync.WaitGroup
	for range 300 {
		wg.Go(func() {
			if c, err := ns.Dial(t.Context(), "tcp", l.Addr().String()); err == nil {
				c.Close()
			}
		})
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	for i, cmd := range children {
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil); err != nil || pid != 0 {
			t.Errorf("child %d ended while the test dialled (%v, %v)", i, ws, err)
		}
	}
}
