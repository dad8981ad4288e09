package kernel

import "unsafe"

// Raw physical-memory accessors. The low 4 GiB are identity-mapped and the
// Go runtime's memory is mapped at its own virtual addresses, so a uintptr
// is a usable address in every context.

//go:nosplit
func u64(p uintptr) *uint64 { return (*uint64)(unsafe.Pointer(p)) }

//go:nosplit
func u32(p uintptr) *uint32 { return (*uint32)(unsafe.Pointer(p)) }

//go:nosplit
func u8(p uintptr) *uint8 { return (*uint8)(unsafe.Pointer(p)) }

// addrOf returns the address of a kernel global (which never moves).
//
//go:nosplit
func addrOf(p unsafe.Pointer) uintptr { return uintptr(p) }

//go:nosplit
func u64ptr(p uintptr) unsafe.Pointer { return unsafe.Pointer(p) }

//go:nosplit
func u16(p uintptr) *uint16 { return (*uint16)(unsafe.Pointer(p)) }

// vdsoBase is the address of the vDSO image.
//
//go:nosplit
func vdsoBase() uintptr { return uintptr(unsafe.Pointer(&vdsoImage)) }
