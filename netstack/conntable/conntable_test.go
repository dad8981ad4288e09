package conntable

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/molt-os/molt/updater/handoff"
)

// sample is a table with one of everything, IPv4 and IPv6.
func sample() *Table {
	ap := netip.MustParseAddrPort
	return &Table{
		NextID:          42,
		SavedAtUnixNano: 1_700_000_000_123_456_789,
		Neighbors: []Neighbor{
			{Addr: netip.MustParseAddr("10.0.3.1"), MAC: [6]byte{2, 0, 0, 0, 3, 1}},
			{Addr: netip.MustParseAddr("fe80::1"), MAC: [6]byte{2, 0, 0, 0, 3, 1}},
		},
		Listeners: []Listener{
			{ID: 1, Family: FamilyAny, Local: ap("[::]:7000"), Backlog: 4096},
			{ID: 2, Family: Family4, Local: ap("10.0.3.2:8000"), Backlog: 16},
		},
		UDP: []UDPSocket{
			{ID: 3, Family: FamilyAny, Local: ap("[::]:27500"), Queued: []Datagram{
				{From: ap("10.0.3.1:40000"), Payload: []byte("hello")},
				{From: ap("[fd00:3::1]:40001"), Payload: nil},
			}},
			{ID: 4, Family: Family4, Local: ap("10.0.3.2:53"), Remote: ap("10.0.3.1:53")},
		},
		TCP: []TCPConn{
			{
				ID: 5, Parent: 1, Family: FamilyAny, Flags: TCPSACK | TCPTimestamps | TCPWindowScale,
				Local: ap("10.0.3.2:7000"), Remote: ap("10.0.3.1:51000"),
				SndUna: 0xfffffff0, SndNxt: 0x10, RcvNxt: 1000, RcvWndEdge: 70000, SndWnd: 65536 << 3,
				SndWndScale: 7, RcvWndScale: 7, MSS: 1448, TSVal: 123456, TSRecent: 654321,
				SRTTMicros: 250, RTTVarMicros: 100, RTOMicros: 200000, Cwnd: 10, Ssthresh: 1 << 30,
				RcvBuf: 1 << 20, SndBuf: 1 << 20,
				SendData: bytes.Repeat([]byte{0xaa}, 0x30), RecvData: []byte("unread"),
			},
			{
				ID: 0, Parent: 2, Family: Family4, Flags: TCPUnaccepted,
				Local: ap("10.0.3.2:8000"), Remote: ap("10.0.3.1:51001"),
				SndUna: 1, SndNxt: 1, RcvNxt: 2, RcvWndEdge: 2, SndWnd: 100, MSS: 536, RTOMicros: 1e6, Cwnd: 1,
			},
			{
				ID: 41, Family: Family6, Flags: TCPSACK,
				Local: ap("[fd00:3::2]:33000"), Remote: ap("[fd00:3::1]:22"),
				SndUna: 7, SndNxt: 7, RcvNxt: 9, RcvWndEdge: 9, SndWnd: 1, MSS: 1220, RTOMicros: 1, Cwnd: 3,
			},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	want := sample()
	b, err := want.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(Encode(t)) differs:\ngot  %+v\nwant %+v", got, want)
	}
	b2, err := got.Encode()
	if err != nil || !bytes.Equal(b2, b) {
		t.Fatalf("re-encode: err %v, equal %v", err, bytes.Equal(b2, b))
	}
	empty := &Table{NextID: 1}
	eb, err := empty.Encode()
	if err != nil {
		t.Fatalf("Encode(empty): %v", err)
	}
	if len(eb) != headerSize+4*4 {
		t.Errorf("empty table is %d bytes, want %d", len(eb), headerSize+16)
	}
}

// TestIdleConnSize pins the size of an idle connection's record: the
// per-connection cost quoted in docs/conntransfer.md.
func TestIdleConnSize(t *testing.T) {
	tb := sample()
	one := &Table{NextID: 42, TCP: tb.TCP[2:3]}
	one.TCP[0].Family, one.TCP[0].Local, one.TCP[0].Remote = Family4, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2")
	b, err := one.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(b) - (headerSize + 16); got != minTCP {
		t.Errorf("idle IPv4 connection record: %d bytes, want %d", got, minTCP)
	}
}

func TestDecodeTruncated(t *testing.T) {
	b, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		_, err := Decode(b[:n])
		if !errors.Is(err, handoff.ErrTruncated) && !errors.Is(err, handoff.ErrBadMagic) {
			t.Fatalf("Decode(first %d of %d bytes) = %v; want ErrTruncated", n, len(b), err)
		}
	}
	_, err = Decode(append(b, 0))
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Offset != len(b) || !errors.Is(err, handoff.ErrInvalid) {
		t.Fatalf("Decode(trailing byte) = %v; want ErrInvalid at %#x", err, len(b))
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	patch := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	for _, tc := range []struct {
		name  string
		b     []byte
		err   error
		field string
	}{
		{"magic", patch(0, 'X'), handoff.ErrBadMagic, "magic"},
		{"version", patch(4, 2), handoff.ErrSectionVersion, "version"},
		{"flags", patch(6, 1), handoff.ErrReserved, "flags"},
		{"next id 0", patch(8, 0, 0, 0, 0), handoff.ErrInvalid, "next_id"},
		{"huge neighbor count", patch(20, 0xff, 0xff, 0xff, 0x0f), handoff.ErrTruncated, "neighbors.count"},
		{"neighbor address length", patch(24, 5), handoff.ErrInvalid, "neighbors[0].addr"},
		{"no address", []byte("MCTB\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), handoff.ErrInvalid, "neighbors[0].addr"},
	} {
		_, err := Decode(tc.b)
		var fe *FormatError
		if !errors.Is(err, tc.err) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: Decode = %v; want %v in field %s", tc.name, err, tc.err, tc.field)
		}
	}
}

// TestEncodeRejects: every validity rule, applied to a table (Encode runs
// the decoder's checks over its own output, so this exercises Decode too).
func TestEncodeRejects(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		field string
		err   error
		edit  func(*Table)
	}{
		{"next_id", handoff.ErrInvalid, func(t *Table) { t.NextID = 0 }},
		{"neighbors[0].addr", handoff.ErrInvalid, func(t *Table) { t.Neighbors[0].Addr = netip.IPv4Unspecified() }},
		{"neighbors[1].addr", handoff.ErrInvalid, func(t *Table) { t.Neighbors[1].Addr = netip.MustParseAddr("fe80::1%eth0") }},
		{"neighbors[0].addr", handoff.ErrInvalid, func(t *Table) { t.Neighbors[0].Addr = netip.MustParseAddr("::ffff:10.0.3.1") }},
		{"listeners[0].id", handoff.ErrInvalid, func(t *Table) { t.Listeners[0].ID = 0 }},
		{"listeners[1].id", handoff.ErrInvalid, func(t *Table) { t.Listeners[1].ID = 1 }},
		{"listeners[0].id", handoff.ErrInvalid, func(t *Table) { t.Listeners[0].ID = 42 }},
		{"listeners[0].family", handoff.ErrInvalid, func(t *Table) { t.Listeners[0].Family = 5 }},
		{"listeners[1].local", handoff.ErrInvalid, func(t *Table) { t.Listeners[1].Family = Family6 }},
		{"listeners[0].local", handoff.ErrInvalid, func(t *Table) { t.Listeners[0].Local = ap("[::]:0") }},
		{"listeners[0].local", handoff.ErrInvalid, func(t *Table) { t.Listeners[0].Local = netip.AddrPort{} }},
		{"listeners[0].backlog", handoff.ErrInvalid, func(t *Table) { t.Listeners[0].Backlog = 0 }},
		{"udp[0].local", handoff.ErrInvalid, func(t *Table) { t.UDP[0].Local = ap("[::]:0") }},
		{"udp[1].remote", handoff.ErrInvalid, func(t *Table) { t.UDP[1].Remote = ap("10.0.3.1:0") }},
		{"udp[1].remote.port", handoff.ErrInvalid, func(t *Table) { t.UDP[1].Remote = netip.AddrPortFrom(netip.Addr{}, 5) }},
		{"udp[0].queued[0].from", handoff.ErrInvalid, func(t *Table) { t.UDP[0].Queued[0].From = netip.AddrPort{} }},
		{"udp[0].id", handoff.ErrInvalid, func(t *Table) { t.UDP[0].ID = 2 }},
		{"tcp[0].id", handoff.ErrInvalid, func(t *Table) { t.TCP[0].ID = 0 }},
		{"tcp[0].id", handoff.ErrInvalid, func(t *Table) { t.TCP[0].ID = 3 }},
		{"tcp[1].id", handoff.ErrInvalid, func(t *Table) { t.TCP[1].ID = 7 }},
		{"tcp[1].id", handoff.ErrInvalid, func(t *Table) { t.TCP[1].Parent = 3 }},
		{"tcp[0].flags", handoff.ErrReserved, func(t *Table) { t.TCP[0].Flags |= 1 << 15 }},
		{"tcp[0].local", handoff.ErrInvalid, func(t *Table) { t.TCP[0].Local = ap("0.0.0.0:7000") }},
		{"tcp[0].remote", handoff.ErrInvalid, func(t *Table) { t.TCP[0].Remote = ap("10.0.3.1:0") }},
		{"tcp[0].remote", handoff.ErrInvalid, func(t *Table) { t.TCP[0].Remote = ap("[fd00::1]:5") }},
		{"tcp[2].local", handoff.ErrInvalid, func(t *Table) { t.TCP[2].Local = ap("10.0.0.1:5") }},
		{"tcp[0].rcv_wnd_edge", handoff.ErrInvalid, func(t *Table) { t.TCP[0].RcvWndEdge = t.TCP[0].RcvNxt - 1 }},
		{"tcp[0].snd_wnd_scale", handoff.ErrInvalid, func(t *Table) { t.TCP[0].SndWndScale = 15 }},
		{"tcp[2].rcv_wnd_scale", handoff.ErrInvalid, func(t *Table) { t.TCP[2].RcvWndScale = 1 }},
		{"tcp[0].mss", handoff.ErrInvalid, func(t *Table) { t.TCP[0].MSS = 0 }},
		{"tcp[2].ts_val", handoff.ErrInvalid, func(t *Table) { t.TCP[2].TSRecent = 1 }},
		{"tcp[0].rto", handoff.ErrInvalid, func(t *Table) { t.TCP[0].RTOMicros = 0 }},
		{"tcp[0].cwnd", handoff.ErrInvalid, func(t *Table) { t.TCP[0].Cwnd = 0 }},
		{"tcp[0].send_data", handoff.ErrInvalid, func(t *Table) { t.TCP[0].SendData = t.TCP[0].SendData[:0x1f] }},
	} {
		tb := sample()
		tc.edit(tb)
		_, err := tb.Encode()
		var fe *FormatError
		if !errors.Is(err, tc.err) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Encode(table with bad %s) = %v; want %v in that field", tc.field, err, tc.err)
			continue
		}
		if !strings.Contains(err.Error(), "offset 0x") {
			t.Errorf("error %q does not name the offset", err)
		}
	}
}

func TestSectionType(t *testing.T) {
	reg := handoff.NewRegistry()
	if err := reg.Register(SectionType()); err != nil {
		t.Fatalf("Register: %v", err)
	}
	b, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	v, err := reg.Decode(handoff.Section{Type: handoff.TypeConnTable, Version: Version, Payload: b})
	if err != nil {
		t.Fatalf("registry Decode: %v", err)
	}
	if !reflect.DeepEqual(v, sample()) {
		t.Errorf("registry Decode returned %T %+v", v, v)
	}
	_, err = reg.Decode(handoff.Section{Type: handoff.TypeConnTable, Version: Version, Payload: b[:10]})
	if !errors.Is(err, handoff.ErrPayload) || !errors.Is(err, handoff.ErrTruncated) {
		t.Errorf("registry Decode(truncated) = %v; want ErrPayload and ErrTruncated", err)
	}
}
