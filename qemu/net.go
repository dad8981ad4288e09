package qemu

import (
	"fmt"
	"strings"
)

// TAP attaches a virtio-net device to the existing TAP interface ifname,
// with the guest MAC address mac (for example "52:54:00:12:34:56"). It adds
//
//	-device virtio-net-device,netdev=tap-IFNAME,mac=MAC
//	-netdev tap,id=tap-IFNAME,ifname=IFNAME,script=no,downscript=no
//
// the first like the Device option, the second like Extra; several TAP
// options (with different interfaces) may be given. QEMU opens
// /dev/net/tun and attaches to ifname by name in the network namespace QEMU
// runs in, so the interface must exist there (QEMU would otherwise create a
// fresh, unconfigured one) and QEMU needs CAP_NET_ADMIN or to own the
// persistent interface. script=no, downscript=no: QEMU runs no ifup
// scripts; whoever created the interface configures it. Package qemu/netns
// creates such interfaces inside a network namespace and starts QEMU there.
func TAP(ifname, mac string) Option {
	return func(c *Config) {
		id := "tap-" + ifname
		c.Devices = append(c.Devices, "virtio-net-device,netdev="+id+",mac="+mac)
		c.Extra = append(c.Extra, "-netdev", "tap,id="+id+",ifname="+ifname+",script=no,downscript=no")
	}
}

// Forward is a QEMU user-network host forward: connections (tcp) or
// datagrams (udp) to HostAddr:HostPort on the host reach the guest's
// GuestPort at the address the guest leased by DHCP (10.0.2.15).
type Forward struct {
	Proto     string // "tcp" or "udp"
	HostAddr  string // host address to listen on; "" means 127.0.0.1
	HostPort  int
	GuestPort int
}

func (f Forward) String() string {
	host := f.HostAddr
	if host == "" {
		host = "127.0.0.1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6, as QEMU writes it
	}
	return fmt.Sprintf("%s:%s:%d-:%d", f.Proto, host, f.HostPort, f.GuestPort)
}

// UserNet attaches a virtio-net device with MAC mac to QEMU's user
// networking (libslirp: DHCP server and gateway at 10.0.2.2, the guest gets
// 10.0.2.15), with the given host forwards. It adds
//
//	-device virtio-net-device,netdev=user0,mac=MAC
//	-netdev user,id=user0,hostfwd=PROTO:ADDR:PORT-:PORT,...
//
// Forwards listen on the loopback address unless HostAddr says otherwise,
// so nothing outside the host can reach the guest. QEMU fails to start
// ("Could not set up host forwarding rule") when a host port is taken.
func UserNet(mac string, fwds ...Forward) Option {
	return func(c *Config) {
		netdev := "user,id=user0"
		for _, f := range fwds {
			netdev += ",hostfwd=" + f.String()
		}
		c.Devices = append(c.Devices, "virtio-net-device,netdev=user0,mac="+mac)
		c.Extra = append(c.Extra, "-netdev", netdev)
	}
}
