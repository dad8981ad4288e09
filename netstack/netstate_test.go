package netstack

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/molt-os/molt/netstack/dhcp"
	"github.com/molt-os/molt/netstack/link/wire"
)

func netStateCases() map[string]NetState {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	return map[string]NetState{
		"off": {MAC: mac, MTU: 1500, Config: IPConfig{Mode: IPOff}},
		"static-v4": {MAC: mac, MTU: 1500, Config: IPConfig{Mode: IPStatic,
			Addr: netip.MustParsePrefix("10.0.3.2/24"), Gateway: netip.MustParseAddr("10.0.3.1"),
			DNS: []netip.Addr{netip.MustParseAddr("10.0.3.1"), netip.MustParseAddr("2001:db8::53")}}},
		"static-v6": {MAC: mac, MTU: 9000, Config: IPConfig{Mode: IPStatic, Addr: netip.MustParsePrefix("fd00::2/64")}},
		"dhcp": {MAC: mac, MTU: 1500,
			Config: IPConfig{Mode: IPDHCP, Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
				DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}},
			Lease: &dhcp.Lease{Addr: netip.MustParsePrefix("10.0.2.15/24"), Router: netip.MustParseAddr("10.0.2.2"),
				DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, Server: netip.MustParseAddr("10.0.2.2"),
				Duration: 24 * time.Hour, Acquired: time.Unix(1764633600, 12345)}},
	}
}

func TestNetStateRoundTrip(t *testing.T) {
	for name, st := range netStateCases() {
		t.Run(name, func(t *testing.T) {
			p, err := st.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeNetState(p)
			if err != nil {
				t.Fatalf("DecodeNetState: %v", err)
			}
			if st.Lease != nil {
				if !got.Lease.Acquired.Equal(st.Lease.Acquired) {
					t.Errorf("lease acquired %v; want %v", got.Lease.Acquired, st.Lease.Acquired)
				}
				got.Lease.Acquired = st.Lease.Acquired
			}
			if !reflect.DeepEqual(got, st) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
			}
			again, _ := got.Append(nil)
			if !slices.Equal(again, p) {
				t.Error("re-encoding differs")
			}
		})
	}
}

func TestDecodeNetStateErrors(t *testing.T) {
	good, err := netStateCases()["dhcp"].Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(p []byte) []byte) []byte { return f(slices.Clone(good)) }
	for name, p := range map[string][]byte{
		"empty":          nil,
		"short":          good[:netStateFixed-1],
		"truncated":      good[:len(good)-1],
		"trailing":       append(slices.Clone(good), 0),
		"reserved":       mutate(func(p []byte) []byte { p[6] = 1; return p }),
		"reserved tail":  mutate(func(p []byte) []byte { p[0x14] = 1; return p }),
		"mode":           mutate(func(p []byte) []byte { p[0x0c] = 9; return p }),
		"flag":           mutate(func(p []byte) []byte { p[0x0e] = 2; return p }),
		"too many dns":   mutate(func(p []byte) []byte { p[0x0f] = MaxDNS + 1; return p }),
		"lease static":   mutate(func(p []byte) []byte { p[0x0c] = byte(IPStatic); return p }),
		"prefix too big": mutate(func(p []byte) []byte { p[netStateFixed+16] = 33; return p }),
	} {
		if _, err := DecodeNetState(p); !errors.Is(err, ErrNetState) {
			t.Errorf("%s: err = %v; want ErrNetState", name, err)
		}
	}
}

func FuzzDecodeNetState(f *testing.F) {
	for _, st := range netStateCases() {
		p, _ := st.Append(nil)
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		st, err := DecodeNetState(p)
		if err != nil {
			if !errors.Is(err, ErrNetState) {
				t.Fatalf("error without ErrNetState: %v", err)
			}
			return
		}
		again, err := st.Append(nil)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		if !slices.Equal(again, p) {
			t.Fatalf("not canonical:\n in %x\nout %x", p, again)
		}
	})
}

// TestResume carries a DHCP configuration to a fresh stack on the same
// wire: the new stack answers on the leased address at once, with no DHCP
// server running any more, and reports the lease as its own.
func TestResume(t *testing.T) {
	pa, pb := wire.Pair(macA, macB)
	a := newHost(t, "A", pa)
	a.static(t, "ip=10.0.2.2/24")
	st := netStateCases()["dhcp"]
	st.MAC = net.HardwareAddr(macB[:])
	b := newHost(t, "B", pb)
	if err := b.st.Resume(ctxTimeout(t, 5*time.Second), st); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got, err := b.st.NetState()
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Mode != IPDHCP || got.Config.Addr != st.Config.Addr || got.Lease == nil || got.Lease.Duration != st.Lease.Duration {
		t.Errorf("NetState after Resume = %+v", got)
	}
	checkDialFrom(t, a, b, "10.0.2.2:22", "10.0.2.15")
	// A different MAC is refused.
	other := st
	other.MAC = net.HardwareAddr{2, 9, 9, 9, 9, 9}
	if err := a.st.Resume(ctxTimeout(t, time.Second), other); err == nil {
		t.Error("Resume with another MAC succeeded")
	}
}
