package pvh

import (
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"
)

// image builds an hvm_start_info, memory map and command line in one buffer
// and returns the buffer (kept alive by the caller) and the info address.
func image(t *testing.T, magic, version uint32, cmdline string, regions []Region) ([]byte, uintptr) {
	t.Helper()
	buf := make([]byte, 8192)
	base := uintptr(unsafe.Pointer(&buf[0]))
	le := binary.LittleEndian
	le.PutUint32(buf[0:], magic)
	le.PutUint32(buf[4:], version)
	le.PutUint64(buf[0x20:], 0xf0000)
	if cmdline != "" {
		copy(buf[0x1000:], cmdline+"\x00")
		le.PutUint64(buf[0x18:], uint64(base+0x1000))
	}
	if regions != nil {
		le.PutUint64(buf[0x28:], uint64(base+0x200))
		le.PutUint32(buf[0x30:], uint32(len(regions)))
		for i, r := range regions {
			e := buf[0x200+i*memmapEntry:]
			le.PutUint64(e, r.Addr)
			le.PutUint64(e[8:], r.Size)
			le.PutUint32(e[16:], r.Type)
		}
	}
	return buf, base
}

// qemuMap is the memory map QEMU microvm reported for -m 256M.
var qemuMap = []Region{
	{0, 0x9fc00, TypeRAM}, {0x9fc00, 0x400, TypeReserved}, {0xd0000, 0x20000, TypeNVS},
	{0xf0000, 0x10000, TypeReserved}, {0x100000, 0xff00000, TypeRAM}, {0, 0, 0},
}

func TestParseQEMUMap(t *testing.T) {
	buf, addr := image(t, StartInfoMagic, 1, "molt.quiet console=ttyS0", qemuMap)
	var info Info
	if rc := Parse(addr, &info); rc != OK {
		t.Fatalf("Parse = %s; want ok", ErrorString(rc))
	}
	_ = buf
	if info.NRegions != 5 {
		t.Errorf("NRegions = %d; want 5 (the zero terminator is dropped)", info.NRegions)
	}
	if got := info.Cmdline(); got != "molt.quiet console=ttyS0" {
		t.Errorf("Cmdline = %q", got)
	}
	if got, want := info.RAMBelow(4<<30), uint64(0x10000000); got != want {
		t.Errorf("RAMBelow = %#x; want %#x", got, want)
	}
	if got, want := info.RAMBytes(), uint64(0x9fc00+0xff00000); got != want {
		t.Errorf("RAMBytes = %#x; want %#x", got, want)
	}
	if info.RSDP != 0xf0000 {
		t.Errorf("RSDP = %#x", info.RSDP)
	}
}

func TestParseErrors(t *testing.T) {
	var info Info
	if rc := Parse(0, &info); rc != ErrNoInfo {
		t.Errorf("Parse(0) = %s", ErrorString(rc))
	}
	_, a := image(t, 0x1badb002, 1, "", qemuMap)
	if rc := Parse(a, &info); rc != ErrBadMagic {
		t.Errorf("bad magic: Parse = %s", ErrorString(rc))
	}
	_, a = image(t, StartInfoMagic, 0, "", qemuMap)
	if rc := Parse(a, &info); rc != ErrOldVersion {
		t.Errorf("version 0: Parse = %s", ErrorString(rc))
	}
	_, a = image(t, StartInfoMagic, 1, "", nil)
	if rc := Parse(a, &info); rc != ErrNoMemmap {
		t.Errorf("no memmap: Parse = %s", ErrorString(rc))
	}
}

func TestParseTruncates(t *testing.T) {
	many := make([]Region, MaxRegions+3)
	for i := range many {
		many[i] = Region{uint64(i) << 20, 1 << 20, TypeRAM}
	}
	_, a := image(t, StartInfoMagic, 1, strings.Repeat("x", MaxCmdline+10), many)
	var info Info
	if rc := Parse(a, &info); rc != OK {
		t.Fatalf("Parse = %s", ErrorString(rc))
	}
	if !info.Truncated || info.NRegions != MaxRegions || len(info.Cmdline()) != MaxCmdline {
		t.Errorf("Truncated=%v NRegions=%d len(cmdline)=%d", info.Truncated, info.NRegions, len(info.Cmdline()))
	}
}

// withModules adds a module list at 0x1800 to an image's buffer, with each
// module's name at 0x1c00 + 0x40*i.
func withModules(buf []byte, base uintptr, mods []Module, names []string) {
	le := binary.LittleEndian
	le.PutUint32(buf[offNrModules:], uint32(len(mods)))
	le.PutUint64(buf[offModlist:], uint64(base+0x1800))
	for i, m := range mods {
		e := buf[0x1800+i*modlistEntry:]
		le.PutUint64(e, m.Addr)
		le.PutUint64(e[8:], m.Size)
		if names[i] != "" {
			off := 0x1c00 + 0x40*i
			copy(buf[off:off+0x3f], names[i]+"\x00")
			le.PutUint64(e[16:], uint64(base+uintptr(off)))
		}
	}
}

func TestParseModules(t *testing.T) {
	buf, addr := image(t, StartInfoMagic, 1, "x", qemuMap)
	withModules(buf, addr,
		[]Module{{Addr: 0x1000000, Size: 0x2000}, {Addr: 0x6000000, Size: 0x1000000}, {Addr: 0x7000, Size: 1}},
		[]string{"initrd", "molt.handoff", ""})
	var info Info
	if rc := Parse(addr, &info); rc != OK {
		t.Fatalf("Parse = %s", ErrorString(rc))
	}
	if info.NModules != 3 || info.Truncated {
		t.Fatalf("NModules = %d, Truncated = %v; want 3, false", info.NModules, info.Truncated)
	}
	m, ok := info.Module("molt.handoff")
	if !ok || m.Addr != 0x6000000 || m.Size != 0x1000000 {
		t.Errorf("Module(molt.handoff) = %+v, %v", m, ok)
	}
	if _, ok := info.Module("molt.hand"); ok {
		t.Error("a prefix of a module name matched")
	}
	if got := info.Modules[2].Name(); got != "" {
		t.Errorf("module without a command line has name %q", got)
	}
}

func TestParseModulesTruncates(t *testing.T) {
	buf, addr := image(t, StartInfoMagic, 1, "x", qemuMap)
	long := strings.Repeat("m", MaxModName) + "olt.handoff"
	mods := make([]Module, MaxModules+2)
	names := make([]string, len(mods))
	names[0] = long
	withModules(buf, addr, mods, names)
	var info Info
	if rc := Parse(addr, &info); rc != OK {
		t.Fatalf("Parse = %s", ErrorString(rc))
	}
	if !info.Truncated || info.NModules != MaxModules {
		t.Errorf("Truncated = %v, NModules = %d; want true, %d", info.Truncated, info.NModules, MaxModules)
	}
	if info.Modules[0].Name() != "" {
		t.Errorf("a truncated module name is kept as %q", info.Modules[0].Name())
	}
	_ = buf
}

// FuzzParse feeds arbitrary start-info bytes to Parse. Pointer fields are
// redirected into the buffer (or cleared), since a real loader's pointers
// always point at memory; everything else is as fuzzed.
func FuzzParse(f *testing.F) {
	seed, _ := image(&testing.T{}, StartInfoMagic, 1, "molt.quiet", qemuMap)
	f.Add(seed[:0x400], uint16(0x1000), uint16(0x200))
	f.Add(make([]byte, 64), uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, cmdOff, mapOff uint16) {
		buf := make([]byte, 0x3000)
		copy(buf, data)
		base := uintptr(unsafe.Pointer(&buf[0]))
		le := binary.LittleEndian
		fix := func(field int, off uint16) {
			if off == 0 {
				le.PutUint64(buf[field:], 0)
			} else {
				le.PutUint64(buf[field:], uint64(base+uintptr(off)%0x1000+0x1000))
			}
		}
		fix(offCmdline, cmdOff)
		fix(offMemmap, mapOff)
		// keep the memory map inside the buffer
		if n := le.Uint32(buf[offMemmapCount:]); n > 64 {
			le.PutUint32(buf[offMemmapCount:], n%64)
		}
		// the module list sits at 0x2000 with at most 8 entries, whose
		// name pointers stay inside the buffer too
		le.PutUint64(buf[offModlist:], uint64(base+0x2000))
		nmod := le.Uint32(buf[offNrModules:]) % 9
		le.PutUint32(buf[offNrModules:], nmod)
		for i := 0; i < int(nmod); i++ {
			e := 0x2000 + i*modlistEntry
			if p := le.Uint64(buf[e+16:]); p != 0 {
				le.PutUint64(buf[e+16:], uint64(base+uintptr(p%0x1000)+0x1000))
			}
		}
		buf[len(buf)-1] = 0 // the command line ends inside the buffer
		var info Info
		rc := Parse(base, &info)
		if rc == OK {
			if info.NRegions == 0 || info.NRegions > MaxRegions {
				t.Fatalf("Parse ok with %d regions", info.NRegions)
			}
			if len(info.Cmdline()) > MaxCmdline {
				t.Fatalf("cmdline longer than MaxCmdline")
			}
			if info.NModules > MaxModules {
				t.Fatalf("%d modules", info.NModules)
			}
			for i := 0; i < info.NModules; i++ {
				if len(info.Modules[i].Name()) > MaxModName {
					t.Fatalf("module name longer than MaxModName")
				}
			}
		}
		_ = ErrorString(rc)
	})
}
