package kernel

import (
	"strings"
	"time"
)

// This file is the kernel's API for images and services: Go code that runs
// after the runtime has started. Every function here also works on a host
// (where Booted reports false), so packages built on it can be unit-tested
// with `go test -race`.

// version is stamped by `molt build -version` (linker -X).
var version = "dev"

// buildID is filled by the post-link step with the SHA-256 of the image
// (computed with this array zeroed). It is initialised to a marker so the
// linker places it in a data section that the file carries.
var buildID = [32]byte{'m', 'o', 'l', 't', '-', 'b', 'u', 'i', 'l', 'd', '-', 'i', 'd'}

// Booted reports whether this program is running as a molt kernel, as
// opposed to an ordinary process on a host.
func Booted() bool { return booted }

// Version returns the release version stamped into the image.
func Version() string { return version }

// BuildID returns the hex SHA-256 the post-link step stamped into the image,
// or "unstamped" when the image was not post-linked.
func BuildID() string {
	const hexdigits = "0123456789abcdef"
	if buildID[0] == 'm' && buildID[1] == 'o' && buildID[4] == '-' {
		return "unstamped"
	}
	b := make([]byte, 64)
	for i, v := range buildID {
		b[2*i] = hexdigits[v>>4]
		b[2*i+1] = hexdigits[v&15]
	}
	return string(b)
}

// Cmdline returns the kernel command line the boot loader passed (with the
// words QEMU microvm appends, such as virtio_mmio.device=...). On a host it
// returns "".
func Cmdline() string {
	if !booted {
		return ""
	}
	return strings.Clone(bootInfo.Cmdline())
}

// MemStats describes physical memory as the kernel sees it.
type MemStats struct {
	RAMBytes      uint64 // usable RAM reported by the boot loader
	ImageBytes    uint64 // kernel image, text to end of BSS
	FramePool     uint64 // bytes in the frame pool
	FramesInUse   uint64 // 4 KiB frames allocated (Go memory, page tables, FPU areas)
	PageFaults    uint64 // demand-zero faults served
	DontneedPages uint64 // pages returned by madvise(MADV_DONTNEED)
}

// ReadMemStats returns the current physical memory statistics. On a host it
// returns the zero value.
func ReadMemStats() MemStats {
	if !booted {
		return MemStats{}
	}
	return readMemStats()
}

// Uptime returns the time since the kernel's entry point ran. On a host it
// returns the time since the process started.
func Uptime() time.Duration {
	if !booted {
		return time.Since(hostStart)
	}
	return time.Duration(nanotime() - clock.bootNs)
}

var hostStart = time.Now()

// SyscallCount returns how often system call nr has been made since boot
// (0 on a host, or for a number out of range).
func SyscallCount(nr int) uint64 {
	if !booted || nr < 0 || nr >= len(sysCounts) {
		return 0
	}
	return sysCounts[nr]
}

// VDSO reports whether the kernel gave the runtime a vDSO, so that clock
// reads make no system call (see vdso.go).
func VDSO() bool { return booted && vdsoOn }

// BuildIDBytes returns the build ID as bytes (zero when unstamped): what a
// handoff header records as its writer.
func BuildIDBytes() [32]byte {
	if BuildID() == "unstamped" {
		return [32]byte{}
	}
	return buildID
}

// ClockReading is the kernel's clocks read at one instant.
type ClockReading struct {
	MonotonicNs uint64 // CLOCK_MONOTONIC (continues across self-updates)
	TSC         uint64
	WallNs      int64  // CLOCK_REALTIME
	TSCHz       uint64 // calibrated TSC rate; 0 on a host
}

// ReadClock reads the clocks together, with interrupts off so that nothing
// runs between the readings. On a host, it returns Go's clocks and no TSC.
func ReadClock() ClockReading {
	if !booted {
		now := time.Now()
		return ClockReading{MonotonicNs: uint64(time.Since(hostStart)), WallNs: now.UnixNano()}
	}
	fl := disableInterrupts()
	r := ClockReading{TSC: rdtsc(), TSCHz: clock.tscHz}
	r.MonotonicNs = uint64(nanotime())
	r.WallNs = walltime()
	restoreInterrupts(fl)
	return r
}
