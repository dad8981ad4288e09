package virtio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MMIODevice is a virtio-mmio transport announced on the kernel command
// line: its register window and the interrupt line it raises (an IOAPIC pin
// on microvm).
type MMIODevice struct {
	Base uintptr // physical address of the register window
	Size uint32  // length of the window in bytes
	IRQ  int     // interrupt line (IOAPIC input pin)
}

// Regs returns the device's register window.
func (d MMIODevice) Regs() MMIO { return MMIO{Base: d.Base} }

func (d MMIODevice) String() string {
	return fmt.Sprintf("virtio-mmio %d bytes at %#x, irq %d", d.Size, d.Base, d.IRQ)
}

// CmdlineKey is the kernel command-line parameter that announces a
// virtio-mmio device, as in Linux (drivers/virtio/virtio_mmio.c documents
// the syntax) and as QEMU microvm writes it.
const CmdlineKey = "virtio_mmio.device"

// Limits ParseCmdline enforces.
const (
	minWindow = Config  // the control registers at least
	maxIRQ    = 255     // an interrupt line number, not a vector
	mmioLimit = 1 << 32 // molt identity-maps the low 4 GiB only
	maxWindow = 1 << 20 // no transport needs more than 1 MiB
	maxWords  = 64      // more devices than this is not a real command line
	mmioAlign = 4       // the registers are 32-bit words
)

// ErrCmdline is wrapped by every error ParseCmdline returns.
var ErrCmdline = errors.New("virtio: bad virtio_mmio.device parameter")

// ParseCmdline finds the virtio_mmio.device=<size>@<base>:<irq>[:<id>]
// words of a kernel command line and returns the devices in the order they
// appear. QEMU microvm with acpi=off appends one word per attached
// virtio-mmio device, for example
//
//	virtio_mmio.device=512@0xfeb00e00:12
//
// size takes an optional K, M or G suffix; size and base are decimal, or
// hexadecimal with 0x, or octal with a leading 0 (as Linux's memparse and
// %lli read them); irq is decimal; a trailing :<id> (a Linux platform
// device id) is accepted and ignored. Words after "--" belong to the init
// process and are not looked at.
//
// A malformed word, a window outside the identity-mapped low 4 GiB, a
// window smaller than the control registers, or two words for the same
// base are errors (wrapping ErrCmdline): a device the kernel cannot find is
// better reported at boot than silently missing.
func ParseCmdline(cmdline string) ([]MMIODevice, error) {
	var devs []MMIODevice
	for _, w := range strings.Fields(cmdline) {
		if w == "--" {
			break
		}
		v, ok := strings.CutPrefix(w, CmdlineKey+"=")
		if !ok {
			continue
		}
		if len(devs) == maxWords {
			return devs, fmt.Errorf("%w: more than %d devices", ErrCmdline, maxWords)
		}
		d, err := parseDevice(v)
		if err != nil {
			return devs, fmt.Errorf("%w %q: %v", ErrCmdline, w, err)
		}
		for _, o := range devs {
			if uint64(o.Base) < uint64(d.Base)+uint64(d.Size) && uint64(d.Base) < uint64(o.Base)+uint64(o.Size) {
				return devs, fmt.Errorf("%w %q: overlaps the device at %#x", ErrCmdline, w, o.Base)
			}
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func parseDevice(v string) (MMIODevice, error) {
	sizeStr, rest, ok := strings.Cut(v, "@")
	if !ok {
		return MMIODevice{}, errors.New("want <size>@<base>:<irq>")
	}
	baseStr, irqStr, ok := strings.Cut(rest, ":")
	if !ok {
		return MMIODevice{}, errors.New("want <size>@<base>:<irq>")
	}
	if irq, id, ok := strings.Cut(irqStr, ":"); ok {
		if _, err := strconv.ParseUint(id, 10, 31); err != nil {
			return MMIODevice{}, fmt.Errorf("device id %q: not a decimal number", id)
		}
		irqStr = irq
	}
	size, err := parseSize(sizeStr)
	if err != nil {
		return MMIODevice{}, fmt.Errorf("size %q: %v", sizeStr, err)
	}
	base, err := parseNumber(baseStr)
	if err != nil {
		return MMIODevice{}, fmt.Errorf("base %q: %v", baseStr, err)
	}
	irq, err := strconv.ParseUint(irqStr, 10, 16)
	if err != nil {
		return MMIODevice{}, fmt.Errorf("irq %q: not a decimal number", irqStr)
	}
	switch {
	case size < minWindow:
		return MMIODevice{}, fmt.Errorf("size %d is smaller than the %d bytes of control registers", size, minWindow)
	case size > maxWindow:
		return MMIODevice{}, fmt.Errorf("size %d is larger than %d", size, maxWindow)
	case base == 0 || base%mmioAlign != 0:
		return MMIODevice{}, fmt.Errorf("base %#x is not a %d-byte aligned address", base, mmioAlign)
	case base+size > mmioLimit:
		return MMIODevice{}, fmt.Errorf("window %#x+%#x is not below 4 GiB (molt maps only the low 4 GiB)", base, size)
	case irq > maxIRQ:
		return MMIODevice{}, fmt.Errorf("irq %d is out of range", irq)
	}
	return MMIODevice{Base: uintptr(base), Size: uint32(size), IRQ: int(irq)}, nil
}

// parseSize reads a number with an optional K, M or G suffix (binary
// multiples, either case).
func parseSize(s string) (uint64, error) {
	shift := 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
		if shift != 0 {
			s = s[:n-1]
		}
	}
	v, err := parseNumber(s)
	if err != nil {
		return 0, err
	}
	if v > maxWindow {
		return v, nil // the caller reports it as too large, without overflow
	}
	return v << shift, nil
}

// parseNumber reads an unsigned number the way C's strtoull with base 0
// does: 0x or 0X for hexadecimal, a leading 0 for octal, else decimal. No
// sign, no underscores, no 0b or 0o.
func parseNumber(s string) (uint64, error) {
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	return v, nil
}
