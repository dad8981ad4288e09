package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/molt-os/molt/netstack/dhcp"
	"github.com/molt-os/molt/updater/handoff"
)

// NetState is the NIC identity and IP configuration a self-update carries
// to the next kernel, so that it answers on the same addresses at once:
// no DHCP exchange, no duplicate address detection, and peers' ARP and
// neighbour caches stay right because the MAC is the same.
//
// It travels in the handoff's ip-config section (type 7), version 1:
//
//	0x00  6   MAC
//	0x06  2   reserved, zero
//	0x08  4   MTU
//	0x0c  1   mode (IPMode: 0 dhcp, 1 static, 2 off)
//	0x0d  1   address count: 0 or 1
//	0x0e  1   gateway present: 0 or 1
//	0x0f  1   DNS server count (at most MaxDNS)
//	0x10  4   lease present: 0 or 1
//	0x14  4   reserved, zero
//	then, if present, in this order:
//	      address  17 bytes: 16-byte IP (IPv4 as ::ffff:a.b.c.d), prefix bits
//	      gateway  16 bytes
//	      DNS      16 bytes each
//	      lease    server 16 bytes, duration ns int64, acquired Unix ns int64
//
// IPv4 addresses are stored IPv4-mapped and come back as IPv4. A lease
// implies mode dhcp and an address; its address, router and DNS are the
// configuration's.
type NetState struct {
	MAC    net.HardwareAddr
	MTU    uint32
	Config IPConfig
	Lease  *dhcp.Lease
}

// MaxDNS caps the name servers a NetState carries.
const MaxDNS = 8

// NetStateVersion is the ip-config section version this kernel writes.
const NetStateVersion = 1

const netStateFixed = 0x18

// ErrNetState is wrapped by every DecodeNetState error.
var ErrNetState = errors.New("netstack: ip-config section")

// NetState returns the attached NIC's identity and applied configuration.
func (s *Stack) NetState() (NetState, error) {
	info, ok := s.Info()
	if !ok {
		return NetState{}, ErrNoNIC
	}
	st := NetState{MAC: info.MAC, MTU: info.MTU, Config: info.Config, Lease: info.Lease}
	if len(st.Config.DNS) > MaxDNS {
		st.Config.DNS = st.Config.DNS[:MaxDNS]
	}
	return st, nil
}

// Resume applies a configuration carried from the previous kernel instead
// of Configure: the same address and routes, the DHCP lease kept without a
// new exchange. The NIC must be attached, with the MAC the state names (a
// different MAC means peers' caches point elsewhere: the caller should
// configure afresh instead).
func (s *Stack) Resume(ctx context.Context, st NetState) error {
	s.mu.Lock()
	nic := s.nic
	s.mu.Unlock()
	if nic == nil {
		return ErrNoNIC
	}
	if !bytes.Equal(nic.mac, st.MAC) {
		return fmt.Errorf("netstack: resume: the NIC's MAC is %s, the saved one %s", nic.mac, st.MAC)
	}
	if st.Lease == nil {
		return s.Configure(ctx, st.Config)
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.mu.Lock()
	configured := s.ip != nil
	s.mu.Unlock()
	if configured {
		return ErrConfigured
	}
	if err := s.installLocked(st.Lease.Addr, st.Lease.Router); err != nil {
		return err
	}
	lease := *st.Lease
	lease.DNS = slices.Clone(lease.DNS)
	s.mu.Lock()
	s.ip = &appliedIP{cfg: IPConfig{Mode: IPDHCP, Addr: lease.Addr, Gateway: lease.Router, DNS: slices.Clone(lease.DNS)}, lease: &lease}
	s.mu.Unlock()
	return nil
}

// Append encodes st as an ip-config v1 payload.
func (st NetState) Append(dst []byte) ([]byte, error) {
	if len(st.MAC) != 6 {
		return nil, fmt.Errorf("netstack: ip-config: MAC %q is not 6 bytes", st.MAC)
	}
	if len(st.Config.DNS) > MaxDNS {
		return nil, fmt.Errorf("netstack: ip-config: %d name servers, at most %d", len(st.Config.DNS), MaxDNS)
	}
	le := binary.LittleEndian
	dst = append(dst, st.MAC...)
	dst = append(dst, 0, 0)
	dst = le.AppendUint32(dst, st.MTU)
	hasAddr, hasGW := b2u(st.Config.Addr.IsValid()), b2u(st.Config.Gateway.IsValid())
	dst = append(dst, byte(st.Config.Mode), hasAddr, hasGW, byte(len(st.Config.DNS)))
	dst = le.AppendUint32(dst, uint32(b2u(st.Lease != nil)))
	dst = le.AppendUint32(dst, 0)
	if hasAddr == 1 {
		dst = appendIP(dst, st.Config.Addr.Addr())
		dst = append(dst, byte(st.Config.Addr.Bits()))
	}
	if hasGW == 1 {
		dst = appendIP(dst, st.Config.Gateway)
	}
	for _, d := range st.Config.DNS {
		dst = appendIP(dst, d)
	}
	if st.Lease != nil {
		dst = appendIP(dst, st.Lease.Server)
		dst = le.AppendUint64(dst, uint64(st.Lease.Duration))
		dst = le.AppendUint64(dst, uint64(st.Lease.Acquired.UnixNano()))
	}
	return dst, nil
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func appendIP(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		var zero [16]byte
		return append(dst, zero[:]...)
	}
	b := a.As16()
	return append(dst, b[:]...)
}

// DecodeNetState decodes an ip-config v1 payload, rejecting anything that
// Append would not have written.
func DecodeNetState(p []byte) (NetState, error) {
	var st NetState
	bad := func(off int, format string, args ...any) (NetState, error) {
		return NetState{}, fmt.Errorf("%w: offset %#x: %s", ErrNetState, off, fmt.Sprintf(format, args...))
	}
	if len(p) < netStateFixed {
		return bad(0, "%d bytes, the fixed part is %d", len(p), netStateFixed)
	}
	le := binary.LittleEndian
	st.MAC = net.HardwareAddr(slices.Clone(p[0:6]))
	if p[6] != 0 || p[7] != 0 || le.Uint32(p[0x14:]) != 0 {
		return bad(6, "reserved bytes are not zero")
	}
	st.MTU = le.Uint32(p[8:])
	mode, hasAddr, hasGW, ndns, hasLease := IPMode(p[0x0c]), p[0x0d], p[0x0e], int(p[0x0f]), le.Uint32(p[0x10:])
	switch {
	case mode > IPOff:
		return bad(0x0c, "unknown mode %d", mode)
	case hasAddr > 1 || hasGW > 1 || hasLease > 1:
		return bad(0x0d, "presence flags %d/%d/%d are not 0 or 1", hasAddr, hasGW, hasLease)
	case ndns > MaxDNS:
		return bad(0x0f, "%d name servers, at most %d", ndns, MaxDNS)
	case hasLease == 1 && (mode != IPDHCP || hasAddr == 0):
		return bad(0x10, "a lease without mode dhcp and an address")
	}
	st.Config.Mode = mode
	want := netStateFixed + 17*int(hasAddr) + 16*int(hasGW) + 16*ndns + 32*int(hasLease)
	if len(p) != want {
		return bad(0, "%d bytes; the flags call for %d", len(p), want)
	}
	off := netStateFixed
	ip := func() netip.Addr {
		b := [16]byte(p[off : off+16])
		off += 16
		if b == [16]byte{} {
			return netip.Addr{} // how Append writes an absent address
		}
		return netip.AddrFrom16(b).Unmap()
	}
	if hasAddr == 1 {
		a := ip()
		bits := int(p[off])
		if !a.IsValid() || bits > a.BitLen() {
			return bad(off, "prefix length %d for %s", bits, a)
		}
		st.Config.Addr = netip.PrefixFrom(a, bits)
		off++
	}
	if hasGW == 1 {
		st.Config.Gateway = ip()
	}
	for range ndns {
		st.Config.DNS = append(st.Config.DNS, ip())
	}
	if hasLease == 1 {
		l := &dhcp.Lease{Addr: st.Config.Addr, Router: st.Config.Gateway, DNS: slices.Clone(st.Config.DNS)}
		l.Server = ip()
		l.Duration = time.Duration(le.Uint64(p[off:]))
		l.Acquired = time.Unix(0, int64(le.Uint64(p[off+8:])))
		st.Lease = l
	}
	return st, nil
}

// NetStateSection is the ip-config section type, for a handoff.Registry.
var NetStateSection = handoff.SectionType{
	Type:   handoff.TypeIPConfig,
	MaxLen: netStateFixed + 17 + 16 + 16*MaxDNS + 32,
	Codecs: []handoff.Codec{{
		Version: NetStateVersion,
		Decode:  func(p []byte) (any, error) { return DecodeNetState(p) },
	}},
}
