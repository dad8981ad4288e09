package netstack

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The socket values apps hold. Each embeds or wraps gVisor's gonet adapter
// and adds two things: its table ID, and a Close that also removes it from
// the table. Apps keep the ID, not the value, across a kernel update.

// Listener is a listening TCP socket; it implements net.Listener.
type Listener struct {
	s       *Stack         // immutable
	id      SocketID       // immutable
	network string         // immutable
	addr    *net.TCPAddr   // immutable
	ep      tcpip.Endpoint // immutable
	wq      *waiter.Queue  // immutable

	once   sync.Once
	closed chan struct{} // closed by closeLive; unblocks Accept

	mu sync.Mutex
	// pending are established connections taken out of gVisor's accept
	// queue by a connection transfer (ExportConns moves them here, and
	// ImportConns rebuilds them here); Accept returns them first, in order.
	// +checklocks:mu
	pending []pendingConn
}

// pendingConn is an established, not yet accepted connection.
type pendingConn struct {
	ep tcpip.Endpoint
	wq *waiter.Queue
}

// takePending removes and returns the oldest pending connection.
func (l *Listener) takePending() (pendingConn, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		return pendingConn{}, false
	}
	p := l.pending[0]
	l.pending = l.pending[1:]
	return p, true
}

// addPending appends established connections for Accept to return.
func (l *Listener) addPending(p ...pendingConn) {
	l.mu.Lock()
	l.pending = append(l.pending, p...)
	l.mu.Unlock()
}

func newListener(s *Stack, id SocketID, st SocketState, ep tcpip.Endpoint, wq *waiter.Queue) *Listener {
	return &Listener{
		s:       s,
		id:      id,
		network: st.Network,
		addr:    net.TCPAddrFromAddrPort(st.Local),
		ep:      ep,
		wq:      wq,
		closed:  make(chan struct{}),
	}
}

// ID returns the listener's table ID.
func (l *Listener) ID() SocketID { return l.id }

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.addr }

// Accept implements net.Listener. The connection is a *Conn, registered in
// the table with this listener as its Parent. After Close, Accept returns an
// error wrapping net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	entry, ready := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		select {
		case <-l.closed:
			return nil, l.opError(net.ErrClosed)
		default:
		}
		if p, ok := l.takePending(); ok {
			_, c, err := l.s.adoptConn(l.network, p.ep, p.wq, l.id)
			if err != nil {
				return nil, l.opError(err)
			}
			return c, nil
		}
		n, wq, err := l.ep.Accept(nil)
		switch err.(type) {
		case nil:
			_, c, err := l.s.adoptConn(l.network, n, wq, l.id)
			if err != nil {
				return nil, l.opError(err)
			}
			return c, nil
		case *tcpip.ErrWouldBlock:
			select {
			case <-ready:
			case <-l.closed:
				return nil, l.opError(net.ErrClosed)
			}
		default:
			select {
			case <-l.closed:
				return nil, l.opError(net.ErrClosed)
			default:
			}
			return nil, l.opError(goError(err))
		}
	}
}

func (l *Listener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: l.network, Addr: l.addr, Err: err}
}

// Close implements net.Listener: it stops listening and removes the
// listener from the table. Connections it accepted stay open.
func (l *Listener) Close() error {
	l.s.forget(l.id)
	l.closeLive()
	return nil
}

func (l *Listener) closeLive() {
	l.once.Do(func() {
		close(l.closed)
		l.ep.Close()
		l.mu.Lock()
		pending := l.pending
		l.pending = nil
		l.mu.Unlock()
		for _, p := range pending {
			p.ep.Close() // as gVisor resets connections left in an accept queue
		}
	})
}

// Conn is a TCP connection; it implements net.Conn, plus CloseRead and
// CloseWrite, through gVisor's gonet.TCPConn.
type Conn struct {
	*gonet.TCPConn
	s    *Stack   // immutable
	id   SocketID // immutable
	once sync.Once
}

// ID returns the connection's table ID.
func (c *Conn) ID() SocketID { return c.id }

// Close implements net.Conn: it closes the connection and removes it from
// the table.
func (c *Conn) Close() error {
	c.s.forget(c.id)
	c.closeLive()
	return nil
}

func (c *Conn) closeLive() { c.once.Do(func() { c.TCPConn.Close() }) }

// PacketConn is a UDP socket; it implements net.PacketConn (and net.Conn
// for a connected socket) through gVisor's gonet.UDPConn.
type PacketConn struct {
	*gonet.UDPConn
	s    *Stack         // immutable
	id   SocketID       // immutable
	v4   bool           // immutable; an IPv4 endpoint (else IPv6, maybe dual-stack)
	ep   tcpip.Endpoint // immutable
	once sync.Once

	mu sync.Mutex
	// pending are received datagrams taken out of the endpoint by a
	// connection transfer (ExportConns reads them here, ImportConns puts
	// the exported ones here); Read and ReadFrom return them first.
	// +checklocks:mu
	pending []datagram
}

// datagram is a received UDP datagram.
type datagram struct {
	from    tcpip.FullAddress
	payload []byte
}

// Read implements net.Conn: pending datagrams first, then the endpoint.
func (c *PacketConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFrom(b)
	return n, err
}

// ReadFrom implements net.PacketConn: pending datagrams first (returned
// even if the read deadline has passed), then the endpoint. As with a
// socket, a datagram longer than b is truncated.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.mu.Lock()
	if len(c.pending) > 0 {
		d := c.pending[0]
		c.pending = c.pending[1:]
		c.mu.Unlock()
		return copy(b, d.payload), &net.UDPAddr{IP: net.IP(d.from.Addr.AsSlice()), Port: int(d.from.Port)}, nil
	}
	c.mu.Unlock()
	return c.UDPConn.ReadFrom(b)
}

// ID returns the socket's table ID.
func (c *PacketConn) ID() SocketID { return c.id }

// WriteTo implements net.PacketConn. addr must be a *net.UDPAddr; its IP is
// put in the form the endpoint's family needs (4 bytes for IPv4 sockets,
// IPv4-mapped for dual-stack IPv6 ones), which gonet leaves to the caller.
// IPv6 link-local destinations are not supported (the zone is ignored).
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr,
			Err: fmt.Errorf("address type %T, want *net.UDPAddr", addr)}
	}
	ip := ua.IP
	if c.v4 {
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
	} else if ip16 := ip.To16(); ip16 != nil {
		ip = ip16
	}
	if len(ip) == 0 {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr,
			Err: errors.New("missing destination IP")}
	}
	return c.UDPConn.WriteTo(b, &net.UDPAddr{IP: ip, Port: ua.Port})
}

// Close implements net.PacketConn: it closes the socket and removes it from
// the table.
func (c *PacketConn) Close() error {
	c.s.forget(c.id)
	c.closeLive()
	return nil
}

func (c *PacketConn) closeLive() { c.once.Do(func() { c.UDPConn.Close() }) }
