package push

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Request is what a client sends: its options and the bundle.
type Request struct {
	// Version is the client's protocol version.
	Version uint16
	// QuiesceDeadline is how long the server may wait for its tasks to
	// quiesce; 0 means the server's default.
	QuiesceDeadline time.Duration
	// Bundle is the signed image (updater/image).
	Bundle []byte
}

// appendRequestHeader appends the request header for a bundle of n bytes.
func appendRequestHeader(b []byte, quiesce time.Duration, n int) ([]byte, error) {
	if quiesce < 0 {
		return nil, fmt.Errorf("push: negative quiesce deadline %v", quiesce)
	}
	// Rounded up, so that a positive deadline never becomes "default".
	ms := (quiesce + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return nil, fmt.Errorf("push: quiesce deadline %v is above the protocol's %d ms", quiesce, uint32(math.MaxUint32))
	}
	le := binary.LittleEndian
	b = append(b, RequestMagic...)
	b = le.AppendUint16(b, ProtocolVersion)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, uint32(ms))
	return le.AppendUint64(b, uint64(n)), nil
}

// progressStep is how many bytes ReadRequest reads between two calls of
// its progress hook.
const progressStep = 256 << 10

// ReadRequest reads a request from r, refusing bundles longer than
// maxImage. The bundle's memory grows as its bytes arrive, so a request
// that claims a large bundle and sends little costs little. Errors wrap
// ErrProtocol, ErrVersion, ErrTooBig or ErrTruncated (CodeOf maps them to
// a refusal code), or are r's own.
func ReadRequest(r io.Reader, maxImage int64) (*Request, error) {
	return readRequest(r, maxImage, nil, nil)
}

// ReadRequestInto reads a request whose bundle goes into buf (for example
// an image store slot), refusing bundles longer than len(buf); the
// Request's Bundle is then a prefix of buf. progress, if not nil, is called
// with the bytes received and the bundle's length, every 256 KiB and once
// at the end, from the calling goroutine; a server typically answers with
// a StageReceiving progress message.
func ReadRequestInto(r io.Reader, buf []byte, progress func(received, total int64)) (*Request, error) {
	return readRequest(r, int64(len(buf)), buf, progress)
}

func readRequest(r io.Reader, maxImage int64, buf []byte, progress func(received, total int64)) (*Request, error) {
	le := binary.LittleEndian
	var h [RequestHeaderSize]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		return nil, readErr("request header", n > 0, err)
	}
	if string(h[:8]) != RequestMagic {
		return nil, fmt.Errorf("push: %w: request magic %q, want %q (not a molt push client)", ErrProtocol, h[:8], RequestMagic)
	}
	req := &Request{Version: le.Uint16(h[8:])}
	if req.Version != ProtocolVersion {
		return nil, fmt.Errorf("push: %w: the client speaks protocol %d, this server %d", ErrVersion, req.Version, ProtocolVersion)
	}
	if f := le.Uint16(h[10:]); f != 0 {
		return nil, fmt.Errorf("push: %w: request flags %#x, protocol %d defines none", ErrProtocol, f, ProtocolVersion)
	}
	req.QuiesceDeadline = time.Duration(le.Uint32(h[12:])) * time.Millisecond
	n := le.Uint64(h[16:])
	if n == 0 {
		return nil, fmt.Errorf("push: %w: the request carries an empty image", ErrProtocol)
	}
	if maxImage < 0 || n > uint64(maxImage) {
		return nil, fmt.Errorf("push: %w: the image is %d bytes, this server takes at most %d", ErrTooBig, n, maxImage)
	}
	total := int64(n)
	if buf == nil {
		// Grow with what arrives: start at one step, double up to total.
		buf = make([]byte, 0, min(total, progressStep))
	} else {
		buf = buf[:0]
	}
	for int64(len(buf)) < total {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*int64(cap(buf)), total))
			copy(nb, buf)
			buf = nb
		}
		end := min(int64(cap(buf)), int64(len(buf))+progressStep, total)
		m, err := io.ReadFull(r, buf[len(buf):end])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, readErr(fmt.Sprintf("image (%d of %d bytes received)", len(buf), total), true, err)
		}
		if progress != nil {
			progress(int64(len(buf)), total)
		}
	}
	req.Bundle = buf
	return req, nil
}

// readErr turns a failed read of what into an error: the stream ending is
// ErrTruncated (saying whether it ended inside what or before it); other
// errors, such as a deadline, are passed on with context.
func readErr(what string, started bool, err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && started):
		return fmt.Errorf("push: %w: the stream ended inside the %s", ErrTruncated, what)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("push: %w: the stream ended before the %s", ErrTruncated, what)
	}
	return fmt.Errorf("push: reading the %s: %w", what, err)
}
