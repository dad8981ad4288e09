// Package net drives a virtio network device (VIRTIO 1.2 §5.1, device ID
// 1) over the virtio-mmio transport of drivers/virtio. Import it under a
// name that does not shadow the standard library, for example
//
//	import virtionet "github.com/molt-os/molt/drivers/virtio/net"
//
// # Features (§5.1.3)
//
// The driver negotiates VIRTIO_NET_F_MAC and VIRTIO_NET_F_STATUS when
// offered, plus the transport's VIRTIO_F_VERSION_1 (required of a modern
// device), and on a legacy device VIRTIO_F_ANY_LAYOUT (required, so header
// and frame share one descriptor). Everything else (checksum and
// segmentation offloads, VIRTIO_NET_F_MRG_RXBUF, the control queue,
// multiqueue, VIRTIO_NET_F_MTU) is declined. Without VIRTIO_NET_F_MAC the
// caller must supply the MAC in Config.MAC; without VIRTIO_NET_F_STATUS the
// link is reported up (§5.1.4.2).
//
// # Queues and buffers (§5.1.2, §5.1.6)
//
// One receive queue (0) and one transmit queue (1), each with up to
// Config.QueueSize entries (default 256, capped by the device). Every
// entry has a fixed 2 KiB slot of DMA memory: a struct virtio_net_hdr (12
// bytes, 10 on legacy devices, §5.1.6) followed by the frame, in one
// descriptor. All receive slots are posted at initialisation and each is
// reposted as soon as its frame has been delivered (§5.1.6.3: at least
// 1526 bytes per buffer without offloads). Transmit copies each frame into
// a free slot (the Go heap is not DMA memory), so the caller may reuse its
// frames as soon as Transmit returns.
//
// # Receiving
//
// Two modes, chosen by Config.OnReceive and switched by SetReceiver:
//
//   - Push (a receiver set): HandleInterrupt calls it with every received
//     frame, in order, on the goroutine that runs HandleInterrupt. The
//     frame aliases the DMA slot and is valid only during the call: copy
//     what must outlive it. This is what a gVisor link endpoint wants
//     (copy into a buffer, then DeliverNetworkPacket); MAC, MTU, LinkUp and
//     SetReceiver match netstack/link.Device, whose Transmit returns only
//     the error (wrap Transmit to drop the count).
//   - Pull (no receiver): frames stay in the receive ring until
//     Receive(buf) copies one out (non-blocking, ErrNoFrame when there is
//     none) or ReceiveWait blocks for one. Ready() signals that frames may be
//     pending. While nobody pulls, the device runs out of buffers and drops
//     frames itself, as a real NIC does.
//
// # Transmitting
//
// Transmit(frames) queues a batch with one available buffer notification
// (§2.7.13) for the whole batch (skipped when the device set
// VIRTQ_USED_F_NO_NOTIFY). Transmit completions are not interrupt-driven:
// the driver sets VIRTQ_AVAIL_F_NO_INTERRUPT on the transmit queue and
// reclaims used slots at the start of every Transmit and in every
// HandleInterrupt.
//
// # Interrupts
//
// HandleInterrupt runs in an ordinary goroutine: it acknowledges
// InterruptStatus, handles a configuration change (link status,
// DEVICE_NEEDS_RESET), delivers received frames and reclaims transmit
// slots. ServeInterrupts is the loop the kernel wiring runs with a
// kernel.IRQ: Wait, HandleInterrupt, Done.
//
// # Errors and counters
//
// Nothing is dropped silently. Transmit returns how many frames it queued
// and why it stopped (ErrQueueFull, ErrFrameSize, ErrNeedsReset,
// ErrClosed), and Stats counts every refused frame by reason. Used-ring
// entries the device gets wrong (bad descriptor id, length beyond the
// buffer, a frame without payload) are rejected and counted as
// DeviceErrors; a used index that runs ahead of the buffers in flight, or
// the device setting DEVICE_NEEDS_RESET, stops the device: Err reports
// why, LinkUp turns false, Transmit and Receive return ErrNeedsReset, and
// Reinit brings it back.
//
// # Reset and re-initialisation
//
// Reinit resets the device (status 0, §2.4) and initialises it again with
// fresh rings, keeping the MAC: a device whose MAC changed is refused with
// ErrMACMismatch. A self-updating kernel calls Shutdown before it jumps (the
// device then touches no memory), and the new kernel calls New with
// Config.MAC set to the MAC it was handed, which New checks the same way.
//
// # Synchronization
//
// Device is safe for concurrent use. Lock order: linkMu (held only while
// OnLinkChange runs), then rxMu, then txMu. The receiver runs with rxMu
// held: it may call Transmit, MAC, MTU, LinkUp, Stats, Err and LastError,
// but not Receive, ReceiveWait, SetReceiver, HandleInterrupt, Reinit or
// Shutdown. OnLinkChange
// runs with linkMu held, from HandleInterrupt, Reinit or Shutdown after they
// released the ring locks: it may call anything but HandleInterrupt,
// Reinit and Shutdown.
package net
