// Package push is the wire protocol between `molt push` and a running
// kernel's update service: one TCP connection (port DefaultPort) that
// carries the signed image bundle to the kernel and, on the same
// connection, the kernel's answers, the last of which comes from the new
// kernel after the swap. docs/images.md §6 specifies it byte by byte; this
// comment is the summary.
//
// Client to server, once:
//
//	0x00  magic "MOLTPUSH"       8 bytes
//	0x08  protocol version       uint16 (ProtocolVersion)
//	0x0a  flags                  uint16 (zero)
//	0x0c  quiesce deadline ms    uint32 (0: the server's default)
//	0x10  bundle length          uint64
//	0x18  the bundle (updater/image)
//
// Server to client, any number of frames, each an 8-byte header
// ('M', 'R', type uint8, zero uint8, body length uint32, at most
// MaxReplyBody) and a body:
//
//	1 progress   stage uint32, zero uint32, done uint64, total uint64
//	2 refused    code uint16, zero uint16, reason (UTF-8, at most MaxReason bytes)
//	3 accepted   empty: the image verified and the update is under way
//	4 report     a versioned record from the new kernel (Report)
//
// A conversation is: progress*, then refused (the end; nothing changed)
// or accepted, then progress*, then refused (aborted before the jump,
// nothing changed) or report (the new kernel runs). A client skips frames
// of types it does not know, so a newer server may add some.
//
// All integers are little-endian. Every decoder bounds what it allocates by
// the caps above, never by a claimed length alone.
package push

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/molt-os/molt/updater/image"
)

// Protocol constants. Changing the request header or the frame header is a
// new protocol version; the report carries its own version.
const (
	// DefaultPort is the update service's TCP port.
	DefaultPort = 7100
	// RequestMagic opens every request.
	RequestMagic = "MOLTPUSH"
	// ProtocolVersion is the protocol this package speaks.
	ProtocolVersion = 1
	// RequestHeaderSize is the size of the request before the bundle.
	RequestHeaderSize = 0x18
	// FrameHeaderSize is the size of a reply frame's header.
	FrameHeaderSize = 8
	// MaxReplyBody caps a reply frame's body.
	MaxReplyBody = 64 << 10
	// MaxReason caps a refusal's reason, in bytes.
	MaxReason = 1024
)

// frameMagic opens every reply frame.
var frameMagic = [2]byte{'M', 'R'}

// Sentinel errors of the decoders and of Push.
var (
	// ErrProtocol: a message is malformed (bad magic, nonzero reserved
	// fields, a length out of range, a report that breaks its own rules),
	// or arrives out of order.
	ErrProtocol = errors.New("protocol violation")
	// ErrVersion: the request is in a protocol version this side does not
	// speak.
	ErrVersion = errors.New("unsupported protocol version")
	// ErrTooBig: the request's bundle is longer than the server's limit.
	ErrTooBig = errors.New("image too big")
	// ErrTruncated: the stream ended inside a message.
	ErrTruncated = errors.New("truncated")
	// ErrLost: the connection ended after the server accepted the update
	// and before the report: the outcome is unknown.
	ErrLost = errors.New("connection lost during the update")
)

// Code says why a server refused, for programs; the reason string is for
// people.
type Code uint16

// Refusal codes. Numbers are never reused.
const (
	CodeProtocol       Code = 1  // malformed request
	CodeVersion        Code = 2  // protocol version not spoken
	CodeTooBig         Code = 3  // the bundle does not fit the server's staging area
	CodeBadImage       Code = 4  // malformed bundle or ELF, or a bundle format not read
	CodeUnknownKey     Code = 5  // signed by a key the kernel does not trust
	CodeBadSignature   Code = 6  // the signature does not verify
	CodeWrongArch      Code = 7  // not an x86-64 ELF64 executable
	CodeBadLayout      Code = 8  // segments overlap reserved memory or each other, or paddr != vaddr
	CodeBadEntry       Code = 9  // no usable PVH entry
	CodeHandoff        Code = 10 // the image does not read the handoff format the kernel writes
	CodeBusy           Code = 11 // another update is in progress
	CodeQuiesceTimeout Code = 12 // a task did not quiesce before the deadline: aborted, still running
	CodeInternal       Code = 13 // the server failed (staging, saving): aborted, still running
)

var codeNames = map[Code]string{
	CodeProtocol: "protocol", CodeVersion: "protocol-version", CodeTooBig: "too-big",
	CodeBadImage: "bad-image", CodeUnknownKey: "unknown-key", CodeBadSignature: "bad-signature",
	CodeWrongArch: "wrong-arch", CodeBadLayout: "bad-layout", CodeBadEntry: "bad-entry",
	CodeHandoff: "handoff-incompatible", CodeBusy: "busy", CodeQuiesceTimeout: "quiesce-timeout",
	CodeInternal: "internal",
}

func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return "code-" + strconv.Itoa(int(c))
}

// CodeOf maps an error from ReadRequest or image.Verify to the code a
// server refuses with.
func CodeOf(err error) Code {
	switch {
	case errors.Is(err, ErrVersion):
		return CodeVersion
	case errors.Is(err, ErrTooBig), errors.Is(err, image.ErrTooBig):
		return CodeTooBig
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrTruncated):
		return CodeProtocol
	case errors.Is(err, image.ErrUnknownKey):
		return CodeUnknownKey
	case errors.Is(err, image.ErrSignature):
		return CodeBadSignature
	case errors.Is(err, image.ErrArch):
		return CodeWrongArch
	case errors.Is(err, image.ErrAddress), errors.Is(err, image.ErrReservedRegion), errors.Is(err, image.ErrSegmentOverlap):
		return CodeBadLayout
	case errors.Is(err, image.ErrEntry):
		return CodeBadEntry
	case errors.Is(err, image.ErrHandoff):
		return CodeHandoff
	case errors.Is(err, image.ErrFormat), errors.Is(err, image.ErrFormatVersion):
		return CodeBadImage
	}
	return CodeInternal
}

// RefusedError is a refusal from the server. Nothing changed on the server:
// a refusal after acceptance means the update was aborted before the jump.
type RefusedError struct {
	Code     Code
	Reason   string
	Accepted bool // the server had accepted the image before it refused
}

func (e *RefusedError) Error() string {
	when := ""
	if e.Accepted {
		when = " after accepting the image (aborted, the old kernel keeps running)"
	}
	return fmt.Sprintf("push: refused%s: %s: %s", when, e.Code, e.Reason)
}

// Stage names what the server is doing in a progress message.
type Stage uint32

// Stages. Numbers are never reused.
const (
	StageReceiving Stage = 1 // done/total: bundle bytes received
	StageVerifying Stage = 2
	StageStaging   Stage = 3 // reserved: this kernel stages while receiving
	StageQuiescing Stage = 4 // done/total: tasks quiesced
	StageSaving    Stage = 5
	StageJumping   Stage = 6 // the last message from the old kernel
	StageRestoring Stage = 7 // reserved: from a new kernel, before the report
)

var stageNames = map[Stage]string{
	StageReceiving: "receiving", StageVerifying: "verifying", StageStaging: "staging",
	StageQuiescing: "quiescing", StageSaving: "saving", StageJumping: "jumping", StageRestoring: "restoring",
}

func (s Stage) String() string {
	if n, ok := stageNames[s]; ok {
		return n
	}
	return "stage-" + strconv.Itoa(int(s))
}

// Progress is a progress message.
type Progress struct {
	Stage       Stage
	Done, Total uint64 // 0/0 when the stage has no measure
}

// sanitize makes free text from the other side safe to print: valid
// UTF-8, control characters other than tab replaced by '?', at most max
// bytes (cut at a rune boundary). It is idempotent.
func sanitize(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r != '\t' && unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > max {
		for max > 0 && !utf8.RuneStart(s[max]) {
			max--
		}
		s = s[:max]
	}
	return s
}
