package netstack

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ndpDispatcher receives gVisor's IPv6 neighbour-discovery events.
//
// gVisor performs SLAAC itself but leaves routes to the integrator, and it
// calls these methods with its own locks held, forbidding calls back into the
// stack. So the dispatcher only records: route changes go on a queue that
// routeWorker applies from its own goroutine; name servers (RDNSS, RFC 8106)
// are kept with their expiry for Info.
type ndpDispatcher struct {
	logf func(format string, args ...any) // immutable
	wake chan struct{}                    // immutable; capacity 1

	mu sync.Mutex
	// +checklocks:mu
	pending []routeChange
	// +checklocks:mu
	dns map[netip.Addr]time.Time // expiry; zero time for infinite lifetime
}

// routeChange is one queued route-table edit.
type routeChange struct {
	add   bool
	route tcpip.Route
}

var _ ipv6.NDPDispatcher = (*ndpDispatcher)(nil)

func newNDPDispatcher(logf func(string, ...any)) *ndpDispatcher {
	return &ndpDispatcher{
		logf: logf,
		wake: make(chan struct{}, 1),
		dns:  make(map[netip.Addr]time.Time),
	}
}

func (d *ndpDispatcher) queue(c routeChange) {
	d.mu.Lock()
	d.pending = append(d.pending, c)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// routeWorker applies queued route changes to s until done is closed.
func (d *ndpDispatcher) routeWorker(s *stack.Stack, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-d.wake:
		}
		d.mu.Lock()
		work := d.pending
		d.pending = nil
		d.mu.Unlock()
		for _, c := range work {
			r := c.route
			// Replace rather than append: gVisor repeats an update when a
			// route's preference changes, and AddRoute does not deduplicate.
			s.RemoveRoutes(func(x tcpip.Route) bool {
				return x.Destination == r.Destination && x.Gateway == r.Gateway && x.NIC == r.NIC
			})
			if c.add {
				s.AddRoute(r)
			}
		}
	}
}

// nameServers returns the RDNSS servers that have not expired.
func (d *ndpDispatcher) nameServers(now time.Time) []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []netip.Addr
	for a, exp := range d.dns {
		if exp.IsZero() || now.Before(exp) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// OnDuplicateAddressDetectionResult implements ipv6.NDPDispatcher.
func (d *ndpDispatcher) OnDuplicateAddressDetectionResult(nic tcpip.NICID, addr tcpip.Address, res stack.DADResult) {
	switch r := res.(type) {
	case *stack.DADSucceeded:
	case *stack.DADDupAddrDetected:
		d.logf("netstack: IPv6 address %s on NIC %d is a duplicate (held by %s); not using it", addr, nic, r.HolderLinkAddress)
	case *stack.DADError:
		d.logf("netstack: duplicate address detection for %s on NIC %d failed: %s", addr, nic, r.Err)
	case *stack.DADAborted:
	}
}

// OnOffLinkRouteUpdated implements ipv6.NDPDispatcher: a router (default
// route when dest is ::/0) was learned from a Router Advertisement.
func (d *ndpDispatcher) OnOffLinkRouteUpdated(nic tcpip.NICID, dest tcpip.Subnet, router tcpip.Address, _ header.NDPRoutePreference) {
	d.queue(routeChange{add: true, route: tcpip.Route{Destination: dest, Gateway: router, NIC: nic}})
}

// OnOffLinkRouteInvalidated implements ipv6.NDPDispatcher.
func (d *ndpDispatcher) OnOffLinkRouteInvalidated(nic tcpip.NICID, dest tcpip.Subnet, router tcpip.Address) {
	d.queue(routeChange{route: tcpip.Route{Destination: dest, Gateway: router, NIC: nic}})
}

// OnOnLinkPrefixDiscovered implements ipv6.NDPDispatcher.
func (d *ndpDispatcher) OnOnLinkPrefixDiscovered(nic tcpip.NICID, prefix tcpip.Subnet) {
	d.queue(routeChange{add: true, route: tcpip.Route{Destination: prefix, NIC: nic}})
}

// OnOnLinkPrefixInvalidated implements ipv6.NDPDispatcher.
func (d *ndpDispatcher) OnOnLinkPrefixInvalidated(nic tcpip.NICID, prefix tcpip.Subnet) {
	d.queue(routeChange{route: tcpip.Route{Destination: prefix, NIC: nic}})
}

// OnAutoGenAddress implements ipv6.NDPDispatcher. SLAAC addresses need no
// action from us; they show up in Info once DAD has finished.
func (d *ndpDispatcher) OnAutoGenAddress(nic tcpip.NICID, addr tcpip.AddressWithPrefix) stack.AddressDispatcher {
	d.logf("netstack: IPv6 address %s auto-configured on NIC %d", addr, nic)
	return nil
}

// OnAutoGenAddressDeprecated implements ipv6.NDPDispatcher.
func (*ndpDispatcher) OnAutoGenAddressDeprecated(tcpip.NICID, tcpip.AddressWithPrefix) {}

// OnAutoGenAddressInvalidated implements ipv6.NDPDispatcher.
func (*ndpDispatcher) OnAutoGenAddressInvalidated(tcpip.NICID, tcpip.AddressWithPrefix) {}

// OnRecursiveDNSServerOption implements ipv6.NDPDispatcher.
func (d *ndpDispatcher) OnRecursiveDNSServerOption(_ tcpip.NICID, addrs []tcpip.Address, lifetime time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range addrs {
		n := fromTCPIP(a)
		switch {
		case lifetime == 0:
			delete(d.dns, n)
		case lifetime == header.NDPInfiniteLifetime:
			d.dns[n] = time.Time{}
		default:
			d.dns[n] = time.Now().Add(lifetime)
		}
	}
}

// OnDNSSearchListOption implements ipv6.NDPDispatcher; search lists are not
// used (molt has no resolver yet).
func (*ndpDispatcher) OnDNSSearchListOption(tcpip.NICID, []string, time.Duration) {}

// OnDHCPv6Configuration implements ipv6.NDPDispatcher; there is no DHCPv6
// client.
func (*ndpDispatcher) OnDHCPv6Configuration(tcpip.NICID, ipv6.DHCPv6ConfigurationFromNDPRA) {}
