// Package board brings up the devices of the machine molt runs on (QEMU
// microvm) for the kernel images of this module: it finds the virtio-mmio
// devices QEMU lists on the kernel command line, gives their drivers the
// DMA region and their interrupt lines, and hands the network card to the
// network stack as a netstack/link.Device.
//
// It is the only place that knows which driver serves which device, so
// images stay a few lines of wiring and the self-update (which must shut
// the card down before the jump and re-attach it after) has one thing to
// call. Everything here runs as ordinary Go after the runtime is up; none of
// it is trap-context code.
//
// Synopsis:
//
//	nic, err := board.OpenNIC(kernel.Cmdline(), board.NICConfig{})
//	ep, err := link.New(nic)          // nic is a link.Device
//	...
//	nic.Close()                       // device reset, interrupt line released
package board

import (
	"errors"
	"fmt"
	"sync"

	"github.com/molt-os/molt/drivers/virtio"
	virtionet "github.com/molt-os/molt/drivers/virtio/net"
	"github.com/molt-os/molt/kernel"
)

// ErrNoNIC means the command line lists no virtio-net device: QEMU was
// started without `-device virtio-net-device,...`.
var ErrNoNIC = errors.New("board: no virtio-net device on the kernel command line (QEMU needs -netdev ... -device virtio-net-device,netdev=...)")

// dma is the DMA region, shared by every driver of the image. The kernel
// hands it out once (kernel.DMA), so the board claims it on first use.
var dma struct {
	once   sync.Once
	region *virtio.Region
	err    error
}

// DMARegion returns the allocator over the kernel's DMA region, claiming
// the region on first use.
func DMARegion() (*virtio.Region, error) {
	dma.once.Do(func() {
		mem, phys, err := kernel.DMA()
		if err != nil {
			dma.err = fmt.Errorf("board: claim the DMA region: %w", err)
			return
		}
		dma.region, dma.err = virtio.NewRegion(mem, uint64(phys))
		if dma.err != nil {
			dma.err = fmt.Errorf("board: DMA region: %w", dma.err)
		}
	})
	return dma.region, dma.err
}

// NICConfig configures OpenNIC.
type NICConfig struct {
	// MAC, when not zero, is the address the card must have: a kernel that
	// re-attaches after a self-update passes the one it was handed, and a
	// different card is refused.
	MAC [6]byte
	// OnLinkChange, when set, is told of link changes.
	OnLinkChange func(up bool)
}

// NIC is the network card: a virtio-net device with its interrupt line
// served. It implements netstack/link.Device.
type NIC struct {
	*virtionet.Device
	mmio virtio.MMIODevice
	irq  *kernel.IRQ
	done chan error // ServeInterrupts' result
}

// OpenNIC attaches the driver to the first virtio-net device on cmdline
// and starts serving its interrupts.
func OpenNIC(cmdline string, cfg NICConfig) (*NIC, error) {
	devs, err := virtio.ParseCmdline(cmdline)
	if err != nil {
		return nil, fmt.Errorf("board: %w", err)
	}
	for _, m := range devs {
		t, err := virtio.NewTransport(m.Regs())
		if err != nil {
			return nil, fmt.Errorf("board: %v: %w", m, err)
		}
		if t.Info().DeviceID != virtio.DeviceNet {
			continue
		}
		return openNIC(m, t, cfg)
	}
	return nil, ErrNoNIC
}

func openNIC(m virtio.MMIODevice, t *virtio.Transport, cfg NICConfig) (*NIC, error) {
	region, err := DMARegion()
	if err != nil {
		return nil, err
	}
	dev, err := virtionet.New(t, region, virtionet.Config{MAC: cfg.MAC, OnLinkChange: cfg.OnLinkChange})
	if err != nil {
		return nil, fmt.Errorf("board: attach virtio-net at %v: %w", m, err)
	}
	irq, err := kernel.OpenIRQ(m.IRQ)
	if err != nil {
		dev.Shutdown()
		return nil, fmt.Errorf("board: virtio-net at %v: %w", m, err)
	}
	n := &NIC{Device: dev, mmio: m, irq: irq, done: make(chan error, 1)}
	go func() { n.done <- dev.ServeInterrupts(irq) }()
	return n, nil
}

// Transmit sends whole Ethernet frames (netstack/link.Device's form of the
// driver's Transmit, which also reports how many were queued; the driver
// has already counted the refused ones).
func (n *NIC) Transmit(frames [][]byte) error {
	_, err := n.Device.Transmit(frames)
	return err
}

// Location is the device's register window and interrupt line.
func (n *NIC) Location() virtio.MMIODevice { return n.mmio }

// ResetRegister is the register write that resets the device (virtio
// status 0): what the kernel's rollback path does when it cannot run the
// driver (kernel.ArmRollback).
func (n *NIC) ResetRegister() kernel.MMIOWrite {
	return kernel.MMIOWrite{Addr: n.mmio.Base + virtio.Status, Value: 0}
}

// String describes the card in one line for the boot log.
func (n *NIC) String() string {
	mode := "modern"
	if n.Legacy() {
		mode = "legacy"
	}
	link := "down"
	if n.LinkUp() {
		link = "up"
	}
	mac := n.MAC()
	return fmt.Sprintf("virtio-net at %#x irq %d (%s), mac %02x:%02x:%02x:%02x:%02x:%02x, link %s",
		n.mmio.Base, n.mmio.IRQ, mode, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], link)
}

// Close resets the device, so it touches no memory any more, returns its
// DMA memory and releases the interrupt line. This is what a kernel does
// before it jumps into its successor.
func (n *NIC) Close() error {
	err := n.Device.Shutdown()
	if cerr := n.irq.Close(); err == nil {
		err = cerr
	}
	<-n.done
	if err != nil {
		return fmt.Errorf("board: close virtio-net at %v: %w", n.mmio, err)
	}
	return nil
}
