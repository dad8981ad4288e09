package push

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// ReplyType is the type of a reply frame.
type ReplyType uint8

// Reply frame types. Numbers are never reused.
const (
	TypeProgress ReplyType = 1
	TypeRefused  ReplyType = 2
	TypeAccepted ReplyType = 3
	TypeReport   ReplyType = 4
)

const (
	progressBodySize = 24
	refusedFixedSize = 4
)

// Reply is one decoded reply frame.
type Reply struct {
	Type     ReplyType
	Progress Progress      // TypeProgress
	Refusal  *RefusedError // TypeRefused (Accepted is false: ReadReply has no context)
	Report   *Report       // TypeReport
	Body     []byte        // the raw body of a type this package does not know
}

// writeFrame writes one frame in a single Write, so that concurrent
// writers on a net.Conn cannot interleave frames.
func writeFrame(w io.Writer, typ ReplyType, body []byte) error {
	if len(body) > MaxReplyBody {
		return fmt.Errorf("push: %w: a %d-byte reply body, at most %d", ErrProtocol, len(body), MaxReplyBody)
	}
	b := make([]byte, FrameHeaderSize, FrameHeaderSize+len(body))
	b[0], b[1], b[2] = frameMagic[0], frameMagic[1], byte(typ)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(body)))
	if _, err := w.Write(append(b, body...)); err != nil {
		return fmt.Errorf("push: writing a reply: %w", err)
	}
	return nil
}

// WriteProgress sends a progress message.
func WriteProgress(w io.Writer, p Progress) error {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, uint32(p.Stage))
	b = le.AppendUint32(b, 0)
	b = le.AppendUint64(b, p.Done)
	return writeFrame(w, TypeProgress, le.AppendUint64(b, p.Total))
}

// Refuse sends a refusal. The reason is sanitized (valid UTF-8, no control
// characters) and cut to MaxReason bytes. After a refusal the server closes
// the connection; see Hangup for closing while the client may still be
// sending.
func Refuse(w io.Writer, code Code, reason string) error {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, uint16(code))
	b = le.AppendUint16(b, 0)
	return writeFrame(w, TypeRefused, append(b, sanitize(reason, MaxReason)...))
}

// Accept tells the client that the image verified and the update is under
// way.
func Accept(w io.Writer) error { return writeFrame(w, TypeAccepted, nil) }

// WriteReport sends the new kernel's report, the last message of a
// successful update.
func WriteReport(w io.Writer, r *Report) error {
	body, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	return writeFrame(w, TypeReport, body)
}

// ReadReply reads one reply frame. Errors wrap ErrProtocol or ErrTruncated,
// or are r's own; a report in a newer version than this package reads is
// not an error (Report.Format says which version it was).
func ReadReply(r io.Reader) (*Reply, error) {
	le := binary.LittleEndian
	var h [FrameHeaderSize]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		return nil, readErr("reply header", n > 0, err)
	}
	if h[0] != frameMagic[0] || h[1] != frameMagic[1] {
		return nil, fmt.Errorf("push: %w: reply magic % x, want % x (not a molt update service?)", ErrProtocol, h[:2], frameMagic[:])
	}
	if h[3] != 0 {
		return nil, fmt.Errorf("push: %w: reserved reply header byte %#x", ErrProtocol, h[3])
	}
	n := le.Uint32(h[4:])
	if n > MaxReplyBody {
		return nil, fmt.Errorf("push: %w: a %d-byte reply body, at most %d", ErrProtocol, n, MaxReplyBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, readErr(fmt.Sprintf("%d-byte reply body", n), true, err)
	}
	rep := &Reply{Type: ReplyType(h[2])}
	switch rep.Type {
	case TypeProgress:
		if n != progressBodySize || le.Uint32(body[4:]) != 0 {
			return nil, fmt.Errorf("push: %w: progress body of %d bytes, want %d with zero reserved bytes", ErrProtocol, n, progressBodySize)
		}
		rep.Progress = Progress{Stage: Stage(le.Uint32(body)), Done: le.Uint64(body[8:]), Total: le.Uint64(body[16:])}
	case TypeRefused:
		if n < refusedFixedSize || n > refusedFixedSize+MaxReason || le.Uint16(body[2:]) != 0 {
			return nil, fmt.Errorf("push: %w: refusal body of %d bytes, want %d to %d with zero reserved bytes", ErrProtocol, n, refusedFixedSize, refusedFixedSize+MaxReason)
		}
		rep.Refusal = &RefusedError{Code: Code(le.Uint16(body)), Reason: sanitize(string(body[refusedFixedSize:]), MaxReason)}
	case TypeAccepted:
		if n != 0 {
			return nil, fmt.Errorf("push: %w: acceptance with a %d-byte body, want none", ErrProtocol, n)
		}
	case TypeReport:
		rep.Report = new(Report)
		if err := rep.Report.UnmarshalBinary(body); err != nil {
			return nil, err
		}
	default:
		rep.Body = body
	}
	return rep, nil
}

// Hangup closes a server's connection without losing what it wrote last:
// it shuts down the sending side (a TCP FIN after the queued reply), then
// reads and discards what the client is still sending, at most max bytes
// and for at most timeout, and closes. Closing at once while unread bytes
// are queued would make TCP send a reset, which can destroy the refusal
// before the client reads it.
func Hangup(conn net.Conn, max int64, timeout time.Duration) error {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	io.CopyN(io.Discard, conn, max)
	return conn.Close()
}
