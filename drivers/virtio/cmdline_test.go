package virtio

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    []MMIODevice
	}{
		{"", nil},
		{"molt.quiet console=ttyS0", nil},
		// What QEMU 7.2 microvm,acpi=off appends for two virtio-net devices.
		{"hello virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=512@0xfeb00c00:11", []MMIODevice{
			{Base: 0xfeb00e00, Size: 512, IRQ: 12},
			{Base: 0xfeb00c00, Size: 512, IRQ: 11},
		}},
		{" virtio_mmio.device=4K@0xd0000000:5:3 ", []MMIODevice{{Base: 0xd0000000, Size: 4096, IRQ: 5}}},
		{"virtio_mmio.device=0x200@4096:7", []MMIODevice{{Base: 4096, Size: 512, IRQ: 7}}},
		{"virtio_mmio.device=1k@010000:0", []MMIODevice{{Base: 0o10000, Size: 1024, IRQ: 0}}},
		{"virtio_mmio.device=1M@0xfeb00000:12", []MMIODevice{{Base: 0xfeb00000, Size: 1 << 20, IRQ: 12}}},
		// Words after "--" are the init process's.
		{"virtio_mmio.device=512@0xfeb00e00:12 -- virtio_mmio.device=512@0xfeb00c00:11", []MMIODevice{
			{Base: 0xfeb00e00, Size: 512, IRQ: 12},
		}},
		// Other parameters with a similar name are not ours.
		{"virtio_mmio.devices=512@0x1000:1 xvirtio_mmio.device=512@0x1000:1", nil},
	} {
		got, err := ParseCmdline(tc.cmdline)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCmdline(%q) = %v, %v; want %v, nil", tc.cmdline, got, err, tc.want)
		}
	}
}

func TestParseCmdlineErrors(t *testing.T) {
	for _, tc := range []struct {
		word, want string
	}{
		{"virtio_mmio.device=", "want <size>@<base>:<irq>"},
		{"virtio_mmio.device=512", "want <size>@<base>:<irq>"},
		{"virtio_mmio.device=512@0xfeb00e00", "want <size>@<base>:<irq>"},
		{"virtio_mmio.device=@0xfeb00e00:12", "size"},
		{"virtio_mmio.device=x@0xfeb00e00:12", "size"},
		{"virtio_mmio.device=-512@0xfeb00e00:12", "size"},
		{"virtio_mmio.device=255@0xfeb00e00:12", "smaller than"},
		{"virtio_mmio.device=2M@0xfeb00e00:12", "larger than"},
		{"virtio_mmio.device=99999999999999999999@0x1000:1", "size"},
		{"virtio_mmio.device=512@:12", "base"},
		{"virtio_mmio.device=512@0x:12", "base"},
		{"virtio_mmio.device=512@0xfeb0_0e00:12", "base"},
		{"virtio_mmio.device=512@0b1:12", "base"},
		{"virtio_mmio.device=512@0:12", "aligned"},
		{"virtio_mmio.device=512@0xfeb00e01:12", "aligned"},
		{"virtio_mmio.device=512@0x100000000:12", "below 4 GiB"},
		{"virtio_mmio.device=512@0xfffffe04:12", "below 4 GiB"},
		{"virtio_mmio.device=512@0xfeb00e00:", "irq"},
		{"virtio_mmio.device=512@0xfeb00e00:0x12", "irq"},
		{"virtio_mmio.device=512@0xfeb00e00:+12", "irq"},
		{"virtio_mmio.device=512@0xfeb00e00:256", "out of range"},
		{"virtio_mmio.device=512@0xfeb00e00:12:x", "device id"},
		{"virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=1K@0xfeb00c00:11", "overlaps"},
	} {
		devs, err := ParseCmdline("a " + tc.word)
		if !errors.Is(err, ErrCmdline) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCmdline(%q) = %v, %v; want an ErrCmdline mentioning %q", tc.word, devs, err, tc.want)
		}
	}
	many := strings.Repeat("virtio_mmio.device=512@0x1000:1 ", maxWords+1)
	if _, err := ParseCmdline(many); err == nil {
		t.Errorf("ParseCmdline of %d words: no error", maxWords+1)
	}
}

// FuzzParseCmdline checks that ParseCmdline never panics and that whatever
// it accepts is within the limits it promises.
func FuzzParseCmdline(f *testing.F) {
	for _, s := range []string{
		"virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=512@0xfeb00c00:11",
		"virtio_mmio.device=4K@0xd0000000:5:3",
		"virtio_mmio.device=1G@0x1000:1",
		"virtio_mmio.device=512@0xfeb00e00:12 -- x",
		"virtio_mmio.device=0x@0x:0:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		devs, err := ParseCmdline(s)
		if err != nil && !errors.Is(err, ErrCmdline) {
			t.Fatalf("error %v does not wrap ErrCmdline", err)
		}
		for i, d := range devs {
			if d.Size < minWindow || d.Size > maxWindow || d.Base == 0 || d.Base%4 != 0 ||
				uint64(d.Base)+uint64(d.Size) > mmioLimit || d.IRQ < 0 || d.IRQ > maxIRQ {
				t.Fatalf("ParseCmdline(%q) accepted %+v", s, d)
			}
			for _, o := range devs[:i] {
				if o.Base < d.Base+uintptr(d.Size) && d.Base < o.Base+uintptr(o.Size) {
					t.Fatalf("ParseCmdline(%q) accepted overlapping %+v and %+v", s, o, d)
				}
			}
		}
	})
}
