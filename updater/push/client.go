package push

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Options are the client's choices for one push.
type Options struct {
	// QuiesceDeadline is sent to the server (rounded up to milliseconds);
	// 0 leaves the server's default.
	QuiesceDeadline time.Duration
	// OnProgress, if not nil, receives the server's progress messages.
	OnProgress func(Progress)
	// OnAccept, if not nil, is called when the server accepts the image.
	OnAccept func()
}

// sendChunk is how much Push writes between two progress calls.
const sendChunk = 64 << 10

// Push sends bundle over conn and waits for the outcome: the new kernel's
// report, a *RefusedError (errors.As) if the server refused, or another
// error (the connection failed, the server broke the protocol, or ctx ended;
// after acceptance such an error wraps ErrLost or says the outcome is
// unknown). progress, if not nil, is called with the bytes written so far
// and the total, from a goroutine of Push, never concurrently with itself
// and never after Push returns.
//
// Push reads replies while it writes, so a server that refuses early (the
// image is too big) is heard at once. It does not close conn, but leaves it
// unusable when it returns an error (it may have set a deadline to stop its
// goroutines); the caller closes it. Push leaves no goroutine behind.
func Push(ctx context.Context, conn net.Conn, bundle []byte, opts Options, progress func(sent, total int64)) (*Report, error) {
	if len(bundle) == 0 {
		return nil, errors.New("push: empty image")
	}
	hdr, err := appendRequestHeader(nil, opts.QuiesceDeadline, len(bundle))
	if err != nil {
		return nil, err
	}
	// Cancelling ctx unblocks both directions through deadlines.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	written := make(chan error, 1)
	go func() { written <- send(conn, hdr, bundle, progress) }()

	rep, accepted, err := receive(conn, opts)

	// Stop the writer if it is still going (the server refused early, or
	// broke off), then wait for it: no goroutine outlives Push.
	var werr error
	select {
	case werr = <-written:
	default:
		conn.SetWriteDeadline(time.Unix(1, 0))
		werr = <-written
	}
	if err == nil {
		return rep, nil
	}
	var refused *RefusedError
	if errors.As(err, &refused) {
		return nil, err
	}
	if ctx.Err() != nil {
		if accepted {
			return nil, fmt.Errorf("push: %w after the server accepted the update: the outcome is unknown", context.Cause(ctx))
		}
		return nil, fmt.Errorf("push: %w before the server accepted the image: nothing changed", context.Cause(ctx))
	}
	if werr != nil && !accepted {
		return nil, fmt.Errorf("%w (and sending the image failed: %v)", err, werr)
	}
	return nil, err
}

// send writes the request header and the bundle in chunks.
func send(conn net.Conn, hdr, bundle []byte, progress func(sent, total int64)) error {
	if _, err := conn.Write(hdr); err != nil {
		return fmt.Errorf("push: sending the request: %w", err)
	}
	total := int64(len(bundle))
	for sent := int64(0); sent < total; {
		n := min(sendChunk, total-sent)
		m, err := conn.Write(bundle[sent : sent+n])
		sent += int64(m)
		if progress != nil && m > 0 {
			progress(sent, total)
		}
		if err != nil {
			return fmt.Errorf("push: sending the image (%d of %d bytes sent): %w", sent, total, err)
		}
	}
	return nil
}

// receive reads replies until the outcome.
func receive(conn net.Conn, opts Options) (rep *Report, accepted bool, err error) {
	for {
		r, err := ReadReply(conn)
		if err != nil {
			// A server that closes while our bytes are still unread
			// makes the kernel answer with a reset instead of an end
			// of stream: for the client it is the same, the connection
			// ended without (more of) an answer.
			if errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, ErrTruncated) {
				err = fmt.Errorf("%w: %w", ErrTruncated, err)
			}
			if accepted && errors.Is(err, ErrTruncated) {
				return nil, true, fmt.Errorf("push: %w: the connection ended after the server accepted the update and before its report (%v): the outcome is unknown; check the kernel's console", ErrLost, err)
			}
			if !accepted && errors.Is(err, ErrTruncated) {
				return nil, false, fmt.Errorf("%w (the server closed the connection without an answer)", err)
			}
			return nil, accepted, err
		}
		switch r.Type {
		case TypeProgress:
			if opts.OnProgress != nil {
				opts.OnProgress(r.Progress)
			}
		case TypeRefused:
			r.Refusal.Accepted = accepted
			return nil, accepted, r.Refusal
		case TypeAccepted:
			if accepted {
				return nil, true, fmt.Errorf("push: %w: the server accepted the image twice", ErrProtocol)
			}
			accepted = true
			if opts.OnAccept != nil {
				opts.OnAccept()
			}
		case TypeReport:
			if !accepted {
				return nil, false, fmt.Errorf("push: %w: a report before the server accepted the image", ErrProtocol)
			}
			return r.Report, true, nil
		default:
			// A newer server's message: skipped (push.go).
		}
	}
}
