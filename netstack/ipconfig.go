package netstack

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// IPMode says where the NIC's IP configuration comes from.
type IPMode uint8

const (
	// IPDHCP asks a DHCPv4 server (the default, and what QEMU user
	// networking serves).
	IPDHCP IPMode = iota
	// IPStatic uses the address, gateway and name servers given.
	IPStatic
	// IPOff configures no address beyond what IPv6 does by itself
	// (link-local, SLAAC).
	IPOff
)

func (m IPMode) String() string {
	switch m {
	case IPDHCP:
		return "dhcp"
	case IPStatic:
		return "static"
	case IPOff:
		return "off"
	}
	return fmt.Sprintf("IPMode(%d)", m)
}

// IPConfig is the address configuration of the NIC, as the kernel command
// line states it. It is plain data: the updater can carry it (or the lease
// DHCP produced, turned into a static IPConfig) to the next kernel.
type IPConfig struct {
	Mode IPMode
	// Addr is the static address with its prefix length (IPStatic only).
	Addr netip.Prefix
	// Gateway is the default router; the zero Addr means no default route.
	Gateway netip.Addr
	// DNS lists name servers, in order of preference.
	DNS []netip.Addr
}

// ErrIPConfig is wrapped by every error ParseIPConfig returns.
var ErrIPConfig = errors.New("netstack: bad ip= option")

// maxDNS bounds the dns= entries, as resolv.conf's MAXNS does.
const maxDNS = 3

// ParseIPConfig finds the ip= option in a kernel command line and parses it:
//
//	ip=dhcp                                  DHCPv4 (also when ip= is absent)
//	ip=off                                   no IPv4 (ip=none is the same)
//	ip=ADDR/PREFIX[,gw=GW][,dns=DNS]...      static; dns= may repeat (up to 3)
//
// for example ip=10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3. ADDR may be IPv6;
// GW must then be IPv6 too. Options are separated by whitespace, so the
// value contains none. The gateway must lie inside ADDR/PREFIX (an IPv6
// gateway may instead be link-local).
func ParseIPConfig(cmdline string) (IPConfig, error) {
	var value string
	found := 0
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "ip="); ok {
			value = v
			found++
		}
	}
	switch {
	case found == 0:
		return IPConfig{Mode: IPDHCP}, nil
	case found > 1:
		return IPConfig{}, fmt.Errorf("%w: given %d times, want at most once", ErrIPConfig, found)
	}
	switch value {
	case "dhcp":
		return IPConfig{Mode: IPDHCP}, nil
	case "off", "none":
		return IPConfig{Mode: IPOff}, nil
	}
	c, err := parseStatic(value)
	if err != nil {
		return IPConfig{}, fmt.Errorf("%w: ip=%s: %v", ErrIPConfig, value, err)
	}
	return c, nil
}

func parseStatic(value string) (IPConfig, error) {
	if value == "" {
		return IPConfig{}, errors.New("empty value; want dhcp, off or ADDR/PREFIX[,gw=GW][,dns=DNS]")
	}
	parts := strings.Split(value, ",")
	first := parts[0]
	if strings.Contains(first, "=") {
		return IPConfig{}, fmt.Errorf("first item %q must be ADDR/PREFIX", first)
	}
	if strings.Count(first, ":") >= 2 && strings.Contains(first, ".") && !strings.Contains(first, "/") {
		return IPConfig{}, errors.New("this looks like Linux's ip=client:server:gw:mask form; molt wants ADDR/PREFIX,gw=GW")
	}
	addr, err := netip.ParsePrefix(first)
	if err != nil {
		return IPConfig{}, fmt.Errorf("address %q: want ADDR/PREFIX such as 10.0.2.15/24", first)
	}
	if err := checkHostPrefix(addr); err != nil {
		return IPConfig{}, err
	}
	c := IPConfig{Mode: IPStatic, Addr: addr}

	for _, p := range parts[1:] {
		key, val, ok := strings.Cut(p, "=")
		if !ok || val == "" {
			return IPConfig{}, fmt.Errorf("item %q: want KEY=VALUE with key gw or dns", p)
		}
		a, err := netip.ParseAddr(val)
		if err != nil || a.Zone() != "" {
			return IPConfig{}, fmt.Errorf("%s=%s: not an IP address", key, val)
		}
		switch key {
		case "gw":
			if c.Gateway.IsValid() {
				return IPConfig{}, errors.New("gw= given twice")
			}
			if err := checkGateway(addr, a); err != nil {
				return IPConfig{}, err
			}
			c.Gateway = a
		case "dns":
			if len(c.DNS) == maxDNS {
				return IPConfig{}, fmt.Errorf("more than %d dns= entries", maxDNS)
			}
			if !isUnicast(a) {
				return IPConfig{}, fmt.Errorf("dns=%s: not a unicast address", a)
			}
			c.DNS = append(c.DNS, a)
		default:
			return IPConfig{}, fmt.Errorf("unknown key %q; known keys: gw, dns", key)
		}
	}
	return c, nil
}

// checkHostPrefix rejects prefixes that cannot be a host's address.
func checkHostPrefix(p netip.Prefix) error {
	a := p.Addr()
	if a.Zone() != "" {
		return fmt.Errorf("address %s: zones are not allowed", p)
	}
	if a.Is4In6() {
		return fmt.Errorf("address %s: use the plain IPv4 form", p)
	}
	if !isUnicast(a) {
		return fmt.Errorf("address %s is not a unicast host address", a)
	}
	if p.Bits() == 0 {
		return fmt.Errorf("prefix length 0 in %s would put every address on-link", p)
	}
	if a.Is4() && p.Bits() <= 30 {
		if a == p.Masked().Addr() {
			return fmt.Errorf("address %s is the network address of %s", a, p.Masked())
		}
		if a == lastAddr(p) {
			return fmt.Errorf("address %s is the broadcast address of %s", a, p.Masked())
		}
	}
	return nil
}

func checkGateway(p netip.Prefix, gw netip.Addr) error {
	if gw.Is4() != p.Addr().Is4() {
		return fmt.Errorf("gw=%s is not in the address family of %s", gw, p.Addr())
	}
	if !isUnicast(gw) || gw == p.Addr() {
		return fmt.Errorf("gw=%s is not a usable gateway for %s", gw, p.Addr())
	}
	// IPv6 routers are usually reached by their link-local address.
	if !p.Masked().Contains(gw) && !(gw.Is6() && gw.IsLinkLocalUnicast()) {
		return fmt.Errorf("gw=%s is outside %s", gw, p.Masked())
	}
	return nil
}

// isUnicast reports whether a can be a unicast peer or host address.
func isUnicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// lastAddr is the highest address in p (the IPv4 directed broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// String renders c in ParseIPConfig's syntax, ip= included, so that
// ParseIPConfig(c.String()) gives c back.
func (c IPConfig) String() string {
	switch c.Mode {
	case IPDHCP:
		return "ip=dhcp"
	case IPOff:
		return "ip=off"
	case IPStatic:
		var b strings.Builder
		b.WriteString("ip=")
		b.WriteString(c.Addr.String())
		if c.Gateway.IsValid() {
			b.WriteString(",gw=")
			b.WriteString(c.Gateway.String())
		}
		for _, d := range c.DNS {
			b.WriteString(",dns=")
			b.WriteString(d.String())
		}
		return b.String()
	}
	return c.Mode.String()
}
