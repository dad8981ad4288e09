package virtio

import (
	"sync/atomic"
	"unsafe"
)

// The only unsafe code of the package: atomic access to the 32-bit ring
// words shared with the device, and the address of a slice for alignment
// checks.

// word32 returns the aligned 32-bit word at b[off:off+4] for atomic access.
// The caller guarantees off+4 <= len(b) and 4-byte alignment (Region and the
// ring layout do).
func word32(b []byte, off int) *uint32 {
	w := b[off : off+4 : off+4] // bounds check without a (race-instrumented) read
	return (*uint32)(unsafe.Pointer(unsafe.SliceData(w)))
}

func load32(b []byte, off int) uint32     { return atomic.LoadUint32(word32(b, off)) }
func store32(b []byte, off int, v uint32) { atomic.StoreUint32(word32(b, off), v) }
func sliceAddr(b []byte) uintptr          { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
