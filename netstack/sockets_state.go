package netstack

import (
	"fmt"
	"net/netip"
)

// This file holds the socket table's plain-data state: what the table knows
// about each socket apart from the live gVisor endpoint. Nothing here points
// into gVisor, so the updater can encode it (in a format of its own, with a
// version per section) and the next kernel can rebuild live sockets from it,
// as Firecracker's Persist keeps saved state apart from live objects.
// Changing a field's meaning is a handoff format change.

// SocketID names a socket in a stack's table. IDs start at 1 and one table
// never reuses an ID, so an app can keep an ID across a kernel update and
// ask the new kernel's table for the same socket. Zero is never a valid ID.
type SocketID uint32

// SocketKind says what a socket is.
type SocketKind uint8

// Socket kinds. The values are part of the saved state.
const (
	KindTCPListener SocketKind = 1 // a listening TCP socket (net.Listener)
	KindTCPConn     SocketKind = 2 // a TCP connection (net.Conn)
	KindUDP         SocketKind = 3 // a UDP socket (net.PacketConn)
)

func (k SocketKind) String() string {
	switch k {
	case KindTCPListener:
		return "tcp-listen"
	case KindTCPConn:
		return "tcp"
	case KindUDP:
		return "udp"
	}
	return fmt.Sprintf("SocketKind(%d)", uint8(k))
}

// SocketState is the saved-state record of one socket.
type SocketState struct {
	ID   SocketID
	Kind SocketKind
	// Network is the network the app asked for, as in package net: "tcp",
	// "tcp4", "tcp6", "udp", "udp4" or "udp6". With "tcp"/"udp" and an
	// unspecified address a socket is dual-stack (IPv6 with IPv4-mapped
	// peers).
	Network string
	// Local is the bound address, with the port the stack picked if the app
	// asked for port 0. An unspecified address means any.
	Local netip.AddrPort
	// Remote is the peer of a TCP connection; zero for listeners and for
	// unconnected UDP sockets.
	Remote netip.AddrPort
	// Parent is the listener that accepted this connection; 0 for sockets
	// the app created itself. The parent may be closed already.
	Parent SocketID
}

// TableState is the whole socket table as plain data.
type TableState struct {
	// NextID is the ID the table hands out next; a restored table continues
	// from here so that IDs stay unique across updates.
	NextID SocketID
	// Sockets lists the open sockets in ID order.
	Sockets []SocketState
}

// SocketInfo is one row of List: the saved state and the live protocol
// state, for an ss-like view.
type SocketInfo struct {
	SocketState
	// State is the protocol state: for TCP one of LISTEN, SYN-SENT,
	// SYN-RCVD, ESTABLISHED, FIN-WAIT1, FIN-WAIT2, TIME-WAIT, CLOSE-WAIT,
	// LAST-ACK, CLOSING, CLOSED, ERROR; for UDP BOUND or CONNECTED.
	State string
}

func (i SocketInfo) String() string {
	remote := "*"
	if i.Remote.IsValid() {
		remote = i.Remote.String()
	}
	return fmt.Sprintf("%d %s %s %s %s", i.ID, i.Kind, i.Local, remote, i.State)
}
