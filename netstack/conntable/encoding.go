package conntable

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"

	"github.com/molt-os/molt/updater/handoff"
)

// Layout of version 1 (docs/conntransfer.md has the field tables):
//
//	header     magic "MCTB", u16 version, u16 flags (0), u32 next ID,
//	           i64 saved-at (Unix ns)
//	neighbors  u32 count, then per neighbor: addr, [6]byte MAC
//	listeners  u32 count, then per listener: u32 ID, u8 family, addrport
//	           local, u32 backlog
//	udp        u32 count, then per socket: u32 ID, u8 family, addrport local,
//	           addrport remote, u32 datagram count, then per datagram:
//	           addrport from, bytes payload
//	tcp        u32 count, then per connection: u32 ID, u32 parent, u8 family,
//	           u16 flags, addrport local, addrport remote, 5 x u32 (snd.una,
//	           snd.nxt, rcv.nxt, rcv window edge, snd.wnd), u8 snd scale,
//	           u8 rcv scale, u16 MSS, 2 x u32 (TSval, TS.Recent), 5 x u32
//	           (SRTT, RTTVAR, RTO in µs, cwnd, ssthresh), 2 x u32 (rcv
//	           buffer, snd buffer), bytes send data, bytes recv data
//
//	addr       u8 length (4 or 16; 0 only inside an empty addrport), bytes
//	addrport   addr, u16 port
//	bytes      u32 length, bytes
//
// All integers are little-endian. Nothing follows the TCP section.

var le = binary.LittleEndian

const headerSize = 4 + 2 + 2 + 4 + 8

// Minimal encoded sizes, used to bound counts by the bytes left before
// anything is allocated.
const (
	minNeighbor = 1 + 4 + 6
	minListener = 4 + 1 + (1 + 4 + 2) + 4
	minUDP      = 4 + 1 + (1 + 4 + 2) + (1 + 2) + 4
	minDatagram = (1 + 4 + 2) + 4
	minTCP      = 4 + 4 + 1 + 2 + 2*(1+4+2) + 5*4 + 4 + 2*4 + 5*4 + 2*4 + 2*4
	maxWndScale = 14 // RFC 7323 §2.3
)

// FormatError reports why bytes are not a valid table, or why a table
// cannot be encoded. Err is one of handoff's sentinels (ErrBadMagic,
// ErrTruncated, ErrInvalid, ErrReserved, ErrSectionVersion, ErrTooLarge),
// so errors.Is works the same for this payload as for the region around it.
type FormatError struct {
	Offset int    // byte offset of the offending field
	Field  string // which field, e.g. "tcp[3].snd_wnd_scale"
	Err    error  // the sentinel
	Detail string // what was found and what is allowed
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("conntable: %s at offset %#x (%s)", e.Err, e.Offset, e.Field)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }

// Encode returns the table's encoding. It refuses a table that Decode would
// reject (the rules are Decode's, applied to the bytes just written), or
// that the format cannot hold (an address with a zone, a count or length
// above 2^32-1).
func (t *Table) Encode() ([]byte, error) {
	e := encoder{b: make([]byte, 0, t.sizeHint())}
	e.table(t)
	if e.err != nil {
		return nil, e.err
	}
	if err := check(e.b); err != nil {
		return nil, err
	}
	return e.b, nil
}

func (t *Table) sizeHint() int {
	n := headerSize + 16 + len(t.Neighbors)*(1+16+6) + len(t.Listeners)*(minListener+12)
	for i := range t.UDP {
		n += minUDP + 24
		for _, d := range t.UDP[i].Queued {
			n += minDatagram + 12 + len(d.Payload)
		}
	}
	for i := range t.TCP {
		n += minTCP + 24 + len(t.TCP[i].SendData) + len(t.TCP[i].RecvData)
	}
	return n
}

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) fail(field string, err error, format string, args ...any) {
	if e.err == nil {
		e.err = &FormatError{Offset: len(e.b), Field: field, Err: err, Detail: fmt.Sprintf(format, args...)}
	}
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = le.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = le.AppendUint32(e.b, v) }

func (e *encoder) count(field string, n int) {
	if uint64(n) > math.MaxUint32 {
		e.fail(field, handoff.ErrTooLarge, "%d entries", n)
	}
	e.u32(uint32(n))
}

func (e *encoder) bytes(field string, p []byte) {
	e.count(field, len(p))
	e.b = append(e.b, p...)
}

func (e *encoder) addr(field string, a netip.Addr) {
	switch {
	case !a.IsValid():
		e.u8(0)
		return
	case a.Zone() != "":
		e.fail(field, handoff.ErrInvalid, "address %s has a zone, which the format cannot hold", a)
	}
	s := a.AsSlice()
	e.u8(uint8(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) addrPort(field string, ap netip.AddrPort) {
	e.addr(field, ap.Addr())
	e.u16(ap.Port())
}

func (e *encoder) table(t *Table) {
	e.b = append(e.b, Magic...)
	e.u16(Version)
	e.u16(0)
	e.u32(t.NextID)
	e.b = le.AppendUint64(e.b, uint64(t.SavedAtUnixNano))

	e.count("neighbors.count", len(t.Neighbors))
	for i, n := range t.Neighbors {
		e.addr(fmt.Sprintf("neighbors[%d].addr", i), n.Addr)
		e.b = append(e.b, n.MAC[:]...)
	}
	e.count("listeners.count", len(t.Listeners))
	for i, l := range t.Listeners {
		e.u32(l.ID)
		e.u8(uint8(l.Family))
		e.addrPort(fmt.Sprintf("listeners[%d].local", i), l.Local)
		e.u32(l.Backlog)
	}
	e.count("udp.count", len(t.UDP))
	for i := range t.UDP {
		u := &t.UDP[i]
		e.u32(u.ID)
		e.u8(uint8(u.Family))
		e.addrPort(fmt.Sprintf("udp[%d].local", i), u.Local)
		e.addrPort(fmt.Sprintf("udp[%d].remote", i), u.Remote)
		e.count(fmt.Sprintf("udp[%d].queued.count", i), len(u.Queued))
		for j, d := range u.Queued {
			e.addrPort(fmt.Sprintf("udp[%d].queued[%d].from", i, j), d.From)
			e.bytes(fmt.Sprintf("udp[%d].queued[%d].payload", i, j), d.Payload)
		}
	}
	e.count("tcp.count", len(t.TCP))
	for i := range t.TCP {
		c := &t.TCP[i]
		e.u32(c.ID)
		e.u32(c.Parent)
		e.u8(uint8(c.Family))
		e.u16(uint16(c.Flags))
		e.addrPort(fmt.Sprintf("tcp[%d].local", i), c.Local)
		e.addrPort(fmt.Sprintf("tcp[%d].remote", i), c.Remote)
		for _, v := range [...]uint32{c.SndUna, c.SndNxt, c.RcvNxt, c.RcvWndEdge, c.SndWnd} {
			e.u32(v)
		}
		e.u8(c.SndWndScale)
		e.u8(c.RcvWndScale)
		e.u16(c.MSS)
		for _, v := range [...]uint32{c.TSVal, c.TSRecent, c.SRTTMicros, c.RTTVarMicros, c.RTOMicros, c.Cwnd, c.Ssthresh, c.RcvBuf, c.SndBuf} {
			e.u32(v)
		}
		e.bytes(fmt.Sprintf("tcp[%d].send_data", i), c.SendData)
		e.bytes(fmt.Sprintf("tcp[%d].recv_data", i), c.RecvData)
	}
}

// Decode parses an encoded table. The byte slices of the result (payloads,
// send and receive data) alias b. Every malformed input gives a
// *FormatError; see the package documentation for the rules.
func Decode(b []byte) (*Table, error) {
	d := decoder{b: b, build: true}
	t := d.table()
	if d.err != nil {
		return nil, d.err
	}
	return t, nil
}

// check validates an encoding without building a table.
func check(b []byte) error {
	d := decoder{b: b}
	d.table()
	return d.err
}

// decoder reads b front to back. After the first error every read returns
// zero values and the error sticks; callers check d.err at loop heads so
// that a bad count cannot make them spin.
type decoder struct {
	b     []byte
	off   int
	err   error
	build bool // false: validate only, allocate nothing
}

func (d *decoder) failAt(off int, field string, err error, format string, args ...any) {
	if d.err == nil {
		d.err = &FormatError{Offset: off, Field: field, Err: err, Detail: fmt.Sprintf(format, args...)}
	}
}

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.failAt(d.off, field, handoff.ErrTruncated, "need %d bytes, %d left", n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u8(field string) uint8 {
	if p := d.take(field, 1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16(field string) uint16 {
	if p := d.take(field, 2); p != nil {
		return le.Uint16(p)
	}
	return 0
}

func (d *decoder) u32(field string) uint32 {
	if p := d.take(field, 4); p != nil {
		return le.Uint32(p)
	}
	return 0
}

// count reads a count and checks that count records of at least min bytes
// each fit in the rest of the input.
func (d *decoder) count(field string, min int) int {
	off := d.off
	n := d.u32(field)
	if d.err == nil && uint64(n)*uint64(min) > uint64(len(d.b)-d.off) {
		d.failAt(off, field, handoff.ErrTruncated, "%d entries of at least %d bytes, %d bytes left", n, min, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(field string) []byte {
	off := d.off
	n := d.u32(field + ".length")
	if d.err == nil && uint64(n) > uint64(len(d.b)-d.off) {
		d.failAt(off, field, handoff.ErrTruncated, "length %d, %d bytes left", n, len(d.b)-d.off)
		return nil
	}
	p := d.take(field, int(n))
	if n == 0 || !d.build {
		return nil
	}
	return p
}

// addr reads an address. optional allows the empty one (length 0).
func (d *decoder) addr(field string, optional bool) netip.Addr {
	off := d.off
	n := d.u8(field + ".length")
	switch {
	case d.err != nil:
		return netip.Addr{}
	case n == 0 && optional:
		return netip.Addr{}
	case n != 4 && n != 16:
		d.failAt(off, field, handoff.ErrInvalid, "address length %d, want 4 or 16", n)
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(d.take(field, int(n)))
	if d.err == nil && a.Is4In6() {
		d.failAt(off, field, handoff.ErrInvalid, "IPv4-mapped address %s: write it as IPv4", a)
	}
	return a
}

// addrPort reads an address and port. optional allows the zero value
// (address length 0, port 0).
func (d *decoder) addrPort(field string, optional bool) netip.AddrPort {
	a := d.addr(field, optional)
	off := d.off
	p := d.u16(field + ".port")
	if d.err == nil && !a.IsValid() && p != 0 {
		d.failAt(off, field+".port", handoff.ErrInvalid, "port %d without an address", p)
	}
	return netip.AddrPortFrom(a, p)
}

func (d *decoder) family(field string) Family {
	off := d.off
	f := Family(d.u8(field))
	if d.err == nil && !f.valid() {
		d.failAt(off, field, handoff.ErrInvalid, "family %d, want 0 (any), 4 or 6", f)
	}
	return f
}

// matchFamily checks that a socket's address fits the family it was opened
// with.
func (d *decoder) matchFamily(off int, field string, f Family, a netip.Addr) {
	if d.err != nil || !a.IsValid() {
		return
	}
	if (f == Family4 && !a.Is4()) || (f == Family6 && !a.Is6()) {
		d.failAt(off, field, handoff.ErrInvalid, "address %s in a family-%d socket", a, f)
	}
}

// ids tracks socket IDs: nonzero, below NextID, unique.
type ids struct {
	next uint32
	seen map[uint32]bool
}

func (d *decoder) id(s *ids, field string) uint32 {
	off := d.off
	id := d.u32(field)
	d.checkID(s, off, field, id)
	return id
}

func (d *decoder) checkID(s *ids, off int, field string, id uint32) {
	switch {
	case d.err != nil:
	case id == 0:
		d.failAt(off, field, handoff.ErrInvalid, "socket ID 0")
	case id >= s.next:
		d.failAt(off, field, handoff.ErrInvalid, "socket ID %d not below next ID %d", id, s.next)
	case s.seen[id]:
		d.failAt(off, field, handoff.ErrInvalid, "socket ID %d appears twice", id)
	default:
		s.seen[id] = true
	}
}

func (d *decoder) table() *Table {
	t := &Table{}
	if m := d.take("magic", len(Magic)); d.err == nil && string(m) != Magic {
		d.failAt(0, "magic", handoff.ErrBadMagic, "%q, want %q", m, Magic)
	}
	off := d.off
	if v := d.u16("version"); d.err == nil && v != Version {
		d.failAt(off, "version", handoff.ErrSectionVersion, "version %d, this decoder reads %d", v, Version)
	}
	off = d.off
	if f := d.u16("flags"); d.err == nil && f != 0 {
		d.failAt(off, "flags", handoff.ErrReserved, "flags %#x, none are defined", f)
	}
	off = d.off
	t.NextID = d.u32("next_id")
	if d.err == nil && t.NextID == 0 {
		d.failAt(off, "next_id", handoff.ErrInvalid, "next ID 0")
	}
	if p := d.take("saved_at", 8); p != nil {
		t.SavedAtUnixNano = int64(le.Uint64(p))
	}
	s := &ids{next: t.NextID, seen: map[uint32]bool{}}

	n := d.count("neighbors.count", minNeighbor)
	if d.build {
		t.Neighbors = make([]Neighbor, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var nb Neighbor
		off := d.off
		nb.Addr = d.addr(fmt.Sprintf("neighbors[%d].addr", i), false)
		if d.err == nil && nb.Addr.IsUnspecified() {
			d.failAt(off, fmt.Sprintf("neighbors[%d].addr", i), handoff.ErrInvalid, "unspecified address")
		}
		copy(nb.MAC[:], d.take(fmt.Sprintf("neighbors[%d].mac", i), 6))
		if d.build {
			t.Neighbors = append(t.Neighbors, nb)
		}
	}

	listeners := map[uint32]bool{}
	n = d.count("listeners.count", minListener)
	if d.build {
		t.Listeners = make([]Listener, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		f := func(name string) string { return fmt.Sprintf("listeners[%d].%s", i, name) }
		var l Listener
		l.ID = d.id(s, f("id"))
		listeners[l.ID] = true
		l.Family = d.family(f("family"))
		off := d.off
		l.Local = d.addrPort(f("local"), false)
		d.matchFamily(off, f("local"), l.Family, l.Local.Addr())
		if d.err == nil && l.Local.Port() == 0 {
			d.failAt(off, f("local"), handoff.ErrInvalid, "listener without a port")
		}
		off = d.off
		l.Backlog = d.u32(f("backlog"))
		if d.err == nil && (l.Backlog == 0 || l.Backlog > 1<<16) {
			d.failAt(off, f("backlog"), handoff.ErrInvalid, "backlog %d, want 1 to 65536", l.Backlog)
		}
		if d.build {
			t.Listeners = append(t.Listeners, l)
		}
	}

	n = d.count("udp.count", minUDP)
	if d.build {
		t.UDP = make([]UDPSocket, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		f := func(name string) string { return fmt.Sprintf("udp[%d].%s", i, name) }
		var u UDPSocket
		u.ID = d.id(s, f("id"))
		u.Family = d.family(f("family"))
		off := d.off
		u.Local = d.addrPort(f("local"), false)
		d.matchFamily(off, f("local"), u.Family, u.Local.Addr())
		if d.err == nil && u.Local.Port() == 0 {
			d.failAt(off, f("local"), handoff.ErrInvalid, "UDP socket without a port")
		}
		off = d.off
		u.Remote = d.addrPort(f("remote"), true)
		if d.err == nil && u.Remote.IsValid() && (u.Remote.Port() == 0 || u.Remote.Addr().IsUnspecified()) {
			d.failAt(off, f("remote"), handoff.ErrInvalid, "connected to %s", u.Remote)
		}
		m := d.count(f("queued.count"), minDatagram)
		if d.build && m > 0 {
			u.Queued = make([]Datagram, 0, m)
		}
		for j := 0; j < m && d.err == nil; j++ {
			var dg Datagram
			dg.From = d.addrPort(fmt.Sprintf("udp[%d].queued[%d].from", i, j), false)
			dg.Payload = d.bytes(fmt.Sprintf("udp[%d].queued[%d].payload", i, j))
			if d.build {
				u.Queued = append(u.Queued, dg)
			}
		}
		if d.build {
			t.UDP = append(t.UDP, u)
		}
	}

	n = d.count("tcp.count", minTCP)
	if d.build {
		t.TCP = make([]TCPConn, n)
	}
	var scratch TCPConn
	for i := 0; i < n && d.err == nil; i++ {
		c := &scratch
		if d.build {
			c = &t.TCP[i]
		}
		d.tcp(i, c, s, listeners)
	}
	if d.err == nil && d.off != len(d.b) {
		d.failAt(d.off, "end", handoff.ErrInvalid, "%d bytes after the last record", len(d.b)-d.off)
	}
	return t
}

func (d *decoder) tcp(i int, c *TCPConn, s *ids, listeners map[uint32]bool) {
	f := func(name string) string { return fmt.Sprintf("tcp[%d].%s", i, name) }
	idOff := d.off
	// ID 0 is allowed (for an unaccepted connection); the flags, read
	// below, decide.
	if c.ID = d.u32(f("id")); c.ID != 0 {
		d.checkID(s, idOff, f("id"), c.ID)
	}
	c.Parent = d.u32(f("parent"))
	c.Family = d.family(f("family"))
	off := d.off
	c.Flags = TCPFlags(d.u16(f("flags")))
	switch {
	case d.err != nil:
	case c.Flags&^knownTCPFlags != 0:
		d.failAt(off, f("flags"), handoff.ErrReserved, "unknown flags %#x", uint16(c.Flags&^knownTCPFlags))
	case c.Flags&TCPUnaccepted != 0 && (c.ID != 0 || !listeners[c.Parent]):
		d.failAt(idOff, f("id"), handoff.ErrInvalid, "unaccepted connection with ID %d and parent %d: want ID 0 and a listener of this table", c.ID, c.Parent)
	case c.Flags&TCPUnaccepted == 0 && c.ID == 0:
		d.failAt(idOff, f("id"), handoff.ErrInvalid, "socket ID 0")
	}
	for _, ep := range []struct {
		name string
		ap   *netip.AddrPort
	}{{"local", &c.Local}, {"remote", &c.Remote}} {
		off := d.off
		*ep.ap = d.addrPort(f(ep.name), false)
		d.matchFamily(off, f(ep.name), c.Family, ep.ap.Addr())
		if d.err == nil && (ep.ap.Port() == 0 || ep.ap.Addr().IsUnspecified()) {
			d.failAt(off, f(ep.name), handoff.ErrInvalid, "endpoint %s of an established connection", *ep.ap)
		}
	}
	if d.err == nil && c.Local.Addr().Is4() != c.Remote.Addr().Is4() {
		d.failAt(off, f("remote"), handoff.ErrInvalid, "local %s and remote %s are of different families", c.Local, c.Remote)
	}
	c.SndUna = d.u32(f("snd_una"))
	c.SndNxt = d.u32(f("snd_nxt"))
	c.RcvNxt = d.u32(f("rcv_nxt"))
	off = d.off
	c.RcvWndEdge = d.u32(f("rcv_wnd_edge"))
	if d.err == nil && int32(c.RcvWndEdge-c.RcvNxt) < 0 {
		d.failAt(off, f("rcv_wnd_edge"), handoff.ErrInvalid, "window edge %d before rcv.nxt %d", c.RcvWndEdge, c.RcvNxt)
	}
	c.SndWnd = d.u32(f("snd_wnd"))
	ws := c.Flags&TCPWindowScale != 0
	for _, sc := range []struct {
		name string
		v    *uint8
	}{{"snd_wnd_scale", &c.SndWndScale}, {"rcv_wnd_scale", &c.RcvWndScale}} {
		off := d.off
		*sc.v = d.u8(f(sc.name))
		if d.err == nil && (*sc.v > maxWndScale || (!ws && *sc.v != 0)) {
			d.failAt(off, f(sc.name), handoff.ErrInvalid, "scale %d (window scaling negotiated: %v; max %d)", *sc.v, ws, maxWndScale)
		}
	}
	off = d.off
	c.MSS = d.u16(f("mss"))
	if d.err == nil && c.MSS == 0 {
		d.failAt(off, f("mss"), handoff.ErrInvalid, "MSS 0")
	}
	off = d.off
	c.TSVal = d.u32(f("ts_val"))
	c.TSRecent = d.u32(f("ts_recent"))
	if d.err == nil && c.Flags&TCPTimestamps == 0 && (c.TSVal != 0 || c.TSRecent != 0) {
		d.failAt(off, f("ts_val"), handoff.ErrInvalid, "timestamps %d/%d without the timestamps flag", c.TSVal, c.TSRecent)
	}
	c.SRTTMicros = d.u32(f("srtt"))
	c.RTTVarMicros = d.u32(f("rttvar"))
	off = d.off
	if c.RTOMicros = d.u32(f("rto")); d.err == nil && c.RTOMicros == 0 {
		d.failAt(off, f("rto"), handoff.ErrInvalid, "RTO 0")
	}
	off = d.off
	if c.Cwnd = d.u32(f("cwnd")); d.err == nil && c.Cwnd == 0 {
		d.failAt(off, f("cwnd"), handoff.ErrInvalid, "congestion window 0")
	}
	c.Ssthresh = d.u32(f("ssthresh"))
	c.RcvBuf = d.u32(f("rcv_buf"))
	c.SndBuf = d.u32(f("snd_buf"))
	off = d.off
	sendLen := d.peekLen()
	c.SendData = d.bytes(f("send_data"))
	if d.err == nil && c.InFlight() > sendLen {
		d.failAt(off, f("send_data"), handoff.ErrInvalid, "%d bytes, fewer than the %d in flight (snd.nxt-snd.una)", sendLen, c.InFlight())
	}
	c.RecvData = d.bytes(f("recv_data"))
}

// peekLen returns the u32 at the current offset (0 if truncated; the read
// that follows reports it).
func (d *decoder) peekLen() uint32 {
	if d.err != nil || len(d.b)-d.off < 4 {
		return 0
	}
	return le.Uint32(d.b[d.off:])
}
