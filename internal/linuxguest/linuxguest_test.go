package linuxguest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/internal/memcload"
	"github.com/molt-os/molt/qemu"
)

// readNewc parses a newc archive the way the kernel's unpacker does:
// magic, thirteen hex fields, name and data each padded to 4 bytes.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var es []entry
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) {
			t.Fatalf("archive ends at %d without a trailer", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, nameSize := field(1), field(6), field(9), field(10), field(11)
		if field(2) != 0 || field(3) != 0 || field(5) != 0 {
			t.Errorf("uid, gid or mtime not zero at %d: %q", off, h)
		}
		name := string(b[off+110 : off+110+int(nameSize)-1])
		if b[off+110+int(nameSize)-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataOff := align(off + 110 + int(nameSize))
		if name == "TRAILER!!!" {
			if dataOff != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-dataOff)
			}
			return es
		}
		es = append(es, entry{name: name, mode: mode, data: b[dataOff : dataOff+int(size)], major: rmaj, minor: rmin})
		off = align(dataOff + int(size))
	}
}

func TestNewc(t *testing.T) {
	build := func() []byte {
		a := archive{}
		for _, e := range []entry{
			{name: "/usr/bin/memcached", mode: modeRegular | 0o755, data: []byte("abcde")},
			{name: "init", mode: modeRegular | 0o755, data: []byte("#!/bin/sh\n")},
			{name: "dev/console", mode: modeCharDev | 0o600, major: 5, minor: 1},
			{name: "lib64/ld", mode: modeSymlink | 0o777, data: []byte("../lib/ld")},
		} {
			if err := a.add(e); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		if err := a.writeTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	b := build()
	if !bytes.Equal(b, build()) {
		t.Errorf("two archives of the same files differ")
	}
	var got []string
	for _, e := range readNewc(t, b) {
		got = append(got, fmt.Sprintf("%s %o %q %d,%d", e.name, e.mode, e.data, e.major, e.minor))
	}
	want := []string{
		`dev 40755 "" 0,0`,
		`dev/console 20600 "" 5,1`,
		`init 100755 "#!/bin/sh\n" 0,0`,
		`lib64 40755 "" 0,0`,
		`lib64/ld 120777 "../lib/ld" 0,0`,
		`usr 40755 "" 0,0`,
		`usr/bin 40755 "" 0,0`,
		`usr/bin/memcached 100755 "abcde" 0,0`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("archive holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	a := archive{}
	a.add(entry{name: "x", mode: modeRegular})
	if err := a.add(entry{name: "/x", mode: modeRegular}); err == nil {
		t.Errorf("adding x twice succeeded")
	}
}

func TestHelpers(t *testing.T) {
	if got := firstDepends("linux-image-6.1.0-57-amd64 (= 6.1.192-3)"); got != "linux-image-6.1.0-57-amd64" {
		t.Errorf("firstDepends = %q", got)
	}
	if got := firstDepends("a | b (>= 1), c"); got != "a" {
		t.Errorf("firstDepends = %q", got)
	}
	if moduleName("virtio-rng.ko") != "virtio_rng" {
		t.Errorf("moduleName(virtio-rng.ko) = %q", moduleName("virtio-rng.ko"))
	}
	if toggleUsr("/lib/x") != "/usr/lib/x" || toggleUsr("/usr/lib/x") != "/lib/x" {
		t.Errorf("toggleUsr wrong")
	}
	if got := debFile("d", Package{"busybox-static", "1:1.35.0-4"}); got != "d/busybox-static_1%3a1.35.0-4_amd64.deb" {
		t.Errorf("debFile = %q", got)
	}
}

func TestReadInTree(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib/x86_64-linux-gnu"), 0o755)
	os.MkdirAll(filepath.Join(root, "lib64"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libfoo.so.1.2"), []byte("elf"), 0o644)
	os.Symlink("libfoo.so.1.2", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libfoo.so.1"))
	os.Symlink("/lib/x86_64-linux-gnu/libfoo.so.1", filepath.Join(root, "lib64/foo"))
	for _, p := range []string{"/lib/x86_64-linux-gnu/libfoo.so.1", "/usr/lib/x86_64-linux-gnu/libfoo.so.1", "/lib64/foo"} {
		b, err := readInTree(root, p)
		if err != nil || string(b) != "elf" {
			t.Errorf("readInTree(%s) = %q, %v", p, b, err)
		}
	}
	if _, err := readInTree(root, "/lib/libbar.so"); err == nil {
		t.Errorf("readInTree of a missing file succeeded")
	}
}

func TestHostTSCkHz(t *testing.T) {
	if !haveTSC {
		t.Skip("no TSC on this architecture")
	}
	a, err := HostTSCkHz()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := HostTSCkHz()
	t.Logf("host TSC: %d kHz, then %d kHz", a, b)
	if a < 100_000 || a > 10_000_000 {
		t.Errorf("TSC %d kHz is not a plausible x86 TSC rate", a)
	}
	if d := float64(a-b) / float64(a); d > 0.01 || d < -0.01 {
		t.Errorf("two measurements differ by %.2f%%: %d and %d kHz", d*100, a, b)
	}
}

func TestOptionsRejectAuto(t *testing.T) {
	if _, err := (Guest{}).Options(BootConfig{HostPort: 1, Accel: "auto"}); err == nil {
		t.Errorf("Options accepted accel auto")
	}
	if _, err := (Guest{}).Options(BootConfig{Accel: "tcg"}); err == nil {
		t.Errorf("Options accepted no host port")
	}
}

// repoBuildDir is build/linuxguest at the module root, the cache that
// molt's tools share, so that test runs do not download 70 MB each.
func repoBuildDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "build", "linuxguest")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func needHostTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "dpkg-query", "ldd", "memcslap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: this test needs a Debian host with libmemcached-tools: %v", tool, err)
		}
	}
	if err := qemu.Available(); err != nil {
		t.Skip(err)
	}
}

// TestBootLoad builds the guest (or finds it cached), boots it under TCG
// and loads its memcached through the host forward with memcslap.
func TestBootLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a Linux guest under TCG (about 10 s, plus a 72 MB download the first time)")
	}
	needHostTools(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	dir := repoBuildDir(t)

	start := time.Now()
	g, err := Build(ctx, dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Build: %v (cached %v): %s", time.Since(start).Round(time.Millisecond), g.Cached, pkgList(g.Packages))
	start = time.Now()
	g2, err := Build(ctx, dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second Build: %v", time.Since(start).Round(time.Millisecond))
	if !g2.Cached || g2.Initrd != g.Initrd {
		t.Errorf("second Build did not use the cache: %+v", g2)
	}
	checkInitrd(t, g)

	port := freePort(t)
	start = time.Now()
	// Under a minute on a loaded 2-core host; a guest that cannot find
	// its NIC would otherwise sit until the test's deadline.
	vm, err := Boot(ctx, g, BootConfig{HostPort: port, Accel: "tcg"}, qemu.Logf(t.Logf), qemu.Timeout(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		vm.Kill()
		vm.Wait()
		t.Logf("reproduce with: %s", vm.CommandLine())
	}()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	version, err := memcload.WaitReady(wctx, vm.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest memcached %s answers on %s; QEMU start to ready line %v, to answering %v",
		version, vm.Addr, vm.Ready.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, test := range []string{"set", "get"} {
		r, err := memcload.Run(ctx, vm.Addr, memcload.Options{Concurrency: 4, ExecuteNumber: 2000, Test: test})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("guest under TCG: %v", r)
		if r.Ops != 8000 {
			t.Errorf("%s: %d ops; want 8000", test, r.Ops)
		}
	}
}

// checkInitrd looks inside the built initramfs for what /init needs.
func checkInitrd(t *testing.T, g Guest) {
	f, err := os.Open(g.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range readNewc(t, b) {
		have[e.name] = true
	}
	want := []string{"init", "bin/busybox", "usr/bin/memcached", "dev/console", "lib64/ld-linux-x86-64.so.2"}
	for _, m := range []string{"virtio", "virtio_ring", "virtio_mmio", "failover", "net_failover", "virtio_net"} {
		found := false
		for n := range have {
			if strings.HasPrefix(n, "lib/modules/"+g.Release+"/") && strings.HasSuffix(n, "/"+m+".ko") {
				found = true
			}
		}
		if !found {
			t.Errorf("initramfs lacks module %s", m)
		}
	}
	for _, n := range want {
		if !have[n] {
			t.Errorf("initramfs lacks %s", n)
		}
	}
}
