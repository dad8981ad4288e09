// Package taplink is a host-only link.Device over a Linux TAP interface
// (/dev/net/tun, IFF_TAP|IFF_NO_PI): every read is one Ethernet frame from
// the Linux side, every write one frame to it. Tests use it to run a molt
// netstack.Stack in a test process with Linux's own TCP/IP stack as the peer
// (the TAP interface lives in a network namespace, see qemu/netns).
//
// A TAP interface created by `ip tuntap add` is persistent: closing the
// Device detaches it (Linux sees the carrier go down and drops what it sends
// meanwhile), and Open attaches a new Device to it, as a kernel that
// replaced itself re-attaches its NIC.
package taplink

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Device is one attachment to a TAP interface. It implements link.Device.
type Device struct {
	f   *os.File // immutable
	mac [6]byte  // immutable: the molt side's station address
	mtu int      // immutable

	rxMu sync.Mutex // held around every receive callback
	// +checklocks:rxMu
	rx func(frame []byte)

	closed atomic.Bool
	done   chan struct{} // closed when the receive goroutine ends

	// TxErrors counts frames Transmit could not write.
	TxErrors atomic.Uint64
}

// Open attaches to the TAP interface name in the calling thread's network
// namespace (run it inside netns.NS.Do for an interface in a namespace).
// mac is the address the molt stack uses; the TAP interface has its own,
// the Linux side's.
func Open(name string, mac [6]byte, mtu int) (*Device, error) {
	f, err := OpenFile(name)
	if err != nil {
		return nil, err
	}
	return New(f, mac, mtu)
}

// OpenFile attaches to the TAP interface name and returns the file, for a
// child process to take over (New on its side).
func OpenFile(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("taplink: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("taplink: interface name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("taplink: TUNSETIFF %s: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("taplink: set %s non-blocking: %w", name, err)
	}
	// Non-blocking, so that os.File reads park in the runtime poller and
	// Close wakes them.
	return os.NewFile(uintptr(fd), "tap:"+name), nil
}

// New makes a Device of an attached TAP file (from OpenFile, possibly in
// another process) and starts its receive goroutine.
func New(f *os.File, mac [6]byte, mtu int) (*Device, error) {
	if f == nil {
		return nil, errors.New("taplink: nil file")
	}
	d := &Device{f: f, mac: mac, mtu: mtu, done: make(chan struct{})}
	go d.receive()
	return d, nil
}

func (d *Device) receive() {
	defer close(d.done)
	buf := make([]byte, 65536)
	for {
		n, err := d.f.Read(buf)
		if err != nil {
			return // closed
		}
		d.rxMu.Lock()
		if d.rx != nil {
			d.rx(buf[:n])
		}
		d.rxMu.Unlock()
	}
}

// Transmit implements link.Device: one write per frame.
func (d *Device) Transmit(frames [][]byte) error {
	var errs []error
	for _, f := range frames {
		if _, err := d.f.Write(f); err != nil {
			d.TxErrors.Add(1)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// MTU implements link.Device.
func (d *Device) MTU() int { return d.mtu }

// MAC implements link.Device.
func (d *Device) MAC() [6]byte { return d.mac }

// LinkUp implements link.Device: up until Close.
func (d *Device) LinkUp() bool { return !d.closed.Load() }

// SetReceiver implements link.Device. After SetReceiver(nil) returns, no
// callback runs.
func (d *Device) SetReceiver(fn func(frame []byte)) {
	d.rxMu.Lock()
	d.rx = fn
	d.rxMu.Unlock()
}

// Close detaches from the TAP interface (the interface stays) and waits for
// the receive goroutine. It sends nothing.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	err := d.f.Close()
	<-d.done
	return err
}
