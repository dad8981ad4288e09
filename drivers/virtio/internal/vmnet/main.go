// Command vmnet is a kernel image that checks the virtio-net driver against
// QEMU's real device; drivers/virtio/net's TestQEMU builds and boots it.
//
// Synopsis:
//
//	qemu-system-x86_64 -M microvm,acpi=off ... -netdev user,id=n0 \
//	    -device virtio-net-device,netdev=n0 -kernel vmnet.elf -append --
//
// The "--" makes the virtio_mmio.device=... words QEMU appends to the
// command line arrive as arguments (molt has no API for the command line
// yet). For the first virtio-net device it finds, vmnet attaches the driver
// with kernel.DMA and kernel.OpenIRQ, resolves the user-network gateway
// 10.0.2.2 with ARP (pull mode), re-initialises the device and resolves
// again, then shuts the device down and re-attaches as a new kernel would
// after a self-update (push mode, expecting the same MAC) and resolves a
// third time. It prints one "vmnet: ..." line per step and exits 0 when
// every step passed, 1 otherwise.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/molt-os/molt/drivers/virtio"
	virtionet "github.com/molt-os/molt/drivers/virtio/net"
	"github.com/molt-os/molt/kernel"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("vmnet: FAIL: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("vmnet: PASS")
}

var (
	ourIP     = [4]byte{10, 0, 2, 15}
	gatewayIP = [4]byte{10, 0, 2, 2}
)

func run() error {
	devs, err := virtio.ParseCmdline(strings.Join(os.Args[1:], " "))
	if err != nil {
		return err
	}
	mem, phys, err := kernel.DMA()
	if err != nil {
		return err
	}
	region, err := virtio.NewRegion(mem, uint64(phys))
	if err != nil {
		return err
	}
	for _, m := range devs {
		tr, err := virtio.NewTransport(m.Regs())
		fmt.Printf("vmnet: %v: %v %v\n", m, tr.Info(), err)
		if err != nil || tr.Info().DeviceID != virtio.DeviceNet {
			continue
		}
		return check(m, tr, region)
	}
	return errors.New("no virtio-net device on the command line")
}

func check(m virtio.MMIODevice, tr *virtio.Transport, region *virtio.Region) error {
	// Attach in pull mode.
	d, err := virtionet.New(tr, region, virtionet.Config{})
	if err != nil {
		return err
	}
	mac := d.MAC()
	fmt.Printf("vmnet: attached: mac %x legacy %v link %v features %#x\n", mac, d.Legacy(), d.LinkUp(), d.Features())
	irq, err := kernel.OpenIRQ(m.IRQ)
	if err != nil {
		return err
	}
	go d.ServeInterrupts(irq)
	if err := resolve(d, nil, "pull"); err != nil {
		return err
	}
	if err := burst(d); err != nil {
		return err
	}
	if err := d.Reinit(); err != nil {
		return fmt.Errorf("Reinit: %w", err)
	}
	if d.MAC() != mac {
		return fmt.Errorf("MAC after Reinit is %x; was %x", d.MAC(), mac)
	}
	if err := resolve(d, nil, "after reinit"); err != nil {
		return err
	}
	fmt.Printf("vmnet: stats %+v\n", d.Stats())

	// What an old kernel does before the jump, and the new one after it.
	if err := d.Shutdown(); err != nil {
		return err
	}
	irq.Close()
	frames := make(chan []byte, 64)
	d2, err := virtionet.New(tr, region, virtionet.Config{MAC: mac, OnReceive: func(f []byte) {
		select {
		case frames <- bytes.Clone(f):
		default:
		}
	}})
	if err != nil {
		return fmt.Errorf("re-attach: %w", err)
	}
	irq, err = kernel.OpenIRQ(m.IRQ)
	if err != nil {
		return err
	}
	defer irq.Close()
	go d2.ServeInterrupts(irq)
	if err := resolve(d2, frames, "re-attached, push"); err != nil {
		return err
	}
	s := d2.Stats()
	fmt.Printf("vmnet: stats %+v\n", s)
	if s.DeviceErrors != 0 || s.Interrupts == 0 {
		return fmt.Errorf("after re-attach: %d device errors, %d interrupts", s.DeviceErrors, s.Interrupts)
	}
	return d2.Shutdown()
}

// burst sends 20 batches of 32 ARP requests (both rings wrap several
// times) and expects a reply to each.
func burst(d *virtionet.Device) error {
	const batches, per = 20, 32
	buf := make([]byte, 2048)
	replies := 0
	for b := 0; b < batches; b++ {
		batch := make([][]byte, per)
		for i := range batch {
			batch[i] = arpRequest(d.MAC())
		}
		if n, err := d.Transmit(batch); n != per {
			return fmt.Errorf("burst: Transmit = %d, %v", n, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for got := 0; got < per; {
			n, err := d.ReceiveWait(ctx, buf)
			if err != nil {
				cancel()
				return fmt.Errorf("burst %d: %d of %d replies: %w (stats %+v)", b, got, per, err, d.Stats())
			}
			if _, ok := arpReplyFrom(buf[:n], gatewayIP); ok {
				got++
				replies++
			}
		}
		cancel()
	}
	fmt.Printf("vmnet: burst: %d replies to %d requests in batches of %d\n", replies, batches*per, per)
	return nil
}

// resolve sends ARP requests for the gateway until a reply arrives (pull
// mode when frames is nil, else from the push channel).
func resolve(d *virtionet.Device, frames chan []byte, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	buf := make([]byte, 2048)
	for try := 0; ; try++ {
		if n, err := d.Transmit([][]byte{arpRequest(d.MAC())}); n != 1 {
			return fmt.Errorf("%s: Transmit: %v", what, err)
		}
		wait, cancelWait := context.WithTimeout(ctx, time.Second)
		for {
			var f []byte
			if frames == nil {
				n, err := d.ReceiveWait(wait, buf)
				if err != nil {
					break
				}
				f = buf[:n]
			} else {
				select {
				case f = <-frames:
				case <-wait.Done():
				}
				if f == nil {
					break
				}
			}
			if hw, ok := arpReplyFrom(f, gatewayIP); ok {
				cancelWait()
				fmt.Printf("vmnet: %s: 10.0.2.2 is at %x (try %d, %v)\n", what, hw, try, time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		cancelWait()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no ARP reply from 10.0.2.2 (stats %+v, err %v)", what, d.Stats(), d.Err())
		}
	}
}

func arpRequest(mac [6]byte) []byte {
	f := make([]byte, 60) // minimum Ethernet frame without FCS
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac[:])
	binary.BigEndian.PutUint16(f[12:], 0x0806) // ARP
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], mac[:])
	copy(a[14:18], ourIP[:])
	copy(a[24:28], gatewayIP[:])
	return f
}

func arpReplyFrom(f []byte, ip [4]byte) (hw []byte, ok bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:]) != 0x0806 {
		return nil, false
	}
	a := f[14:]
	if binary.BigEndian.Uint16(a[6:]) != 2 || !bytes.Equal(a[14:18], ip[:]) {
		return nil, false
	}
	return bytes.Clone(a[8:14]), true
}
