package link

import (
	"errors"
	"os"
	"sync"
	"testing"

	"gvisor.dev/gvisor/pkg/refs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestMain fails the run if any packet buffer leaks.
func TestMain(m *testing.M) {
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

// fakeDevice records transmitted frames and lets the test deliver frames
// synchronously, as the driver's receive goroutine would.
type fakeDevice struct {
	mu       sync.Mutex
	sent     [][]byte
	receiver func([]byte)
	down     bool
	txErr    error
	mtu      int
	mac      [6]byte
}

func newFake() *fakeDevice {
	return &fakeDevice{mtu: 1500, mac: [6]byte{0x02, 0, 0, 0, 0, 1}}
}

func (d *fakeDevice) Transmit(frames [][]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.txErr != nil {
		return d.txErr
	}
	for _, f := range frames {
		d.sent = append(d.sent, append([]byte(nil), f...))
	}
	return nil
}

func (d *fakeDevice) MTU() int     { return d.mtu }
func (d *fakeDevice) MAC() [6]byte { return d.mac }
func (d *fakeDevice) LinkUp() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.down
}

func (d *fakeDevice) SetReceiver(fn func([]byte)) {
	d.mu.Lock()
	d.receiver = fn
	d.mu.Unlock()
}

// deliver hands frame to the endpoint; the buffer is scribbled over
// afterwards to prove the endpoint copied it.
func (d *fakeDevice) deliver(frame []byte) bool {
	d.mu.Lock()
	fn := d.receiver
	d.mu.Unlock()
	if fn == nil {
		return false
	}
	fn(frame)
	for i := range frame {
		frame[i] = 0xee
	}
	return true
}

func (d *fakeDevice) frames() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sent
}

var (
	peerMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x02")
	ourIP   = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	peerIP  = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
)

// newStack attaches ep to a gVisor stack with IPv4 and ARP and 10.0.0.1/24.
func newStack(t *testing.T, ep *Endpoint) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
	})
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatalf("CreateNIC: %s", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: ourIP, PrefixLen: 24}}
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %s", err)
	}
	t.Cleanup(func() {
		s.Close()
		s.RemoveNIC(1)
		s.Wait()
	})
	return s
}

// arpRequest builds a who-has ourIP frame from the peer.
func arpRequest(dst tcpip.LinkAddress) []byte {
	frame := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: peerMAC, DstAddr: dst, Type: header.ARPProtocolNumber})
	a := header.ARP(frame[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(header.ARPRequest)
	copy(a.HardwareAddressSender(), peerMAC)
	copy(a.ProtocolAddressSender(), peerIP.AsSlice())
	copy(a.ProtocolAddressTarget(), ourIP.AsSlice())
	return frame
}

func TestNewRejectsBadDevices(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Errorf("New(nil) succeeded")
	}
	d := newFake()
	d.mtu = 20
	if _, err := New(d); err == nil {
		t.Errorf("New(device with MTU 20) succeeded")
	}
	d = newFake()
	d.mac = [6]byte{0x01, 0, 0x5e, 0, 0, 1}
	if _, err := New(d); err == nil {
		t.Errorf("New(device with a multicast MAC) succeeded")
	}
}

// TestARPReply drives the endpoint from both sides: a hand-built ARP
// request goes in through the receive callback, gVisor's reply comes out
// through Transmit with a correct Ethernet header.
func TestARPReply(t *testing.T) {
	d := newFake()
	ep, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	newStack(t, ep)

	if !d.deliver(arpRequest(header.EthernetBroadcastAddress)) {
		t.Fatal("no receiver installed")
	}
	sent := d.frames()
	if len(sent) != 1 {
		t.Fatalf("transmitted %d frames; want one ARP reply", len(sent))
	}
	eth := header.Ethernet(sent[0])
	if eth.SourceAddress() != tcpip.LinkAddress(d.mac[:]) || eth.DestinationAddress() != peerMAC || eth.Type() != header.ARPProtocolNumber {
		t.Fatalf("reply header src %s dst %s type %#x; want %s %s ARP", eth.SourceAddress(), eth.DestinationAddress(), eth.Type(), tcpip.LinkAddress(d.mac[:]), peerMAC)
	}
	a := header.ARP(sent[0][header.EthernetMinimumSize:])
	if !a.IsValid() || a.Op() != header.ARPReply ||
		tcpip.LinkAddress(a.HardwareAddressSender()) != tcpip.LinkAddress(d.mac[:]) ||
		tcpip.AddrFrom4Slice(a.ProtocolAddressSender()) != ourIP {
		t.Errorf("ARP reply %x does not say %s is-at %x", []byte(a), ourIP, d.mac)
	}
	st := ep.Stats()
	if st.RxFrames != 1 || st.TxFrames != 1 || st.RxDropped != 0 || st.TxDropped != 0 {
		t.Errorf("Stats() = %+v; want 1 frame each way, no drops", st)
	}
}

func TestReceiveDrops(t *testing.T) {
	d := newFake()
	ep, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	// Not attached yet: dropped.
	d.deliver(arpRequest(header.EthernetBroadcastAddress))
	newStack(t, ep)
	// A runt, and a unicast frame for another station.
	d.deliver(make([]byte, 10))
	d.deliver(arpRequest("\x02\x00\x00\x00\x00\x77"))
	if st := ep.Stats(); st.RxDropped != 3 || st.RxFrames != 0 {
		t.Errorf("Stats() = %+v; want 3 dropped, none delivered", st)
	}
	if n := len(d.frames()); n != 0 {
		t.Errorf("stack answered %d dropped frames", n)
	}
	// A frame unicast to us is taken.
	d.deliver(arpRequest(tcpip.LinkAddress(d.mac[:])))
	if st := ep.Stats(); st.RxFrames != 1 {
		t.Errorf("Stats().RxFrames = %d after a frame for our MAC; want 1", st.RxFrames)
	}
}

func TestTransmitFailures(t *testing.T) {
	d := newFake()
	ep, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	newStack(t, ep)

	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	d.deliver(arpRequest(header.EthernetBroadcastAddress))
	if st := ep.Stats(); st.TxDropped != 1 || len(d.frames()) != 0 {
		t.Errorf("with link down: Stats() = %+v, %d frames sent; want 1 dropped, none sent", st, len(d.frames()))
	}

	d.mu.Lock()
	d.down = false
	d.txErr = errors.New("ring full")
	d.mu.Unlock()
	d.deliver(arpRequest(header.EthernetBroadcastAddress))
	if st := ep.Stats(); st.TxDropped != 2 || st.TxFrames != 0 {
		t.Errorf("with a device error: Stats() = %+v; want 2 dropped", st)
	}
}

func TestEndpointProperties(t *testing.T) {
	d := newFake()
	ep, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	if ep.MTU() != 1500 || ep.MaxHeaderLength() != header.EthernetMinimumSize || ep.ARPHardwareType() != header.ARPHardwareEther {
		t.Errorf("MTU %d, MaxHeaderLength %d, ARPHardwareType %d", ep.MTU(), ep.MaxHeaderLength(), ep.ARPHardwareType())
	}
	if ep.Capabilities()&stack.CapabilityResolutionRequired == 0 {
		t.Errorf("Capabilities() lacks CapabilityResolutionRequired: ARP would not run")
	}
	ep.SetMTU(9000)
	if ep.MTU() != 1500 {
		t.Errorf("after SetMTU(9000) MTU() = %d; want the device limit 1500", ep.MTU())
	}
	ep.SetMTU(1280)
	if ep.MTU() != 1280 {
		t.Errorf("after SetMTU(1280) MTU() = %d", ep.MTU())
	}
	if ep.LinkAddress() != tcpip.LinkAddress(d.mac[:]) {
		t.Errorf("LinkAddress() = %s; want the device MAC", ep.LinkAddress())
	}
	other := tcpip.LinkAddress("\x02\x00\x00\x00\x00\x55")
	ep.SetLinkAddress(other)
	if ep.LinkAddress() != other {
		t.Errorf("LinkAddress() after SetLinkAddress = %s; want %s", ep.LinkAddress(), other)
	}

	closed := 0
	ep.SetOnCloseAction(func() { closed++ })
	ep.Close()
	ep.Close()
	if closed != 1 {
		t.Errorf("close action ran %d times; want once", closed)
	}
	if d.deliver(make([]byte, 64)) {
		t.Errorf("device still has a receiver after Close")
	}
}
