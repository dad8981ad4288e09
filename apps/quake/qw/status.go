package qw

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusPlayer is one client as a status reply lists it.
type StatusPlayer struct {
	UserID  int
	Frags   int // not shown for spectators
	Minutes int // connected time in whole minutes
	Ping    int // milliseconds
	Name    string
	Skin    string
	// TopColor and BottomColor are clamped to 0..13 when formatted, as
	// mvdsv clamps the userinfo values.
	TopColor, BottomColor int
	Team                  string // shown only with STATUS_SHOWTEAMS
	Spectator             bool
}

// StatusReply is the parsed text of a status reply.
type StatusReply struct {
	Serverinfo Info // nil if the flags did not ask for it
	Players    []StatusPlayer
}

// spectatorPrefix marks a spectator's name in a status line unless
// STATUS_SPECTATORS_AS_PLAYERS is set.
const spectatorPrefix = "\\s\\"

// showsServerinfo and the helpers below decode the flags exactly as mvdsv's
// SVC_Status does: 0 is the old style (serverinfo and players).
func showsServerinfo(flags int32) bool {
	return flags == STATUS_OLDSTYLE || flags&STATUS_SERVERINFO != 0
}

func showsPlayer(flags int32, spectator bool) bool {
	if spectator {
		return flags&STATUS_SPECTATORS != 0
	}
	return flags == STATUS_OLDSTYLE || flags&STATUS_PLAYERS != 0
}

// AppendStatusReply appends the reply to "status <flags>" as mvdsv builds
// it: prefix, 'n', the serverinfo and '\n' (if asked for), one line per
// listed client:
//
//	<userid> <frags> <minutes> <ping> "<name>" "<skin>" <top> <bottom>[ "<team>"]\n
//
// and a final NUL. Spectators are listed only with STATUS_SPECTATORS, with
// frags "-9999", a negated ping and the name prefixed by \s\, or with
// STATUS_SPECTATORS_AS_PLAYERS as frags "S" and ping and name unchanged.
// Names, skins and teams must not contain '"', a backslash, a newline or a
// NUL. The caller keeps the reply under a datagram: 32 clients with
// 63-byte names fit in about 5 KB, which mvdsv sends in one UDP datagram
// too.
func AppendStatusReply(dst []byte, flags int32, serverinfo Info, players []StatusPlayer) ([]byte, error) {
	dst = append(dst, OOBPrefix+"n"...)
	if showsServerinfo(flags) {
		s, err := serverinfo.Encode(0)
		if err != nil {
			return nil, fmt.Errorf("qw: status reply: serverinfo: %w", err)
		}
		dst = append(dst, s...)
		dst = append(dst, '\n')
	}
	for i := range players {
		p := &players[i]
		if !showsPlayer(flags, p.Spectator) {
			continue
		}
		for _, f := range [3]string{p.Name, p.Skin, p.Team} {
			if strings.ContainsAny(f, "\"\\\n\x00") {
				return nil, fmt.Errorf("%w: status reply: player %d field %.40q contains a quote, backslash, newline or NUL", ErrUnencodable, p.UserID, f)
			}
		}
		frags, ping, name := strconv.Itoa(p.Frags), p.Ping, p.Name
		if p.Spectator {
			if flags&STATUS_SPECTATORS_AS_PLAYERS != 0 {
				frags = "S"
			} else {
				frags, ping, name = "-9999", -ping, spectatorPrefix+name
			}
		}
		dst = strconv.AppendInt(dst, int64(p.UserID), 10)
		dst = append(dst, ' ')
		dst = append(dst, frags...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(p.Minutes), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(ping), 10)
		dst = append(dst, " \""...)
		dst = append(dst, name...)
		dst = append(dst, "\" \""...)
		dst = append(dst, p.Skin...)
		dst = append(dst, "\" "...)
		dst = strconv.AppendInt(dst, int64(clampColor(p.TopColor)), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(clampColor(p.BottomColor)), 10)
		if flags&STATUS_SHOWTEAMS != 0 {
			dst = append(dst, " \""...)
			dst = append(dst, p.Team...)
			dst = append(dst, '"')
		}
		dst = append(dst, '\n')
	}
	return append(dst, 0), nil
}

func clampColor(c int) int { return min(max(c, 0), 13) }

// ParseStatusReply parses the text of a status reply (PrintReply.Text)
// made for the given flags: qstat, and a test bot checking that userids and
// connected minutes continue across a kernel update, use it.
func ParseStatusReply(text string, flags int32) (StatusReply, error) {
	var r StatusReply
	if text == "" {
		if showsServerinfo(flags) {
			return r, fmt.Errorf("%w: status reply: no serverinfo line", ErrBadConnectionless)
		}
		return r, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return r, fmt.Errorf("%w: status reply: last line is not terminated", ErrBadConnectionless)
	}
	lines := strings.Split(text[:len(text)-1], "\n")
	if showsServerinfo(flags) {
		in, err := ParseInfo(lines[0], 0)
		if err != nil {
			return r, fmt.Errorf("qw: status reply: serverinfo: %w", err)
		}
		r.Serverinfo, lines = in, lines[1:]
	}
	want := 8
	if flags&STATUS_SHOWTEAMS != 0 {
		want = 9
	}
	for n, ln := range lines {
		p, err := parseStatusLine(ln, want, flags)
		if err != nil {
			return r, fmt.Errorf("%w: status reply: player line %d %.60q: %v", ErrBadConnectionless, n+1, ln, err)
		}
		r.Players = append(r.Players, p)
	}
	return r, nil
}

func parseStatusLine(ln string, want int, flags int32) (StatusPlayer, error) {
	var p StatusPlayer
	toks, _, err := tokenize(ln)
	if err != nil {
		return p, err
	}
	if len(toks) != want {
		return p, fmt.Errorf("%d fields, want %d", len(toks), want)
	}
	ints := [...]struct {
		i   int
		dst *int
	}{{0, &p.UserID}, {2, &p.Minutes}, {3, &p.Ping}, {6, &p.TopColor}, {7, &p.BottomColor}}
	for _, f := range ints {
		v, err := parseDecimal(toks[f.i], -1<<31, 1<<31-1)
		if err != nil {
			return p, err
		}
		*f.dst = int(v)
	}
	p.Name, p.Skin = toks[4], toks[5]
	if want == 9 {
		p.Team = toks[8]
	}
	switch {
	case toks[1] == "S":
		if flags&STATUS_SPECTATORS_AS_PLAYERS == 0 {
			return p, fmt.Errorf("frags \"S\" without STATUS_SPECTATORS_AS_PLAYERS")
		}
		p.Spectator = true
	case strings.HasPrefix(p.Name, spectatorPrefix):
		if toks[1] != "-9999" {
			return p, fmt.Errorf("spectator name with frags %q", toks[1])
		}
		p.Spectator, p.Name, p.Ping = true, p.Name[len(spectatorPrefix):], -p.Ping
	default:
		v, err := parseDecimal(toks[1], -1<<31, 1<<31-1)
		if err != nil {
			return p, err
		}
		p.Frags = int(v)
	}
	for _, f := range [3]string{p.Name, p.Skin, p.Team} {
		if strings.ContainsAny(f, "\"\\") {
			return p, fmt.Errorf("field %.40q contains a quote or backslash", f)
		}
	}
	if !showsPlayer(flags, p.Spectator) {
		return p, fmt.Errorf("client listed that the flags exclude")
	}
	return p, nil
}
