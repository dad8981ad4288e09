package qw

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// Values chosen to be exactly representable on the wire: coords in
// eighths, angles in 256ths (and 65536ths) of a turn.
var (
	testOrigin = [3]float32{-1024.125, 512, 24.5}
	testAngles = [3]float32{-90, 45, 1.40625}
	testCmd    = UserCmd{Msec: 13, Angles: [3]float32{-10.546875, 90, 0}, Forward: 320, Side: -200, Up: 0, Buttons: BUTTON_JUMP, Impulse: 7}
)

// sampleServerMessages has one or more values of every server message,
// with every optional field exercised.
func sampleServerMessages() []ServerMessage {
	return []ServerMessage{
		&ServerNop{},
		&Disconnect{},
		&UpdateStat{Stat: 1, Value: 100},
		&UpdateStatLong{Stat: 15, Value: -123456},
		&Sound{Entity: 1023, Channel: 3, Sound: 9, Origin: testOrigin},
		&Sound{Entity: 2047, Channel: 7, HasVolume: true, Volume: 200, HasAttenuation: true, Attenuation: 64, Sound: 1, Origin: testOrigin},
		&StopSound{Entity: 8191, Channel: 5},
		&Print{Level: PRINT_HIGH, Text: "botA entered the game\n"},
		&CenterPrint{Text: "Fight!"},
		&StuffText{Text: "cmd spawn 1 0\n"},
		&SetAngle{Angles: testAngles},
		&ServerData{ServerCount: 1, GameDir: "qw", PlayerNum: 3, LevelName: "box", MoveVars: DefaultMoveVars},
		&ServerData{Extensions: []Extension{{PROTOCOL_VERSION_FTE, 0x8000}, {PROTOCOL_VERSION_MVD1, 3}}, ServerCount: -2,
			GameDir: "ktx", PlayerNum: 127, Spectator: true, LevelName: "", MoveVars: MoveVars{Gravity: -1}},
		&LightStyle{Index: 63, Style: "mmnmmommommnonmmonqnmmo"},
		&LightStyle{Index: 0, Style: ""},
		&UpdateFrags{Slot: 31, Frags: -5},
		&UpdatePing{Slot: 2, Ping: 999},
		&UpdatePL{Slot: 2, PacketLoss: 100},
		&UpdateEnterTime{Slot: 2, Seconds: 12.5},
		&UpdateUserinfo{Slot: 0, UserID: 42, Userinfo: `\name\botA\team\red`},
		&UpdateUserinfo{Slot: 5, UserID: 0, Userinfo: ""},
		&SetInfo{Slot: 1, Key: "team", Value: "blue"},
		&ServerInfo{Key: "status", Value: "Standby"},
		&Damage{Armor: 10, Blood: 20, From: testOrigin},
		&SpawnStatic{Baseline{Model: 5, Frame: 1, Colormap: 0, Skin: 2, Origin: testOrigin, Angles: testAngles}},
		&SpawnBaseline{Entity: 500, Baseline: Baseline{Model: 2, Frame: 3, Colormap: 4, Skin: 5, Origin: testOrigin, Angles: testAngles}},
		&TempEntity{Type: TE_EXPLOSION, Origin: testOrigin},
		&TempEntity{Type: TE_GUNSHOT, Count: 3, Origin: testOrigin},
		&TempEntity{Type: TE_LIGHTNING2, Entity: 9, Origin: testOrigin, End: [3]float32{1, 2, 3}},
		&SetPause{Paused: 1},
		&KilledMonster{},
		&FoundSecret{},
		&SpawnStaticSound{Origin: testOrigin, Sound: 4, Volume: 255, Attenuation: 3},
		&Intermission{Origin: testOrigin, Angles: testAngles},
		&Finale{Text: "The End"},
		&CDTrack{Track: 2},
		&SellScreen{},
		&SmallKick{},
		&BigKick{},
		&MuzzleFlash{Entity: 1},
		&Download{Percent: 50, Data: []byte{0, 1, 2, 0xff}},
		&Download{NotFound: true},
		&Download{Percent: 100},
		&PlayerInfo{Num: 1, Flags: PF_MSEC | PF_COMMAND | PF_VELOCITY1 | PF_VELOCITY3 | PF_MODEL | PF_SKINNUM | PF_EFFECTS |
			PF_WEAPONFRAME | PF_DEAD | PF_GIB | PMC_FLY<<PF_PMC_SHIFT | PF_ONGROUND | PF_SOLID,
			Origin: testOrigin, Frame: 6, Msec: 12, Cmd: testCmd, Velocity: [3]int16{-320, 0, 270}, Model: 3, Skin: 1, Effects: 8, WeaponFrame: 2},
		&PlayerInfo{Num: 0, Flags: PF_VELOCITY2 | PF_ONGROUND, Origin: testOrigin, Frame: 1, Velocity: [3]int16{0, 100, 0}},
		&Nails{Projectiles: [][6]byte{{1, 2, 3, 4, 5, 6}, {0xff, 0, 0xff, 0, 0xff, 0}}},
		&Nails{},
		&ChokeCount{Count: 4},
		&ModelList{Start: 0, Names: []string{"maps/box.bsp", "*1", "progs/player.mdl"}, Next: 0},
		&ModelList{Start: 200, Next: 0},
		&SoundList{Start: 0, Names: []string{"weapons/r_exp3.wav"}, Next: 5},
		&PacketEntities{Entities: []EntityDelta{
			{Number: 33, Bits: U_ORIGIN1 | U_ORIGIN2 | U_ORIGIN3 | U_ANGLE2 | U_FRAME | U_MOREBITS | U_ANGLE1 | U_ANGLE3 | U_MODEL | U_COLORMAP | U_SKIN | U_EFFECTS | U_SOLID,
				Model: 1, Frame: 2, Colormap: 3, Skin: 4, Effects: 5, Origin: testOrigin, Angles: testAngles},
			{Number: 511, Bits: U_ORIGIN3, Origin: [3]float32{0, 0, -8}},
			{Number: 40, Bits: U_MOREBITS}, // a morebits byte of 0
			{Number: 41, Bits: U_REMOVE},
		}},
		&PacketEntities{},
		&DeltaPacketEntities{From: 200, Entities: []EntityDelta{{Number: 2, Bits: U_REMOVE}, {Number: 3, Bits: U_FRAME, Frame: 9}}},
		&MaxSpeed{Value: 320},
		&EntGravity{Value: 0.5},
	}
}

func sampleClientMessages() []ClientMessage {
	c1 := testCmd
	c2 := testCmd
	c2.Msec, c2.Buttons, c2.Angles[1] = 14, 0, 91.40625
	return []ClientMessage{
		&ClientNop{},
		&Move{Checksum: 0x5a, Loss: 3, Cmds: [3]UserCmd{{}, c1, c2}},
		&Move{Cmds: [3]UserCmd{c2, c2, c1}},
		&StringCmd{Text: "new"},
		&StringCmd{Text: `prespawn 1 0 -1234567`},
		&DeltaRequest{Sequence: 77},
		&TMove{Origin: testOrigin},
		&Upload{Percent: 10, Data: []byte("data")},
		&Upload{},
	}
}

// Every message: Encode, parse it back alone and in one payload with all
// the others, get the same value and, re-encoded, the same bytes.
func TestServerMessagesRoundTrip(t *testing.T) {
	msgs := sampleServerMessages()
	seen := map[SvcOp]bool{}
	for _, m := range msgs {
		seen[m.Op()] = true
		enc, err := AppendServerMessages(nil, m)
		if err != nil {
			t.Fatalf("%s: %v", m.Op(), err)
		}
		got, err := ParseServerMessages(enc)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: ParseServerMessages(% x) = %v, %v", m.Op(), enc, got, err)
		}
		if !reflect.DeepEqual(normServer(got[0]), normServer(m)) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", m.Op(), got[0], m)
		}
	}
	for op := range svcNames {
		if op != SvcBad && !seen[op] {
			t.Errorf("no sample of %s", op)
		}
	}
	all, err := AppendServerMessages(nil, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseServerMessages(all)
	if err != nil || len(got) != len(msgs) {
		t.Fatalf("whole payload: %d messages, %v; want %d", len(got), err, len(msgs))
	}
	again, err := AppendServerMessages(nil, got...)
	if err != nil || !bytes.Equal(again, all) {
		t.Fatalf("re-encoding the parsed payload differs: %v", err)
	}
}

func TestClientMessagesRoundTrip(t *testing.T) {
	msgs := sampleClientMessages()
	seen := map[ClcOp]bool{}
	for _, m := range msgs {
		seen[m.Op()] = true
		enc, err := AppendClientMessages(nil, m)
		if err != nil {
			t.Fatalf("%s: %v", m.Op(), err)
		}
		got, err := ParseClientMessages(enc)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: ParseClientMessages(% x) = %v, %v", m.Op(), enc, got, err)
		}
		if !reflect.DeepEqual(normClient(got[0]), normClient(m)) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", m.Op(), got[0], m)
		}
	}
	for op := range clcNames {
		if op != ClcBad && !seen[op] {
			t.Errorf("no sample of %s", op)
		}
	}
	all, _ := AppendClientMessages(nil, msgs...)
	got, err := ParseClientMessages(all)
	if err != nil || len(got) != len(msgs) {
		t.Fatalf("whole payload: %d messages, %v; want %d", len(got), err, len(msgs))
	}
	if again, _ := AppendClientMessages(nil, got...); !bytes.Equal(again, all) {
		t.Fatal("re-encoding the parsed payload differs")
	}
}

// normServer and normClient make "absent" and "empty" slices compare equal.
func normServer(m ServerMessage) ServerMessage {
	switch v := m.(type) {
	case *Download:
		c := *v
		if len(c.Data) == 0 {
			c.Data = nil
		}
		return &c
	case *PacketEntities:
		c := *v
		if len(c.Entities) == 0 {
			c.Entities = nil
		}
		return &c
	case *ModelList:
		c := *v
		if len(c.Names) == 0 {
			c.Names = nil
		}
		return &c
	case *Nails:
		c := *v
		if len(c.Projectiles) == 0 {
			c.Projectiles = nil
		}
		return &c
	}
	return m
}

func normClient(m ClientMessage) ClientMessage {
	if v, ok := m.(*Upload); ok && len(v.Data) == 0 {
		c := *v
		c.Data = nil
		return &c
	}
	return m
}

// Every proper prefix of a message is truncated: the parser reports it,
// never panics, and returns the messages before it.
func TestParseTruncatedEverywhere(t *testing.T) {
	lead := []byte{byte(SvcNop)}
	for _, m := range sampleServerMessages() {
		enc, _ := AppendServerMessages(nil, m)
		for n := 1; n < len(enc); n++ {
			payload := append(append([]byte(nil), lead...), enc[:n]...)
			got, err := ParseServerMessages(payload)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrTruncated) || pe.Offset != 1 || pe.Index != 1 || len(got) != 1 {
				t.Fatalf("%s cut to %d of %d bytes: %d messages, %v; want 1 message, ErrTruncated at offset 1", m.Op(), n, len(enc), len(got), err)
			}
		}
	}
	for _, m := range sampleClientMessages() {
		enc, _ := AppendClientMessages(nil, m)
		for n := 1; n < len(enc); n++ {
			if _, err := ParseClientMessages(enc[:n]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s cut to %d of %d bytes: %v; want ErrTruncated", m.Op(), n, len(enc), err)
			}
		}
	}
}

func TestParseUnknownAndMalformed(t *testing.T) {
	cases := []struct {
		payload []byte
		want    error
		op      string
		index   int
	}{
		{[]byte{byte(SvcNop), 0}, ErrUnknownMessage, "svc_bad", 1},
		{[]byte{4}, ErrUnknownMessage, "svc_4", 0},
		{[]byte{byte(SvcNop), 200}, ErrUnknownMessage, "svc_200", 1},
		{[]byte{byte(SvcTempEntity), 14, 0, 0, 0, 0, 0, 0}, ErrMalformed, "svc_temp_entity", 0},
		{[]byte{byte(SvcDownload), 0xfe, 0xff, 0}, ErrMalformed, "svc_download", 0},
		{append([]byte{byte(SvcServerData)}, 27, 0, 0, 0), ErrMalformed, "svc_serverdata", 0},
	}
	for _, c := range cases {
		_, err := ParseServerMessages(c.payload)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, c.want) || pe.Op != c.op || pe.Index != c.index {
			t.Errorf("ParseServerMessages(% x) = %v; want %v in %s (message %d)", c.payload, err, c.want, c.op, c.index)
		}
	}
	for _, p := range [][]byte{{0}, {2}, {8}, {byte(ClcUpload), 0xff, 0xff, 0}} {
		if _, err := ParseClientMessages(p); err == nil {
			t.Errorf("ParseClientMessages(% x) accepted", p)
		}
	}
}

func TestEncodeRefusals(t *testing.T) {
	cases := []ServerMessage{
		&Print{Text: "a\x00b"},
		&ServerData{PlayerNum: 128},
		&ServerData{Extensions: []Extension{{ID: 1}}},
		&Sound{Entity: 2048},
		&Sound{Channel: 8},
		&StopSound{Entity: 8192},
		&TempEntity{Type: 99},
		&Download{NotFound: true, Data: []byte{1}},
		&Download{Data: make([]byte, 32768)},
		&ModelList{Names: []string{"a", ""}},
		&Nails{Projectiles: make([][6]byte, 256)},
		&PacketEntities{Entities: []EntityDelta{{Number: 512, Bits: U_FRAME}}},
		&PacketEntities{Entities: []EntityDelta{{Number: 1, Bits: 0x100}}},
		&PacketEntities{Entities: []EntityDelta{{Number: 1, Bits: U_REMOVE | U_MODEL}}},
		&PacketEntities{Entities: []EntityDelta{{Number: 0, Bits: U_MODEL}}}, // word 0x0000 with the morebits set -> 0x8000, fine
	}
	for i, m := range cases {
		dst := []byte{1, 2}
		got, err := AppendServerMessages(dst, m)
		if i == len(cases)-1 {
			if err != nil {
				t.Errorf("entity 0 with low bits only: %v; want accepted (its word is U_MOREBITS)", err)
			}
			continue
		}
		if !errors.Is(err, ErrUnencodable) || !bytes.Equal(got, dst) {
			t.Errorf("%s %+v: %v, % x; want ErrUnencodable and dst unchanged", m.Op(), m, err, got)
		}
	}
	if _, err := AppendServerMessages(nil, &PacketEntities{Entities: []EntityDelta{{Number: 0}}}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("entity 0 without bits (word 0 ends the list): %v; want ErrUnencodable", err)
	}
	if _, err := AppendClientMessages(nil, &Upload{Data: make([]byte, 40000)}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("oversized upload: %v; want ErrUnencodable", err)
	}
}

// Exact layouts of the messages a signon and a frame are made of, as the
// notes describe them (field order, sizes, endianness).
func TestMessageBytes(t *testing.T) {
	le32 := func(v uint32) string { return string([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}) }
	f32 := func(f float32) string {
		w := NewWriter(nil, 0)
		w.Float(f)
		return string(w.Bytes())
	}
	cases := []struct {
		m    ServerMessage
		want string
	}{
		{&ServerData{ServerCount: 7, GameDir: "qw", PlayerNum: 2, Spectator: true, LevelName: "box", MoveVars: DefaultMoveVars},
			"\x0b" + le32(28) + le32(7) + "qw\x00" + "\x82" + "box\x00" +
				f32(800) + f32(100) + f32(320) + f32(500) + f32(10) + f32(10) + f32(10) + f32(4) + f32(4) + f32(1)},
		{&ServerData{Extensions: []Extension{{PROTOCOL_VERSION_FTE, 1}}, GameDir: "", LevelName: ""},
			"\x0b" + "FTEX" + le32(1) + le32(28) + le32(0) + "\x00" + "\x00" + "\x00" + string(make([]byte, 40))},
		{&SoundList{Start: 0, Names: []string{"a.wav", "b.wav"}, Next: 0}, "\x2e\x00a.wav\x00b.wav\x00\x00\x00"},
		{&ModelList{Start: 0, Names: []string{"maps/box.bsp"}, Next: 0}, "\x2d\x00maps/box.bsp\x00\x00\x00"},
		{&UpdateUserinfo{Slot: 1, UserID: 0x01020304, Userinfo: `\name\a`}, "\x28\x01\x04\x03\x02\x01\\name\\a\x00"},
		{&UpdateFrags{Slot: 1, Frags: -2}, "\x0e\x01\xfe\xff"},
		{&UpdatePing{Slot: 1, Ping: 300}, "\x24\x01\x2c\x01"},
		{&UpdatePL{Slot: 1, PacketLoss: 9}, "\x35\x01\x09"},
		{&UpdateEnterTime{Slot: 1, Seconds: 1}, "\x25\x01" + f32(1)},
		{&LightStyle{Index: 2, Style: "m"}, "\x0c\x02m\x00"},
		{&UpdateStatLong{Stat: 3, Value: -1}, "\x26\x03\xff\xff\xff\xff"},
		{&SpawnBaseline{Entity: 0x0102, Baseline: Baseline{Model: 1, Frame: 2, Colormap: 3, Skin: 4, Origin: [3]float32{1, 2, 3}, Angles: [3]float32{90, 180, -90}}},
			"\x16\x02\x01\x01\x02\x03\x04" + "\x08\x00\x40" + "\x10\x00\x80" + "\x18\x00\xc0"},
		{&Download{NotFound: true}, "\x29\xff\xff\x00"},
		{&Download{Percent: 100, Data: []byte("ab")}, "\x29\x02\x00\x64ab"},
		{&Disconnect{}, "\x02"},
		{&ServerNop{}, "\x01"},
		{&SetAngle{Angles: [3]float32{0, 90, 0}}, "\x0a\x00\x40\x00"},
		{&StuffText{Text: "skins\n"}, "\x09skins\n\x00"},
		{&Print{Level: 2, Text: "hi\n"}, "\x08\x02hi\n\x00"},
		// svc_playerinfo of the own player: no msec, no command.
		{&PlayerInfo{Num: 0, Flags: PF_VELOCITY3 | PF_ONGROUND | PF_SOLID, Origin: [3]float32{1, -1, 24}, Frame: 5, Velocity: [3]int16{0, 0, 270}},
			"\x2a\x00\x10\xc0" + "\x08\x00\xf8\xff\xc0\x00" + "\x05" + "\x0e\x01"},
		// Another player: msec and its last command (delta from null).
		{&PlayerInfo{Num: 3, Flags: PF_MSEC | PF_COMMAND, Frame: 0, Msec: 10,
			Cmd: UserCmd{Msec: 13, Angles: [3]float32{0, 90, 0}, Forward: 320, Buttons: 2}},
			"\x2a\x03\x03\x00" + "\x00\x00\x00\x00\x00\x00" + "\x00" + "\x0a" +
				string([]byte{CM_ANGLE2 | CM_FORWARD | CM_BUTTONS}) + "\x00\x40" + "\x40\x01" + "\x02" + "\x0d"},
		// svc_packetentities: word (number | high bits), morebits byte,
		// fields in protocol order, 0 terminator.
		{&PacketEntities{Entities: []EntityDelta{
			{Number: 1, Bits: U_ORIGIN1 | U_FRAME | U_MODEL | U_SOLID, Model: 2, Frame: 3, Origin: [3]float32{1, 0, 0}},
			{Number: 2, Bits: U_REMOVE},
		}}, "\x2f" + "\x01\xa2" + "\x44" + "\x02" + "\x03" + "\x08\x00" + "\x02\x40" + "\x00\x00"},
	}
	for _, c := range cases {
		got, err := AppendServerMessages(nil, c.m)
		if err != nil {
			t.Errorf("%s: %v", c.m.Op(), err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got % x\nwant % x", c.m.Op(), got, []byte(c.want))
		}
	}

	mv := &Move{Checksum: 0xab, Loss: 5, Cmds: [3]UserCmd{
		{Msec: 13},
		{Msec: 13, Forward: 320},
		{Msec: 12, Forward: 320, Angles: [3]float32{0, 180, 0}, Buttons: BUTTON_ATTACK},
	}}
	got, _ := AppendClientMessages(nil, mv, &StringCmd{Text: "begin 1"}, &DeltaRequest{Sequence: 9}, &ClientNop{})
	want := "\x03\xab\x05" +
		"\x00\x0d" + // oldest: nothing changed from the null command
		string([]byte{CM_FORWARD}) + "\x40\x01\x0d" +
		string([]byte{CM_ANGLE2 | CM_BUTTONS}) + "\x00\x80\x01\x0c" +
		"\x04begin 1\x00" + "\x05\x09" + "\x01"
	if string(got) != want {
		t.Errorf("clc_move payload:\n got % x\nwant % x", got, []byte(want))
	}
}

// The decoder accepts usercmd bits for fields that did not change, as id's
// reader does; re-encoding drops them (the canonical form), and decodes
// to the same command.
func TestUserCmdNonCanonicalBits(t *testing.T) {
	payload := []byte{byte(ClcMove), 0, 0,
		CM_FORWARD | CM_IMPULSE, 0, 0, 0, 13, // forward 0 and impulse 0: same as the null command
		0, 13,
		0, 13}
	msgs, err := ParseClientMessages(payload)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := AppendClientMessages(nil, msgs...)
	want := []byte{byte(ClcMove), 0, 0, 0, 13, 0, 13, 0, 13}
	if !bytes.Equal(again, want) {
		t.Fatalf("re-encoded % x; want % x", again, want)
	}
	back, _ := ParseClientMessages(again)
	if !reflect.DeepEqual(back, msgs) {
		t.Fatalf("canonical form decodes to %+v; want %+v", back[0], msgs[0])
	}
}

func TestEntityDeltaHelpers(t *testing.T) {
	base := EntityState{Number: 5, Model: 2, Origin: [3]float32{10, 20, 30}}
	same := base
	if _, ok := DeltaEntity(&base, &same, false); ok {
		t.Error("DeltaEntity of equal states without force: want nothing to send")
	}
	if d, ok := DeltaEntity(&base, &same, true); !ok || d.Bits != 0 || d.Number != 5 {
		t.Errorf("forced DeltaEntity of equal states = %+v, %v; want number 5, no bits", d, ok)
	}
	to := base
	to.Origin[2] = 30.05 // below the wire's resolution: no change
	to.Origin[0] = -4
	to.Angles[1] = 90
	to.Frame = 3
	to.Solid = true
	d, ok := DeltaEntity(&base, &to, false)
	if want := uint16(U_ORIGIN1 | U_ANGLE2 | U_FRAME | U_SOLID | U_MOREBITS); !ok || d.Bits != want {
		t.Fatalf("DeltaEntity bits = %#04x, %v; want %#04x", d.Bits, ok, want)
	}
	enc, err := AppendServerMessages(nil, &PacketEntities{Entities: []EntityDelta{d, RemoveEntity(9)}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := ParseServerMessages(enc)
	if err != nil {
		t.Fatal(err)
	}
	pe := msgs[0].(*PacketEntities)
	got := pe.Entities[0].Apply(base)
	if want := to.Quantize(); got != want {
		t.Fatalf("Apply = %+v; want %+v", got, want)
	}
	if !pe.Entities[1].Removed() || pe.Entities[1].Number != 9 {
		t.Fatalf("second entry %+v; want removal of 9", pe.Entities[1])
	}
	bl := SpawnBaseline{Entity: 7, Baseline: Baseline{Model: 1, Origin: testOrigin}}
	if s := bl.State(); s.Number != 7 || s.Model != 1 || s.Origin != testOrigin {
		t.Fatalf("SpawnBaseline.State() = %+v", s)
	}
}

func TestPlayerInfoMoveType(t *testing.T) {
	p := PlayerInfo{Flags: PMC_NORMAL_JUMP_HELD<<PF_PMC_SHIFT | PF_ONGROUND}
	if p.MoveType() != PMC_NORMAL_JUMP_HELD {
		t.Fatalf("MoveType() = %d; want %d", p.MoveType(), PMC_NORMAL_JUMP_HELD)
	}
}

func TestOpNames(t *testing.T) {
	for op, want := range map[fmt.Stringer]string{SvcPlayerInfo: "svc_playerinfo", SvcOp(4): "svc_4", ClcMove: "clc_move", ClcOp(9): "clc_9"} {
		if got := op.String(); got != want {
			t.Errorf("String() = %q; want %q", got, want)
		}
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := ParseServerMessages([]byte{byte(SvcNop), byte(SvcPrint), 2, 'h', 'i'})
	want := "qw: svc_print (message 1, offset 1): qw: message truncated: string at offset 3 has no terminating NUL (2 bytes left)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q; want %q", err, want)
	}
}

func TestUserCmdQuantize(t *testing.T) {
	cmd := UserCmd{Angles: [3]float32{10.001, -179.999, 359.999}, Forward: 1}
	q := cmd.Quantize()
	enc, _ := AppendClientMessages(nil, &Move{Cmds: [3]UserCmd{cmd, cmd, cmd}})
	msgs, err := ParseClientMessages(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got := msgs[0].(*Move).Cmds[2]; got != q {
		t.Fatalf("the peer sees %+v; Quantize() = %+v", got, q)
	}
}
