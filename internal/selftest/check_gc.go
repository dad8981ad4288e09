package selftest

import (
	"encoding/binary"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/kernel"
)

// Churn shape: churnRounds × churnPerRound ≈ 200 MiB allocated in total,
// while at most churnLive bytes are live at any time.
const (
	churnRounds      = 5
	churnPerRound    = 40 << 20
	churnLive        = 32 << 20
	churnSlots       = 256                    // live objects
	churnAvg         = churnLive / churnSlots // 128 KiB average object
	churnGrowth      = 16 << 20               // allowed growth of retained memory, last round vs first
	churnMinReturned = 16 << 20               // least memory FreeOSMemory must return over all rounds
	listNodeBytes    = 64                     // size of one listNode
	churnSeedMul     = 0x9e3779b97f4a7c15     // golden-ratio constant to spread seeds
	churnLCGMul      = 6364136223846793005    // Knuth's MMIX LCG for sizes and slots
	churnLCGAdd      = 1442695040888963407
)

// checkGCChurn allocates and drops objects in a churn pattern, runs the
// GC, and verifies every live object's contents, so that a page the kernel
// zeroes, aliases or loses under the Go heap shows up as corrupt data.
// One object in eight is a pointer-linked list, which the GC must trace.
//
// Blobs are verified by regenerating their xorshift stream and comparing
// every word, rather than by a CRC: that catches any change a checksum
// would, names the offset (and so the page) that went bad, and costs about
// as much as the fill. (crc32's SSE4.2 path measured ~15× slower than the
// fill under QEMU TCG and dominated this check's time there.)
//
// It also checks that freed memory goes back to the system: after each
// round it runs debug.FreeOSMemory (which madvises free spans with
// MADV_DONTNEED) and measures retained memory before and after. It fails if
// FreeOSMemory returns less than churnMinReturned over all rounds, or if
// the last round retains more than churnGrowth bytes beyond the first (a
// leak of frames). In the VM the measure is kernel.ReadMemStats().FramesInUse,
// the frames molt really hands out; on a host it is the runtime's
// HeapSys-HeapReleased, the analogous number from the Go side.
func checkGCChurn(t *T) {
	c := &churn{t: t, lcg: 1}
	var retained, returned [churnRounds]uint64
	start, gcs := time.Now(), gcCount()
	for round := range churnRounds {
		c.round(churnPerRound)
		runtime.GC()
		c.verifyAll()
		before := retainedBytes()
		debug.FreeOSMemory()
		retained[round] = retainedBytes()
		returned[round] = before - min(before, retained[round])
		if t.Failed() {
			break // do not pile up corruption reports
		}
	}
	t.Logf("allocated %d MiB in %d objects (%d lists) with <= %d MiB live in %v; %d GC cycles",
		c.allocated>>20, c.objects, c.lists, churnLive>>20, time.Since(start), gcCount()-gcs)
	t.Logf("%s per round, MiB: returned by FreeOSMemory %v, retained after it %v",
		retainedSource(), mib(returned[:]), mib(retained[:]))
	// After runtime.GC roughly heap-goal minus live (tens of MiB) is free
	// but still backed; FreeOSMemory must give it back. A kernel whose
	// MADV_DONTNEED keeps the frames returns nothing here.
	var total uint64
	for _, r := range returned {
		total += r
	}
	if total < churnMinReturned {
		t.Errorf("FreeOSMemory returned %d MiB over %d rounds; want >= %d MiB", total>>20, churnRounds, churnMinReturned>>20)
	}
	if first, last := retained[0], retained[churnRounds-1]; last > first+churnGrowth {
		t.Errorf("retained memory grew from %d to %d MiB over %d rounds of churn; want growth <= %d MiB",
			first>>20, last>>20, churnRounds, churnGrowth>>20)
	}
	if ms := kernel.ReadMemStats(); kernel.Booted() {
		t.Logf("kernel: %d page faults served, %d pages returned by MADV_DONTNEED", ms.PageFaults, ms.DontneedPages)
	}
	// Leave the heap small for the checks that follow.
	c.slots = [churnSlots]*churnObj{}
	runtime.GC()
	debug.FreeOSMemory()
}

// churnObj is one live object: either a byte blob filled from its seed or
// the head of a linked list whose values follow from its seed.
type churnObj struct {
	seed uint64
	size int // bytes accounted against churnLive
	data []byte
	list *listNode
}

type listNode struct {
	next *listNode
	val  uint64
	_    [listNodeBytes - 16]byte
}

type churn struct {
	t         *T
	lcg       uint64
	slots     [churnSlots]*churnObj
	live      int
	allocated int64
	objects   int
	lists     int
}

func (c *churn) rand() uint64 {
	c.lcg = c.lcg*churnLCGMul + churnLCGAdd
	return c.lcg >> 11
}

// round replaces random slots with new objects until budget bytes have
// been allocated, verifying each object as it is dropped.
func (c *churn) round(budget int64) {
	for spent := int64(0); spent < budget; {
		i := int(c.rand() % churnSlots)
		old := c.slots[i]
		oldSize := 0
		if old != nil {
			c.verify(i, old)
			oldSize = old.size
		}
		size := 1024 + int(c.rand()%(2*churnAvg-2048))
		size = min(size, churnLive-(c.live-oldSize)) // keep the live set bounded
		o := c.newObj(size)
		c.slots[i] = o
		c.live += size - oldSize
		spent += int64(size)
		c.allocated += int64(size)
	}
}

func (c *churn) newObj(size int) *churnObj {
	c.objects++
	o := &churnObj{seed: uint64(c.objects) * churnSeedMul, size: size}
	if c.objects%8 == 0 {
		c.lists++
		for k := size / listNodeBytes; k > 0; k-- {
			o.list = &listNode{next: o.list, val: o.seed ^ uint64(k)}
		}
		return o
	}
	o.data = make([]byte, size&^7)
	fillWords(o.data, o.seed)
	return o
}

// fillWords fills b (a multiple of 8 bytes) with an xorshift stream
// seeded by seed, so words differ between objects and offsets.
func fillWords(b []byte, seed uint64) {
	x := seed | 1
	for i := 0; i+8 <= len(b); i += 8 {
		x = xorshift(x)
		binary.LittleEndian.PutUint64(b[i:], x)
	}
}

// checkWords returns the offset of the first word of b that differs from
// what fillWords(b, seed) wrote, or -1.
func checkWords(b []byte, seed uint64) int {
	x := seed | 1
	for i := 0; i+8 <= len(b); i += 8 {
		x = xorshift(x)
		if binary.LittleEndian.Uint64(b[i:]) != x {
			return i
		}
	}
	return -1
}

func xorshift(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}

func (c *churn) verifyAll() {
	for i, o := range c.slots {
		if o != nil {
			c.verify(i, o)
		}
	}
}

func (c *churn) verify(slot int, o *churnObj) {
	if o.data != nil {
		if off := checkWords(o.data, o.seed); off >= 0 {
			c.t.Errorf("slot %d: %d-byte object at %p (seed %#x) is corrupt at offset %#x: %#016x",
				slot, len(o.data), &o.data[0], o.seed, off, binary.LittleEndian.Uint64(o.data[off:]))
		}
		return
	}
	k, n := uint64(1), 0
	for p := o.list; p != nil; p = p.next {
		if p.val != o.seed^k {
			c.t.Errorf("slot %d: list node %d holds %#x; want %#x", slot, k, p.val, o.seed^k)
			return
		}
		k++
		n++
	}
	if want := o.size / listNodeBytes; n != want {
		c.t.Errorf("slot %d: list has %d nodes; want %d", slot, n, want)
	}
}

// retainedBytes is the memory the program holds from the system after
// debug.FreeOSMemory; see checkGCChurn.
func retainedBytes() uint64 {
	if kernel.Booted() {
		return kernel.ReadMemStats().FramesInUse * layout.PageSize
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapSys - ms.HeapReleased
}

func retainedSource() string {
	if kernel.Booted() {
		return "kernel FramesInUse"
	}
	return "host HeapSys-HeapReleased"
}

func gcCount() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

func mib(bs []uint64) []uint64 {
	out := make([]uint64, len(bs))
	for i, b := range bs {
		out[i] = b >> 20
	}
	return out
}
