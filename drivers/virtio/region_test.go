package virtio

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

const testBase = 0x7000000

// pageAligned returns n bytes starting on a 4096-byte boundary.
func pageAligned(n int) []byte {
	b := make([]byte, n+4096)
	skip := -int(sliceAddr(b)) & 4095
	return b[skip : skip+n : skip+n]
}

func newTestRegion(t testing.TB, size int) *Region {
	t.Helper()
	r, err := NewRegion(pageAligned(size), testBase)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegionAllocFree(t *testing.T) {
	r := newTestRegion(t, 64<<10)
	a, pa, err := r.Alloc(100, 16)
	if err != nil || len(a) != 100 || pa != testBase {
		t.Fatalf("Alloc(100, 16) = len %d, %#x, %v; want len 100 at %#x", len(a), pa, err, testBase)
	}
	a[0] = 1
	b, pb, err := r.Alloc(10, 4096)
	if err != nil || pb%4096 != 0 || pb <= pa {
		t.Fatalf("Alloc(10, 4096) = %#x, %v; want a page-aligned address after %#x", pb, err, pa)
	}
	b[9] = 1
	c, pc, err := r.Alloc(64, 64)
	if err != nil || pc != pa+128 {
		t.Fatalf("Alloc(64, 64) = %#x, %v; want first fit at %#x", pc, err, pa+128)
	}
	_ = c
	if s := r.Stats(); s.Allocations != 3 || s.InUse != 128+64+64 {
		t.Errorf("Stats() = %+v; want 3 allocations, %d bytes in use", s, 128+64+64)
	}
	for _, p := range []uint64{pb, pa, pc} {
		if err := r.Free(p); err != nil {
			t.Fatalf("Free(%#x) = %v", p, err)
		}
	}
	if s := r.Stats(); s.Allocations != 0 || s.Free != 64<<10 || s.Largest != 64<<10 {
		t.Errorf("after freeing everything Stats() = %+v; want one free extent of %d", s, 64<<10)
	}
	// Memory comes back zeroed.
	a, _, _ = r.Alloc(100, 16)
	if a[0] != 0 {
		t.Errorf("reallocated memory not zeroed")
	}
}

func TestRegionErrors(t *testing.T) {
	r := newTestRegion(t, 8192)
	for _, tc := range []struct{ size, align int }{{0, 1}, {-1, 1}, {1, 0}, {1, 3}} {
		if _, _, err := r.Alloc(tc.size, tc.align); err == nil {
			t.Errorf("Alloc(%d, %d) succeeded", tc.size, tc.align)
		}
	}
	if _, _, err := r.Alloc(8193, 1); !errors.Is(err, ErrNoMemory) {
		t.Errorf("Alloc(8193, 1) = %v; want ErrNoMemory", err)
	}
	_, p, err := r.Alloc(8192, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Alloc(1, 1); !errors.Is(err, ErrNoMemory) {
		t.Errorf("Alloc in a full region = %v; want ErrNoMemory", err)
	}
	for _, bad := range []uint64{p + 64, 0, p - 64} {
		if err := r.Free(bad); !errors.Is(err, ErrBadFree) {
			t.Errorf("Free(%#x) = %v; want ErrBadFree", bad, err)
		}
	}
	if err := r.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := r.Free(p); !errors.Is(err, ErrBadFree) {
		t.Errorf("double Free = %v; want ErrBadFree", err)
	}
	if _, err := NewRegion(pageAligned(8192), testBase+8); err == nil {
		t.Errorf("NewRegion with a physical address that disagrees with the slice's alignment succeeded")
	}
	if _, err := NewRegion(pageAligned(8), testBase); err == nil {
		t.Errorf("NewRegion of 8 bytes succeeded")
	}
}

// TestRegionRandom allocates and frees at random and checks that
// allocations never overlap, stay aligned and inside the region, and that
// freeing everything restores one extent.
func TestRegionRandom(t *testing.T) {
	const size = 1 << 20
	r := newTestRegion(t, size)
	rng := rand.New(rand.NewPCG(1, 2))
	type alloc struct {
		phys uint64
		buf  []byte
	}
	var live []alloc
	for i := 0; i < 5000; i++ {
		if len(live) > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(len(live))
			if err := r.Free(live[j].phys); err != nil {
				t.Fatal(err)
			}
			live = append(live[:j], live[j+1:]...)
			continue
		}
		n, align := 1+rng.IntN(20000), 1<<rng.IntN(13)
		buf, p, err := r.Alloc(n, align)
		if errors.Is(err, ErrNoMemory) {
			continue
		}
		if err != nil || len(buf) != n || p%uint64(align) != 0 || p < testBase || p+uint64(n) > testBase+size {
			t.Fatalf("Alloc(%d, %d) = len %d at %#x, %v", n, align, len(buf), p, err)
		}
		for _, o := range live {
			if p < o.phys+uint64(len(o.buf)) && o.phys < p+uint64(n) {
				t.Fatalf("allocation %#x+%d overlaps %#x+%d", p, n, o.phys, len(o.buf))
			}
		}
		live = append(live, alloc{p, buf})
	}
	for _, a := range live {
		if err := r.Free(a.phys); err != nil {
			t.Fatal(err)
		}
	}
	if s := r.Stats(); s.Largest != size || s.Allocations != 0 {
		t.Errorf("after freeing everything Stats() = %+v", s)
	}
}

func TestRegionConcurrent(t *testing.T) {
	r := newTestRegion(t, 1<<20)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				buf, p, err := r.Alloc(1000, 64)
				if err != nil {
					t.Error(err)
					return
				}
				buf[0]++
				if err := r.Free(p); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
