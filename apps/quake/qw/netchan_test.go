package qw

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func mustTransmit(t *testing.T, c *Channel, unreliable []byte) ([]byte, Sent) {
	t.Helper()
	pkt, s, err := c.Transmit(nil, unreliable)
	if err != nil {
		t.Fatalf("Transmit: %v", err)
	}
	return pkt, s
}

func mustProcess(t *testing.T, c *Channel, pkt []byte) []byte {
	t.Helper()
	p, err := c.Process(pkt)
	if err != nil {
		t.Fatalf("Process(% x): %v", pkt[:min(len(pkt), 12)], err)
	}
	return p
}

func stuff(s string) []byte {
	b, err := AppendServerMessages(nil, &StuffText{Text: s})
	if err != nil {
		panic(err)
	}
	return b
}

func strcmd(s string) []byte {
	b, err := AppendClientMessages(nil, &StringCmd{Text: s})
	if err != nil {
		panic(err)
	}
	return b
}

// The header layout: u32 sequence | reliable<<31, u32 ack | reliable
// ack<<31, and the client's qport.
func TestNetchanHeaderBytes(t *testing.T) {
	cl := NewChannel(ClientSide, 0x1234)
	if err := cl.QueueReliable(strcmd("new")); err != nil {
		t.Fatal(err)
	}
	pkt, s := mustTransmit(t, cl, []byte{byte(ClcNop)})
	want := []byte{1, 0, 0, 0x80, 0, 0, 0, 0, 0x34, 0x12, byte(ClcStringCmd), 'n', 'e', 'w', 0, byte(ClcNop)}
	if !bytes.Equal(pkt, want) || s != (Sent{Sequence: 1, Reliable: true, Unreliable: true}) {
		t.Fatalf("first client packet % x, %+v; want % x, reliable", pkt, s, want)
	}
	sv := NewChannel(ServerSide, 0x1234)
	payload := mustProcess(t, sv, pkt)
	if !bytes.Equal(payload, want[10:]) {
		t.Fatalf("server payload % x; want % x", payload, want[10:])
	}
	reply, _ := mustTransmit(t, sv, nil)
	if want := []byte{1, 0, 0, 0, 1, 0, 0, 0x80}; !bytes.Equal(reply, want) {
		t.Fatalf("server reply % x; want % x (ack 1 with the reliable bit)", reply, want)
	}
	h, err := ParseHeader(pkt, ClientSide)
	if err != nil || h != (PacketHeader{Sequence: 1, Reliable: true, QPort: 0x1234}) {
		t.Fatalf("ParseHeader = %+v, %v", h, err)
	}
	if _, err := ParseHeader(pkt[:9], ClientSide); !errors.Is(err, ErrShortPacket) {
		t.Fatalf("ParseHeader of 9 bytes: %v; want ErrShortPacket", err)
	}
}

// A lost packet that carried the reliable block: the block is resent once
// the peer acknowledges a later packet without flipping its bit, and is
// delivered exactly once.
func TestNetchanReliableRetransmit(t *testing.T) {
	sv, cl := NewChannel(ServerSide, 7), NewChannel(ClientSide, 7)
	if err := sv.QueueReliable(stuff("cmd spawn 1 0\n")); err != nil {
		t.Fatal(err)
	}
	lost, s := mustTransmit(t, sv, nil)
	if !s.Reliable || s.Resend {
		t.Fatalf("first send %+v; want reliable, not a resend", s)
	}
	_ = lost // dropped by the network

	// The server goes on sending; until the client's ack passes the lost
	// packet the block is not resent.
	p2, s2 := mustTransmit(t, sv, []byte{byte(SvcNop)})
	if s2.Reliable {
		t.Fatalf("packet 2 %+v: resent before any ack", s2)
	}
	if got := mustProcess(t, cl, p2); !bytes.Equal(got, []byte{byte(SvcNop)}) {
		t.Fatalf("client payload % x", got)
	}
	ack, _ := mustTransmit(t, cl, nil) // ack 2, reliable bit still 0
	mustProcess(t, sv, ack)
	p3, s3 := mustTransmit(t, sv, []byte{byte(SvcNop)})
	if !s3.Reliable || !s3.Resend || !s3.Unreliable {
		t.Fatalf("packet 3 %+v; want the block resent with the unreliable part", s3)
	}
	got := mustProcess(t, cl, p3)
	if want := append(stuff("cmd spawn 1 0\n"), byte(SvcNop)); !bytes.Equal(got, want) {
		t.Fatalf("client payload % x; want reliable first, then unreliable: % x", got, want)
	}
	// The client acknowledges; the block is released and never sent again.
	ack2, _ := mustTransmit(t, cl, nil)
	mustProcess(t, sv, ack2)
	if sv.ReliableInFlight() {
		t.Fatal("block still in flight after its ack")
	}
	for i := 0; i < 5; i++ {
		p, s := mustTransmit(t, sv, nil)
		if s.Reliable {
			t.Fatalf("packet %d resends an acknowledged block", s.Sequence)
		}
		mustProcess(t, cl, p)
		a, _ := mustTransmit(t, cl, nil)
		mustProcess(t, sv, a)
	}
}

// Duplicated and reordered packets are dropped, with the reason, and
// change nothing.
func TestNetchanDropsStaleAndDuplicate(t *testing.T) {
	sv, cl := NewChannel(ServerSide, 1), NewChannel(ClientSide, 1)
	p1, _ := mustTransmit(t, sv, []byte{1})
	p2, _ := mustTransmit(t, sv, []byte{2})
	p3, _ := mustTransmit(t, sv, []byte{3})
	mustProcess(t, cl, p1)
	mustProcess(t, cl, p3)
	if cl.Dropped() != 1 {
		t.Fatalf("Dropped() = %d after a gap of one; want 1", cl.Dropped())
	}
	before := cl.State()
	if _, err := cl.Process(p2); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("late packet 2: %v; want ErrOutOfOrder", err)
	}
	if _, err := cl.Process(p3); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("packet 3 again: %v; want ErrDuplicate", err)
	}
	if _, err := cl.Process(p1); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("packet 1 again: %v; want ErrOutOfOrder", err)
	}
	if after := cl.State(); !reflect.DeepEqual(after, before) {
		t.Fatalf("dropped packets changed the state:\n%+v\n%+v", before, after)
	}
	if dc, gc := cl.Counts(); dc != 1 || gc != 2 {
		t.Fatalf("Counts() = %d, %d; want 1 gap, 2 good", dc, gc)
	}
}

func TestNetchanDropReasons(t *testing.T) {
	sv := NewChannel(ServerSide, 99)
	if _, err := sv.Process([]byte{1, 0, 0, 0, 0, 0, 0, 0, 99}); !errors.Is(err, ErrShortPacket) {
		t.Errorf("9-byte client packet: %v; want ErrShortPacket", err)
	}
	if _, err := sv.Process(oob("getchallenge\n")); !errors.Is(err, ErrConnectionless) {
		t.Errorf("connectionless packet: %v; want ErrConnectionless", err)
	}
	if _, err := sv.Process([]byte{1, 0, 0, 0, 0, 0, 0, 0, 98, 0}); !errors.Is(err, ErrQPort) {
		t.Errorf("wrong qport: %v; want ErrQPort", err)
	}
	// id's channels start at sequence 0, which a fresh receiver has
	// "received" already: their first packet is always dropped.
	if _, err := sv.Process([]byte{0, 0, 0, 0, 0, 0, 0, 0, 99, 0}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("sequence 0 on a fresh channel: %v; want ErrDuplicate", err)
	}
	// An ack for a sequence never sent (the channel has sent nothing; its
	// next sequence is 1).
	if _, err := sv.Process([]byte{5, 0, 0, 0, 1, 0, 0, 0, 99, 0}); !errors.Is(err, ErrBadAck) {
		t.Errorf("ack of an unsent sequence: %v; want ErrBadAck", err)
	}
	if sv.IncomingSequence() != 0 {
		t.Errorf("dropped packets moved IncomingSequence to %d", sv.IncomingSequence())
	}
	if p, err := sv.Process([]byte{5, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0xaa}); err != nil || !bytes.Equal(p, []byte{0xaa}) {
		t.Errorf("valid packet after the drops: % x, %v", p, err)
	}
}

// Reliable data queued while a block is in flight waits, then goes in the
// next block, in order, exactly once; groups are never split.
func TestNetchanReliableQueueing(t *testing.T) {
	sv, cl := NewChannel(ServerSide, 1), NewChannel(ClientSide, 1)
	if err := sv.QueueReliable(stuff("A\n")); err != nil {
		t.Fatal(err)
	}
	pA, sA := mustTransmit(t, sv, nil)
	if !sA.Reliable {
		t.Fatal("block A not sent")
	}
	sv.QueueReliable(stuff("B\n"))
	sv.QueueReliable(stuff("C\n"))
	if q := sv.QueuedReliable(); q != 2*len(stuff("B\n")) {
		t.Fatalf("QueuedReliable() = %d", q)
	}
	// Not acknowledged yet: later packets carry neither A again nor B, C.
	var later [][]byte
	for i := 0; i < 3; i++ {
		p, s := mustTransmit(t, sv, []byte{byte(SvcNop)})
		if s.Reliable {
			t.Fatalf("packet %d carries reliable data while A is unacknowledged", s.Sequence)
		}
		later = append(later, p)
	}
	var received []string
	collect := func(payload []byte) {
		msgs, err := ParseServerMessages(payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if st, ok := m.(*StuffText); ok {
				received = append(received, st.Text)
			}
		}
	}
	collect(mustProcess(t, cl, pA))
	for _, p := range later {
		collect(mustProcess(t, cl, p))
	}
	a, _ := mustTransmit(t, cl, nil)
	mustProcess(t, sv, a)
	pBC, sBC := mustTransmit(t, sv, nil)
	if !sBC.Reliable || sBC.Resend {
		t.Fatalf("after the ack: %+v; want a new block", sBC)
	}
	collect(mustProcess(t, cl, pBC))
	a, _ = mustTransmit(t, cl, nil)
	mustProcess(t, sv, a)
	for i := 0; i < 3; i++ {
		p, _ := mustTransmit(t, sv, nil)
		collect(mustProcess(t, cl, p))
	}
	if want := []string{"A\n", "B\n", "C\n"}; !reflect.DeepEqual(received, want) {
		t.Fatalf("client received %q; want %q", received, want)
	}
	if sv.ReliableInFlight() || sv.QueuedReliable() != 0 {
		t.Fatal("reliable data left over")
	}
}

// MAX_MSGLEN assembly: reliable first; the unreliable part only if the
// whole packet stays within MaxPacketLen; a full block is split at group
// boundaries.
func TestNetchanPacketAssembly(t *testing.T) {
	sv := NewChannel(ServerSide, 1)
	max := ServerSide.MaxReliableBlock()
	if max != 1450 || ClientSide.MaxReliableBlock() != 1448 {
		t.Fatalf("MaxReliableBlock = %d (server), %d (client); want 1450, 1448", max, ClientSide.MaxReliableBlock())
	}
	big := bytes.Repeat([]byte{byte(SvcNop)}, 1000)
	if err := sv.QueueReliable(big); err != nil {
		t.Fatal(err)
	}
	if err := sv.QueueReliable(bytes.Repeat([]byte{byte(SvcNop)}, 451)); err != nil {
		t.Fatal(err)
	}
	unrel := bytes.Repeat([]byte{byte(SvcNop)}, 450)
	p, s := mustTransmit(t, sv, unrel)
	if !s.Reliable || !s.Unreliable || len(p) != MaxPacketLen { // 8 + 1000 + 450
		t.Fatalf("packet %d bytes %+v; want the first group (1000) and the unreliable 450 in %d", len(p), s, MaxPacketLen)
	}
	if !bytes.Equal(p[8:1008], big) {
		t.Fatal("the reliable block does not come first")
	}
	if sv.QueuedReliable() != 451 {
		t.Fatalf("second group (451) should wait for the next block: %d queued", sv.QueuedReliable())
	}
	p, s = mustTransmit(t, sv, append(unrel, 0))
	if s.Reliable || !s.Unreliable || len(p) != 8+451 {
		t.Fatalf("no ack yet: %d bytes %+v; want unreliable only", len(p), s)
	}
	p, s = mustTransmit(t, sv, make([]byte, MaxPacketLen-7))
	if s.Unreliable || len(p) != 8 {
		t.Fatalf("oversized unreliable: %d bytes %+v; want it left out", len(p), s)
	}
	fresh := NewChannel(ServerSide, 1)
	fresh.QueueReliable(big)
	p, s = mustTransmit(t, fresh, append(unrel, 0))
	if !s.Reliable || s.Unreliable || len(p) != 8+1000 {
		t.Fatalf("reliable 1000 + unreliable 451: %d bytes %+v; want the reliable block alone", len(p), s)
	}

	if err := sv.QueueReliable(make([]byte, max+1)); !errors.Is(err, ErrReliableTooLarge) {
		t.Fatalf("group over a block: %v; want ErrReliableTooLarge", err)
	}
	c := NewChannel(ClientSide, 1)
	for c.QueuedReliable()+1400 <= MaxQueuedReliable {
		if err := c.QueueReliable(make([]byte, 1400)); err != nil {
			t.Fatal(err)
		}
	}
	q := c.QueuedReliable()
	if err := c.QueueReliable(make([]byte, 1400)); !errors.Is(err, ErrReliableOverflow) || c.QueuedReliable() != q {
		t.Fatalf("past MaxQueuedReliable: %v, %d queued; want ErrReliableOverflow, %d", err, c.QueuedReliable(), q)
	}
	if err := c.QueueReliable(nil); err != nil {
		t.Fatalf("empty group: %v", err)
	}
}

func TestNetchanSequenceExhausted(t *testing.T) {
	st := NewChannel(ServerSide, 1).State()
	st.OutgoingSequence = maxSequence - 1
	c, err := RestoreChannel(st)
	if err != nil {
		t.Fatal(err)
	}
	c.QueueReliable(stuff("x\n"))
	p, s, err := c.Transmit(nil, nil)
	if err != nil || s.Sequence != maxSequence-1 || IsConnectionless(p) {
		t.Fatalf("last sequence: %+v, %v", s, err)
	}
	if _, _, err := c.Transmit(nil, nil); !errors.Is(err, ErrSequenceExhausted) {
		t.Fatalf("after the last sequence: %v; want ErrSequenceExhausted", err)
	}
}

// link is a deterministic lossy network: each packet is lost, duplicated
// or delayed (reordered) with the given odds.
type link struct {
	rng              *rand.Rand
	loss, dup, delay float64
	queue            [][]byte
}

func (l *link) send(p []byte) {
	if l.rng.Float64() < l.loss {
		return
	}
	p = append([]byte(nil), p...)
	l.queue = append(l.queue, p)
	if l.rng.Float64() < l.dup {
		l.queue = append(l.queue, p)
	}
}

func (l *link) deliver() [][]byte {
	var out, kept [][]byte
	for _, p := range l.queue {
		if l.rng.Float64() < l.delay {
			kept = append(kept, p)
		} else {
			out = append(out, p)
		}
	}
	l.queue = kept
	return out
}

// A long run over a link that loses, duplicates and reorders packets, with
// both sides queueing reliable commands all the time and the server's
// channel saved, encoded, decoded and restored (a kernel update) several
// times on the way: every reliable command arrives exactly once, in order.
func TestNetchanLossyLinkExactlyOnce(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			sv, cl := NewChannel(ServerSide, 4242), NewChannel(ClientSide, 4242)
			toCl := &link{rng: rng, loss: 0.2, dup: 0.1, delay: 0.15}
			toSv := &link{rng: rng, loss: 0.2, dup: 0.1, delay: 0.15}
			var gotCl, gotSv []string
			sentSv, sentCl := 0, 0
			const ticks, quiet = 3000, 400
			for tick := 0; tick < ticks+quiet; tick++ {
				if tick < ticks && rng.IntN(3) == 0 {
					// Several groups per tick sometimes, so blocks hold
					// more than one and the queue builds up.
					for n := rng.IntN(3); n >= 0; n-- {
						if err := sv.QueueReliable(stuff(fmt.Sprintf("s%d\n", sentSv))); err != nil {
							t.Fatal(err)
						}
						sentSv++
					}
				}
				if tick < ticks && rng.IntN(4) == 0 {
					if err := cl.QueueReliable(strcmd(fmt.Sprintf("c%d", sentCl))); err != nil {
						t.Fatal(err)
					}
					sentCl++
				}
				if tick%500 == 250 {
					sv = reincarnate(t, sv)
				}
				p, _, err := sv.Transmit(nil, []byte{byte(SvcNop)})
				if err != nil {
					t.Fatal(err)
				}
				toCl.send(p)
				p, _, err = cl.Transmit(nil, []byte{byte(ClcNop)})
				if err != nil {
					t.Fatal(err)
				}
				toSv.send(p)
				for _, p := range toCl.deliver() {
					payload, err := cl.Process(p)
					if err != nil {
						if errors.Is(err, ErrDuplicate) || errors.Is(err, ErrOutOfOrder) {
							continue
						}
						t.Fatal(err)
					}
					msgs, err := ParseServerMessages(payload)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range msgs {
						if st, ok := m.(*StuffText); ok {
							gotCl = append(gotCl, st.Text)
						}
					}
				}
				for _, p := range toSv.deliver() {
					payload, err := sv.Process(p)
					if err != nil {
						if errors.Is(err, ErrDuplicate) || errors.Is(err, ErrOutOfOrder) {
							continue
						}
						t.Fatal(err)
					}
					msgs, err := ParseClientMessages(payload)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range msgs {
						if sc, ok := m.(*StringCmd); ok {
							gotSv = append(gotSv, sc.Text)
						}
					}
				}
			}
			checkSeq(t, "client", gotCl, sentSv, "s%d\n")
			checkSeq(t, "server", gotSv, sentCl, "c%d")
			if sv.ReliableInFlight() || sv.QueuedReliable() != 0 || cl.ReliableInFlight() || cl.QueuedReliable() != 0 {
				t.Fatal("reliable data still pending after the quiet period")
			}
		})
	}
}

func checkSeq(t *testing.T, who string, got []string, n int, format string) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s received %d reliable messages; want %d", who, len(got), n)
	}
	for i, s := range got {
		if want := fmt.Sprintf(format, i); s != want {
			t.Fatalf("%s: message %d is %q; want %q (exactly once, in order)", who, i, s, want)
		}
	}
}

// reincarnate carries c through its binary state encoding, as a kernel
// update does.
func reincarnate(t *testing.T, c *Channel) *Channel {
	t.Helper()
	b, err := c.State().AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var st ChannelState
	if err := st.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	n, err := RestoreChannel(st)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewChannelPanicsOnBadSide(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "invalid side") {
			t.Fatalf("recover() = %v; want a panic naming the invalid side", r)
		}
	}()
	NewChannel(0, 0)
}
