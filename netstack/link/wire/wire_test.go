package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func recv(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case f := <-ch:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5s")
		return nil
	}
}

func TestPair(t *testing.T) {
	a, b := Pair([6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2})
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 16)
	b.SetReceiver(func(f []byte) { got <- append([]byte(nil), f...) })

	frame := []byte("frame one")
	if err := a.Transmit([][]byte{frame, []byte("frame two")}); err != nil {
		t.Fatal(err)
	}
	frame[0] = 'X' // the wire copied it
	if f := recv(t, got); string(f) != "frame one" {
		t.Errorf("first frame = %q", f)
	}
	if f := recv(t, got); string(f) != "frame two" {
		t.Errorf("second frame = %q", f)
	}

	a.SetFilter(func(f []byte) bool { return !bytes.HasPrefix(f, []byte("drop")) })
	a.Transmit([][]byte{[]byte("drop me"), []byte("keep me")})
	if f := recv(t, got); string(f) != "keep me" {
		t.Errorf("after filter: frame = %q; want keep me", f)
	}
	if a.Dropped() != 1 {
		t.Errorf("Dropped() = %d; want 1", a.Dropped())
	}

	a.SetLinkUp(false)
	if err := a.Transmit([][]byte{[]byte("x")}); !errors.Is(err, ErrLinkDown) {
		t.Errorf("Transmit with link down = %v; want ErrLinkDown", err)
	}
	a.SetLinkUp(true)
	b.SetReceiver(nil) // no calls after it returns
	a.Transmit([][]byte{[]byte("nobody")})
	b.Close()
	if err := b.Transmit([][]byte{[]byte("x")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Transmit on a closed port = %v; want ErrClosed", err)
	}
	select {
	case f := <-got:
		t.Errorf("frame %q delivered after SetReceiver(nil)", f)
	default:
	}
}
