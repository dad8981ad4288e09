package net_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/qemu"
)

// TestQEMU boots drivers/virtio/internal/vmnet on QEMU microvm with a
// user-network virtio-net device, through the modern and the legacy
// virtio-mmio interface: the driver attaches with kernel.DMA and
// kernel.OpenIRQ, reads the MAC QEMU was given, resolves the gateway with
// ARP, pushes 640 requests through both rings, re-initialises, shuts down
// and re-attaches. Skipped with -short or without QEMU.
func TestQEMU(t *testing.T) {
	img := qemu.BuildT(t, "../../..", "./drivers/virtio/internal/vmnet", "")
	for _, legacy := range []bool{false, true} {
		name := "modern"
		if legacy {
			name = "legacy"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := []qemu.Option{
				qemu.Kernel(img), qemu.Accel("tcg"), qemu.Timeout(3 * time.Minute),
				qemu.Append("molt.quiet --"),
				qemu.Device("virtio-net-device,netdev=n0,mac=52:54:00:12:34:56"),
				qemu.Extra("-netdev", "user,id=n0"),
			}
			if legacy {
				// Overrides the launcher's force-legacy=false: the last
				// -global for a property wins.
				opts = append(opts, qemu.Extra("-global", "virtio-mmio.force-legacy=true"))
			}
			var con strings.Builder
			opts = append(opts, qemu.Console(&con))
			v := qemu.StartT(t, opts...)
			r, err := v.Wait()
			if err != nil {
				t.Fatal(err)
			}
			out := con.String()
			if r.Code != 0 || !strings.Contains(out, "vmnet: PASS") {
				t.Fatalf("vmnet: %s; console:\n%s", r.Describe(), out)
			}
			for _, want := range []string{
				`virtio-mmio 512 bytes at 0xfeb00e00, irq 12: virtio-mmio v` + map[bool]string{false: "2", true: "1"}[legacy],
				`attached: mac 525400123456 legacy ` + map[bool]string{false: "false", true: "true"}[legacy] + ` link true`,
				`pull: 10\.0\.2\.2 is at 52550a000202`,
				`burst: 640 replies to 640 requests`,
				`after reinit: 10\.0\.2\.2 is at`,
				`re-attached, push: 10\.0\.2\.2 is at`,
			} {
				if !regexp.MustCompile(want).MatchString(out) {
					t.Errorf("console lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
