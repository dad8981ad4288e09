package kernel

import "github.com/molt-os/molt/boot/layout"

// Virtual address space of the Go runtime: mmap, munmap and madvise.
//
// The runtime reserves large PROT_NONE ranges (about 1.2 GiB at start-up)
// and commits small parts of them with MAP_FIXED; reservations therefore
// cost only an entry in this table, and committed pages cost RAM only once
// touched (paging.go). Hints are honoured when the range is free, since the
// runtime retries up to 128 hints otherwise.

type vrange struct{ start, end uintptr }

const maxReservations = 1024

var vm struct {
	resv  [maxReservations]vrange
	n     int
	next  uintptr // where unhinted reservations go
	limit uintptr // end of the user half of the address space
}

//go:nosplit
func vmInit() {
	vm.next = 0x100_0000_0000 // 1 TiB, clear of Go's usual hints
	vm.limit = 0x7fff_ffff_f000
}

//go:nosplit
func vmOverlaps(s, e uintptr) bool {
	if s < layout.GoVirtBase || e > vm.limit || e <= s {
		return true // the low 4 GiB belong to the kernel's identity map
	}
	for i := 0; i < vm.n; i++ {
		if s < vm.resv[i].end && vm.resv[i].start < e {
			return true
		}
	}
	return false
}

// vmReserve returns the start of a free range of n bytes, at hint when
// possible, or 0 when the table is full or the space exhausted.
//
//go:nosplit
func vmReserve(hint, n uintptr) uintptr {
	if vm.n == maxReservations {
		return 0
	}
	var va uintptr
	if hint != 0 && hint&(pageSize-1) == 0 && !vmOverlaps(hint, hint+n) {
		va = hint
	} else {
		for vmOverlaps(vm.next, vm.next+n) {
			vm.next += 1 << 30
			if vm.next+n > vm.limit {
				return 0
			}
		}
		va = vm.next
		vm.next = (vm.next + n + (2 << 20) - 1) &^ ((2 << 20) - 1)
	}
	vm.resv[vm.n] = vrange{va, va + n}
	vm.n++
	return va
}

// vmUnreserve removes [s, e) from the reservation table, trimming or
// splitting reservations that overlap it partially. It returns false if a
// split needed a table entry that was not available.
//
//go:nosplit
func vmUnreserve(s, e uintptr) bool {
	for i := 0; i < vm.n; i++ {
		r := vm.resv[i]
		if e <= r.start || r.end <= s {
			continue
		}
		switch {
		case s <= r.start && r.end <= e: // whole reservation goes
			vm.n--
			vm.resv[i] = vm.resv[vm.n]
			i--
		case s <= r.start: // cut the head
			vm.resv[i].start = e
		case r.end <= e: // cut the tail
			vm.resv[i].end = s
		default: // split in two
			if vm.n == maxReservations {
				return false
			}
			vm.resv[i].end = s
			vm.resv[vm.n] = vrange{e, r.end}
			vm.n++
		}
	}
	return true
}

const (
	protNone     = 0
	mapFixed     = 0x10
	mapAnonymous = 0x20
	madvDontneed = 4
	madvFree     = 8
)

//go:nosplit
func roundPage(n uintptr) uintptr { return (n + pageSize - 1) &^ (pageSize - 1) }

// sysMmap implements anonymous mmap.
//
//go:nosplit
func vmMmap(addr, length, prot, flags uintptr) uint64 {
	if flags&mapAnonymous == 0 {
		return errno(eNODEV) // no files to map
	}
	n := roundPage(length)
	if n == 0 || addr&(pageSize-1) != 0 {
		return errno(eINVAL)
	}
	var va uintptr
	if flags&mapFixed != 0 {
		if addr < layout.GoVirtBase || addr+n > vm.limit {
			return errno(eINVAL)
		}
		va = addr
		if !vmCovered(va, va+n) && vmReserve(va, n) != va {
			return errno(eNOMEM)
		}
	} else {
		va = vmReserve(addr, n)
		if va == 0 {
			return errno(eNOMEM)
		}
	}
	if prot != protNone {
		if !commitDemand(va, n) {
			return errno(eNOMEM)
		}
	} else if flags&mapFixed != 0 {
		release(va, n, false)
	}
	return uint64(va)
}

// vmCovered reports whether [s, e) lies inside reservations, one or
// several back to back: the runtime reserves its heap 64 MiB arena by
// arena, and commits spans that cross from one arena into the next (a
// 200,000-item kv save did, and was refused with ENOMEM).
//
//go:nosplit
func vmCovered(s, e uintptr) bool {
	for s < e {
		next := s
		for i := 0; i < vm.n; i++ {
			if vm.resv[i].start <= s && s < vm.resv[i].end {
				next = vm.resv[i].end
				break
			}
		}
		if next == s {
			return false
		}
		s = next
	}
	return true
}

//go:nosplit
func vmMunmap(addr, length uintptr) uint64 {
	n := roundPage(length)
	if addr&(pageSize-1) != 0 || n == 0 {
		return errno(eINVAL)
	}
	if addr < layout.GoVirtBase {
		return errno(eINVAL)
	}
	release(addr, n, false)
	if !vmUnreserve(addr, addr+n) {
		return errno(eNOMEM)
	}
	return 0
}

// sysMadvise honours MADV_DONTNEED and MADV_FREE by really dropping the
// pages: Go 1.26 trusts the next read of a scavenged span to return zeros
// (it skips re-zeroing under the default madvdontneed=1), so a no-op here
// would hand out dirty memory. The range stays committed.
//
//go:nosplit
func vmMadvise(addr, length, advice uintptr) uint64 {
	if addr&(pageSize-1) != 0 {
		return errno(eINVAL)
	}
	switch advice {
	case madvDontneed, madvFree:
		if addr >= layout.GoVirtBase {
			release(addr, roundPage(length), true)
		}
	}
	return 0
}
