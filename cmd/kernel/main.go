// Command kernel is molt's default image: the kernel with its network
// stack, the kv (memcached protocol) and echo services, and the serial
// shell.
//
// Build it with `make image` (tools/molt build); boot it with `make run`.
//
// At boot it attaches the first virtio-net device QEMU lists on the kernel
// command line, configures IPv4 from the command line's ip= option (DHCP
// when there is none; see docs/netstack.md), and serves
//
//	kv    tcp :11211   (memcached text protocol; docs/kv.md)
//	echo  tcp :7007 and udp :7007
//
// on every address, then prints "molt: services ready" with the addresses.
// Without a network card the services still listen on loopback, so the
// image boots anywhere. The shell gains "net" (addresses, sockets, NIC
// counters) and "services" (per-service counters).
package main

import (
	"os"

	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/kernel/shell"
)

func main() {
	if !kernel.Booted() {
		os.Stderr.WriteString("this is a molt kernel image: build it with `make image` and boot it with `make run`\n")
		os.Exit(2)
	}
	sys, err := start(kernel.Cmdline(), os.Stdout)
	if err != nil {
		os.Stdout.WriteString("molt: " + err.Error() + "\n")
		kernel.Poweroff(1)
	}
	sys.registerCommands()
	shell.Run(os.Stdin, os.Stdout)
	kernel.Poweroff(0)
}
