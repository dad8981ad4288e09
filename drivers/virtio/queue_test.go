package virtio

import (
	"encoding/binary"
	"errors"
	"testing"
)

// A test stands in for the device by writing the used ring directly.

func newTestQueue(t testing.TB, size int) *Queue {
	t.Helper()
	q, err := NewQueue(newTestRegion(t, RingBytes(size)+4096), size)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// deviceUse appends a used entry and publishes used.idx.
func deviceUse(q *Queue, id, n uint32) {
	w := load32(q.mem, q.used)
	idx := uint16(w >> 16)
	e := q.used + 4 + usedElem*int(idx%q.size)
	binary.LittleEndian.PutUint32(q.mem[e:], id)
	binary.LittleEndian.PutUint32(q.mem[e+4:], n)
	store32(q.mem, q.used, w&0xffff|uint32(idx+1)<<16)
}

// deviceAvail reads avail entry i (the head) as the device would.
func deviceAvail(q *Queue, i uint16) (head uint16, idx uint16) {
	idx = uint16(load32(q.mem, q.avail) >> 16)
	return binary.LittleEndian.Uint16(q.mem[q.avail+4+2*int(i%q.size):]), idx
}

func desc(q *Queue, id uint16) (addr uint64, n uint32, flags, next uint16) {
	d := q.mem[int(id)*descSize:]
	return binary.LittleEndian.Uint64(d), binary.LittleEndian.Uint32(d[8:]),
		binary.LittleEndian.Uint16(d[12:]), binary.LittleEndian.Uint16(d[14:])
}

func TestQueueLayout(t *testing.T) {
	q := newTestQueue(t, 256)
	if q.DescAddr()%4096 != 0 || q.DriverAddr() != q.DescAddr()+16*256 || q.DeviceAddr()%4096 != 0 ||
		q.DeviceAddr() < q.DriverAddr()+6+2*256 {
		t.Errorf("layout desc %#x avail %#x used %#x: want the legacy layout (§2.7.2)", q.DescAddr(), q.DriverAddr(), q.DeviceAddr())
	}
	if got, want := RingBytes(256), 8192+6+8*256; got != want {
		t.Errorf("RingBytes(256) = %d; want %d", got, want)
	}
	for _, bad := range []int{0, 3, -4, MaxQueueSize * 2} {
		if _, err := NewQueue(newTestRegion(t, 1<<20), bad); err == nil {
			t.Errorf("NewQueue(%d) succeeded", bad)
		}
	}
}

func TestQueueAddPop(t *testing.T) {
	q := newTestQueue(t, 4)
	head, err := q.Add(Buffer{Addr: 0x1000, Len: 10}, Buffer{Addr: 0x2000, Len: 100, Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if h, idx := deviceAvail(q, 0); h != head || idx != 1 {
		t.Errorf("avail ring = head %d idx %d; want %d, 1", h, idx, head)
	}
	a, n, fl, next := desc(q, head)
	if a != 0x1000 || n != 10 || fl != VIRTQ_DESC_F_NEXT {
		t.Errorf("first descriptor = %#x %d flags %d; want 0x1000 10 NEXT", a, n, fl)
	}
	a, n, fl, _ = desc(q, next)
	if a != 0x2000 || n != 100 || fl != VIRTQ_DESC_F_WRITE {
		t.Errorf("second descriptor = %#x %d flags %d; want 0x2000 100 WRITE", a, n, fl)
	}
	if q.NumFree() != 2 || q.InFlight() != 1 {
		t.Errorf("NumFree %d InFlight %d; want 2, 1", q.NumFree(), q.InFlight())
	}
	if _, err := q.Add(Buffer{Addr: 1, Len: 1}, Buffer{Addr: 1, Len: 1}, Buffer{Addr: 1, Len: 1}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Add of 3 buffers with 2 free = %v; want ErrQueueFull", err)
	}
	if _, err := q.Add(); err == nil {
		t.Errorf("Add() succeeded")
	}
	if _, err := q.Add(Buffer{Addr: 1}); err == nil {
		t.Errorf("Add of a zero-length buffer succeeded")
	}
	if _, ok, err := q.Pop(); ok || err != nil {
		t.Errorf("Pop on an empty used ring = %v, %v", ok, err)
	}
	deviceUse(q, uint32(head), 100)
	if q.Pending() != 1 {
		t.Errorf("Pending() = %d; want 1", q.Pending())
	}
	u, ok, err := q.Pop()
	if !ok || err != nil || u != (Used{head, 100}) {
		t.Errorf("Pop() = %+v, %v, %v; want {%d 100}", u, ok, err, head)
	}
	if q.NumFree() != 4 || q.InFlight() != 0 {
		t.Errorf("after Pop NumFree %d InFlight %d; want 4, 0", q.NumFree(), q.InFlight())
	}
}

// TestQueueWraparound runs many more buffers than entries through the
// queue, completing them out of order, so avail.idx, used.idx and both
// rings wrap (including the 16-bit index itself).
func TestQueueWraparound(t *testing.T) {
	q := newTestQueue(t, 8)
	total := 0
	for round := 0; round < 20000; round++ {
		n := 1 + round%8
		heads := make([]uint16, n)
		for i := range heads {
			h, err := q.Add(Buffer{Addr: uint64(total) << 12, Len: 64, Writable: true})
			if err != nil {
				t.Fatalf("round %d: Add: %v", round, err)
			}
			heads[i] = h
			total++
		}
		for i := n - 1; i >= 0; i-- { // complete newest first
			deviceUse(q, uint32(heads[i]), uint32(i))
		}
		for i := n - 1; i >= 0; i-- {
			u, ok, err := q.Pop()
			if !ok || err != nil || u != (Used{heads[i], uint32(i)}) {
				t.Fatalf("round %d: Pop() = %+v, %v, %v; want {%d %d}", round, u, ok, err, heads[i], i)
			}
		}
		if q.NumFree() != 8 || q.InFlight() != 0 {
			t.Fatalf("round %d: NumFree %d InFlight %d", round, q.NumFree(), q.InFlight())
		}
	}
	if total < 1<<16 {
		t.Fatalf("only %d buffers: the 16-bit ring indices did not wrap", total)
	}
}

func TestQueueBadUsed(t *testing.T) {
	q := newTestQueue(t, 4)
	h, _ := q.Add(Buffer{Addr: 0x1000, Len: 100, Writable: true})
	r, _ := q.Add(Buffer{Addr: 0x2000, Len: 100})

	// An id out of range, then one not in flight: skipped, nothing freed.
	for _, id := range []uint32{4, 1 << 31, 3} {
		deviceUse(q, id, 0)
		if _, ok, err := q.Pop(); !ok || !errors.Is(err, ErrBadUsedID) {
			t.Errorf("Pop of id %d = %v, %v; want ErrBadUsedID", id, ok, err)
		}
	}
	if q.InFlight() != 2 || q.NumFree() != 2 {
		t.Errorf("bad ids changed the bookkeeping: InFlight %d NumFree %d", q.InFlight(), q.NumFree())
	}
	// Too long: freed, reported.
	deviceUse(q, uint32(h), 101)
	if u, ok, err := q.Pop(); !ok || !errors.Is(err, ErrBadUsedLen) || u.Head != h {
		t.Errorf("Pop of an overlong entry = %+v, %v, %v; want head %d and ErrBadUsedLen", u, ok, err, h)
	}
	// A device-readable chain has no writable bytes.
	deviceUse(q, uint32(r), 1)
	if _, ok, err := q.Pop(); !ok || !errors.Is(err, ErrBadUsedLen) {
		t.Errorf("Pop of a length on a readable chain = %v, %v; want ErrBadUsedLen", ok, err)
	}
	// The same id twice: the second is not in flight.
	h, _ = q.Add(Buffer{Addr: 0x1000, Len: 100, Writable: true})
	q.Add(Buffer{Addr: 0x1000, Len: 100, Writable: true})
	deviceUse(q, uint32(h), 1)
	deviceUse(q, uint32(h), 1)
	q.Pop()
	if _, ok, err := q.Pop(); !ok || !errors.Is(err, ErrBadUsedID) {
		t.Errorf("Pop of a duplicate = %v, %v; want ErrBadUsedID", ok, err)
	}
	if q.NumFree() != 3 || q.InFlight() != 1 {
		t.Errorf("NumFree %d InFlight %d; want 3, 1", q.NumFree(), q.InFlight())
	}
}

func TestQueueOverrun(t *testing.T) {
	q := newTestQueue(t, 4)
	q.Add(Buffer{Addr: 0x1000, Len: 100, Writable: true})
	// used.idx claims 3 entries with one buffer in flight.
	store32(q.mem, q.used, 3<<16)
	if _, ok, err := q.Pop(); ok || !errors.Is(err, ErrUsedOverrun) {
		t.Fatalf("Pop = %v, %v; want ErrUsedOverrun", ok, err)
	}
	if _, err := q.Add(Buffer{Addr: 1, Len: 1}); !errors.Is(err, ErrUsedOverrun) {
		t.Errorf("Add on a broken queue = %v; want the sticky ErrUsedOverrun", err)
	}
	if !errors.Is(q.Err(), ErrUsedOverrun) {
		t.Errorf("Err() = %v", q.Err())
	}
	q.Reset()
	if q.Err() != nil || q.NumFree() != 4 || q.Pending() != 0 {
		t.Errorf("after Reset: Err %v NumFree %d Pending %d", q.Err(), q.NumFree(), q.Pending())
	}
}

func TestQueueNotifyFlags(t *testing.T) {
	q := newTestQueue(t, 4)
	if !q.NeedsNotify() {
		t.Errorf("NeedsNotify() = false with used.flags 0")
	}
	store32(q.mem, q.used, VIRTQ_USED_F_NO_NOTIFY)
	if q.NeedsNotify() {
		t.Errorf("NeedsNotify() = true with VIRTQ_USED_F_NO_NOTIFY")
	}
	q.SetInterrupts(false)
	if load32(q.mem, q.avail)&VIRTQ_AVAIL_F_NO_INTERRUPT == 0 {
		t.Errorf("SetInterrupts(false) did not set VIRTQ_AVAIL_F_NO_INTERRUPT")
	}
	q.Add(Buffer{Addr: 1, Len: 1})
	if w := load32(q.mem, q.avail); w != VIRTQ_AVAIL_F_NO_INTERRUPT|1<<16 {
		t.Errorf("avail word = %#x after Add; want flags kept and idx 1", w)
	}
	q.SetInterrupts(true)
	if w := load32(q.mem, q.avail); w != 1<<16 {
		t.Errorf("avail word = %#x after SetInterrupts(true)", w)
	}
}

func TestQueueRelease(t *testing.T) {
	r := newTestRegion(t, 1<<20)
	q, err := NewQueue(r, 256)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(); err != nil {
		t.Errorf("second Release = %v", err)
	}
	if s := r.Stats(); s.Allocations != 0 {
		t.Errorf("Release left %d allocations", s.Allocations)
	}
}

// FuzzQueuePop plays a hostile device: the input decides which buffers the
// driver adds and what the used ring says (ids, lengths, index jumps). Pop
// must never panic, never free a descriptor twice, never return a chain
// that is not in flight or a length beyond its writable bytes, and the
// bookkeeping must stay consistent.
func FuzzQueuePop(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0x80, 0, 0, 0, 0, 0x41, 0x42, 0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0x90, 0x90, 0x90, 0xc0, 0x10, 0xa0, 0xe0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const size = 8
		q := newTestQueue(t, size)
		type flight struct {
			writable uint32
		}
		inflight := map[uint16]flight{}
		rd := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		for steps := 0; len(data) > 0 && steps < 1000; steps++ {
			op := rd()
			switch op >> 6 {
			case 0: // driver adds a chain of 1-3 buffers
				n := 1 + int(op&3)%3
				var bufs []Buffer
				var w uint32
				for i := 0; i < n; i++ {
					b := Buffer{Addr: uint64(rd()) << 12, Len: 1 + uint32(rd()), Writable: op&4 != 0}
					if b.Writable {
						w += b.Len
					}
					bufs = append(bufs, b)
				}
				h, err := q.Add(bufs...)
				if err == nil {
					if _, dup := inflight[h]; dup {
						t.Fatalf("Add returned head %d that is already in flight", h)
					}
					inflight[h] = flight{w}
				} else if !errors.Is(err, ErrQueueFull) && !errors.Is(err, ErrUsedOverrun) {
					t.Fatalf("Add: %v", err)
				}
			case 1: // device writes a used entry, maybe honest
				id := uint32(rd())
				if op&1 != 0 {
					id |= uint32(rd()) << 24
				}
				deviceUse(q, id, uint32(rd())<<uint(op&7))
			case 2: // device bumps used.idx arbitrarily
				w := load32(q.mem, q.used)
				store32(q.mem, q.used, w+uint32(rd())<<16)
			case 3: // driver pops
				u, ok, err := q.Pop()
				if !ok {
					if err != nil && !errors.Is(err, ErrUsedOverrun) {
						t.Fatalf("Pop: ok=false with %v", err)
					}
					continue
				}
				if errors.Is(err, ErrBadUsedID) {
					continue
				}
				fl, was := inflight[u.Head]
				if !was {
					t.Fatalf("Pop returned head %d that was not in flight (err %v)", u.Head, err)
				}
				delete(inflight, u.Head)
				if err == nil && u.Len > fl.writable {
					t.Fatalf("Pop returned length %d for a chain with %d writable bytes", u.Len, fl.writable)
				}
				if err != nil && !errors.Is(err, ErrBadUsedLen) {
					t.Fatalf("Pop: %v", err)
				}
			}
			if q.InFlight() != len(inflight) {
				t.Fatalf("InFlight() = %d; the test counts %d", q.InFlight(), len(inflight))
			}
			if q.NumFree() < 0 || q.NumFree() > size {
				t.Fatalf("NumFree() = %d", q.NumFree())
			}
		}
		// Every free descriptor is reachable exactly once from the free list.
		seen := map[uint16]bool{}
		id := q.freeHead
		for i := 0; i < q.numFree; i++ {
			if id >= size || seen[id] {
				t.Fatalf("free list corrupt at %d (id %d)", i, id)
			}
			seen[id] = true
			id = q.next[id]
		}
	})
}
