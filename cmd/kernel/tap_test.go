package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molt-os/molt/internal/memcapable"
	"github.com/molt-os/molt/internal/streamcheck"
	"github.com/molt-os/molt/internal/testtool"
	"github.com/molt-os/molt/qemu"
	"github.com/molt-os/molt/qemu/netns"
)

// tapMAC is the guest's MAC on the TAP; its EUI-64 link-local address is
// tapLinkLocal.
const (
	tapMAC       = "52:54:00:00:03:02"
	tapLinkLocal = "fe80::5054:ff:fe00:302"
)

// tapGuest boots the image on a TAP interface in a fresh namespace with a
// static address (ip=10.0.3.2/24,gw=10.0.3.1).
func tapGuest(t *testing.T) (*guest, *netns.NS, netip.Addr) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("MOLT_REQUIRE_TOOLS") == "1" {
			t.Fatal("needs root: creates a network namespace and a TAP interface (MOLT_REQUIRE_TOOLS=1)")
		}
		t.Skip("needs root: creates a network namespace and a TAP interface")
	}
	kernelImage(t) // skip before making a namespace if QEMU is missing
	// A jumbo MTU on the Linux side lets the malformed-traffic test send
	// frames longer than the guest's 1500-byte MTU; Linux's TCP still
	// sends segments that fit the MSS the guest announces.
	ns := netns.NewT(t, netns.MTU(9000))
	g := bootGuest(t, ns.StartVM, qemu.TAP(ns.TAP, tapMAC), qemu.Append(fmt.Sprintf("ip=%s,gw=%s", ns.GuestIPv4, ns.HostIPv4.Addr())))
	if want := "net: static " + ns.GuestIPv4.String(); !strings.Contains(g.Console.String(), want) {
		t.Errorf("boot log lacks %q", want)
	}
	return g, ns, ns.GuestIPv4.Addr()
}

// runIn runs a peer tool inside the namespace with a deadline and returns
// its stdout and stderr.
func runIn(t *testing.T, ns *netns.NS, timeout time.Duration, name string, args ...string) (string, string, error) {
	t.Helper()
	return testtool.Run(t, timeout, func(ctx context.Context) *exec.Cmd { return ns.Command(ctx, name, args...) })
}

// dialAll opens n connections to addr from the namespace, concurrently,
// and closes them when the test ends.
func dialAll(t *testing.T, ns *netns.NS, addr string, n int) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cs[i], errs[i] = ns.Dial(ctx, "tcp", addr)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dialling %d connections to %s: %v", n, addr, err)
	}
	return cs
}

// checkStreams runs a checksummed echo stream of size bytes on every
// connection at once. On a failure it logs Linux's view of the connections
// (retransmissions, RTO, windows) for the diagnosis.
func checkStreams(t *testing.T, ns *netns.NS, cs []net.Conn, size int, seed uint64) {
	t.Helper()
	for _, c := range cs {
		c.SetDeadline(time.Now().Add(5 * time.Minute))
	}
	failed := streamcheck.EchoAll(cs, size, seed)
	for i, err := range failed {
		if i < 5 {
			t.Error(err)
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d streams failed", len(failed), len(cs))
		out, _, _ := runIn(t, ns, 10*time.Second, "ss", "-tinoa")
		t.Logf("ss -tinoa in %s:\n%s", ns.Name, out)
	}
}

// TestTAP runs Linux's own network stack against the kernel's, through a
// TAP interface: ping over IPv4 and IPv6, memcapable and memcslap against
// kv, 1,000 concurrent checksummed echo streams, UDP echo, and malformed
// traffic after which everything must still work. One guest serves all
// subtests, in order, so the later ones also show that the earlier ones
// left the kernel healthy.
func TestTAP(t *testing.T) {
	ping := testtool.Find(t, "iputils-ping", "ping")
	memcapableTool := testtool.Find(t, "libmemcached-tools", "memcapable", "memccapable")
	memcslap := testtool.Find(t, "libmemcached-tools", "memcslap", "memslap")
	g, ns, ip := tapGuest(t)
	defer g.poweroff(t)
	kvAddr := netip.AddrPortFrom(ip, kvPort).String()
	echoAddr := netip.AddrPortFrom(ip, echoPort).String()

	t.Run("ping", func(t *testing.T) {
		for _, dst := range []string{ip.String(), tapLinkLocal + "%" + ns.TAP} {
			// The guest's link-local address may still be in duplicate
			// address detection (1 s); wait for a first answer, then
			// require no loss.
			if out, stderr, err := runIn(t, ns, time.Minute, ping, "-c", "1", "-w", "30", dst); err != nil {
				t.Errorf("ping %s: no answer within 30 s: %v\n%s%s", dst, err, out, stderr)
				continue
			}
			out, stderr, err := runIn(t, ns, time.Minute, ping, "-c", "5", "-i", "0.2", "-W", "5", dst)
			if err != nil || !strings.Contains(out, " 0% packet loss") {
				t.Errorf("ping %s: %v\n%s%s", dst, err, out, stderr)
			}
		}
	})

	t.Run("kv-ipv6-link-local", func(t *testing.T) {
		c, err := ns.Dial(t.Context(), "tcp", "["+tapLinkLocal+"%"+ns.TAP+"]:"+strconv.Itoa(kvPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := kvVersion(c); err != nil {
			t.Error(err)
		}
	})

	t.Run("memcapable", func(t *testing.T) {
		stdout, stderr, err := runIn(t, ns, 3*time.Minute, memcapableTool, "-a", "-v", "-t", "10", "-h", ip.String(), "-p", strconv.Itoa(kvPort))
		for _, p := range memcapable.Problems(stdout, nil) {
			t.Errorf("memcapable: %s", p)
		}
		if err != nil && !t.Failed() {
			t.Errorf("memcapable exited with %v", err)
		}
		if t.Failed() {
			t.Logf("memcapable stdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
	})

	t.Run("memcslap", func(t *testing.T) {
		const concurrency, execute = 8, 2000
		for _, test := range []string{"set", "get"} {
			stdout, stderr, err := runIn(t, ns, 3*time.Minute, memcslap, "--servers="+kvAddr,
				"--concurrency="+strconv.Itoa(concurrency), "--execute-number="+strconv.Itoa(execute), "--test="+test)
			// memslap exits 0 even when requests fail; it reports failures
			// on stderr.
			if err != nil || strings.TrimSpace(stderr) != "" {
				t.Errorf("memcslap --test=%s: %v\nstderr:\n%s", test, err, stderr)
			}
			m := regexp.MustCompile(`Time to ` + test + `\s+(\d+) keys by\s+(\d+) threads`).FindStringSubmatch(stdout)
			if m == nil {
				t.Errorf("memcslap --test=%s: no summary line:\n%s", test, stdout)
			} else if n, _ := strconv.Atoi(m[1]); n != concurrency*execute {
				t.Errorf("memcslap --test=%s processed %d keys; want %d", test, n, concurrency*execute)
			}
		}
	})

	t.Run("echo-1000-connections", func(t *testing.T) {
		// Every connection is open before any stream starts, so the
		// kernel really holds 1,000 at once.
		const conns, size = 1000, 16 << 10
		cs := dialAll(t, ns, echoAddr, conns)
		g.shell(t, "services", "Open:1000 ")
		start := time.Now()
		checkStreams(t, ns, cs, size, 0)
		t.Logf("%d connections × %d bytes each way in %v", conns, size, time.Since(start).Round(time.Millisecond))
	})

	t.Run("echo-bulk", func(t *testing.T) {
		// Several long streams at once: the receive and send buffers of
		// the stack and of the echo service fill and drain repeatedly.
		checkStreams(t, ns, dialAll(t, ns, echoAddr, 8), 8<<20, 1000)
	})

	t.Run("udp-echo", func(t *testing.T) {
		c, err := ns.Dial(t.Context(), "udp", echoAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := streamcheck.Datagrams(c, 300, 2*time.Second); err != nil {
			t.Error(err)
		}
	})

	t.Run("malformed-traffic", func(t *testing.T) {
		sent := sendMalformed(t, ns, ip)
		t.Logf("sent %d malformed or unsolicited frames", sent)
		// The kernel must still serve: kv answers, echo streams intact.
		c, err := ns.Dial(t.Context(), "tcp", kvAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := kvVersion(c); err != nil {
			t.Errorf("kv after malformed traffic: %v", err)
		}
		ec, err := ns.Dial(t.Context(), "tcp", echoAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer ec.Close()
		ec.SetDeadline(time.Now().Add(time.Minute))
		if err := streamcheck.Echo(ec, 1<<20, 99); err != nil {
			t.Errorf("echo after malformed traffic: %v", err)
		}
		// The driver saw no device error: the bad frames were the
		// stack's to drop.
		g.shell(t, "net", "DeviceErrors:0 ")
	})
	if testing.Verbose() || t.Failed() {
		g.shell(t, "net", "sockets:")
		t.Logf("guest console:\n%s", g.Console.String())
	}
}
