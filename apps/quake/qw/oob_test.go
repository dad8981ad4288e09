package qw

import (
	"errors"
	"reflect"
	"testing"
)

func oob(s string) []byte { return []byte(OOBPrefix + s) }

func TestParseRequest(t *testing.T) {
	cases := []struct {
		pkt  string
		want Request
	}{
		{"status 23\n", StatusRequest{Flags: 23, HasFlags: true}}, // qstat
		{"status\n", StatusRequest{}},
		{"status", StatusRequest{}},
		{"status 0x17\x00junk", StatusRequest{Flags: 23, HasFlags: true}},
		{"ping\n", PingRequest{}},
		{"k", PingRequest{Letter: true}},
		{"k\n", PingRequest{Letter: true}},
		{"getchallenge\n", ChallengeRequest{}},
		{"connect 28 12345 -7 \"" + ezquakeUserinfo + "\"\n",
			ConnectRequest{Protocol: 28, QPort: 12345, Challenge: -7, Userinfo: ezquakeUserinfo}},
		{"connect 28 1 2 \"\\name\\x\"\n0x58455446 0x2140f000\n0x3144564d 1\n\n",
			ConnectRequest{Protocol: 28, QPort: 1, Challenge: 2, Userinfo: `\name\x`,
				Extensions: []Extension{{PROTOCOL_VERSION_FTE, 0x2140f000}, {PROTOCOL_VERSION_MVD1, 1}}}},
		{"connect 27 1 2 \"\"\n", ConnectRequest{Protocol: 27, QPort: 1, Challenge: 2}},
		{"rcon secret  kick botA // now\n", RconRequest{Password: "secret", Command: "kick botA // now"}},
		{"rcon \"secret\" status\n", RconRequest{Password: "secret", Command: "status"}},
	}
	for _, c := range cases {
		got, err := ParseRequest(oob(c.pkt))
		if err != nil {
			t.Errorf("ParseRequest(%q): %v", c.pkt, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseRequest(%q) = %#v; want %#v", c.pkt, got, c.want)
			continue
		}
		enc, err := got.Encode(nil)
		if err != nil {
			t.Errorf("%#v.Encode: %v", got, err)
			continue
		}
		again, err := ParseRequest(enc)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("ParseRequest(Encode(%#v)) = %#v, %v", got, again, err)
		}
	}
}

func TestParseRequestRejects(t *testing.T) {
	cases := []struct {
		pkt  []byte
		want error
	}{
		{[]byte("status 23\n"), ErrNotConnectionless},
		{[]byte{0xff, 0xff, 0xff}, ErrNotConnectionless},
		{oob(""), ErrUnknownCommand},
		{oob("\n"), ErrUnknownCommand},
		{oob("hello\n"), ErrUnknownCommand},
		{oob("l\n"), ErrUnknownCommand},
		{oob("status 2 3\n"), ErrBadConnectionless},
		{oob("status x\n"), ErrBadConnectionless},
		{oob("ping 1\n"), ErrBadConnectionless},
		{oob("getchallenge now\n"), ErrBadConnectionless},
		{oob("connect 28 1 2\n"), ErrBadConnectionless},
		{oob("connect 28 1 2 \"\\a\\b\" extra\n"), ErrBadConnectionless},
		{oob("connect 28 65536 2 \"\"\n"), ErrBadConnectionless},
		{oob("connect x 1 2 \"\"\n"), ErrBadConnectionless},
		{oob("connect 28 1 2 \"\\a\\b\n"), ErrBadConnectionless},
		{oob("connect 28 1 2 a\"b\n"), ErrBadConnectionless},
		{oob("connect 28 1 2 \"\"\n0x58455446\n"), ErrBadConnectionless},
		{oob("connect 28 1 2 \"\"\nFTEX 1\n"), ErrBadConnectionless},
		{oob("rcon\n"), ErrBadConnectionless},
		{oob("rcon a\"b cmd\n"), ErrBadConnectionless},
	}
	for _, c := range cases {
		if r, err := ParseRequest(c.pkt); !errors.Is(err, c.want) {
			t.Errorf("ParseRequest(%q) = %#v, %v; want %v", c.pkt, r, err, c.want)
		}
	}
}

// The replies as captured between mvdsv 0.35 and ezquake/qstat
// (quakeworld-protocol.md), byte for byte.
func TestReplyBytes(t *testing.T) {
	cases := []struct {
		name  string
		reply Reply
		want  []byte
	}{
		{"ping: one byte, no prefix", PingReply{}, []byte{'l'}},
		{"challenge, no extensions", ChallengeReply{Challenge: 12345},
			[]byte{0xff, 0xff, 0xff, 0xff, 'c', '1', '2', '3', '4', '5', 0}},
		{"challenge, negative, FTEX pair", ChallengeReply{Challenge: -5, Extensions: []Extension{{PROTOCOL_VERSION_FTE, 0x8000}}},
			[]byte{0xff, 0xff, 0xff, 0xff, 'c', '-', '5', 0, 'F', 'T', 'E', 'X', 0x00, 0x80, 0, 0}},
		{"accept", AcceptReply{}, []byte{0xff, 0xff, 0xff, 0xff, 'j'}},
		{"refusal", PrintReply{Text: "\nserver is full\n\n"}, oob("n\nserver is full\n\n")},
	}
	for _, c := range cases {
		got, err := c.reply.Encode(nil)
		if err != nil {
			t.Errorf("%s: Encode: %v", c.name, err)
			continue
		}
		if string(got) != string(c.want) {
			t.Errorf("%s: Encode = % x; want % x", c.name, got, c.want)
		}
		back, err := ParseReply(got)
		if err != nil || !reflect.DeepEqual(back, c.reply) {
			t.Errorf("%s: ParseReply = %#v, %v; want %#v", c.name, back, err, c.reply)
		}
	}
}

// ezquake's connect packet: the line, then extension lines in 0x form.
func TestConnectRequestBytes(t *testing.T) {
	req := ConnectRequest{Protocol: 28, QPort: 40000, Challenge: 1804289383, Userinfo: ezquakeUserinfo,
		Extensions: []Extension{{PROTOCOL_VERSION_FTE, 0x2140f000}}}
	got, err := req.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := OOBPrefix + "connect 28 40000 1804289383 \"" + ezquakeUserinfo + "\"\n0x58455446 0x2140f000\n"
	if string(got) != want {
		t.Fatalf("Encode = %q; want %q", got, want)
	}
	if in, err := req.Info(); err != nil || in.Value("name") != "botA" {
		t.Fatalf("Info() = %v, %v", in, err)
	}
	for _, r := range []Request{PingRequest{}, PingRequest{Letter: true}, StatusRequest{Flags: 23, HasFlags: true}, ChallengeRequest{}} {
		b, _ := r.Encode(nil)
		want := map[Request]string{
			PingRequest{}: "ping\n", PingRequest{Letter: true}: "k\n",
			StatusRequest{Flags: 23, HasFlags: true}: "status 23\n", ChallengeRequest{}: "getchallenge\n",
		}[r]
		if string(b) != OOBPrefix+want {
			t.Errorf("%#v.Encode = %q; want %q", r, b, OOBPrefix+want)
		}
	}
	if _, err := (ConnectRequest{Userinfo: "a\"b"}).Encode(nil); !errors.Is(err, ErrUnencodable) {
		t.Errorf("Encode of a userinfo with a quote: %v; want ErrUnencodable", err)
	}
	if _, err := (RconRequest{Password: "a b", Command: "x"}).Encode(nil); !errors.Is(err, ErrUnencodable) {
		t.Errorf("Encode of a password with a space: %v; want ErrUnencodable", err)
	}
}

func TestParseReplyForms(t *testing.T) {
	cases := []struct {
		pkt  []byte
		want Reply
	}{
		{oob("l"), PingReply{Prefixed: true}},
		{oob("j\n"), AcceptReply{}},
		{oob("c42"), ChallengeReply{Challenge: 42}}, // id's qwsv: no NUL
		{oob("n\\hostname\\x\n\x00"), PrintReply{Text: "\\hostname\\x\n", NUL: true}},
	}
	for _, c := range cases {
		if got, err := ParseReply(c.pkt); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseReply(%q) = %#v, %v; want %#v", c.pkt, got, err, c.want)
		}
	}
	bad := []struct {
		pkt  []byte
		want error
	}{
		{[]byte("x"), ErrNotConnectionless},
		{oob(""), ErrBadConnectionless},
		{oob("c"), ErrBadConnectionless},
		{oob("c12a\x00"), ErrBadConnectionless},
		{oob("c1\x00abc"), ErrBadConnectionless},
		{oob("c99999999999\x00"), ErrBadConnectionless},
		{oob("n a\x00b"), ErrBadConnectionless},
		{oob("l1"), ErrBadConnectionless},
		{oob("z"), ErrUnknownCommand},
	}
	for _, c := range bad {
		if r, err := ParseReply(c.pkt); !errors.Is(err, c.want) {
			t.Errorf("ParseReply(%q) = %#v, %v; want %v", c.pkt, r, err, c.want)
		}
	}
}

func TestTokenize(t *testing.T) {
	toks, ends, err := tokenize(`  a "b c" "" d//e // f`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b c", "", "d//e"}; !reflect.DeepEqual(toks, want) {
		t.Fatalf("tokens %q; want %q", toks, want)
	}
	if want := []int{3, 9, 12, 17}; !reflect.DeepEqual(ends, want) {
		t.Fatalf("ends %v; want %v", ends, want)
	}
	if _, _, err := tokenize(`a "b`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}
