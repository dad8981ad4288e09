// Package netstack is molt's TCP/IP stack: gVisor's netstack (IPv4, IPv6,
// ARP, NDP with SLAAC, ICMP echo, TCP, UDP) over one Ethernet NIC, its
// address configuration (static from the kernel command line, or DHCPv4),
// and the socket table through which apps hold their sockets.
//
// Bring-up, as a kernel image does it:
//
//	st, _ := netstack.New(netstack.Config{Hostname: "molt"})
//	ep, _ := link.New(nicDriver)                   // netstack/link
//	_ = st.AttachNIC(ep, nil)                      // eth0; IPv6 link-local starts
//	ipc, _ := netstack.ParseIPConfig(cmdline)      // ip=dhcp | ip=ADDR/PREFIX,gw=GW
//	_ = st.Configure(ctx, ipc)
//	id, ln, _ := st.Listen("tcp", ":11211")
//
// # Socket table
//
// Apps never keep gVisor objects. Listen, ListenPacket and Dial return a
// stable SocketID with a net.Listener, net.PacketConn or net.Conn; accepted
// connections get IDs too (SocketIDOf). Lookup(id) returns the same value
// again, and after a kernel update the new kernel's table answers for the
// same IDs. Each entry keeps its plain-data SocketState (sockets_state.go)
// apart from the live gVisor endpoint, so the table can be saved without
// touching gVisor's object graph. Closing a socket, through its own Close or
// Stack.Close(id), removes it from the table; a socket whose peer went away
// stays until the app closes it, like a file descriptor.
//
// # Synchronization
//
// Lock order, outermost first:
//
//	Stack.cfgMu        serializes AttachNIC, Configure, Shutdown; held across
//	                   gVisor calls and the whole DHCP exchange
//	  gVisor's locks   (stack, NIC, endpoints)
//	    ndpDispatcher.mu   taken inside gVisor's NDP callbacks; guards plain data
//	Stack.mu           the socket table and NIC/IP records; a leaf: nothing
//	                   blocks and no gVisor call is made while it is held
//
// gVisor's NDP callbacks may not call back into the stack, so route changes
// they report are queued and applied by a goroutine of their own.
// Live sockets have their own once-guards; closing one takes Stack.mu only
// to drop the table entry, then closes the endpoint without it.
package netstack
