package qw

import (
	"errors"
	"reflect"
	"testing"
)

func statusFixture(t *testing.T) (Info, []StatusPlayer) {
	t.Helper()
	var si Info
	for _, kv := range [][2]string{{"maxfps", "77"}, {"*version", "MVDSV 0.35"}, {"map", "box"}} {
		if err := si.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	players := []StatusPlayer{
		{UserID: 1, Frags: 3, Minutes: 12, Ping: 25, Name: "botA", Skin: "base", TopColor: 4, BottomColor: 20, Team: "red"},
		{UserID: 2, Frags: -1, Minutes: 0, Ping: 999, Name: "botB", Skin: "", TopColor: -3, BottomColor: 0, Team: ""},
		{UserID: 3, Frags: 7, Minutes: 5, Ping: 40, Name: "spec", Skin: "base", Team: "blue", Spectator: true},
	}
	return si, players
}

// qstat's "status 23": serverinfo line, players and spectators with the
// team field, NUL at the end.
func TestStatusReply23Layout(t *testing.T) {
	si, players := statusFixture(t)
	got, err := AppendStatusReply(nil, 23, si, players)
	if err != nil {
		t.Fatal(err)
	}
	want := "\xff\xff\xff\xffn" +
		"\\maxfps\\77\\*version\\MVDSV 0.35\\map\\box\n" +
		"1 3 12 25 \"botA\" \"base\" 4 13 \"red\"\n" +
		"2 -1 0 999 \"botB\" \"\" 0 0 \"\"\n" +
		"3 -9999 5 -40 \"\\s\\spec\" \"base\" 0 0 \"blue\"\n" +
		"\x00"
	if string(got) != want {
		t.Fatalf("status 23 reply:\n got %q\nwant %q", got, want)
	}
	rep, err := ParseReply(got)
	if err != nil {
		t.Fatal(err)
	}
	pr := rep.(PrintReply)
	if !pr.NUL {
		t.Fatal("status reply parsed without its NUL")
	}
	st, err := ParseStatusReply(pr.Text, 23)
	if err != nil {
		t.Fatal(err)
	}
	wantPlayers := append([]StatusPlayer(nil), players...)
	wantPlayers[0].BottomColor = 13 // clamped
	wantPlayers[1].TopColor = 0
	wantPlayers[2].Frags = 0 // not shown for spectators
	if !reflect.DeepEqual(st.Serverinfo, si) || !reflect.DeepEqual(st.Players, wantPlayers) {
		t.Fatalf("ParseStatusReply = %+v\nwant serverinfo %v players %+v", st, si, wantPlayers)
	}
}

func TestStatusReplyStyles(t *testing.T) {
	si, players := statusFixture(t)
	cases := []struct {
		flags int32
		want  string
	}{
		// Plain "status": serverinfo and players, no team, no spectators.
		{0, "\\maxfps\\77\\*version\\MVDSV 0.35\\map\\box\n" +
			"1 3 12 25 \"botA\" \"base\" 4 13\n" +
			"2 -1 0 999 \"botB\" \"\" 0 0\n"},
		{STATUS_SERVERINFO, "\\maxfps\\77\\*version\\MVDSV 0.35\\map\\box\n"},
		{STATUS_PLAYERS, "1 3 12 25 \"botA\" \"base\" 4 13\n2 -1 0 999 \"botB\" \"\" 0 0\n"},
		{STATUS_SPECTATORS | STATUS_SPECTATORS_AS_PLAYERS, "3 S 5 40 \"spec\" \"base\" 0 0\n"},
		{STATUS_SPECTATORS | STATUS_SHOWTEAMS, "3 -9999 5 -40 \"\\s\\spec\" \"base\" 0 0 \"blue\"\n"},
		{STATUS_SHOWTEAMS, ""},
	}
	for _, c := range cases {
		got, err := AppendStatusReply(nil, c.flags, si, players)
		if err != nil {
			t.Fatalf("flags %d: %v", c.flags, err)
		}
		if want := OOBPrefix + "n" + c.want + "\x00"; string(got) != want {
			t.Errorf("flags %d:\n got %q\nwant %q", c.flags, got, want)
			continue
		}
		st, err := ParseStatusReply(c.want, c.flags)
		if err != nil {
			t.Errorf("flags %d: ParseStatusReply: %v", c.flags, err)
			continue
		}
		again, err := AppendStatusReply(nil, c.flags, st.Serverinfo, st.Players)
		if err != nil || string(again) != string(got) {
			t.Errorf("flags %d: reformatting the parsed reply = %q, %v; want %q", c.flags, again, err, got)
		}
	}
}

func TestStatusReplyRejects(t *testing.T) {
	if _, err := AppendStatusReply(nil, 2, nil, []StatusPlayer{{Name: "a\"b"}}); !errors.Is(err, ErrUnencodable) {
		t.Errorf("name with a quote: %v; want ErrUnencodable", err)
	}
	bad := []struct {
		text  string
		flags int32
	}{
		{"", 0},
		{"\\a\\b", 1},
		{"\\a\n1 2 3\n", 0},
		{"1 2 3 4 \"n\" \"s\" 5 6 \"t\"\n", 2},
		{"1 2 3 4 \"n\" \"s\" 5 6\n", 16 | 2},
		{"1 S 3 4 \"n\" \"s\" 5 6\n", 2 | 4},
		{"1 5 3 4 \"\\s\\n\" \"s\" 5 6\n", 4},
		{"1 -9999 3 4 \"\\s\\n\" \"s\" 5 6\n", 2},
		{"1 x 3 4 \"n\" \"s\" 5 6\n", 2},
	}
	for _, c := range bad {
		if st, err := ParseStatusReply(c.text, c.flags); !errors.Is(err, ErrBadConnectionless) && !errors.Is(err, ErrInfo) {
			t.Errorf("ParseStatusReply(%q, %d) = %+v, %v; want an error", c.text, c.flags, st, err)
		}
	}
}
