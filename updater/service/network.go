package service

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/molt-os/molt/netstack"
	"github.com/molt-os/molt/netstack/conntable"
	"github.com/molt-os/molt/updater/handoff"
)

// StackNetwork is the Network of a molt kernel: its netstack.Stack with
// the NIC attached.
type StackNetwork struct {
	Stack *netstack.Stack
	// Fresh configures the NIC from scratch (ip= or DHCP): a cold boot.
	Fresh func(ctx context.Context) error
	// Reset stops the NIC for the jump (board.NIC.Close); nil if there is
	// no NIC.
	Reset func() error
}

// Register adds the ip-config and conn-table section types.
func (n *StackNetwork) Register(reg *handoff.Registry) error {
	if err := reg.Register(netstack.NetStateSection); err != nil {
		return err
	}
	return reg.Register(conntable.SectionType())
}

// Configure brings the NIC up from scratch.
func (n *StackNetwork) Configure(ctx context.Context) error {
	if err := n.Fresh(ctx); err != nil {
		return err
	}
	// A stack built for a warm boot starts gated (this runs there when
	// the carried network could not be restored): open it.
	return n.GoLive()
}

// Freeze stops the stack's traffic.
func (n *StackNetwork) Freeze() error { return n.Stack.Freeze() }

// Thaw reopens the stack after an aborted update.
func (n *StackNetwork) Thaw() error { return n.GoLive() }

// Save writes the ip-config and conn-table sections.
func (n *StackNetwork) Save(enc *handoff.Encoder) (Counts, error) {
	ns, err := n.Stack.NetState()
	if err != nil {
		return nil, fmt.Errorf("NIC state: %w", err)
	}
	p, err := ns.Append(nil)
	if err != nil {
		return nil, err
	}
	if err := enc.Add(handoff.TypeIPConfig, netstack.NetStateVersion, 0, p); err != nil {
		return nil, fmt.Errorf("ip-config section: %w", err)
	}
	t, err := n.Stack.ExportConns(context.Background())
	if err != nil {
		return nil, fmt.Errorf("export connections: %w", err)
	}
	b, err := t.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode connections: %w", err)
	}
	if err := enc.Add(handoff.TypeConnTable, conntable.Version, 0, b); err != nil {
		return nil, fmt.Errorf("conn-table section: %w", err)
	}
	return tableCounts(t), nil
}

func tableCounts(t *conntable.Table) Counts {
	return Counts{"tcp": len(t.TCP), "listeners": len(t.Listeners), "udp": len(t.UDP)}
}

// Detach resets the NIC.
func (n *StackNetwork) Detach() error {
	if n.Reset == nil {
		return nil
	}
	return n.Reset()
}

// Restore applies the carried NIC configuration and imports the
// connection table into the gated stack.
func (n *StackNetwork) Restore(ctx context.Context, decoded []handoff.Decoded) (Counts, error) {
	var ns *netstack.NetState
	var t *conntable.Table
	for _, d := range decoded {
		switch v := d.Value.(type) {
		case netstack.NetState:
			ns = &v
		case *conntable.Table:
			t = v
		}
	}
	if ns == nil {
		return nil, errors.New("the handoff carries no ip-config section")
	}
	if err := n.Stack.Resume(ctx, *ns); err != nil {
		return nil, err
	}
	if t == nil {
		return Counts{}, nil
	}
	if err := n.Stack.ImportConns(ctx, t); err != nil {
		return nil, fmt.Errorf("import connections: %w", err)
	}
	return tableCounts(t), nil
}

// GoLive opens the gate.
// Without a NIC there is no gate, and nothing to open.
func (n *StackNetwork) GoLive() error {
	if err := n.Stack.GoLive(); err != nil && !errors.Is(err, netstack.ErrNoNIC) {
		return err
	}
	return nil
}

// Conn returns the TCP connection with socket ID id.
func (n *StackNetwork) Conn(id uint32) (net.Conn, bool) {
	v, ok := n.Stack.Lookup(netstack.SocketID(id))
	if !ok {
		return nil, false
	}
	c, ok := v.(*netstack.Conn)
	return c, ok
}

// SocketID returns a connection's socket ID.
func (n *StackNetwork) SocketID(c net.Conn) (uint32, bool) {
	nc, ok := c.(*netstack.Conn)
	if !ok {
		return 0, false
	}
	return uint32(nc.ID()), true
}

// Listener returns the TCP listener with socket ID id.
func (n *StackNetwork) Listener(id uint32) (net.Listener, bool) {
	v, ok := n.Stack.Lookup(netstack.SocketID(id))
	if !ok {
		return nil, false
	}
	l, ok := v.(*netstack.Listener)
	return l, ok
}

// ListenerID returns a listener's socket ID.
func (n *StackNetwork) ListenerID(l net.Listener) (uint32, bool) {
	nl, ok := l.(*netstack.Listener)
	if !ok {
		return 0, false
	}
	return uint32(nl.ID()), true
}

// Listen opens a dual-stack TCP listener on port.
func (n *StackNetwork) Listen(port int) (net.Listener, error) {
	_, l, err := n.Stack.Listen("tcp", fmt.Sprintf(":%d", port))
	return l, err
}
