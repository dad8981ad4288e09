package qw

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Connectionless ("out-of-band") packets start with four 0xff bytes, a
// sequence number no netchan ever uses, followed by a text command
// (client requests) or a one-letter reply code (server replies). The ping
// reply is the exception: mvdsv sends the single byte 'l' with no prefix.

// OOBPrefix is the four-byte marker of a connectionless packet.
const OOBPrefix = "\xff\xff\xff\xff"

// Connectionless packet errors; every error from ParseRequest and
// ParseReply wraps one of these.
var (
	// ErrNotConnectionless: the packet does not start with OOBPrefix.
	ErrNotConnectionless = errors.New("qw: not a connectionless packet")
	// ErrUnknownCommand: a request command or reply code this package does
	// not know. mvdsv answers unknown requests with nothing; so should a
	// server.
	ErrUnknownCommand = errors.New("qw: unknown connectionless command")
	// ErrBadConnectionless: a known command or reply whose arguments do not
	// parse.
	ErrBadConnectionless = errors.New("qw: malformed connectionless packet")
)

// IsConnectionless reports whether pkt starts with OOBPrefix.
func IsConnectionless(pkt []byte) bool {
	return len(pkt) >= 4 && pkt[0] == 0xff && pkt[1] == 0xff && pkt[2] == 0xff && pkt[3] == 0xff
}

// Request is a client's connectionless request, parsed.
type Request interface {
	// Encode appends the request as a complete packet, prefix included.
	Encode(dst []byte) ([]byte, error)
	isRequest()
}

// PingRequest is "ping", or its one-letter form "k" (A2A_PING). The reply
// is PingReply.
type PingRequest struct {
	Letter bool // the client sent "k" rather than "ping"
}

// StatusRequest is "status [flags]". Without flags (or with 0) the reply is
// the old style: serverinfo and players, no team field.
type StatusRequest struct {
	Flags    int32 // STATUS_* bits
	HasFlags bool  // the request carried a flags argument
}

// ChallengeRequest is "getchallenge". The reply is ChallengeReply.
type ChallengeRequest struct{}

// ConnectRequest is `connect <protocol> <qport> <challenge> "<userinfo>"`
// with optional extension lines after it (FTE and mvdsv clients send
// "0x<id> 0x<mask>" lines for the extensions they want). A server checks
// Protocol, the challenge and the userinfo, and replies AcceptReply or a
// PrintReply with the reason.
type ConnectRequest struct {
	Protocol   int32
	QPort      uint16
	Challenge  int32
	Userinfo   string // as sent; parse with Info()
	Extensions []Extension
}

// Info parses the userinfo with the userinfo length limit.
func (c *ConnectRequest) Info() (Info, error) { return ParseInfo(c.Userinfo, MaxUserinfoLen) }

// RconRequest is "rcon <password> <command>". A server that has no remote
// console answers with a PrintReply refusal.
type RconRequest struct {
	Password string
	Command  string // the rest of the line after the password
}

func (PingRequest) isRequest()      {}
func (StatusRequest) isRequest()    {}
func (ChallengeRequest) isRequest() {}
func (ConnectRequest) isRequest()   {}
func (RconRequest) isRequest()      {}

// ParseRequest parses a client's connectionless packet. Like mvdsv it reads
// the first line (up to '\n', NUL or the end) and splits it into tokens the
// way Cmd_TokenizeString does; only "connect" reads further lines. Unlike
// mvdsv it is strict: numbers must be numbers, and argument counts must be
// exact, so whatever it accepts re-encodes to an equivalent packet.
func ParseRequest(pkt []byte) (Request, error) {
	if !IsConnectionless(pkt) {
		return nil, ErrNotConnectionless
	}
	body := pkt[4:]
	lineEnd := bytes.IndexAny(body, "\n\x00")
	if lineEnd < 0 {
		lineEnd = len(body)
	}
	line := string(body[:lineEnd])
	toks, ends, err := tokenize(line)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConnectionless, err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("%w: empty command", ErrUnknownCommand)
	}
	switch cmd := toks[0]; cmd {
	case "ping", "k":
		if len(toks) != 1 {
			return nil, fmt.Errorf("%w: %s takes no arguments", ErrBadConnectionless, cmd)
		}
		return PingRequest{Letter: cmd == "k"}, nil
	case "status":
		switch len(toks) {
		case 1:
			return StatusRequest{}, nil
		case 2:
			v, err := parseQInt(toks[1], -1<<31, 1<<31-1)
			if err != nil {
				return nil, fmt.Errorf("%w: status flags: %v", ErrBadConnectionless, err)
			}
			return StatusRequest{Flags: int32(v), HasFlags: true}, nil
		}
		return nil, fmt.Errorf("%w: status takes at most one argument, got %d", ErrBadConnectionless, len(toks)-1)
	case "getchallenge":
		if len(toks) != 1 {
			return nil, fmt.Errorf("%w: getchallenge takes no arguments", ErrBadConnectionless)
		}
		return ChallengeRequest{}, nil
	case "connect":
		return parseConnect(toks, body[lineEnd:])
	case "rcon":
		if len(toks) < 2 {
			return nil, fmt.Errorf("%w: rcon needs a password", ErrBadConnectionless)
		}
		rest := strings.TrimLeft(line[ends[1]:], spaceBytes)
		if toks[1] == "" || strings.ContainsAny(toks[1], spaceBytes+"\"") {
			// A password the canonical form cannot write unquoted and
			// Cmd_TokenizeString handles inconsistently across servers.
			return nil, fmt.Errorf("%w: rcon password must be one plain token", ErrBadConnectionless)
		}
		return RconRequest{Password: toks[1], Command: rest}, nil
	default:
		return nil, fmt.Errorf("%w: %.32q", ErrUnknownCommand, cmd)
	}
}

func parseConnect(toks []string, rest []byte) (Request, error) {
	if len(toks) != 5 {
		return nil, fmt.Errorf("%w: connect takes 4 arguments (protocol qport challenge userinfo), got %d", ErrBadConnectionless, len(toks)-1)
	}
	var c ConnectRequest
	proto, err := parseQInt(toks[1], -1<<31, 1<<31-1)
	if err != nil {
		return nil, fmt.Errorf("%w: connect protocol: %v", ErrBadConnectionless, err)
	}
	qport, err := parseQInt(toks[2], 0, 0xffff)
	if err != nil {
		return nil, fmt.Errorf("%w: connect qport: %v", ErrBadConnectionless, err)
	}
	chal, err := parseQInt(toks[3], -1<<31, 1<<31-1)
	if err != nil {
		return nil, fmt.Errorf("%w: connect challenge: %v", ErrBadConnectionless, err)
	}
	c.Protocol, c.QPort, c.Challenge, c.Userinfo = int32(proto), uint16(qport), int32(chal), toks[4]
	if strings.IndexByte(c.Userinfo, '"') >= 0 {
		return nil, fmt.Errorf("%w: connect userinfo contains a quote", ErrBadConnectionless)
	}
	// Extension lines: "<id> <mask>" each, numbers in decimal or 0x hex.
	// mvdsv reads lines until the packet ends; blank lines are skipped.
	for _, ln := range strings.FieldsFunc(string(rest), func(r rune) bool { return r == '\n' || r == 0 }) {
		et, _, err := tokenize(ln)
		if err != nil {
			return nil, fmt.Errorf("%w: connect extension line %.40q: %v", ErrBadConnectionless, ln, err)
		}
		if len(et) == 0 {
			continue
		}
		if len(et) != 2 {
			return nil, fmt.Errorf("%w: connect extension line %.40q: want \"<id> <mask>\"", ErrBadConnectionless, ln)
		}
		id, err1 := parseQInt(et[0], 0, 1<<32-1)
		mask, err2 := parseQInt(et[1], 0, 1<<32-1)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: connect extension line %.40q: %v", ErrBadConnectionless, ln, errors.Join(err1, err2))
		}
		c.Extensions = append(c.Extensions, Extension{ID: uint32(id), Mask: uint32(mask)})
	}
	return c, nil
}

// Encode appends "ping\n", or "k\n" for the letter form.
func (p PingRequest) Encode(dst []byte) ([]byte, error) {
	if p.Letter {
		return append(append(dst, OOBPrefix...), "k\n"...), nil
	}
	return append(append(dst, OOBPrefix...), "ping\n"...), nil
}

// Encode appends "status\n" or "status <flags>\n".
func (s StatusRequest) Encode(dst []byte) ([]byte, error) {
	dst = append(dst, OOBPrefix+"status"...)
	if s.HasFlags {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(s.Flags), 10)
	}
	return append(dst, '\n'), nil
}

// Encode appends "getchallenge\n".
func (ChallengeRequest) Encode(dst []byte) ([]byte, error) {
	return append(dst, OOBPrefix+"getchallenge\n"...), nil
}

// Encode appends the connect line as ezquake writes it, then one
// "0x<id> 0x<mask>\n" line per extension.
func (c ConnectRequest) Encode(dst []byte) ([]byte, error) {
	if strings.ContainsAny(c.Userinfo, "\"\n\x00") {
		return nil, fmt.Errorf("%w: connect userinfo %.40q contains a quote, newline or NUL", ErrUnencodable, c.Userinfo)
	}
	dst = append(dst, OOBPrefix+"connect "...)
	dst = strconv.AppendInt(dst, int64(c.Protocol), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(c.QPort), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(c.Challenge), 10)
	dst = append(dst, " \""...)
	dst = append(dst, c.Userinfo...)
	dst = append(dst, "\"\n"...)
	for _, e := range c.Extensions {
		dst = append(dst, "0x"...)
		dst = strconv.AppendUint(dst, uint64(e.ID), 16)
		dst = append(dst, " 0x"...)
		dst = strconv.AppendUint(dst, uint64(e.Mask), 16)
		dst = append(dst, '\n')
	}
	return dst, nil
}

// Encode appends "rcon <password> <command>\n".
func (r RconRequest) Encode(dst []byte) ([]byte, error) {
	if r.Password == "" || strings.ContainsAny(r.Password, spaceBytes+"\"") || strings.HasPrefix(r.Password, "//") {
		return nil, fmt.Errorf("%w: rcon password must be one plain token", ErrUnencodable)
	}
	if strings.ContainsAny(r.Command, "\n\x00") || strings.TrimLeft(r.Command, spaceBytes) != r.Command {
		return nil, fmt.Errorf("%w: rcon command %.40q has a newline, NUL or leading space", ErrUnencodable, r.Command)
	}
	dst = append(dst, OOBPrefix+"rcon "...)
	dst = append(dst, r.Password...)
	dst = append(dst, ' ')
	dst = append(dst, r.Command...)
	return append(dst, '\n'), nil
}

// Reply is a server's connectionless reply, parsed.
type Reply interface {
	// Encode appends the reply as a complete packet.
	Encode(dst []byte) ([]byte, error)
	isReply()
}

// PingReply is the answer to a ping: the single byte 'l' (A2A_ACK). mvdsv
// sends it without the 0xffffffff prefix; Prefixed records a server that
// adds it.
type PingReply struct {
	Prefixed bool
}

// ChallengeReply is 'c', the challenge in decimal, a NUL, then the
// server's extension pairs as little-endian u32s. A minimal server sends no
// pairs, and ezquake then asks for no extensions.
type ChallengeReply struct {
	Challenge  int32
	Extensions []Extension
}

// AcceptReply is 'j': the connect was accepted and the netchan starts.
type AcceptReply struct{}

// PrintReply is 'n' followed by text: a refusal ("\nserver is full\n\n",
// no NUL, as Netchan_OutOfBandPrint sends it) or a status reply (text plus
// a NUL, as mvdsv's redirect flush sends it).
type PrintReply struct {
	Text string
	NUL  bool // the text is followed by a NUL byte
}

func (PingReply) isReply()      {}
func (ChallengeReply) isReply() {}
func (AcceptReply) isReply()    {}
func (PrintReply) isReply()     {}

// ParseReply parses a server's connectionless reply (the one-byte ping
// reply included).
func ParseReply(pkt []byte) (Reply, error) {
	if len(pkt) == 1 && pkt[0] == A2A_ACK {
		return PingReply{}, nil
	}
	if !IsConnectionless(pkt) {
		return nil, ErrNotConnectionless
	}
	body := pkt[4:]
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty reply", ErrBadConnectionless)
	}
	switch body[0] {
	case A2A_ACK:
		if len(body) != 1 {
			return nil, fmt.Errorf("%w: ping reply with %d trailing bytes", ErrBadConnectionless, len(body)-1)
		}
		return PingReply{Prefixed: true}, nil
	case S2C_CONNECTION:
		// mvdsv sends exactly "j"; other servers add a newline or NUL.
		return AcceptReply{}, nil
	case S2C_CHALLENGE:
		return parseChallengeReply(body[1:])
	case A2C_PRINT:
		text := body[1:]
		r := PrintReply{}
		if n := len(text); n > 0 && text[n-1] == 0 {
			text, r.NUL = text[:n-1], true
		}
		if bytes.IndexByte(text, 0) >= 0 {
			return nil, fmt.Errorf("%w: print reply with a NUL inside its text", ErrBadConnectionless)
		}
		r.Text = string(text)
		return r, nil
	}
	return nil, fmt.Errorf("%w: reply code %q", ErrUnknownCommand, body[0])
}

func parseChallengeReply(b []byte) (Reply, error) {
	end := bytes.IndexByte(b, 0)
	num := b
	var pairs []byte
	if end >= 0 {
		num, pairs = b[:end], b[end+1:]
	}
	v, err := parseDecimal(string(num), -1<<31, 1<<31-1)
	if err != nil {
		return nil, fmt.Errorf("%w: challenge: %v", ErrBadConnectionless, err)
	}
	if len(pairs)%8 != 0 {
		return nil, fmt.Errorf("%w: challenge extensions: %d bytes is not a whole number of (id, mask) pairs", ErrBadConnectionless, len(pairs))
	}
	r := ChallengeReply{Challenge: int32(v)}
	rd := NewReader(pairs)
	for rd.Len() > 0 {
		r.Extensions = append(r.Extensions, Extension{ID: rd.ULong(), Mask: rd.ULong()})
	}
	return r, nil
}

// Encode appends the one-byte reply (with the prefix if Prefixed).
func (p PingReply) Encode(dst []byte) ([]byte, error) {
	if p.Prefixed {
		dst = append(dst, OOBPrefix...)
	}
	return append(dst, A2A_ACK), nil
}

// Encode appends 'c', the decimal challenge, a NUL and the extension pairs.
func (c ChallengeReply) Encode(dst []byte) ([]byte, error) {
	dst = append(dst, OOBPrefix+"c"...)
	dst = strconv.AppendInt(dst, int64(c.Challenge), 10)
	dst = append(dst, 0)
	w := NewWriter(nil, 0)
	for _, e := range c.Extensions {
		w.ULong(e.ID)
		w.ULong(e.Mask)
	}
	return append(dst, w.Bytes()...), nil
}

// Encode appends 'j'.
func (AcceptReply) Encode(dst []byte) ([]byte, error) {
	return append(dst, OOBPrefix+"j"...), nil
}

// Encode appends 'n', the text and, if NUL, a NUL byte.
func (p PrintReply) Encode(dst []byte) ([]byte, error) {
	if strings.IndexByte(p.Text, 0) >= 0 {
		return nil, fmt.Errorf("%w: print text contains a NUL", ErrUnencodable)
	}
	dst = append(dst, OOBPrefix+"n"...)
	dst = append(dst, p.Text...)
	if p.NUL {
		dst = append(dst, 0)
	}
	return dst, nil
}

// spaceBytes are the bytes Cmd_TokenizeString treats as separators that a
// text line can contain (every byte <= ' ' except the line's own ends).
const spaceBytes = "\x01\x02\x03\x04\x05\x06\x07\x08\t\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "

// tokenize splits one line as Quake's Cmd_TokenizeString/COM_Parse do:
// bytes <= ' ' separate tokens, "..." is one token (no escapes; the quotes
// are dropped), and "//" outside quotes ends the line. It also returns, for
// each token, the offset just past it, so a caller can take "the rest of
// the line" (rcon). An unterminated quote is an error here; Quake takes the
// rest of the line.
func tokenize(line string) (toks []string, ends []int, err error) {
	i := 0
	for {
		for i < len(line) && line[i] <= ' ' {
			i++
		}
		if i >= len(line) {
			return toks, ends, nil
		}
		if strings.HasPrefix(line[i:], "//") {
			return toks, ends, nil
		}
		if line[i] == '"' {
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, nil, fmt.Errorf("unterminated quote at offset %d", i)
			}
			toks = append(toks, line[i+1:i+1+j])
			i += j + 2
			ends = append(ends, i)
			continue
		}
		j := i
		for j < len(line) && line[j] > ' ' {
			j++
		}
		toks = append(toks, line[i:j])
		ends = append(ends, j)
		i = j
	}
}

// parseQInt parses a decimal or 0x-hexadecimal integer with an optional
// minus sign (the forms Q_atoi accepts, minus its 'c' character literals),
// within [lo, hi].
func parseQInt(s string, lo, hi int64) (int64, error) {
	t, neg := s, false
	if strings.HasPrefix(t, "-") {
		t, neg = t[1:], true
	}
	base := 10
	if strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X") {
		t, base = t[2:], 16
	}
	if t == "" || strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("%.32q is not a number", s)
	}
	u, err := strconv.ParseUint(t, base, 64)
	if err != nil || u > 1<<40 {
		return 0, fmt.Errorf("%.32q is not a number in range", s)
	}
	v := int64(u)
	if neg {
		v = -v
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", v, lo, hi)
	}
	return v, nil
}

// parseDecimal parses an optionally negative decimal integer in [lo, hi]
// (the "%i" that writes a challenge).
func parseDecimal(s string, lo, hi int64) (int64, error) {
	t := strings.TrimPrefix(s, "-")
	if t == "" || strings.TrimLeft(t, "0123456789") != "" {
		return 0, fmt.Errorf("%.32q is not a decimal number", s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%.32q is out of range [%d, %d]", s, lo, hi)
	}
	return v, nil
}
