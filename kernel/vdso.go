package kernel

// The vDSO: a tiny in-memory ELF image, announced to the Go runtime with
// AT_SYSINFO_EHDR, whose one symbol, __vdso_clock_gettime (version
// LINUX_2.6), is vdsoClockGettime in vdso_amd64.s. The runtime reads its
// clocks (nanotime, walltime: the scheduler, timers, the netpoller,
// time.Now, every gVisor timestamp) through it instead of a system call;
// under a kv load that was 27 clock_gettime system calls per request.
//
// vdsoClockGettime computes CLOCK_MONOTONIC and CLOCK_REALTIME from the TSC
// exactly as nanotime does (ns = (tsc - tscEntry) * tscMult >> 32, plus
// wallAtBoot for realtime) and makes the real system call for any other
// clock. With kvmclock as the clock source (KVM), no vDSO is announced and
// the runtime uses the system call, which reads the pvclock page.
//
// The image holds just what the runtime's parser (runtime/vdso_linux.go)
// reads: the ELF header, a PT_LOAD and a PT_DYNAMIC program header, the
// dynamic table (DT_HASH, DT_STRTAB, DT_SYMTAB, DT_VERSYM, DT_VERDEF), a
// two-entry symbol table, a one-bucket hash table, the version table with
// a base entry and LINUX_2.6, and the strings. The symbol's value is the
// function's address relative to the image (wrapping), so the runtime's
// loadOffset + st_value lands on the function in the kernel's text.

// Layout of the image (offsets in bytes).
const (
	vdsoPhdrOff   = 64
	vdsoDynOff    = vdsoPhdrOff + 2*56 // 176
	vdsoDynCount  = 6
	vdsoSymOff    = vdsoDynOff + vdsoDynCount*16 // 272
	vdsoHashOff   = vdsoSymOff + 2*24            // 320
	vdsoVersymOff = vdsoHashOff + 5*4            // 340: nbucket, nchain, bucket, 2 chain
	vdsoVerdefOff = vdsoVersymOff + 2*2          // 344
	vdsoStrOff    = vdsoVerdefOff + 2*(20+8)     // 400
	vdsoStrings   = "\x00__vdso_clock_gettime\x00LINUX_2.6\x00"
	vdsoNameSym   = 1  // "__vdso_clock_gettime"
	vdsoNameVer   = 22 // "LINUX_2.6"
	vdsoSize      = vdsoStrOff + len(vdsoStrings)

	vdsoLinux26Hash = 0x3ae75f6 // ELF hash of "LINUX_2.6"

	atSysinfoEhdr = 33
)

// vdsoOn says the image was built and goes into the auxiliary vector.
var vdsoOn bool

// vdsoImage is the ELF image; 8-byte aligned as the runtime's structs need.
var vdsoImage [(vdsoSize + 7) / 8]uint64

// Read by vdsoClockGettime; set by vdsoInit, after the clock is calibrated,
// and never changed again.
var (
	vdsoTSCEntry   uint64
	vdsoTSCMult    uint64
	vdsoWallAtBoot int64
)

// vdsoClockGettime is the vDSO's clock_gettime (C calling convention:
// clock ID in DI, *timespec in SI, 0 or -errno in AX). Implemented in
// vdso_amd64.s.
func vdsoClockGettime()

// vdsoClockGettimeAddr returns vdsoClockGettime's address.
func vdsoClockGettimeAddr() uintptr

// vdsoInit builds the image. It reports whether the runtime should be told
// about it (only with the TSC as the clock source).
//
//go:nosplit
func vdsoInit() bool {
	if clock.source != clockTSC {
		return false
	}
	vdsoTSCEntry, vdsoTSCMult, vdsoWallAtBoot = clock.tscEntry, clock.tscMult, clock.wallAtBoot
	buildVDSO(vdsoBase(), vdsoClockGettimeAddr())
	return true
}

// buildVDSO writes the image for an image at base whose symbol points at
// fn. It is separate from vdsoInit so that host tests can build and parse
// an image.
//
//go:nosplit
func buildVDSO(base, fn uintptr) {
	p := base
	// ELF header.
	*u32(p) = 0x464c457f // "\x7fELF"
	*u8(p + 4) = 2       // ELFCLASS64
	*u8(p + 5) = 1       // little-endian
	*u8(p + 6) = 1       // EV_CURRENT
	*u16(p + 16) = 3     // ET_DYN
	*u16(p + 18) = 62    // EM_X86_64
	*u32(p + 20) = 1
	*u64(p + 32) = vdsoPhdrOff // e_phoff
	*u16(p + 52) = 64          // e_ehsize
	*u16(p + 54) = 56          // e_phentsize
	*u16(p + 56) = 2           // e_phnum
	*u16(p + 58) = 64          // e_shentsize

	// PT_LOAD covering the image at virtual address 0, then PT_DYNAMIC.
	ph := p + vdsoPhdrOff
	*u32(ph) = 1     // PT_LOAD
	*u32(ph + 4) = 5 // PF_R|PF_X
	*u64(ph + 32) = uint64(vdsoSize)
	*u64(ph + 40) = uint64(vdsoSize)
	*u64(ph + 48) = 8
	ph += 56
	*u32(ph) = 2     // PT_DYNAMIC
	*u32(ph + 4) = 4 // PF_R
	*u64(ph + 8) = vdsoDynOff
	*u64(ph + 16) = vdsoDynOff
	*u64(ph + 32) = vdsoDynCount * 16
	*u64(ph + 40) = vdsoDynCount * 16
	*u64(ph + 48) = 8

	d := p + vdsoDynOff
	for _, e := range [vdsoDynCount][2]uint64{
		{4, vdsoHashOff},            // DT_HASH
		{5, vdsoStrOff},             // DT_STRTAB
		{6, vdsoSymOff},             // DT_SYMTAB
		{0x6ffffff0, vdsoVersymOff}, // DT_VERSYM
		{0x6ffffffc, vdsoVerdefOff}, // DT_VERDEF
		{0, 0},                      // DT_NULL
	} {
		*u64(d), *u64(d + 8) = e[0], e[1]
		d += 16
	}

	// Symbol 0 is the null symbol; symbol 1 is the function.
	s := p + vdsoSymOff + 24
	*u32(s) = vdsoNameSym
	*u8(s + 4) = 0x12    // STB_GLOBAL, STT_FUNC
	*u16(s + 6) = 0xfff1 // SHN_ABS: defined
	*u64(s + 8) = uint64(fn - base)

	// DT_HASH: one bucket, whose chain is symbol 1 and ends there
	// (chain[1] = 0).
	h := p + vdsoHashOff
	*u32(h), *u32(h + 4), *u32(h + 8) = 1, 2, 1

	*u16(p + vdsoVersymOff + 2) = 2 // symbol 1 has version index 2

	// Version definitions: the base (the file's own name), then LINUX_2.6.
	v := p + vdsoVerdefOff
	*u16(v) = 1       // vd_version
	*u16(v + 2) = 1   // VER_FLG_BASE
	*u16(v + 4) = 1   // vd_ndx
	*u16(v + 6) = 1   // vd_cnt
	*u32(v + 12) = 20 // vd_aux
	*u32(v + 16) = 28 // vd_next
	*u32(v + 20) = vdsoNameVer
	v += 28
	*u16(v) = 1
	*u16(v + 4) = 2
	*u16(v + 6) = 1
	*u32(v + 8) = vdsoLinux26Hash
	*u32(v + 12) = 20
	*u32(v + 20) = vdsoNameVer

	for i := 0; i < len(vdsoStrings); i++ {
		*u8(p + vdsoStrOff + uintptr(i)) = vdsoStrings[i]
	}
}
