package fakedev

import (
	"sync/atomic"
	"unsafe"
)

// Atomic access to the 32-bit ring index words, mirroring the driver, and
// page alignment of the fake memory.

// pageAligned returns n bytes starting on a 4096-byte boundary.
func pageAligned(n int) []byte {
	b := make([]byte, n+4096)
	skip := -int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) & 4095
	return b[skip : skip+n : skip+n]
}

func word32(b []byte, off int) *uint32 {
	w := b[off : off+4 : off+4] // bounds check without a (race-instrumented) read
	return (*uint32)(unsafe.Pointer(unsafe.SliceData(w)))
}

func load32(b []byte, off int) uint32     { return atomic.LoadUint32(word32(b, off)) }
func store32(b []byte, off int, v uint32) { atomic.StoreUint32(word32(b, off), v) }
