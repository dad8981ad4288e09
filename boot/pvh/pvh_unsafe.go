package pvh

import "unsafe"

// The loads below read physical memory through the identity map.

//go:nosplit
func load8(a uintptr) uint8 { return *(*uint8)(unsafe.Pointer(a)) }

//go:nosplit
func load32(a uintptr) uint32 { return *(*uint32)(unsafe.Pointer(a)) }

//go:nosplit
func load64(a uintptr) uint64 { return *(*uint64)(unsafe.Pointer(a)) }

//go:nosplit
func unsafeString(p *byte, n int) string { return unsafe.String(p, n) }
