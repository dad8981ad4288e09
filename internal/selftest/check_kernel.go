package selftest

import (
	"time"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/kernel"
)

// checkKernelInfo checks the kernel API an image sees (kernel/api.go). It is
// VMOnly: on a host these functions return deliberate placeholders.
func checkKernelInfo(t *T) {
	if !kernel.Booted() {
		t.Fatalf("kernel.Booted() = false inside the VM")
	}
	if v := kernel.Version(); v == "" {
		t.Errorf("kernel.Version() is empty")
	} else {
		t.Logf("version %s", v)
	}
	if id := kernel.BuildID(); !isLowerHex(id, 64) {
		// "unstamped" means the post-link step did not run on this image.
		t.Errorf("kernel.BuildID() = %q; want 64 lowercase hex digits", id)
	} else {
		t.Logf("build id %s", id)
	}

	ms := kernel.ReadMemStats()
	t.Logf("memstats %+v", ms)
	if ms.RAMBytes == 0 {
		t.Errorf("MemStats.RAMBytes = 0")
	}
	if ms.FramesInUse == 0 {
		t.Errorf("MemStats.FramesInUse = 0; the Go heap alone needs frames")
	}
	if ms.RAMBytes != 0 && ms.FramesInUse*layout.PageSize > ms.RAMBytes {
		t.Errorf("FramesInUse %d × 4 KiB > RAMBytes %d", ms.FramesInUse, ms.RAMBytes)
	}

	const nap = 10 * time.Millisecond
	u1 := kernel.Uptime()
	time.Sleep(nap)
	u2 := kernel.Uptime()
	t.Logf("uptime %v -> %v across a %v sleep", u1, u2, nap)
	if u1 <= 0 {
		t.Errorf("kernel.Uptime() = %v; want > 0", u1)
	}
	if u2-u1 < nap {
		t.Errorf("kernel.Uptime() advanced %v across time.Sleep(%v); want >= %v", u2-u1, nap, nap)
	}
}

// isLowerHex reports whether s is n lowercase hexadecimal digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
