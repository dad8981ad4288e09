// Package dhcpserver is a tiny DHCPv4 server for tests: it runs on a gVisor
// stack (the other end of an in-memory wire), offers one address to whoever
// asks, and can misbehave on request (junk before the real offer, NAKs) so
// that the client's defences can be tested. It is not meant for production:
// one pool address, no lease database, no relay support.
package dhcpserver

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Config says what the server hands out.
type Config struct {
	// ServerID is the server identifier (option 54); the stack should own
	// this address.
	ServerID netip.Addr
	// Offer is the address offered, with the prefix length sent as the
	// subnet mask.
	Offer netip.Prefix
	// Router and DNS are sent as options 3 and 6 when set.
	Router netip.Addr
	DNS    []netip.Addr
	// Lease is option 51.
	Lease time.Duration
	// BeforeOffer, if set, returns raw datagrams the server broadcasts to
	// the client port just before each real OFFER (malformed or foreign
	// replies). It receives the client's DISCOVER.
	BeforeOffer func(discover *dhcpv4.DHCPv4) [][]byte
	// NAKs is how many REQUESTs to refuse before acknowledging one.
	NAKs int
	// NoOffer makes the server ignore DISCOVERs (a server that is down).
	NoOffer bool
}

// Server is a running test server. Close it when done.
type Server struct {
	conn *gonet.UDPConn // immutable
	cfg  Config         // immutable
	wg   sync.WaitGroup

	mu sync.Mutex
	// +checklocks:mu
	discovers int
	// +checklocks:mu
	requests int
	// +checklocks:mu
	naks int
}

// Start listens on UDP port 67 of NIC nic of s.
func Start(s *stack.Stack, nic tcpip.NICID, cfg Config) (*Server, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, fmt.Errorf("dhcpserver: endpoint: %s", terr)
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.SocketOptions().SetBindToDevice(int32(nic)); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("dhcpserver: bind to device: %s", terr)
	}
	if terr := ep.Bind(tcpip.FullAddress{Port: 67}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("dhcpserver: bind: %s", terr)
	}
	srv := &Server{conn: gonet.NewUDPConn(&wq, ep), cfg: cfg}
	srv.wg.Add(1)
	go srv.serve()
	return srv, nil
}

// Close stops the server.
func (s *Server) Close() {
	s.conn.Close()
	s.wg.Wait()
}

// Counts reports how many DISCOVERs and REQUESTs the server has seen.
func (s *Server) Counts() (discovers, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discovers, s.requests
}

func (s *Server) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := s.conn.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest {
			continue
		}
		switch req.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			s.mu.Lock()
			s.discovers++
			s.mu.Unlock()
			if s.cfg.NoOffer {
				continue
			}
			if s.cfg.BeforeOffer != nil {
				for _, junk := range s.cfg.BeforeOffer(req) {
					s.broadcast(junk)
				}
			}
			s.broadcast(s.Reply(req, dhcpv4.MessageTypeOffer).ToBytes())
		case dhcpv4.MessageTypeRequest:
			s.mu.Lock()
			s.requests++
			refuse := s.naks < s.cfg.NAKs
			if refuse {
				s.naks++
			}
			s.mu.Unlock()
			if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(net.IP(s.cfg.ServerID.AsSlice())) {
				continue // the client chose another server
			}
			want := net.IP(s.cfg.Offer.Addr().AsSlice())
			if refuse || !req.RequestedIPAddress().Equal(want) {
				nak := s.Reply(req, dhcpv4.MessageTypeNak)
				nak.YourIPAddr = net.IPv4zero
				nak.UpdateOption(dhcpv4.OptMessage("address not available"))
				s.broadcast(nak.ToBytes())
				continue
			}
			s.broadcast(s.Reply(req, dhcpv4.MessageTypeAck).ToBytes())
		}
	}
}

// Reply builds the server's answer of type t to req, with the configured
// lease in it. Tests use it to craft variations.
func (s *Server) Reply(req *dhcpv4.DHCPv4, t dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	return Reply(s.cfg, req, t)
}

// Reply builds an answer of type t to req from cfg.
func Reply(cfg Config, req *dhcpv4.DHCPv4, t dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IP(cfg.Offer.Addr().AsSlice()),
		ServerIPAddr:  net.IP(cfg.ServerID.AsSlice()),
		GatewayIPAddr: net.IPv4zero,
		ClientHWAddr:  req.ClientHWAddr,
		Options:       make(dhcpv4.Options),
	}
	m.UpdateOption(dhcpv4.OptMessageType(t))
	m.UpdateOption(dhcpv4.OptServerIdentifier(net.IP(cfg.ServerID.AsSlice())))
	m.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(cfg.Offer.Bits(), 32)))
	if cfg.Router.IsValid() {
		m.UpdateOption(dhcpv4.OptRouter(net.IP(cfg.Router.AsSlice())))
	}
	if len(cfg.DNS) > 0 {
		var ips []net.IP
		for _, d := range cfg.DNS {
			ips = append(ips, net.IP(d.AsSlice()))
		}
		m.UpdateOption(dhcpv4.OptDNS(ips...))
	}
	if cfg.Lease > 0 {
		m.UpdateOption(dhcpv4.OptIPAddressLeaseTime(cfg.Lease))
	}
	return m
}

// broadcast sends b to the client port. Errors are dropped: a test server
// has nowhere better to report them, and the client's timeout will.
func (s *Server) broadcast(b []byte) {
	to := &net.UDPAddr{IP: net.IPv4bcast.To4(), Port: 68}
	_, _ = s.conn.WriteTo(b, to)
}
