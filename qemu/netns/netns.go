// Package netns puts a molt guest on a TAP interface inside a network
// namespace that a test creates, so that the peer of the guest's network
// stack is Linux's own (ARP, ICMP, TCP, UDP), reached through ordinary
// tools and sockets, without touching the host's network.
//
// # Design
//
// New creates a namespace named "molt-<pid>-<n>" (as `ip netns add` does,
// so it shows in `ip netns list` and /run/netns), brings up its loopback,
// and creates a persistent TAP interface "mtap<n>" inside it, with the
// Linux-side addresses (DefaultHostIPv4 and DefaultHostIPv6 unless the IPv4
// and IPv6 options say otherwise; IPv6 is added with nodad, so it is usable
// at once) and up. The guest is meant to use GuestIPv4 (DefaultGuestIPv4,
// 10.0.3.2/24) with HostIPv4 as its gateway. Nothing is ever configured in
// the root namespace: the TAP interface lives in the namespace from its
// creation to its deletion.
//
// QEMU attaches to a TAP interface by name in the namespace it runs in, so
// QEMU is started inside the namespace, with StartVM or StartT (qemu.Start
// and qemu.StartT inside Do) and qemu.TAP(ns.TAP, mac):
//
//	ns := netns.NewT(t)
//	vm := ns.StartT(t, qemu.Kernel(img), qemu.TAP(ns.TAP, "52:54:00:00:03:02"))
//
// Do runs its function on an OS thread switched into the namespace, and a
// process forked from that thread (qemu.Start forks QEMU before it returns)
// starts in the namespace. This was chosen over creating the interface in
// the root namespace, letting QEMU open it and then moving it: that leaves a
// window in which the interface is in the root namespace, and New could not
// configure it before QEMU runs. QEMU's serial console, files and process
// group are unaffected by the network namespace. QEMU needs root (or
// CAP_NET_ADMIN) to attach to the TAP interface. Started outside Do, QEMU
// would not fail: it would create a new, unconfigured interface of that name
// in its own namespace, and the guest would see no peer.
//
// Peers run inside the namespace with Command (`ip netns exec`), or are Go
// sockets made by Dial, Listen and ListenPacket. A socket belongs to the
// namespace of the thread that creates it, for life, whichever thread uses it
// later; these methods create it on a thread switched into the namespace
// for the call (as Do does), at most 64 at once, so concurrent calls are
// safe and add at most 64 threads to the process. No thread is ever left to
// exit: Linux delivers QEMU's parent-death signal (package qemu sets
// SIGKILL) when the thread that forked QEMU ends, so a thread that
// started a VM must live as long as the VM, and the Go runtime ends a
// thread only when a goroutine exits while locked to it. (An earlier
// version discarded its threads that way, and killed QEMU whenever a dial
// happened to run on the thread that had started it.)
//
// # Cleanup
//
// Close deletes the TAP interface and the namespace; it is idempotent, and
// NewT registers it with t.Cleanup. A namespace lives on while a process
// runs in it: Close succeeds while QEMU runs, but the namespace goes away
// only when QEMU exits (with NewT before qemu.StartT, the cleanups stop QEMU
// first). New also deletes namespaces left by crashed runs: those named
// "molt-<pid>-<n>" whose pid is not a running process.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Addresses (CIDR notation) used unless the IPv4 and IPv6 options say
// otherwise. Host addresses are on the Linux side of the TAP interface; the
// guest should configure the guest addresses and use the host address as its
// gateway.
const (
	DefaultHostIPv4  = "10.0.3.1/24"
	DefaultGuestIPv4 = "10.0.3.2/24"
	DefaultHostIPv6  = "fd00:3::1/64"
	DefaultGuestIPv6 = "fd00:3::2/64"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "molt-"

// ErrNotRoot: New needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
var ErrNotRoot = errors.New("netns: need root to create network namespaces and TAP interfaces")

// NS is a network namespace with a TAP interface in it. Its exported fields
// are set by New and must not be changed.
type NS struct {
	Name string           // namespace name, as `ip netns list` shows it
	TAP  string           // TAP interface inside the namespace
	MAC  net.HardwareAddr // the TAP interface's (Linux-side) MAC address
	MTU  int              // the TAP interface's MTU

	HostIPv4, GuestIPv4 netip.Prefix // HostIPv4 is on the TAP interface
	HostIPv6, GuestIPv6 netip.Prefix // zero when IPv6 is off (IPv6("", ""))

	mu     sync.RWMutex
	fd     int // open /run/netns/Name, for setns; -1 before, -2 after Close
	hasTAP bool
}

type config struct {
	host4, guest4, host6, guest6 string
	mtu                          int
	mac                          string
}

// Option configures New.
type Option func(*config)

// IPv4 sets the host and guest IPv4 addresses in CIDR notation, for
// example IPv4("10.0.2.2/24", "10.0.2.15/24").
func IPv4(host, guest string) Option {
	return func(c *config) { c.host4, c.guest4 = host, guest }
}

// IPv6 sets the host and guest IPv6 addresses in CIDR notation; IPv6("", "")
// configures no IPv6 address.
func IPv6(host, guest string) Option {
	return func(c *config) { c.host6, c.guest6 = host, guest }
}

// MTU sets the TAP interface's MTU (default 1500).
func MTU(n int) Option { return func(c *config) { c.mtu = n } }

// MAC sets the TAP interface's own MAC address (default: chosen by Linux).
func MAC(mac string) Option { return func(c *config) { c.mac = mac } }

var counter atomic.Int64

// New creates a namespace with a configured TAP interface (see the package
// documentation). It needs root.
func New(opts ...Option) (*NS, error) {
	c := config{host4: DefaultHostIPv4, guest4: DefaultGuestIPv4, host6: DefaultHostIPv6, guest6: DefaultGuestIPv6, mtu: 1500}
	for _, o := range opts {
		o(&c)
	}
	n := counter.Add(1) - 1
	ns := &NS{Name: fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), n), TAP: fmt.Sprintf("mtap%d", n), MTU: c.mtu, fd: -1}
	var err error
	if ns.HostIPv4, ns.GuestIPv4, err = parsePair(c.host4, c.guest4, false); err != nil {
		return nil, fmt.Errorf("netns: IPv4: %w", err)
	}
	if ns.HostIPv6, ns.GuestIPv6, err = parsePair(c.host6, c.guest6, true); err != nil {
		return nil, fmt.Errorf("netns: IPv6: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("netns: %w (install iproute2)", err)
	}
	cleanStale()
	if err := ip("netns", "add", ns.Name); err != nil {
		return nil, fmt.Errorf("netns: create namespace: %w", err)
	}
	if err := ns.setup(c); err != nil {
		ns.Close()
		return nil, fmt.Errorf("netns: %w", err)
	}
	return ns, nil
}

func (ns *NS) setup(c config) error {
	fd, err := unix.Open("/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", ns.Name, err)
	}
	ns.fd = fd
	in := func(args ...string) error { return ip(append([]string{"-n", ns.Name}, args...)...) }
	if err := in("link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("bring up lo in %s: %w", ns.Name, err)
	}
	if err := in("tuntap", "add", "dev", ns.TAP, "mode", "tap"); err != nil {
		return fmt.Errorf("create tap %s in %s: %w", ns.TAP, ns.Name, err)
	}
	ns.hasTAP = true
	set := []string{"link", "set", "dev", ns.TAP, "mtu", strconv.Itoa(c.mtu)}
	if c.mac != "" {
		set = append(set, "address", c.mac)
	}
	if err := in(set...); err != nil {
		return fmt.Errorf("configure tap %s in %s: %w", ns.TAP, ns.Name, err)
	}
	if err := in("addr", "add", ns.HostIPv4.String(), "dev", ns.TAP); err != nil {
		return fmt.Errorf("add %s to tap %s in %s: %w", ns.HostIPv4, ns.TAP, ns.Name, err)
	}
	if ns.HostIPv6.IsValid() {
		if err := in("addr", "add", ns.HostIPv6.String(), "dev", ns.TAP, "nodad"); err != nil {
			return fmt.Errorf("add %s to tap %s in %s: %w", ns.HostIPv6, ns.TAP, ns.Name, err)
		}
	}
	if err := in("link", "set", "dev", ns.TAP, "up"); err != nil {
		return fmt.Errorf("bring up tap %s in %s: %w", ns.TAP, ns.Name, err)
	}
	return ns.Do(func() error {
		ifc, err := net.InterfaceByName(ns.TAP)
		if err != nil {
			return fmt.Errorf("read tap %s in %s: %w", ns.TAP, ns.Name, err)
		}
		ns.MAC = ifc.HardwareAddr
		return nil
	})
}

// NewT is New for tests: it fails t if the namespace cannot be made (for
// example when the test does not run as root) and closes it at cleanup.
func NewT(t testing.TB, opts ...Option) *NS {
	t.Helper()
	ns, err := New(opts...)
	if err != nil {
		t.Fatalf("%v (network namespace tests need root, ip(8) and /dev/net/tun)", err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Errorf("netns: close: %v", err)
		}
	})
	return ns
}

// Close deletes the TAP interface and the namespace. Calling it again does
// nothing.
func (ns *NS) Close() error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.fd == -2 {
		return nil
	}
	if ns.fd >= 0 {
		unix.Close(ns.fd)
	}
	ns.fd = -2
	var errs []error
	if ns.hasTAP {
		if err := ip("-n", ns.Name, "link", "del", "dev", ns.TAP); err != nil {
			errs = append(errs, fmt.Errorf("netns: delete tap %s in %s: %w", ns.TAP, ns.Name, err))
		}
	}
	if err := ip("netns", "del", ns.Name); err != nil {
		errs = append(errs, fmt.Errorf("netns: delete namespace %s: %w", ns.Name, err))
	}
	return errors.Join(errs...)
}

// Do runs f on the calling goroutine, locked to its OS thread while the
// thread is switched into the namespace. Sockets f creates and processes it
// starts belong to the namespace; goroutines f starts do not (they run on
// other threads). f may call t.FailNow. Do panics if the thread cannot be
// switched back, rather than leave the goroutine in the namespace.
func (ns *NS) Do(f func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: open current namespace: %w", err)
	}
	if err := ns.enter(); err != nil {
		unix.Close(orig)
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("netns: leave %s: %v", ns.Name, err))
		}
		unix.Close(orig)
		runtime.UnlockOSThread()
	}()
	return f()
}

// inside runs f on a thread switched into the namespace (Do), in at most
// maxInside goroutines at once. The threads go back to the root namespace
// afterwards and stay in the runtime's pool, so at most maxInside extra
// threads ever exist. A thread is never left to die: a process forked from
// a thread that exits would be killed (qemu starts QEMU with a parent-death
// signal, which Linux ties to the forking thread), and the runtime ends a
// thread exactly when a goroutine exits while locked to it.
func (ns *NS) inside(f func() error) error {
	insideSem <- struct{}{}
	defer func() { <-insideSem }()
	return ns.Do(f)
}

// maxInside bounds the threads Dial, Listen and ListenPacket use at once.
const maxInside = 64

var insideSem = make(chan struct{}, maxInside)

// enter switches the calling thread, which must be locked, into the
// namespace.
func (ns *NS) enter() error {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if ns.fd < 0 {
		return fmt.Errorf("netns: %s is closed", ns.Name)
	}
	if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns: enter %s: %w", ns.Name, err)
	}
	return nil
}

// Command returns a command that runs name inside the namespace, through
// `ip netns exec` (which also mounts the namespace's own /sys). It is
// started later with Run, Start or Output, on any goroutine.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Dial connects from inside the namespace, like net.Dialer.DialContext.
// Host names are looked up as by the net package; use IP literals.
func (ns *NS) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	// FallbackDelay < 0: no Happy Eyeballs, whose racing dials would run
	// in other goroutines, on threads outside the namespace.
	d := net.Dialer{FallbackDelay: -1}
	var c net.Conn
	err := ns.inside(func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen listens inside the namespace, like net.ListenConfig.Listen.
func (ns *NS) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	var l net.Listener
	err := ns.inside(func() (err error) {
		l, err = new(net.ListenConfig).Listen(ctx, network, address)
		return err
	})
	return l, err
}

// ListenPacket listens inside the namespace, like
// net.ListenConfig.ListenPacket.
func (ns *NS) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := ns.inside(func() (err error) {
		c, err = new(net.ListenConfig).ListenPacket(ctx, network, address)
		return err
	})
	return c, err
}

// parsePair parses host and guest addresses in CIDR notation, which must be
// of the family asked for and on the same subnet. Two empty strings are
// allowed for IPv6 (no address).
func parsePair(host, guest string, v6 bool) (h, g netip.Prefix, err error) {
	if v6 && host == "" && guest == "" {
		return h, g, nil
	}
	if h, err = netip.ParsePrefix(host); err != nil {
		return h, g, err
	}
	if g, err = netip.ParsePrefix(guest); err != nil {
		return h, g, err
	}
	switch {
	case h.Addr().Is6() != v6 || g.Addr().Is6() != v6:
		return h, g, fmt.Errorf("%s and %s: wrong address family", h, g)
	case h.Addr() == g.Addr() || !h.Masked().Contains(g.Addr()):
		return h, g, fmt.Errorf("guest %s is not another address on the subnet of %s", g, h)
	}
	return h, g, nil
}

// cleanStale deletes namespaces "molt-<pid>-<n>" whose creator is no longer
// running. Errors are ignored: another process may be cleaning too.
func cleanStale() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), Prefix)
		pidStr, _, ok2 := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || !ok2 || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			ip("netns", "del", e.Name()) // deletes the TAP interface with it
		}
	}
}

// ip runs ip(8) and returns its message with any error.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
