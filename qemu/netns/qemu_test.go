package netns_test

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/qemu"
	"github.com/molt-os/molt/qemu/netns"
)

// TestGuestARP boots drivers/virtio/internal/vmnet on a TAP interface in a
// namespace whose Linux side is 10.0.2.2, the gateway vmnet hard-codes (it
// uses 10.0.2.15 itself). vmnet resolves 10.0.2.2 with ARP several times and
// sends a burst of 640 requests; Linux answering with the TAP interface's MAC
// shows frames flowing both ways. Skipped with -short or without QEMU.
func TestGuestARP(t *testing.T) {
	needRoot(t)
	img := qemu.BuildT(t, "../..", "./drivers/virtio/internal/vmnet", "")
	ns := netns.NewT(t, netns.IPv4("10.0.2.2/24", "10.0.2.15/24"))
	const guestMAC = "52:54:00:00:02:0f"
	var con strings.Builder
	vm := ns.StartT(t, qemu.Kernel(img), qemu.Accel("tcg"), qemu.Timeout(3*time.Minute),
		qemu.Append("molt.quiet --"), qemu.TAP(ns.TAP, guestMAC), qemu.Console(&con))
	r, err := vm.Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := con.String()
	if r.Code != 0 || !strings.Contains(out, "vmnet: PASS") {
		t.Fatalf("vmnet: %s; console:\n%s", r.Describe(), out)
	}
	tapMAC := hex.EncodeToString(ns.MAC)
	for _, want := range []string{
		"attached: mac " + strings.ReplaceAll(guestMAC, ":", ""),
		"pull: 10.0.2.2 is at " + tapMAC,
		"burst: 640 replies to 640 requests",
		"re-attached, push: 10.0.2.2 is at " + tapMAC,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	// The frames went through this namespace's TAP interface, not one QEMU
	// made elsewhere.
	rx := run(t, ns.Command(t.Context(), "cat", "/sys/class/net/"+ns.TAP+"/statistics/rx_packets"))
	if n, err := strconv.Atoi(strings.TrimSpace(rx)); err != nil || n < 643 {
		t.Errorf("%s in %s received %q packets, want at least 643 (vmnet sent 643 ARP requests)", ns.TAP, ns.Name, rx)
	}
}
