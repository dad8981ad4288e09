package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/internal/syncbuf"
	"github.com/molt-os/molt/qemu"
	"github.com/molt-os/molt/updater/handoff"
)

// image is a built jump test image: its ELF and its signed bundle.
type image struct{ elf, bundle string }

// images builds the jump test image twice, as versions A and B. The
// bundles are signed with a throwaway key: jumptest reads them unverified.
func images(t *testing.T) (a, b image) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	ae, ab := qemu.BuildSignedT(t, "../..", "./cmd/jumptest", "A", key)
	be, bb := qemu.BuildSignedT(t, "../..", "./cmd/jumptest", "B", key)
	return image{ae, ab}, image{be, bb}
}

// boot runs A cold with A's bundle in slot 0 and B's in slot 1, plus
// extra options, and returns the console once the VM has ended well.
func boot(t *testing.T, a, b image, cmdline string, extra ...qemu.Option) string {
	t.Helper()
	var console syncbuf.Buffer
	opts := append([]qemu.Option{
		qemu.Kernel(a.elf), qemu.Append(cmdline), qemu.Console(&console),
		qemu.Loader(a.bundle, layout.ImageStoreBase), qemu.Loader(b.bundle, layout.ImageStoreBase+layout.ImageSlotSize),
		qemu.Timeout(3 * time.Minute),
	}, extra...)
	vm := qemu.StartT(t, opts...)
	res, err := vm.Wait()
	if err != nil || !res.OK() {
		t.Fatalf("VM: %s (%v)\nconsole:\n%s", res.Describe(), err, console.String())
	}
	return console.String()
}

var warmLine = regexp.MustCompile(`jumptest: (\w+) warm generation (\d+) from (\w+), handoff (\d+) bytes, clock \+(\S+), jump: .* total (\S+)`)

// TestHops jumps A → B → A ... six times. Each kernel checks what it
// inherited (region valid, history naming it as the target, monotonic
// clock continuing) and fails the run if anything is off; the test checks
// that each hop arrived in the right image with the right generation.
func TestHops(t *testing.T) {
	a, b := images(t)
	const hops = 6
	out := boot(t, a, b, fmt.Sprintf("jumptest.hops=%d", hops))
	if !strings.Contains(out, "jumptest: A cold: region absent") {
		t.Errorf("the cold boot did not report an absent region:\n%s", out)
	}
	got := warmLine.FindAllStringSubmatch(out, -1)
	if len(got) != hops {
		t.Fatalf("%d warm boots, want %d:\n%s", len(got), hops, out)
	}
	for i, m := range got {
		wantTo, wantFrom := "B", "A"
		if i%2 == 1 {
			wantTo, wantFrom = "A", "B"
		}
		if m[1] != wantTo || m[3] != wantFrom || m[2] != fmt.Sprint(i+1) {
			t.Errorf("hop %d: %q; want %s from %s, generation %d", i+1, m[0], wantTo, wantFrom, i+1)
		}
		t.Logf("hop %d: %s → %s: clock +%s across the jump, jump total %s", i+1, m[3], m[1], m[5], m[6])
	}
	if !strings.Contains(out, fmt.Sprintf("done after %d hops", hops)) {
		t.Errorf("no final report:\n%s", out)
	}
}

// TestColdBootIgnoresRegion boots with garbage, and then with a valid but
// stale region, in the handoff region. Without the start info's handoff
// module (QEMU's own start info never has one) the kernel must boot cold,
// say why, and not act on the region.
func TestColdBootIgnoresRegion(t *testing.T) {
	a, b := images(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	buf := make([]byte, 64<<10)
	rand.Read(buf)
	if err := os.WriteFile(garbage, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	enc, err := handoff.NewEncoder(make([]byte, 4096), handoff.Header{Generation: 7})
	if err != nil {
		t.Fatal(err)
	}
	valid, err := enc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale")
	if err := os.WriteFile(stale, valid, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, file, want string }{
		{"garbage", garbage, "jumptest: A cold: region absent (handoff: bad magic"},
		{"stale", stale, "jumptest: A cold: region valid (<nil>); starting fresh"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// jumptest.hops=1: after the cold boot, one hop, which must
			// arrive as generation 1, not 8.
			out := boot(t, a, b, "jumptest.hops=1", qemu.Loader(c.file, layout.HandoffBase))
			if !strings.Contains(out, c.want) {
				t.Errorf("console lacks %q:\n%s", c.want, out)
			}
			if !strings.Contains(out, "jumptest: B warm generation 1 from A") {
				t.Errorf("the hop after the cold boot is not generation 1:\n%s", out)
			}
		})
	}
}

// TestPurgatoryFits checks that the purgatory blobs fit the room Jump
// copies for them (jump.go: purgatoryMax), and that the jump constants in
// the assembly match boot/layout.
func TestPurgatoryFits(t *testing.T) {
	a, _ := images(t)
	f, err := elf.Open(a.elf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, s := range syms {
		switch s.Name {
		case "github.com/molt-os/molt/kernel.purgatory64.abi0", "github.com/molt-os/molt/kernel.purgatory32.abi0":
			seen++
			if s.Size == 0 || s.Size > 0x800 {
				t.Errorf("%s is %d bytes; Jump copies 0x800", s.Name, s.Size)
			}
		}
	}
	if seen != 2 {
		t.Errorf("found %d of the 2 purgatory symbols", seen)
	}
}

// TestRollbackOnPanic: the kernel that inherits generation 2 (image B)
// arms a rollback to A and panics; the kernel must not halt but jump back
// into A, which finds the rollback handoff (generation 3, flagged, the
// undone update recorded as rolled back) and the stop code of the Go
// panic (2).
func TestRollbackOnPanic(t *testing.T) {
	a, b := images(t)
	out := boot(t, a, b, "jumptest.hops=5 jumptest.panic=1")
	for _, want := range []string{
		"jumptest: B warm generation 1 from A",
		"jumptest: B armed a rollback to slot 0",
		"panic: jumptest: deliberate panic with a rollback armed",
		"before the update was committed: rolling back to the previous image",
		"jumptest: A warm generation 2 from A",
		"jumptest: A rolled back into at generation 2: the next kernel stopped with code 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", out)
	}
}
