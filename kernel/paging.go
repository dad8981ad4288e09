package kernel

import "github.com/molt-os/molt/boot/layout"

// Page tables. The boot stub identity-maps the low 4 GiB; everything the Go
// runtime maps lives at or above 4 GiB in 4 KiB pages whose tables are
// allocated from the frame pool on demand.
//
// A page the runtime has committed but never touched has a non-present PTE
// with pteDemand set: the page-fault handler backs it with a zeroed frame
// on first access (demand-zero paging), so committing memory costs no RAM.

const (
	pageSize   = layout.PageSize
	ptePresent = 1 << 0
	pteWrite   = 1 << 1
	ptePS      = 1 << 7
	pteDemand  = 1 << 9 // software bit: commit on first touch
	pteAddr    = 0x000ffffffffff000
)

var pagingStats struct {
	demandFaults  uint64
	dontneedPages uint64
	tablePages    uint64
}

// pteAddrOf returns the address of the 4 KiB PTE for va, creating the
// intermediate tables when create is set. It returns 0 when a table is
// missing (create false), memory is exhausted, or va lies inside a large
// page of the boot identity map.
//
//go:nosplit
func pteAddrOf(va uintptr, create bool) uintptr {
	table := uintptr(layout.BootPML4)
	for shift := uint(39); shift > 12; shift -= 9 {
		e := table + ((va>>shift)&511)*8
		v := *u64(e)
		if v&ptePresent == 0 {
			if !create {
				return 0
			}
			f := allocFrame()
			if f == 0 {
				return 0
			}
			pagingStats.tablePages++
			v = uint64(f) | ptePresent | pteWrite
			*u64(e) = v
		} else if v&ptePS != 0 {
			return 0
		}
		table = uintptr(v & pteAddr)
	}
	return table + ((va>>12)&511)*8
}

// commitDemand marks [va, va+n) as committed, zero-filled on first touch.
// Pages already backed are released, so the range reads as zeros
// afterwards (fresh anonymous memory). It returns false when page tables
// could not be allocated.
//
//go:nosplit
func commitDemand(va, n uintptr) bool {
	for p := va; p < va+n; p += pageSize {
		e := pteAddrOf(p, true)
		if e == 0 {
			return false
		}
		v := *u64(e)
		if v&ptePresent != 0 {
			freeFrame(uintptr(v & pteAddr))
			invlpg(p)
		}
		*u64(e) = pteDemand
	}
	return true
}

// release drops the backing of [va, va+n): present pages are freed, and
// the range keeps (keepCommitted) or loses its committed state.
//
//go:nosplit
func release(va, n uintptr, keepCommitted bool) {
	for p := va; p < va+n; {
		e := pteAddrOf(p, false)
		if e == 0 {
			// no page table here: skip to the next 2 MiB boundary
			p = (p + (2 << 20)) &^ ((2 << 20) - 1)
			continue
		}
		v := *u64(e)
		if v&ptePresent != 0 {
			freeFrame(uintptr(v & pteAddr))
			invlpg(p)
			if keepCommitted {
				pagingStats.dontneedPages++
			}
		}
		if keepCommitted {
			if v != 0 {
				*u64(e) = pteDemand
			}
		} else {
			*u64(e) = 0
		}
		p += pageSize
	}
}

// demandFault backs a committed page on first touch. It returns false if
// addr is not a demand-zero page (a real fault).
//
//go:nosplit
func demandFault(addr uintptr) bool {
	if addr < layout.GoVirtBase {
		return false
	}
	e := pteAddrOf(addr, false)
	if e == 0 || *u64(e)&pteDemand == 0 || *u64(e)&ptePresent != 0 {
		return false
	}
	f := allocFrame()
	if f == 0 {
		outOfMemory()
	}
	*u64(e) = uint64(f) | ptePresent | pteWrite
	pagingStats.demandFaults++
	return true
}

// mapped reports whether reading [addr, addr+n) would not fault; the crash
// path uses it before it follows pointers it cannot trust.
//
//go:nosplit
func mapped(addr, n uintptr) bool {
	for p := addr &^ (pageSize - 1); p < addr+n; p += pageSize {
		if p < pageSize {
			return false
		}
		if p < layout.GoVirtBase {
			if p >= ramTop && p < layout.MMIOBase {
				return false
			}
			continue
		}
		e := pteAddrOf(p, false)
		if e == 0 || *u64(e)&ptePresent == 0 {
			return false
		}
	}
	return true
}
