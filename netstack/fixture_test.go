package netstack

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/refs"

	"github.com/molt-os/molt/netstack/link"
	"github.com/molt-os/molt/netstack/link/wire"
)

// TestMain fails the run if any gVisor packet buffer leaks: every test shuts
// its stacks down, after which no reference may remain.
func TestMain(m *testing.M) {
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
)

// host is one of two stacks joined by an in-memory wire.
type host struct {
	st   *Stack
	port *wire.Port
	ep   *link.Endpoint
	log  *testLog
}

// testLog sends a stack's diagnostics to t.Logf while the test runs.
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	name string
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t != nil {
		l.t.Logf("%s: %s", l.name, fmt.Sprintf(format, args...))
	}
}

func (l *testLog) stop() {
	l.mu.Lock()
	l.t = nil
	l.mu.Unlock()
}

// newPair returns two stacks with attached NICs and no IP configuration.
func newPair(t *testing.T) (a, b *host) {
	t.Helper()
	pa, pb := wire.Pair(macA, macB)
	return newHost(t, "A", pa), newHost(t, "B", pb)
}

func newHost(t *testing.T, name string, port *wire.Port) *host {
	t.Helper()
	log := &testLog{t: t, name: name}
	st, err := New(Config{Hostname: "molt-" + name, Logf: log.logf})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ep, err := link.New(port)
	if err != nil {
		t.Fatalf("link.New: %v", err)
	}
	if err := st.AttachNIC(ep, nil); err != nil {
		t.Fatalf("AttachNIC: %v", err)
	}
	t.Cleanup(func() {
		st.Shutdown()
		port.Close()
		log.stop()
	})
	return &host{st: st, port: port, ep: ep, log: log}
}

// static configures a static address on h.
func (h *host) static(t *testing.T, cmdline string) {
	t.Helper()
	c, err := ParseIPConfig(cmdline)
	if err != nil {
		t.Fatalf("ParseIPConfig(%q): %v", cmdline, err)
	}
	if err := h.st.Configure(context.Background(), c); err != nil {
		t.Fatalf("Configure(%s): %v", c, err)
	}
}

// staticPair returns A = 10.0.0.1/24 and B = 10.0.0.2/24.
func staticPair(t *testing.T) (a, b *host) {
	a, b = newPair(t)
	a.static(t, "ip=10.0.0.1/24")
	b.static(t, "ip=10.0.0.2/24,gw=10.0.0.1")
	return a, b
}

// linkLocal waits until h's IPv6 link-local address has passed duplicate
// address detection and returns it.
func (h *host) linkLocal(t *testing.T) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		info, _ := h.st.Info()
		for _, p := range info.Addrs {
			if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
				return p.Addr()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no IPv6 link-local address after 10s")
	return netip.Addr{}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
