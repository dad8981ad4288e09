// Package pvh reads the boot information a PVH loader hands to the kernel:
// the hvm_start_info structure (Xen public header
// xen/include/public/arch-x86/hvm/start_info.h, version 1) with its memory
// map and command line.
//
// Parse runs before the Go runtime exists, from the kernel's first 64-bit
// code, so it is //go:nosplit, allocation-free and fills a caller-provided,
// pointer-free Info. It reads physical memory through identity-mapped
// addresses; tests hand it the address of an ordinary buffer.
package pvh

// StartInfoMagic is hvm_start_info.magic.
const StartInfoMagic = 0x336ec578

// Offsets into hvm_start_info.
const (
	offMagic       = 0x00
	offVersion     = 0x04
	offFlags       = 0x08
	offNrModules   = 0x0c
	offModlist     = 0x10
	offCmdline     = 0x18
	offRSDP        = 0x20
	offMemmap      = 0x28
	offMemmapCount = 0x30
	memmapEntry    = 24 // hvm_memmap_table_entry: addr, size, type, reserved
	modlistEntry   = 32 // hvm_modlist_entry: paddr, size, cmdline_paddr, reserved
)

// Memory map entry types (E820 numbering).
const (
	TypeRAM      = 1
	TypeReserved = 2
	TypeACPI     = 3
	TypeNVS      = 4
	TypeUnusable = 5
)

// Limits of what Info holds; longer inputs are truncated and flagged.
const (
	MaxRegions = 32
	MaxCmdline = 1024
	MaxModules = 4
	MaxModName = 32
)

// Module is one entry of the start info's module list. molt's self-update
// passes the handoff region to the next kernel as a module named
// "molt.handoff" (kernel/jump.go); a loader's initrd would be another.
type Module struct {
	Addr, Size uint64
	name       [MaxModName]byte // the module's command line, truncated
	nameLen    int
}

// Name returns the module's command line (at most MaxModName bytes). The
// string aliases m's storage.
//
//go:nosplit
func (m *Module) Name() string { return unsafeString(&m.name[0], m.nameLen) }

// Region is one memory map entry.
type Region struct {
	Addr, Size uint64
	Type       uint32
}

// Info is the parsed boot information.
type Info struct {
	Addr       uint64 // physical address of hvm_start_info
	Version    uint32
	Flags      uint32
	RSDP       uint64
	Regions    [MaxRegions]Region
	NRegions   int
	Modules    [MaxModules]Module
	NModules   int
	Truncated  bool // memory map, module list or command line did not fit
	cmdline    [MaxCmdline]byte
	cmdlineLen int
}

// Error codes of Parse (it cannot allocate error values).
const (
	OK = iota
	ErrNoInfo
	ErrBadMagic
	ErrOldVersion
	ErrNoMemmap
)

// ErrorString names a Parse error code.
//
//go:nosplit
func ErrorString(code int) string {
	switch code {
	case OK:
		return "ok"
	case ErrNoInfo:
		return "no start info pointer"
	case ErrBadMagic:
		return "bad hvm_start_info magic"
	case ErrOldVersion:
		return "hvm_start_info version 0 has no memory map"
	case ErrNoMemmap:
		return "empty memory map"
	}
	return "unknown error"
}

// Parse reads the hvm_start_info at addr into info and returns OK or an
// error code.
//
//go:nosplit
func Parse(addr uintptr, info *Info) int {
	*info = Info{}
	if addr == 0 {
		return ErrNoInfo
	}
	if load32(addr+offMagic) != StartInfoMagic {
		return ErrBadMagic
	}
	info.Addr = uint64(addr)
	info.Version = load32(addr + offVersion)
	info.Flags = load32(addr + offFlags)
	info.RSDP = load64(addr + offRSDP)
	if info.Version < 1 {
		return ErrOldVersion
	}
	if c := uintptr(load64(addr + offCmdline)); c != 0 {
		var whole bool
		info.cmdlineLen, whole = copyCString(info.cmdline[:], c)
		info.Truncated = info.Truncated || !whole
	}
	mm := uintptr(load64(addr + offMemmap))
	n := int(load32(addr + offMemmapCount))
	if mm == 0 || n == 0 {
		return ErrNoMemmap
	}
	for i := 0; i < n; i++ {
		if info.NRegions == MaxRegions {
			info.Truncated = true
			break
		}
		e := mm + uintptr(i)*memmapEntry
		r := Region{Addr: load64(e), Size: load64(e + 8), Type: load32(e + 16)}
		if r.Size == 0 {
			continue // QEMU ends the table with an all-zero entry
		}
		info.Regions[info.NRegions] = r
		info.NRegions++
	}
	if info.NRegions == 0 {
		return ErrNoMemmap
	}
	parseModules(addr, info)
	return OK
}

// parseModules reads the module list. Entries beyond MaxModules set
// Truncated; so does a module name longer than MaxModName (the name is
// then not matched by Module, which compares whole names).
//
//go:nosplit
func parseModules(addr uintptr, info *Info) {
	list := uintptr(load64(addr + offModlist))
	n := int(load32(addr + offNrModules))
	if list == 0 {
		return
	}
	for i := 0; i < n; i++ {
		if info.NModules == MaxModules {
			info.Truncated = true
			return
		}
		e := list + uintptr(i)*modlistEntry
		m := &info.Modules[info.NModules]
		m.Addr, m.Size = load64(e), load64(e+8)
		if c := uintptr(load64(e + 16)); c != 0 {
			var whole bool
			if m.nameLen, whole = copyCString(m.name[:], c); !whole {
				info.Truncated = true
				m.nameLen = 0 // a truncated name must not match a shorter one
			}
		}
		info.NModules++
	}
}

// copyCString copies the NUL-terminated string at physical address c into
// dst and returns its length, and whether it fit (false: dst holds its
// first len(dst) bytes).
//
//go:nosplit
func copyCString(dst []byte, c uintptr) (n int, whole bool) {
	for n < len(dst) {
		b := load8(c + uintptr(n))
		if b == 0 {
			return n, true
		}
		dst[n] = b
		n++
	}
	return n, load8(c+uintptr(n)) == 0
}

// Module returns the first module whose command line is exactly name.
//
//go:nosplit
func (info *Info) Module(name string) (Module, bool) {
	for i := 0; i < info.NModules; i++ {
		if info.Modules[i].Name() == name {
			return info.Modules[i], true
		}
	}
	return Module{}, false
}

// Cmdline returns the kernel command line. The string aliases info's
// storage, so info must outlive it (the kernel keeps its Info in a global).
//
//go:nosplit
func (info *Info) Cmdline() string {
	return unsafeString(&info.cmdline[0], info.cmdlineLen)
}

// RAMBelow returns the end of the usable RAM region that contains 1 MiB and
// lies below limit, i.e. the top of the memory the kernel identity-maps.
//
//go:nosplit
func (info *Info) RAMBelow(limit uint64) uint64 {
	for i := 0; i < info.NRegions; i++ {
		r := info.Regions[i]
		if r.Type == TypeRAM && r.Addr <= 1<<20 && r.Addr+r.Size > 1<<20 {
			end := r.Addr + r.Size
			if end > limit {
				end = limit
			}
			return end
		}
	}
	return 0
}

// RAMBytes returns the total size of all usable RAM regions.
//
//go:nosplit
func (info *Info) RAMBytes() uint64 {
	var n uint64
	for i := 0; i < info.NRegions; i++ {
		if info.Regions[i].Type == TypeRAM {
			n += info.Regions[i].Size
		}
	}
	return n
}
