package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Split virtqueue flags (§2.7.5, §2.7.6, §2.7.8), spelled as in the spec.
const (
	VIRTQ_DESC_F_NEXT          = 1 // the descriptor continues via next
	VIRTQ_DESC_F_WRITE         = 2 // device-writable (otherwise device-readable)
	VIRTQ_DESC_F_INDIRECT      = 4 // not used by molt
	VIRTQ_AVAIL_F_NO_INTERRUPT = 1 // driver: no used buffer notifications, please
	VIRTQ_USED_F_NO_NOTIFY     = 1 // device: no available buffer notifications, please
)

// MaxQueueSize is the largest split virtqueue (§2.7: "the maximum Queue Size
// value is 32768").
const MaxQueueSize = 32768

// Layout of the split virtqueue (§2.7). One DMA allocation holds the three
// parts in the legacy arrangement (§2.7.2): descriptor table, available ring,
// padding to legacyAlign, used ring. It satisfies the modern alignment
// requirements (16, 2 and 4 bytes) as well, so both interfaces use it.
const (
	descSize    = 16 // struct virtq_desc: le64 addr, le32 len, le16 flags, le16 next
	usedElem    = 8  // struct virtq_used_elem: le32 id, le32 len
	legacyAlign = 4096
)

// Errors of Queue.
var (
	// ErrQueueFull: not enough free descriptors for the chain.
	ErrQueueFull = errors.New("virtio: virtqueue full")
	// ErrBadUsedID: the device returned a used entry naming a descriptor
	// that is out of range or not in flight. The entry was skipped.
	ErrBadUsedID = errors.New("virtio: used ring entry with a bad descriptor id")
	// ErrBadUsedLen: the device claims to have written more bytes than the
	// chain's device-writable buffers hold. The chain was freed and is
	// returned; its contents must not be trusted.
	ErrBadUsedLen = errors.New("virtio: used ring entry with a bad length")
	// ErrUsedOverrun: used.idx ran ahead of the buffers in flight. The
	// queue is unusable until it is reset together with the device.
	ErrUsedOverrun = errors.New("virtio: used ring index ahead of buffers in flight")
)

// Buffer is one element of a descriptor chain: a physically contiguous piece
// of DMA memory.
type Buffer struct {
	Addr     uint64 // physical address
	Len      uint32
	Writable bool // device-writable (VIRTQ_DESC_F_WRITE): the device fills it
}

// Used is a buffer chain the device has finished with (§2.7.8).
type Used struct {
	Head uint16 // descriptor id Add returned for the chain
	Len  uint32 // bytes the device wrote into the writable part
}

// Queue is a split virtqueue (§2.7) in DMA memory. It keeps its own free
// list and chain bookkeeping in Go memory and reads only used.idx and the
// used entries from the device-shared memory, all of which it validates.
//
// A Queue is not safe for concurrent use.
type Queue struct {
	dma   DMA
	mem   []byte // the whole ring allocation
	phys  uint64
	size  uint16
	avail int // offset of the available ring in mem
	used  int // offset of the used ring in mem

	next     []uint16 // free-list and chain links, by descriptor id
	chains   []chain  // by head descriptor id
	freeHead uint16
	numFree  int
	inFlight int // chains the device holds

	availIdx   uint16 // avail.idx as last published
	availFlags uint16
	lastUsed   uint16 // the next used.ring slot to read
	err        error  // sticky ErrUsedOverrun
}

type chain struct {
	n        uint16 // descriptors in the chain
	writable uint32 // bytes the device may write
	busy     bool   // the device owns it
}

// RingBytes returns the size of the DMA allocation for a queue of size
// entries.
func RingBytes(size int) int {
	return usedOffset(size) + 6 + usedElem*size
}

func usedOffset(size int) int {
	return int(alignUp(uint64(descSize*size+6+2*size), legacyAlign))
}

// NewQueue allocates a split virtqueue of size entries (a power of two, at
// most MaxQueueSize) from dma. The memory is zeroed; hand its addresses to
// the device with Transport.SetupQueue, which calls NewQueue itself.
func NewQueue(dma DMA, size int) (*Queue, error) {
	if size <= 0 || size > MaxQueueSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("virtio: queue size %d: want a power of two up to %d", size, MaxQueueSize)
	}
	mem, phys, err := dma.Alloc(RingBytes(size), legacyAlign)
	if err != nil {
		return nil, fmt.Errorf("virtio: queue of %d entries: %w", size, err)
	}
	q := &Queue{
		dma:    dma,
		mem:    mem,
		phys:   phys,
		size:   uint16(size),
		avail:  descSize * size,
		used:   usedOffset(size),
		next:   make([]uint16, size),
		chains: make([]chain, size),
	}
	q.Reset()
	return q, nil
}

// Reset returns the queue to its state after NewQueue: memory zeroed, every
// descriptor free, indices at 0. Call it only while the device is reset
// (it must not hold any of the queue's buffers).
func (q *Queue) Reset() {
	clear(q.mem)
	for i := range q.next {
		q.next[i] = uint16(i + 1)
		q.chains[i] = chain{}
	}
	q.freeHead, q.numFree, q.inFlight = 0, int(q.size), 0
	q.availIdx, q.availFlags, q.lastUsed = 0, 0, 0
	q.err = nil
}

// Release returns the queue's memory to its DMA allocator. The device must
// be reset first; the queue must not be used afterwards.
func (q *Queue) Release() error {
	if q.mem == nil {
		return nil
	}
	q.mem = nil
	return q.dma.Free(q.phys)
}

// Size returns the number of entries (descriptors) of the queue.
func (q *Queue) Size() int { return int(q.size) }

// NumFree returns the number of free descriptors.
func (q *Queue) NumFree() int { return q.numFree }

// InFlight returns the number of chains the device holds.
func (q *Queue) InFlight() int { return q.inFlight }

// Err returns the sticky error that made the queue unusable, or nil.
func (q *Queue) Err() error { return q.err }

// DescAddr, DriverAddr and DeviceAddr return the physical addresses of the
// descriptor table, the available ring and the used ring.
func (q *Queue) DescAddr() uint64   { return q.phys }
func (q *Queue) DriverAddr() uint64 { return q.phys + uint64(q.avail) }
func (q *Queue) DeviceAddr() uint64 { return q.phys + uint64(q.used) }

// Add puts a chain of buffers on the available ring (§2.7.13) and publishes
// it: the device may use it from now on, though it may not look before the
// next notification (see NeedsNotify). It returns the head descriptor id,
// which Pop reports back when the device is done. ErrQueueFull means fewer
// free descriptors than buffers.
func (q *Queue) Add(bufs ...Buffer) (head uint16, err error) {
	if q.err != nil {
		return 0, q.err
	}
	n := len(bufs)
	switch {
	case n == 0:
		return 0, errors.New("virtio: Add of an empty chain")
	case n > q.numFree:
		return 0, ErrQueueFull
	}
	var writable uint64
	for _, b := range bufs {
		if b.Len == 0 {
			return 0, errors.New("virtio: Add of a zero-length buffer")
		}
		if b.Writable {
			writable += uint64(b.Len)
		}
	}
	if writable > 1<<32-1 {
		return 0, errors.New("virtio: Add of a chain longer than 4 GiB")
	}
	head = q.freeHead
	id := head
	for i, b := range bufs {
		var flags uint16
		if b.Writable {
			flags |= VIRTQ_DESC_F_WRITE
		}
		var next uint16
		if i < n-1 {
			flags |= VIRTQ_DESC_F_NEXT
			next = q.next[id]
		}
		d := q.mem[int(id)*descSize : int(id+1)*descSize]
		binary.LittleEndian.PutUint64(d[0:], b.Addr)
		binary.LittleEndian.PutUint32(d[8:], b.Len)
		binary.LittleEndian.PutUint16(d[12:], flags)
		binary.LittleEndian.PutUint16(d[14:], next)
		if i < n-1 {
			id = next
		}
	}
	q.freeHead = q.next[id]
	q.numFree -= n
	q.chains[head] = chain{n: uint16(n), writable: uint32(writable), busy: true}
	q.inFlight++

	slot := q.avail + 4 + 2*int(q.availIdx%q.size)
	binary.LittleEndian.PutUint16(q.mem[slot:], head)
	q.availIdx++
	q.publish()
	return head, nil
}

// publish stores avail.flags and avail.idx as one atomic 32-bit word: the
// release that makes every descriptor and ring slot written before it
// visible to the device.
func (q *Queue) publish() {
	store32(q.mem, q.avail, uint32(q.availFlags)|uint32(q.availIdx)<<16)
}

// SetInterrupts asks the device to send (on) or not to send used buffer
// notifications for this queue (VIRTQ_AVAIL_F_NO_INTERRUPT, §2.7.7). It is
// a hint: the device may interrupt anyway.
func (q *Queue) SetInterrupts(on bool) {
	if on {
		q.availFlags &^= VIRTQ_AVAIL_F_NO_INTERRUPT
	} else {
		q.availFlags |= VIRTQ_AVAIL_F_NO_INTERRUPT
	}
	q.publish()
}

// NeedsNotify reports whether the device wants an available buffer
// notification after Add (VIRTQ_USED_F_NO_NOTIFY clear, §2.7.10).
func (q *Queue) NeedsNotify() bool {
	return load32(q.mem, q.used)&VIRTQ_USED_F_NO_NOTIFY == 0
}

// Pending returns the number of used entries the device has published and
// Pop has not consumed yet. A value above InFlight means the device is
// broken (Pop then reports ErrUsedOverrun).
func (q *Queue) Pending() int {
	return int(uint16(load32(q.mem, q.used)>>16) - q.lastUsed)
}

// Pop takes the next used entry (§2.7.14). ok is false when there is none,
// or (with err set) when the queue is broken. When ok is true the entry was
// consumed; err reports what was wrong with it:
//
//   - nil: u is a chain Add returned, now free again.
//   - ErrBadUsedID: the entry named no chain in flight; it was skipped and
//     nothing was freed (the chain it should have named stays with the
//     device until reset).
//   - ErrBadUsedLen: u is a valid chain, now free, but the device claimed
//     more bytes than its writable buffers hold; do not use its contents.
//
// ErrUsedOverrun (with ok false) is sticky: used.idx claimed more entries
// than there are chains in flight, so nothing the device says can be trusted
// until the device and the queue are reset.
func (q *Queue) Pop() (u Used, ok bool, err error) {
	if q.err != nil {
		return Used{}, false, q.err
	}
	idx := uint16(load32(q.mem, q.used) >> 16)
	pending := idx - q.lastUsed
	if pending == 0 {
		return Used{}, false, nil
	}
	if int(pending) > q.inFlight {
		q.err = fmt.Errorf("%w: used.idx %d is %d past the last entry read, with %d chains in flight",
			ErrUsedOverrun, idx, pending, q.inFlight)
		return Used{}, false, q.err
	}
	e := q.used + 4 + usedElem*int(q.lastUsed%q.size)
	id := binary.LittleEndian.Uint32(q.mem[e:])
	n := binary.LittleEndian.Uint32(q.mem[e+4:])
	q.lastUsed++
	if id >= uint32(q.size) || !q.chains[id].busy {
		return Used{}, true, fmt.Errorf("%w: id %d (queue size %d, in flight: %v)", ErrBadUsedID, id, q.size, id < uint32(q.size) && q.chains[id].busy)
	}
	c := q.chains[id]
	last := uint16(id)
	for i := uint16(1); i < c.n; i++ {
		last = q.next[last]
	}
	q.next[last] = q.freeHead
	q.freeHead = uint16(id)
	q.numFree += int(c.n)
	q.chains[id] = chain{}
	q.inFlight--
	u = Used{Head: uint16(id), Len: n}
	if n > c.writable {
		return u, true, fmt.Errorf("%w: %d bytes written into a chain with %d writable", ErrBadUsedLen, n, c.writable)
	}
	return u, true, nil
}
