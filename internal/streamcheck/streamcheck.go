// Package streamcheck drives integrity checks through an echo service:
// Echo streams pseudo-random bytes over a connection while reading them
// back, and fails unless exactly the bytes sent came back, in order
// (SHA-256 of each direction compared, and the byte counts). Datagrams
// does the same for UDP with numbered datagrams.
//
// The byte pattern is derived from a seed, so a failure names a
// reproducible stream; writes have random lengths so that segment
// boundaries vary.
package streamcheck

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// halfCloser is a connection whose write side can be closed alone (TCP).
type halfCloser interface {
	CloseWrite() error
}

// Echo writes size bytes (seeded by seed) to c in pieces of random length,
// closes its write side, and reads the echo until EOF, concurrently. It
// returns nil only if the echo is exactly the bytes written. c must support
// CloseWrite (a *net.TCPConn or gVisor's gonet.TCPConn do). Deadlines are
// the caller's.
func Echo(c net.Conn, size int, seed uint64) error {
	hc, ok := c.(halfCloser)
	if !ok {
		return fmt.Errorf("streamcheck: %T cannot close its write side", c)
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, 16<<10)
		for left := size; left > 0; {
			n := min(1+r.IntN(len(buf)), left)
			for i := range n {
				buf[i] = byte(r.Uint32())
			}
			sent.Write(buf[:n])
			if _, err := c.Write(buf[:n]); err != nil {
				werr <- fmt.Errorf("write at byte %d: %w", size-left, err)
				return
			}
			left -= n
		}
		werr <- hc.CloseWrite()
	}()
	got := sha256.New()
	n, rerr := io.Copy(got, c)
	if werr := <-werr; werr != nil {
		return fmt.Errorf("stream %d: %w", seed, werr)
	}
	if rerr != nil {
		return fmt.Errorf("stream %d: read after %d of %d bytes: %w", seed, n, size, rerr)
	}
	if n != int64(size) {
		return fmt.Errorf("stream %d: echo returned %d bytes, want %d", seed, n, size)
	}
	if !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		return fmt.Errorf("stream %d: echoed bytes differ from the ones sent (SHA-256 mismatch)", seed)
	}
	return nil
}

// ErrLost means a datagram's echo did not come back in time, even after
// retries.
var ErrLost = errors.New("streamcheck: datagram echo lost")

// Datagrams sends count numbered datagrams of varying size (up to 1400
// bytes) on a connected UDP socket and requires each echo, byte for byte.
// A datagram whose echo does not arrive within wait is resent up to three
// times (UDP may lose it); stale echoes of earlier tries are skipped.
func Datagrams(c net.Conn, count int, wait time.Duration) error {
	buf := make([]byte, 2048)
	for i := range count {
		msg := make([]byte, 8+(i*37)%1393)
		for j := range msg {
			msg[j] = byte(i + j)
		}
		copy(msg, fmt.Sprintf("%08d", i))
		ok := false
		for try := 0; try < 4 && !ok; try++ {
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("datagram %d: %w", i, err)
			}
			c.SetReadDeadline(time.Now().Add(wait))
			for {
				n, err := c.Read(buf)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				if err != nil {
					return fmt.Errorf("datagram %d: %w", i, err)
				}
				if bytes.Equal(buf[:n], msg) {
					ok = true
					break
				}
				if n < 8 || string(buf[:8]) > string(msg[:8]) {
					return fmt.Errorf("datagram %d: unexpected echo %q", i, buf[:min(n, 16)])
				}
			}
		}
		if !ok {
			return fmt.Errorf("datagram %d: %w", i, ErrLost)
		}
	}
	return nil
}

// EchoAll runs Echo on every connection at once, with seeds seed, seed+1,
// ..., and returns the errors of the streams that failed (none: all
// intact).
func EchoAll(cs []net.Conn, size int, seed uint64) []error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Echo(c, size, seed+uint64(i))
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return failed
}

// Stream is a paced echo stream: it keeps a connection busy in both
// directions for as long as a test needs (across a kernel update, say),
// rather than for a fixed size. Start it with NewStream, Stop it, then
// Wait for its verdict.
type Stream struct {
	c       net.Conn
	seed    uint64
	stop    chan struct{}
	done    chan error
	written atomic.Int64
	echoed  atomic.Int64
}

// NewStream starts writing pseudo-random chunks of up to chunk bytes to
// c, one every pace, and reading the echo concurrently. c must support
// CloseWrite. Deadlines are the caller's.
func NewStream(c net.Conn, seed uint64, chunk int, pace time.Duration) (*Stream, error) {
	hc, ok := c.(halfCloser)
	if !ok {
		return nil, fmt.Errorf("streamcheck: %T cannot close its write side", c)
	}
	s := &Stream{c: c, seed: seed, stop: make(chan struct{}), done: make(chan error, 1)}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, chunk)
		t := time.NewTicker(pace)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				werr <- hc.CloseWrite()
				return
			case <-t.C:
			}
			n := 1 + r.IntN(chunk)
			for i := range n {
				buf[i] = byte(r.Uint32())
			}
			sent.Write(buf[:n])
			if _, err := c.Write(buf[:n]); err != nil {
				werr <- fmt.Errorf("write after %d bytes: %w", s.written.Load(), err)
				return
			}
			s.written.Add(int64(n))
		}
	}()
	go func() {
		got := sha256.New()
		buf := make([]byte, 32<<10)
		var rerr error
		for {
			n, err := c.Read(buf)
			got.Write(buf[:n])
			s.echoed.Add(int64(n))
			if err == io.EOF {
				break
			}
			if err != nil {
				rerr = err
				break
			}
		}
		err := <-werr
		switch {
		case err != nil:
			err = fmt.Errorf("stream %d: %w", seed, err)
		case rerr != nil:
			err = fmt.Errorf("stream %d: read after %d of %d bytes: %w", seed, s.echoed.Load(), s.written.Load(), rerr)
		case s.echoed.Load() != s.written.Load():
			err = fmt.Errorf("stream %d: echo returned %d bytes, want %d", seed, s.echoed.Load(), s.written.Load())
		case !bytes.Equal(sent.Sum(nil), got.Sum(nil)):
			err = fmt.Errorf("stream %d: echoed bytes differ from the ones sent (SHA-256 mismatch)", seed)
		}
		s.done <- err
	}()
	return s, nil
}

// Written and Echoed count the bytes so far in each direction.
func (s *Stream) Written() int64 { return s.written.Load() }
func (s *Stream) Echoed() int64  { return s.echoed.Load() }

// Stop ends the writing side (CloseWrite); the echo drains until EOF.
func (s *Stream) Stop() { close(s.stop) }

// Wait returns nil once exactly the bytes written came back, in order.
func (s *Stream) Wait() error { return <-s.done }
