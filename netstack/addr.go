package netstack

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Conversions between net/netip values (the package's API and saved state)
// and gVisor's tcpip values (the live stack). IPv4-mapped IPv6 addresses,
// which dual-stack sockets report for IPv4 peers, come back as plain IPv4.

func toTCPIP(a netip.Addr) tcpip.Address {
	if !a.IsValid() {
		return tcpip.Address{}
	}
	return tcpip.AddrFromSlice(a.AsSlice())
}

func fromTCPIP(a tcpip.Address) netip.Addr {
	if a.BitLen() == 0 {
		return netip.Addr{}
	}
	n, _ := netip.AddrFromSlice(a.AsSlice())
	return n.Unmap()
}

func addrPortFromFull(f tcpip.FullAddress) netip.AddrPort {
	return netip.AddrPortFrom(fromTCPIP(f.Addr), f.Port)
}

func prefixFromTCPIP(a tcpip.AddressWithPrefix) netip.Prefix {
	return netip.PrefixFrom(fromTCPIP(a.Address), a.PrefixLen)
}

// subnetOf is the gVisor subnet that p covers (host bits cleared).
func subnetOf(p netip.Prefix) tcpip.Subnet {
	return tcpip.AddressWithPrefix{Address: toTCPIP(p.Addr()), PrefixLen: p.Bits()}.Subnet()
}

// defaultSubnet is 0.0.0.0/0 or ::/0, matching a's family.
func defaultSubnet(a netip.Addr) tcpip.Subnet {
	if a.Is4() {
		return header.IPv4EmptySubnet
	}
	return header.IPv6EmptySubnet
}
