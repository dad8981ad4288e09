package qw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleState() ChannelState {
	return ChannelState{
		Side: ServerSide, QPort: 0xbeef,
		OutgoingSequence: 1000, IncomingSequence: 900, IncomingAcknowledged: 998,
		IncomingReliableAck: true, IncomingReliableSeq: false, ReliableSequence: true,
		ReliableSentSequence: 997,
		Reliable:             []byte{9, 's', 'k', 'i', 'n', 's', '\n', 0},
		Queued:               [][]byte{{1}, {8, 2, 'h', 'i', 0}},
		Dropped:              3, DropCount: 17, GoodCount: 880,
	}
}

// The version 1 layout, pinned byte for byte (docs/quake.md).
func TestChannelStateLayout(t *testing.T) {
	b, err := sampleState().AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	want := []byte("QWNC")
	want = le.AppendUint16(want, 1)
	want = append(want, 2, 0b101) // server; ReliableSequence | IncomingReliableAck
	want = le.AppendUint16(want, 0xbeef)
	want = le.AppendUint16(want, 8) // reliable length
	want = le.AppendUint16(want, 2) // queued groups
	want = le.AppendUint16(want, 0) // reserved
	for _, v := range []uint32{1000, 900, 998, 997, 3, 17, 880} {
		want = le.AppendUint32(want, v)
	}
	want = append(want, 9, 's', 'k', 'i', 'n', 's', '\n', 0)
	want = append(want, 1, 0, 1)
	want = append(want, 5, 0, 8, 2, 'h', 'i', 0)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got % x\nwant % x", b, want)
	}
	if channelStateHeader != 44 {
		t.Fatalf("header is %d bytes; the documented layout has 44", channelStateHeader)
	}
}

func TestChannelStateRoundTrip(t *testing.T) {
	for _, st := range []ChannelState{sampleState(), NewChannel(ClientSide, 5).State()} {
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back ChannelState
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, st) {
			t.Fatalf("round trip\n got %+v\nwant %+v", back, st)
		}
		// Self-delimiting: a second state and trailing data after it.
		two := append(append(append([]byte(nil), b...), b...), 0xee)
		first, n, err := DecodeChannelState(two)
		if err != nil || n != len(b) || !reflect.DeepEqual(first, st) {
			t.Fatalf("DecodeChannelState of two states: n %d, %v", n, err)
		}
		if err := back.UnmarshalBinary(two[:len(b)+1]); !errors.Is(err, ErrChannelState) {
			t.Fatalf("UnmarshalBinary with a trailing byte: %v; want ErrChannelState", err)
		}
		// The decoded state does not alias the input.
		if len(first.Reliable) > 0 {
			two[channelStateHeader] ^= 0xff
			if first.Reliable[0] == two[channelStateHeader] {
				t.Fatal("decoded Reliable aliases the input")
			}
		}
	}
}

// A channel saved in the middle of a reliable exchange (block in flight,
// more queued, a gap in the incoming sequence) and restored produces
// exactly the packets the original would have, for the same inputs.
func TestChannelRestoreBehavesIdentically(t *testing.T) {
	sv, cl := NewChannel(ServerSide, 3), NewChannel(ClientSide, 3)
	for i := 0; i < 4; i++ {
		p, _ := mustTransmit(t, cl, nil)
		if i != 2 { // a gap
			mustProcess(t, sv, p)
		}
	}
	sv.QueueReliable(stuff("one\n"))
	p, _ := mustTransmit(t, sv, nil) // block "one" in flight, then lost
	_ = p
	sv.QueueReliable(stuff("two\n"))
	sv.QueueReliable(stuff("three\n"))

	restored := reincarnate(t, sv)
	if !reflect.DeepEqual(restored.State(), sv.State()) {
		t.Fatalf("restored state differs:\n%+v\n%+v", restored.State(), sv.State())
	}
	// Drive both with identical input; compare every output byte.
	for i := 0; i < 10; i++ {
		a, sa, errA := sv.Transmit(nil, []byte{byte(SvcNop)})
		b, sb, errB := restored.Transmit(nil, []byte{byte(SvcNop)})
		if errA != nil || errB != nil || !bytes.Equal(a, b) || sa != sb {
			t.Fatalf("step %d: original % x %+v, restored % x %+v", i, a, sa, b, sb)
		}
		mustProcess(t, cl, a)
		ack, _ := mustTransmit(t, cl, nil)
		pa, errA := sv.Process(ack)
		pb, errB := restored.Process(ack)
		if (errA == nil) != (errB == nil) || !bytes.Equal(pa, pb) {
			t.Fatalf("step %d: Process differs: %v / %v", i, errA, errB)
		}
	}
	if !reflect.DeepEqual(restored.State(), sv.State()) {
		t.Fatal("states diverged")
	}
	if restored.ReliableInFlight() || restored.QueuedReliable() != 0 {
		t.Fatal("restored channel did not deliver its reliable data")
	}
}

func TestChannelStateRejects(t *testing.T) {
	good, _ := sampleState().AppendBinary(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	put32 := func(off int, v uint32) []byte {
		return mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b })
	}
	put16 := func(off int, v uint16) []byte {
		return mut(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[off:], v); return b })
	}
	cases := []struct {
		name string
		data []byte
		msg  string // a word the error must contain
	}{
		{"empty", nil, "header"},
		{"short header", good[:43], "header"},
		{"magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"version", put16(4, 2), "version"},
		{"side 0", mut(func(b []byte) []byte { b[6] = 0; return b }), "side"},
		{"side 3", mut(func(b []byte) []byte { b[6] = 3; return b }), "side"},
		{"flags", mut(func(b []byte) []byte { b[7] |= 0x08; return b }), "flag"},
		{"reserved", put16(14, 1), "reserved"},
		{"outgoing 0", put32(16, 0), "outgoing"},
		{"outgoing over 31 bits", put32(16, 1<<31), "outgoing"},
		{"incoming over 31 bits", put32(20, 1<<31), "incoming"},
		{"ack not below outgoing", put32(24, 1000), "acknowledged"},
		{"reliable sent not below outgoing", put32(28, 1000), "reliable sent"},
		{"gap larger than the sequence", put32(32, 900), "dropped"},
		{"reliable block too big", put16(10, 1451), "reliable block"},
		{"reliable block truncated", good[:44+7], "reliable block"},
		{"group length missing", good[:44+8+3], "length missing"},
		{"group truncated", good[:len(good)-1], "queued group 1"},
		{"group of 0 bytes", mut(func(b []byte) []byte { b[44+8] = 0; return b }), "queued group 0"},
		{"more groups than present", put16(12, 3), "queued group 2"},
	}
	for _, c := range cases {
		_, _, err := DecodeChannelState(c.data)
		if !errors.Is(err, ErrChannelState) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want ErrChannelState mentioning %q", c.name, err, c.msg)
		}
	}
	// Too much queued in total.
	st := sampleState()
	st.Queued = nil
	for i := 0; i*1400 <= MaxQueuedReliable; i++ {
		st.Queued = append(st.Queued, make([]byte, 1400))
	}
	if _, err := st.AppendBinary(nil); !errors.Is(err, ErrChannelState) {
		t.Errorf("AppendBinary over MaxQueuedReliable: %v; want ErrChannelState", err)
	}
	if _, err := RestoreChannel(st); !errors.Is(err, ErrChannelState) {
		t.Errorf("RestoreChannel over MaxQueuedReliable: %v; want ErrChannelState", err)
	}
	// Client side: its blocks are 1448 bytes at most.
	st = sampleState()
	st.Side = ClientSide
	st.Reliable = make([]byte, 1449)
	if err := st.Validate(); !errors.Is(err, ErrChannelState) {
		t.Errorf("client block of 1449 bytes: %v; want ErrChannelState", err)
	}
}
