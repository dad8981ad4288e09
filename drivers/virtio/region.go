package virtio

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// DMA hands out memory a device can access by physical address: physically
// contiguous, and in molt identity-mapped, so buf[0] lives at phys. Alloc
// returns zeroed memory of exactly size bytes whose physical address is a
// multiple of align (a power of two). Free returns an allocation by the
// physical address Alloc gave for it.
//
// Region implements DMA; the kernel builds one over kernel.DMA().
type DMA interface {
	Alloc(size, align int) (buf []byte, phys uint64, err error)
	Free(phys uint64) error
}

// Errors of Region.
var (
	ErrNoMemory = errors.New("virtio: DMA region exhausted")
	ErrBadFree  = errors.New("virtio: Free of an address that is not an allocation")
)

// regionGranule is the unit Region allocates in: every allocation starts and
// ends on a 64-byte boundary, so two allocations never share a cache line.
const regionGranule = 64

// Region is a first-fit allocator over one physically contiguous range of
// DMA memory. It is safe for concurrent use.
type Region struct {
	mem  []byte // immutable
	phys uint64 // immutable: physical address of mem[0]

	mu sync.Mutex
	// +checklocks:mu
	free []extent // sorted by offset, never adjacent (merged), never empty
	// +checklocks:mu
	used map[uint64]extent // by returned offset
}

// extent is [off, off+size) in bytes from mem[0].
type extent struct{ off, size uint64 }

// NewRegion makes an allocator over mem, whose first byte is at physical
// address phys. phys and the address of mem[0] must agree modulo 4096 (in
// the kernel they are equal; on a host, slices of 8 KiB or more from make
// are page-aligned), so alignments up to a page hold in both address spaces
// and 32-bit ring words are aligned for atomic access.
func NewRegion(mem []byte, phys uint64) (*Region, error) {
	if len(mem) < regionGranule {
		return nil, fmt.Errorf("virtio: DMA region of %d bytes is too small", len(mem))
	}
	if phys+uint64(len(mem)) < phys {
		return nil, fmt.Errorf("virtio: DMA region %#x+%#x wraps around", phys, len(mem))
	}
	if a := sliceAddr(mem) & 4095; a != uintptr(phys&4095) {
		return nil, fmt.Errorf("virtio: DMA region: virtual offset %#x in page differs from physical %#x", a, phys&4095)
	}
	r := &Region{mem: mem, phys: phys, used: make(map[uint64]extent)}
	// Trim the ends to the granule so every extent is granule-aligned in
	// physical terms.
	start := alignUp(phys, regionGranule) - phys
	end := (phys+uint64(len(mem)))&^(regionGranule-1) - phys
	if end > start {
		r.free = []extent{{start, end - start}}
	}
	return r, nil
}

// Phys returns the physical address range of the region.
func (r *Region) Phys() (base, size uint64) { return r.phys, uint64(len(r.mem)) }

// Alloc implements DMA.
func (r *Region) Alloc(size, align int) ([]byte, uint64, error) {
	if size <= 0 || align <= 0 || align&(align-1) != 0 {
		return nil, 0, fmt.Errorf("virtio: DMA Alloc(%d, %d): size must be positive and align a power of two", size, align)
	}
	a := uint64(max(align, regionGranule))
	sz := alignUp(uint64(size), regionGranule)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.free {
		off := alignUp(r.phys+e.off, a) - r.phys
		if off+sz > e.off+e.size || off < e.off {
			continue
		}
		// Split e into the gap before off, the allocation and the rest.
		var repl []extent
		if off > e.off {
			repl = append(repl, extent{e.off, off - e.off})
		}
		if end := e.off + e.size; off+sz < end {
			repl = append(repl, extent{off + sz, end - off - sz})
		}
		r.free = append(r.free[:i], append(repl, r.free[i+1:]...)...)
		r.used[off] = extent{off, sz}
		buf := r.mem[off : off+uint64(size) : off+uint64(size)]
		clear(buf)
		return buf, r.phys + off, nil
	}
	return nil, 0, fmt.Errorf("%w: no %d bytes aligned to %d (%d bytes free)", ErrNoMemory, size, align, r.freeBytesLocked())
}

// Free implements DMA.
func (r *Region) Free(phys uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	off := phys - r.phys
	e, ok := r.used[off]
	if phys < r.phys || !ok {
		return fmt.Errorf("%w: %#x", ErrBadFree, phys)
	}
	delete(r.used, off)
	i := sort.Search(len(r.free), func(i int) bool { return r.free[i].off > off })
	r.free = append(r.free, extent{})
	copy(r.free[i+1:], r.free[i:])
	r.free[i] = e
	// Merge with the next, then with the previous extent.
	if i+1 < len(r.free) && r.free[i].off+r.free[i].size == r.free[i+1].off {
		r.free[i].size += r.free[i+1].size
		r.free = append(r.free[:i+1], r.free[i+2:]...)
	}
	if i > 0 && r.free[i-1].off+r.free[i-1].size == r.free[i].off {
		r.free[i-1].size += r.free[i].size
		r.free = append(r.free[:i], r.free[i+1:]...)
	}
	return nil
}

// RegionStats describes a Region's use.
type RegionStats struct {
	Size        uint64 // bytes in the region
	InUse       uint64 // bytes allocated (rounded to 64)
	Free        uint64 // bytes free
	Largest     uint64 // largest free extent
	Allocations int
}

// Stats returns the region's current use.
func (r *Region) Stats() RegionStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := RegionStats{Size: uint64(len(r.mem)), Free: r.freeBytesLocked(), Allocations: len(r.used)}
	for _, e := range r.used {
		s.InUse += e.size
	}
	for _, e := range r.free {
		s.Largest = max(s.Largest, e.size)
	}
	return s
}

// Preconditions:
//   - r.mu is held.
func (r *Region) freeBytesLocked() uint64 {
	var n uint64
	for _, e := range r.free {
		n += e.size
	}
	return n
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
