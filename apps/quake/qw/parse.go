package qw

import (
	"errors"
	"fmt"
)

// ErrUnknownMessage: a message number that is not a protocol 28 message
// for that direction. Payloads carry no lengths, so nothing after it can be
// read.
var ErrUnknownMessage = errors.New("qw: unknown message")

// ParseError reports the first message of a payload that could not be
// read. Err wraps ErrUnknownMessage, ErrTruncated or ErrMalformed.
type ParseError struct {
	Offset int    // where the message starts in the payload
	Op     string // its name (svc_playerinfo, clc_move, or svc_<n>)
	Index  int    // how many messages before it parsed
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("qw: %s (message %d, offset %d): %v", e.Op, e.Index, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ParseServerMessages splits a server-to-client netchan payload into its
// messages. It stops at the first unknown or truncated message and returns
// the messages before it with a *ParseError: a client cannot skip a message
// it does not understand, so it must treat the error as fatal for the
// connection, as Quake clients do ("Illegible server message").
func ParseServerMessages(payload []byte) ([]ServerMessage, error) {
	return parseMessages(payload, func(b byte) (ServerMessage, string) {
		op := SvcOp(b)
		return newServerMessage(op), op.String()
	})
}

// ParseClientMessages splits a client-to-server netchan payload into its
// messages, like ParseServerMessages. A server drops a client whose
// payload does not parse (mvdsv: "SV_ReadClientMessage: badread").
func ParseClientMessages(payload []byte) ([]ClientMessage, error) {
	return parseMessages(payload, func(b byte) (ClientMessage, string) {
		op := ClcOp(b)
		return newClientMessage(op), op.String()
	})
}

// parseMessages walks payload for either direction: byOp returns a zero
// message for an operation byte (nil if unknown) and the operation's name.
func parseMessages[M interface{ decode(*Reader) }](payload []byte, byOp func(byte) (M, string)) ([]M, error) {
	r := NewReader(payload)
	var msgs []M
	for r.Len() > 0 {
		start := r.Offset()
		m, name := byOp(r.Byte())
		if any(m) == nil {
			return msgs, &ParseError{Offset: start, Op: name, Index: len(msgs), Err: ErrUnknownMessage}
		}
		m.decode(r)
		if err := r.Err(); err != nil {
			return msgs, &ParseError{Offset: start, Op: name, Index: len(msgs), Err: err}
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// AppendServerMessages appends the encoded messages to dst. If one cannot
// be encoded it returns dst unchanged and an error naming the message.
func AppendServerMessages(dst []byte, msgs ...ServerMessage) ([]byte, error) {
	w := &Writer{buf: dst}
	for i, m := range msgs {
		m.Encode(w)
		if err := w.Err(); err != nil {
			return dst, fmt.Errorf("qw: encoding %s (message %d): %w", m.Op(), i, err)
		}
	}
	return w.Bytes(), nil
}

// AppendClientMessages is AppendServerMessages for client messages.
func AppendClientMessages(dst []byte, msgs ...ClientMessage) ([]byte, error) {
	w := &Writer{buf: dst}
	for i, m := range msgs {
		m.Encode(w)
		if err := w.Err(); err != nil {
			return dst, fmt.Errorf("qw: encoding %s (message %d): %w", m.Op(), i, err)
		}
	}
	return w.Bytes(), nil
}
