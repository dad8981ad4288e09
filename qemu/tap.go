package qemu

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
