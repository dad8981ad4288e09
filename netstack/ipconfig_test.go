package netstack

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseIPConfig(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, tc := range []struct {
		cmdline string
		want    IPConfig
	}{
		{"", IPConfig{Mode: IPDHCP}},
		{"console=ttyS0 quiet", IPConfig{Mode: IPDHCP}},
		{"ip=dhcp", IPConfig{Mode: IPDHCP}},
		{"ip=off", IPConfig{Mode: IPOff}},
		{"ip=none", IPConfig{Mode: IPOff}},
		{"ip=10.0.2.15/24", IPConfig{Mode: IPStatic, Addr: p("10.0.2.15/24")}},
		{"console=ttyS0 ip=10.0.2.15/24,gw=10.0.2.2 virtio_mmio.device=512@0xfeb00e00:12",
			IPConfig{Mode: IPStatic, Addr: p("10.0.2.15/24"), Gateway: a("10.0.2.2")}},
		{"ip=10.0.2.15/24,dns=10.0.2.3,gw=10.0.2.2,dns=2001:db8::53",
			IPConfig{Mode: IPStatic, Addr: p("10.0.2.15/24"), Gateway: a("10.0.2.2"), DNS: []netip.Addr{a("10.0.2.3"), a("2001:db8::53")}}},
		{"ip=192.168.1.7/32", IPConfig{Mode: IPStatic, Addr: p("192.168.1.7/32")}},
		{"ip=10.0.0.0/31", IPConfig{Mode: IPStatic, Addr: p("10.0.0.0/31")}},
		{"ip=2001:db8::5/64,gw=2001:db8::1", IPConfig{Mode: IPStatic, Addr: p("2001:db8::5/64"), Gateway: a("2001:db8::1")}},
		{"ip=2001:db8::5/64,gw=fe80::1", IPConfig{Mode: IPStatic, Addr: p("2001:db8::5/64"), Gateway: a("fe80::1")}},
	} {
		got, err := ParseIPConfig(tc.cmdline)
		if err != nil {
			t.Errorf("ParseIPConfig(%q) = %v", tc.cmdline, err)
			continue
		}
		if got.Mode != tc.want.Mode || got.Addr != tc.want.Addr || got.Gateway != tc.want.Gateway || !slices.Equal(got.DNS, tc.want.DNS) {
			t.Errorf("ParseIPConfig(%q) = %+v; want %+v", tc.cmdline, got, tc.want)
		}
	}
}

func TestParseIPConfigErrors(t *testing.T) {
	for _, tc := range []struct{ cmdline, want string }{
		{"ip=dhcp ip=off", "given 2 times"},
		{"ip=", "empty value"},
		{"ip=10.0.2.15", "want ADDR/PREFIX"},
		{"ip=10.0.2.15/33", "want ADDR/PREFIX"},
		{"ip=eth0", "want ADDR/PREFIX"},
		{"ip=gw=10.0.2.2", "must be ADDR/PREFIX"},
		{"ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off", "Linux's ip="},
		{"ip=10.0.2.0/24", "network address"},
		{"ip=10.0.2.255/24", "broadcast address"},
		{"ip=0.0.0.0/8", "not a unicast"},
		{"ip=224.0.0.1/4", "not a unicast"},
		{"ip=127.0.0.1/8", "not a unicast"},
		{"ip=10.0.2.15/0", "prefix length 0"},
		{"ip=::ffff:10.0.2.15/120", "plain IPv4"},
		{"ip=10.0.2.15/24,gw=10.0.3.1", "outside 10.0.2.0/24"},
		{"ip=10.0.2.15/24,gw=10.0.2.15", "not a usable gateway"},
		{"ip=10.0.2.15/24,gw=2001:db8::1", "address family"},
		{"ip=10.0.2.15/24,gw=10.0.2.2,gw=10.0.2.3", "twice"},
		{"ip=10.0.2.15/24,gw=", "KEY=VALUE"},
		{"ip=10.0.2.15/24,10.0.2.2", "KEY=VALUE"},
		{"ip=10.0.2.15/24,gw=router", "not an IP address"},
		{"ip=10.0.2.15/24,dns=fe80::1%eth0", "not an IP address"},
		{"ip=10.0.2.15/24,dns=255.255.255.255", "not a unicast"},
		{"ip=10.0.2.15/24,mask=255.255.255.0", `unknown key "mask"`},
		{"ip=10.0.2.15/24,dns=1.1.1.1,dns=1.1.1.2,dns=1.1.1.3,dns=1.1.1.4", "more than 3"},
	} {
		_, err := ParseIPConfig(tc.cmdline)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrIPConfig) {
			t.Errorf("ParseIPConfig(%q) = %v; want an ErrIPConfig mentioning %q", tc.cmdline, err, tc.want)
		}
	}
}

// FuzzParseIPConfig checks that ParseIPConfig never panics, that what it
// accepts is a usable configuration, and that String renders it back to
// the same configuration.
func FuzzParseIPConfig(f *testing.F) {
	for _, s := range []string{
		"", "ip=dhcp", "ip=off", "console=ttyS0 ip=10.0.2.15/24,gw=10.0.2.2,dns=10.0.2.3",
		"ip=2001:db8::5/64,gw=fe80::1", "ip=10.0.2.15::10.0.2.2:255.255.255.0", "ip=1.2.3.4/24,gw=1.2.3.1,gw=1.2.3.2",
		"ip=10.0.2.15/24,dns=1.1.1.1,dns=::1", "ip=\x00/\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmdline string) {
		c, err := ParseIPConfig(cmdline)
		if err != nil {
			if !errors.Is(err, ErrIPConfig) {
				t.Fatalf("ParseIPConfig(%q) error %v does not wrap ErrIPConfig", cmdline, err)
			}
			return
		}
		if c.Mode == IPStatic {
			if err := checkHostPrefix(c.Addr); err != nil {
				t.Fatalf("ParseIPConfig(%q) accepted %s: %v", cmdline, c.Addr, err)
			}
			if c.Gateway.IsValid() && checkGateway(c.Addr, c.Gateway) != nil {
				t.Fatalf("ParseIPConfig(%q) accepted gateway %s", cmdline, c.Gateway)
			}
		}
		again, err := ParseIPConfig(c.String())
		if err != nil {
			t.Fatalf("ParseIPConfig(%q) = %v for the rendering of %q", c.String(), err, cmdline)
		}
		if again.Mode != c.Mode || again.Addr != c.Addr || again.Gateway != c.Gateway || !slices.Equal(again.DNS, c.DNS) {
			t.Fatalf("round trip of %q: %+v became %+v", cmdline, c, again)
		}
	})
}
