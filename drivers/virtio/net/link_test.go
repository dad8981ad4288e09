package net

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/molt-os/molt/drivers/virtio/internal/fakedev"
	"github.com/molt-os/molt/netstack/link"
)

// linkDevice is the driver as netstack/link sees it (the kernel's board
// package wraps it the same way).
type linkDevice struct{ *Device }

func (d linkDevice) Transmit(f [][]byte) error { _, err := d.Device.Transmit(f); return err }

// TestUnderLinkEndpoint runs the driver under the gVisor link endpoint the
// kernel uses, with a gVisor stack on top: an ARP request injected by the
// device must come back as gVisor's reply. The endpoint asks the driver
// for its MAC from inside the receive callback, which once deadlocked the
// driver (MAC took the receive lock the callback runs under), so the
// interrupt is handled under a deadline.
func TestUnderLinkEndpoint(t *testing.T) {
	r := newRig(t, fakedev.Options{QueueNumMax: 32})
	d := r.open(t, Config{})
	ep, err := link.New(linkDevice{d})
	if err != nil {
		t.Fatal(err)
	}
	s := stack.New(stack.Options{NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol}})
	hung := false
	defer func() {
		if !hung { // a deadlocked endpoint would block the stack's teardown
			s.Close()
			s.RemoveNIC(1)
			s.Wait()
		}
	}()
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatalf("CreateNIC: %s", err)
	}
	ourIP := tcpip.AddrFrom4([4]byte{10, 0, 2, 15})
	peerIP := tcpip.AddrFrom4([4]byte{10, 0, 2, 2})
	peerMAC := tcpip.LinkAddress("\x52\x55\x0a\x00\x02\x02")
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: ourIP, PrefixLen: 24}}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %s", err)
	}

	req := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(req).Encode(&header.EthernetFields{SrcAddr: peerMAC, DstAddr: header.EthernetBroadcastAddress, Type: header.ARPProtocolNumber})
	a := header.ARP(req[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(header.ARPRequest)
	copy(a.HardwareAddressSender(), peerMAC)
	copy(a.ProtocolAddressSender(), peerIP.AsSlice())
	copy(a.ProtocolAddressTarget(), ourIP.AsSlice())
	if !r.dev.Inject(req) {
		t.Fatal("device had no receive buffer")
	}
	done := make(chan struct{})
	go func() { d.HandleInterrupt(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		hung = true
		t.Fatal("HandleInterrupt did not return: the receive path deadlocked")
	}
	// gVisor answers from the receive path; the reply sits in the
	// transmit ring, which the device processes on notification.
	var replies [][]byte
	for deadline := time.Now().Add(5 * time.Second); len(replies) == 0 && time.Now().Before(deadline); {
		replies = r.dev.Transmitted()
		time.Sleep(time.Millisecond)
	}
	if len(replies) != 1 {
		t.Fatalf("device saw %d frames; want gVisor's ARP reply", len(replies))
	}
	reply := header.ARP(replies[0][header.EthernetMinimumSize:])
	if reply.Op() != header.ARPReply || tcpip.AddrFrom4Slice(reply.ProtocolAddressSender()) != ourIP {
		t.Errorf("reply %x is not %s is-at", replies[0], ourIP)
	}
	if mac := d.MAC(); tcpip.LinkAddress(reply.HardwareAddressSender()) != tcpip.LinkAddress(mac[:]) {
		t.Errorf("reply names MAC %x; the device has %x", reply.HardwareAddressSender(), mac)
	}
}
