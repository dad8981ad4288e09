package qw

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Fuzz targets. Each one checks that the decoder never panics, that its
// errors are the documented ones, and that whatever it accepts re-encodes
// to something it decodes to the same value, with the re-encoding a fixed
// point; where the wire form is canonical (everything except usercmd
// bits), the re-encoding is the input itself. Run one longer with e.g.
//
//	go test -run '^$' -fuzz '^FuzzServerMessages$' -fuzztime 60s ./apps/quake/qw

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"status 23\n", "status\n", "status 0x17", "ping\n", "k", "k\n", "getchallenge\n",
		"connect 28 12345 -7 \"" + ezquakeUserinfo + "\"\n",
		"connect 28 1 2 \"\\name\\x\"\n0x58455446 0x2140f000\n0x3144564d 1\n",
		"rcon secret kick botA\n", "rcon \"pw\"  status // x\n", "connect 28 1 2 \"\\a", "status 2 3\n",
	} {
		f.Add(oob(s))
	}
	f.Add([]byte("status 23\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(data)
		if err != nil {
			if !errors.Is(err, ErrNotConnectionless) && !errors.Is(err, ErrUnknownCommand) && !errors.Is(err, ErrBadConnectionless) {
				t.Fatalf("ParseRequest(%q): undocumented error %v", data, err)
			}
			return
		}
		enc, err := req.Encode(nil)
		if err != nil {
			t.Fatalf("ParseRequest(%q) = %#v, which does not encode: %v", data, req, err)
		}
		again, err := ParseRequest(enc)
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("ParseRequest(%q) = %#v; its encoding %q parses to %#v, %v", data, req, enc, again, err)
		}
		if enc2, _ := again.Encode(nil); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not a fixed point: %q then %q", enc, enc2)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	si := Info{{"maxfps", "77"}, {"map", "box"}}
	players := []StatusPlayer{
		{UserID: 1, Frags: 3, Minutes: 12, Ping: 25, Name: "botA", Skin: "base", TopColor: 4, BottomColor: 13, Team: "red"},
		{UserID: 3, Minutes: 5, Ping: 40, Name: "spec", Skin: "", Spectator: true},
	}
	for _, flags := range []int32{0, 23, 2, 12, 16} {
		b, err := AppendStatusReply(nil, flags, si, players)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, r := range []Reply{PingReply{}, PingReply{Prefixed: true}, ChallengeReply{Challenge: -3, Extensions: []Extension{{1, 2}}},
		AcceptReply{}, PrintReply{Text: "\nserver is full\n\n"}} {
		b, _ := r.Encode(nil)
		f.Add(b)
	}
	f.Add(oob("c12"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseReply(data)
		if err != nil {
			if !errors.Is(err, ErrNotConnectionless) && !errors.Is(err, ErrUnknownCommand) && !errors.Is(err, ErrBadConnectionless) {
				t.Fatalf("ParseReply(%q): undocumented error %v", data, err)
			}
			return
		}
		enc, err := rep.Encode(nil)
		if err != nil {
			t.Fatalf("ParseReply(%q) = %#v, which does not encode: %v", data, rep, err)
		}
		again, err := ParseReply(enc)
		if err != nil || !reflect.DeepEqual(again, rep) {
			t.Fatalf("ParseReply(%q) = %#v; its encoding %q parses to %#v, %v", data, rep, enc, again, err)
		}
		pr, ok := rep.(PrintReply)
		if !ok {
			return
		}
		for _, flags := range []int32{0, 1, 2, 4 | 8, 23, 31} {
			st, err := ParseStatusReply(pr.Text, flags)
			if err != nil {
				if !errors.Is(err, ErrBadConnectionless) && !errors.Is(err, ErrInfo) {
					t.Fatalf("ParseStatusReply(%q, %d): undocumented error %v", pr.Text, flags, err)
				}
				continue
			}
			b, err := AppendStatusReply(nil, flags, st.Serverinfo, st.Players)
			if err != nil {
				t.Fatalf("ParseStatusReply(%q, %d) = %+v, which does not format: %v", pr.Text, flags, st, err)
			}
			r2, err := ParseReply(b)
			if err != nil {
				t.Fatal(err)
			}
			st2, err := ParseStatusReply(r2.(PrintReply).Text, flags)
			if err != nil {
				t.Fatalf("formatted status %q does not parse: %v", b, err)
			}
			if b2, _ := AppendStatusReply(nil, flags, st2.Serverinfo, st2.Players); !bytes.Equal(b2, b) {
				t.Fatalf("status formatting is not a fixed point: %q then %q", b, b2)
			}
		}
	})
}

func checkParseError(t *testing.T, data []byte, err error) int {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("% x: error %v is not a *ParseError", data, err)
	}
	if !errors.Is(err, ErrUnknownMessage) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("% x: undocumented error %v", data, err)
	}
	return pe.Offset
}

func FuzzServerMessages(f *testing.F) {
	for _, m := range sampleServerMessages() {
		b, _ := AppendServerMessages(nil, m)
		f.Add(b)
	}
	all, _ := AppendServerMessages(nil, sampleServerMessages()...)
	f.Add(all)
	f.Add([]byte{byte(SvcPlayerInfo), 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := ParseServerMessages(data)
		parsed := len(data)
		if err != nil {
			parsed = checkParseError(t, data, err)
		}
		enc, err := AppendServerMessages(nil, msgs...)
		if err != nil {
			t.Fatalf("% x: parsed messages do not encode: %v", data, err)
		}
		again, err := ParseServerMessages(enc)
		if err != nil || len(again) != len(msgs) {
			t.Fatalf("% x: re-encoding % x parses to %d messages, %v; want %d", data, enc, len(again), err, len(msgs))
		}
		if enc2, _ := AppendServerMessages(nil, again...); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not a fixed point: % x then % x", enc, enc2)
		}
		canonical := true
		for _, m := range msgs {
			if p, ok := m.(*PlayerInfo); ok && p.Flags&PF_COMMAND != 0 {
				canonical = false // usercmd bits may name unchanged fields
			}
		}
		if canonical && !bytes.Equal(enc, data[:parsed]) {
			t.Fatalf("canonical payload % x re-encodes to % x", data[:parsed], enc)
		}
	})
}

func FuzzClientMessages(f *testing.F) {
	for _, m := range sampleClientMessages() {
		b, _ := AppendClientMessages(nil, m)
		f.Add(b)
	}
	all, _ := AppendClientMessages(nil, sampleClientMessages()...)
	f.Add(all)
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := ParseClientMessages(data)
		parsed := len(data)
		if err != nil {
			parsed = checkParseError(t, data, err)
		}
		enc, err := AppendClientMessages(nil, msgs...)
		if err != nil {
			t.Fatalf("% x: parsed messages do not encode: %v", data, err)
		}
		again, err := ParseClientMessages(enc)
		if err != nil || !reflect.DeepEqual(normClients(again), normClients(msgs)) {
			t.Fatalf("% x: re-encoding % x parses to %+v, %v; want %+v", data, enc, again, err, msgs)
		}
		if enc2, _ := AppendClientMessages(nil, again...); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not a fixed point: % x then % x", enc, enc2)
		}
		canonical := true
		for _, m := range msgs {
			if _, ok := m.(*Move); ok {
				canonical = false
			}
		}
		if canonical && !bytes.Equal(enc, data[:parsed]) {
			t.Fatalf("canonical payload % x re-encodes to % x", data[:parsed], enc)
		}
	})
}

func normClients(ms []ClientMessage) []ClientMessage {
	out := make([]ClientMessage, len(ms))
	for i, m := range ms {
		out[i] = normClient(m)
	}
	return out
}

func FuzzChannelState(f *testing.F) {
	good, _ := sampleState().AppendBinary(nil)
	f.Add(good)
	f.Add(good[:50])
	fresh, _ := NewChannel(ClientSide, 1).State().AppendBinary(nil)
	f.Add(fresh)
	f.Add(append(fresh, good...))
	f.Add([]byte(channelStateMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, n, err := DecodeChannelState(data)
		if err != nil {
			if !errors.Is(err, ErrChannelState) {
				t.Fatalf("% x: error %v does not wrap ErrChannelState", data, err)
			}
			return
		}
		enc, err := st.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		if !bytes.Equal(enc, data[:n]) {
			t.Fatalf("state % x re-encodes to % x", data[:n], enc)
		}
		c, err := RestoreChannel(st)
		if err != nil {
			t.Fatalf("decoded state does not restore: %v", err)
		}
		if got := c.State(); !reflect.DeepEqual(got, st) {
			t.Fatalf("restored channel's state %+v; want %+v", got, st)
		}
	})
}

// FuzzChannelProcess drives a server channel with arbitrary packets,
// reliable queueing and transmits, and checks the invariants the state
// encoding relies on: after any input the state validates and survives
// encoding, and no packet sent is oversized or looks connectionless.
func FuzzChannelProcess(f *testing.F) {
	cl := NewChannel(ClientSide, 7)
	cl.QueueReliable(strcmd("new"))
	p1, _, _ := cl.Transmit(nil, []byte{byte(ClcNop)})
	p2, _, _ := cl.Transmit(nil, nil)
	f.Add(append(append([]byte{byte(len(p1))}, p1...), append([]byte{byte(len(p2)), 0x80, 3}, p2...)...))
	f.Add([]byte{10, 1, 0, 0, 0x80, 0, 0, 0, 0x80, 7, 0, 0xc0, 5, 0x81, 2, 0, 0, 0, 1, 0, 0, 0x80, 7, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		sv := NewChannel(ServerSide, 7)
		for len(data) > 0 {
			op := data[0]
			data = data[1:]
			switch {
			case op&0xc0 == 0xc0: // queue a reliable group
				n := min(int(op&0x3f)+1, len(data))
				sv.QueueReliable(data[:n])
				data = data[n:]
			case op&0x80 != 0: // transmit
				p, s, err := sv.Transmit(nil, make([]byte, int(op&0x7f)*12))
				if err != nil {
					t.Fatal(err)
				}
				if len(p) > MaxPacketLen || IsConnectionless(p) || s.Sequence > maxSequence {
					t.Fatalf("bad packet: %d bytes, % x", len(p), p[:8])
				}
			default: // receive a packet of op bytes
				n := min(int(op), len(data))
				sv.Process(data[:n])
				data = data[n:]
			}
			st := sv.State()
			if err := st.Validate(); err != nil {
				t.Fatalf("live channel state does not validate: %v", err)
			}
			b, err := st.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			var back ChannelState
			if err := back.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(back, st) {
				t.Fatalf("state round trip: %v", err)
			}
		}
	})
}
