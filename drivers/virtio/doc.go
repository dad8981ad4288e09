// Package virtio is molt's virtio-mmio transport and split virtqueue, after
// "Virtual I/O Device (VIRTIO) Version 1.2" (OASIS Committee Specification
// 01, 2022; "the spec" below). Device drivers live in subpackages
// (drivers/virtio/net); this package knows nothing about any device type.
//
// What it covers, by section of the spec:
//
//   - §2.1 device status field, §2.2 feature bits, §2.4 device reset and
//     §3.1 the initialisation sequence: Transport.Reset, Transport.Negotiate,
//     Transport.DriverOK, Transport.Fail.
//   - §2.5 device configuration space, with the generation counter of
//     §4.2.2 (ConfigGeneration) for consistent multi-field reads.
//   - §2.7 split virtqueues: Queue (descriptor table §2.7.5, available
//     ring §2.7.6, used ring §2.7.8, notification suppression §2.7.7 and
//     §2.7.10, supplying and receiving buffers §2.7.13 and §2.7.14). Packed
//     virtqueues (§2.8), indirect descriptors (VIRTIO_F_INDIRECT_DESC) and
//     VIRTIO_F_EVENT_IDX are not implemented and never negotiated.
//   - §4.2 virtio over MMIO: the register layout of §4.2.2 (constants below,
//     spelled as in the spec's table), the MMIO-specific initialisation and
//     virtqueue configuration of §4.2.3, and the legacy (version 1)
//     interface of §4.2.4, which QEMU's virtio-mmio uses unless it runs with
//     -global virtio-mmio.force-legacy=false.
//   - §4.2.1 device discovery: MMIO has none of its own; ParseCmdline reads
//     the virtio_mmio.device=<size>@<base>:<irq> words that QEMU microvm
//     (acpi=off) appends to the kernel command line, and Probe identifies
//     what answers at an address.
//
// # Memory model
//
// Rings and buffers live in DMA memory: physically contiguous memory whose
// physical address the device is given (interface DMA, implemented by
// Region). In the kernel the memory is identity-mapped (kernel.DMA), so the
// virtual address of buf[0] equals phys. In host tests it is an ordinary
// []byte with made-up physical addresses, shared with a fake device
// (internal/fakedev) that decodes the rings from the same bytes.
//
// The driver and the device share the rings without locks. The index words
// that hand buffers over (avail.idx and used.idx, each stored with the
// flags word beside it as one aligned 32-bit word) are written and read
// with sync/atomic; every other ring and buffer byte is an ordinary access
// ordered by them: the driver fills descriptors before it publishes
// avail.idx, and reads used entries and buffer contents only after it has
// loaded a used.idx that covers them. On amd64 an atomic store is XCHG, a
// full barrier, which also orders the publication before the read of
// used.flags that decides whether to notify (§2.7.13.4). The race detector
// checks the same discipline against the fake device in host tests.
//
// # Trust
//
// The device is not trusted to be correct. Queue.Pop validates every used
// entry (descriptor id in range and actually in flight, length within the
// writable part of the chain, used.idx not ahead of what was made
// available) and reports bad ones as errors instead of acting on them; the
// driver's own free list and chain bookkeeping live in Go memory, never in
// the device-visible descriptor table. FuzzQueuePop and FuzzParseCmdline
// cover the parsers of device- and loader-provided data.
//
// # Context
//
// Everything here runs in ordinary goroutines after the runtime has
// started. The only trap-context entry points are the //go:nosplit
// methods of MMIO (register access and AckInterrupt), for a kernel that
// wants to acknowledge an interrupt before waking the driver; molt's
// kernel.OpenIRQ masks the pin instead, so drivers acknowledge from Go.
//
// Neither Transport nor Queue is safe for concurrent use; the device
// driver that owns them serialises access (see drivers/virtio/net).
package virtio
