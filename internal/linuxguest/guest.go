// Package linuxguest builds and boots the Linux guest that molt's kv
// service is benchmarked against: Debian's memcached on Debian's kernel,
// under the same QEMU microvm settings that package qemu gives molt, so
// that the comparison is between the two systems and not between two ways
// of running QEMU.
//
// # What the guest is made of
//
// Everything comes from Debian packages, fetched at run time with
// apt-get download (which checks them against the signed package lists)
// into a cache directory, and unpacked with dpkg-deb -x:
//
//   - linux-image-amd64's kernel package: vmlinuz, and the modules virtio,
//     virtio_ring, virtio_mmio, failover, net_failover and virtio_net
//     (Debian builds virtio-mmio and virtio-net as modules; the list is
//     virtio_mmio and virtio_net plus the dependencies their .modinfo
//     names);
//   - busybox-static: the shell and tools of /init;
//   - memcached;
//   - the packages that ship the libraries ldd lists for memcached
//     (libc6, libevent-2.1-7, libsasl2-2, libssl3 on Debian 12). The
//     owners are found with dpkg -S on the host, but the files are taken
//     from the candidate .debs, not from the host's /lib: the guest is then
//     a function of the package versions alone, which is what the cache is
//     keyed by.
//
// These are packed into a gzip-compressed newc initramfs (see cpio.go)
// holding /init (init.sh), busybox, memcached, its libraries and the
// modules; there is no systemd and no root file system. /init loads the
// modules, gives eth0 QEMU user networking's guest address
// 10.0.2.15/24 with gateway 10.0.2.2, starts memcached on port 11211 with
// -m 64 -t 1 (one worker thread, like molt's one CPU) and prints
// ReadyMarker on the console once memcached listens. If anything fails it
// prints "linuxguest: FAILED: ..." and powers off, which ends QEMU.
//
// Booting needs ACPI on microvm, unlike molt: see Guest.Options.
//
// # Cache
//
// Build resolves the candidate versions with apt-cache (no network), then
// keys the guest by them and by init.sh: the guest lives in
// <dir>/guest-<key>/ and a second Build with the same versions returns it
// without downloading or packing anything. New package versions (a
// security update after apt-get update) make a new key. The .debs are kept
// in <dir>/debs/. Concurrent Builds on one dir (go test runs packages in
// parallel) take turns on a lock file.
package linuxguest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// ReadyMarker is the console line /init prints once memcached listens.
const ReadyMarker = "linuxguest: memcached ready on 10.0.2.15:11211"

// GuestPort is the port memcached serves in the guest.
const GuestPort = 11211

//go:embed init.sh
var initScript string

// layoutVersion changes when Build packs the same packages differently.
const layoutVersion = "2"

// Guest is a built Linux guest.
type Guest struct {
	Kernel  string // vmlinuz, for qemu.Kernel
	Initrd  string // gzip-compressed newc initramfs, for -initrd
	Release string // kernel release, e.g. 6.1.0-57-amd64
	// Packages are the Debian packages the guest was built from.
	Packages []Package
	// Cached reports that Build found the guest already built.
	Cached bool
}

// Build returns the guest for the current candidate versions of its
// packages, building it in dir (for example build/linuxguest) if it is
// not there yet. logf receives progress lines; it may be nil.
func Build(ctx context.Context, dir string, logf func(format string, args ...any)) (Guest, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	debDir := filepath.Join(dir, "debs")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return Guest{}, fmt.Errorf("linuxguest: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, "lock"), logf)
	if err != nil {
		return Guest{}, fmt.Errorf("linuxguest: %w", err)
	}
	defer unlock()

	work, err := os.MkdirTemp(dir, "work-")
	if err != nil {
		return Guest{}, fmt.Errorf("linuxguest: %w", err)
	}
	defer os.RemoveAll(work)

	b := &builder{ctx: ctx, debDir: debDir, work: work, logf: logf, trees: map[string]string{}}
	g, err := b.resolve()
	if err != nil {
		return Guest{}, fmt.Errorf("linuxguest: %w", err)
	}
	key := cacheKey(g.Packages)
	out := filepath.Join(dir, "guest-"+key)
	g.Kernel, g.Initrd = filepath.Join(out, "vmlinuz"), filepath.Join(out, "initrd.cpio.gz")
	if _, err := os.Stat(g.Initrd); err == nil {
		g.Cached = true
		logf("linuxguest: using cached guest %s (kernel %s) in %v", out, g.Release, time.Since(start).Round(time.Millisecond))
		return g, nil
	}
	logf("linuxguest: building guest %s from %s", out, pkgList(g.Packages))
	if err := b.build(g, out); err != nil {
		return Guest{}, fmt.Errorf("linuxguest: %w", err)
	}
	logf("linuxguest: built guest in %v", time.Since(start).Round(time.Millisecond))
	return g, nil
}

// builder holds the state of one Build.
type builder struct {
	ctx    context.Context
	debDir string
	work   string
	logf   func(string, ...any)
	trees  map[string]string // package name -> extracted tree

	kernel, busybox, memcached Package
	libs                       map[string]string // guest path -> package name
}

// resolve finds the packages and their candidate versions. It downloads
// and unpacks memcached (small) to ask ldd for its libraries.
func (b *builder) resolve() (Guest, error) {
	top, fields, err := candidates(b.ctx, "linux-image-amd64", "busybox-static", "memcached")
	if err != nil {
		return Guest{}, err
	}
	deps := fields["linux-image-amd64"]["Depends"]
	kname := firstDepends(deps)
	release, ok := strings.CutPrefix(kname, "linux-image-")
	if !ok {
		return Guest{}, fmt.Errorf("linux-image-amd64 depends on %q, want a linux-image-<release> package", deps)
	}
	b.busybox, b.memcached = top["busybox-static"], top["memcached"]
	mtree, err := b.tree(b.memcached)
	if err != nil {
		return Guest{}, err
	}
	paths, err := sharedLibs(b.ctx, filepath.Join(mtree, "usr/bin/memcached"))
	if err != nil {
		return Guest{}, err
	}
	if b.libs, err = owners(b.ctx, paths); err != nil {
		return Guest{}, err
	}
	names := []string{kname}
	for _, pkg := range b.libs {
		if !slices.Contains(names, pkg) {
			names = append(names, pkg)
		}
	}
	rest, _, err := candidates(b.ctx, names...)
	if err != nil {
		return Guest{}, err
	}
	b.kernel = rest[kname]
	g := Guest{Release: release, Packages: []Package{b.busybox, b.memcached}}
	for _, p := range rest {
		g.Packages = append(g.Packages, p)
	}
	sort.Slice(g.Packages, func(i, j int) bool { return g.Packages[i].Name < g.Packages[j].Name })
	return g, nil
}

// tree downloads p if needed and unpacks it under the work directory.
func (b *builder) tree(p Package) (string, error) {
	if t, ok := b.trees[p.Name]; ok {
		return t, nil
	}
	deb, err := fetch(b.ctx, b.debDir, p, b.logf)
	if err != nil {
		return "", err
	}
	t := filepath.Join(b.work, p.Name)
	if err := extract(b.ctx, deb, t); err != nil {
		return "", err
	}
	b.trees[p.Name] = t
	return t, nil
}

func (b *builder) build(g Guest, out string) error {
	a := archive{}
	addFile := func(tree, guestPath string, mode uint32) error {
		data, err := readInTree(tree, guestPath)
		if err != nil {
			return err
		}
		return a.add(entry{name: guestPath, mode: modeRegular | mode, data: data})
	}

	b.logf("linuxguest: unpacking %s", b.kernel)
	ktree, err := b.tree(b.kernel)
	if err != nil {
		return err
	}
	modDir := filepath.Join(ktree, "lib/modules", g.Release)
	mods, err := resolveModules(modDir, guestModules)
	if err != nil {
		return err
	}
	var names []string
	for _, m := range mods {
		data, err := os.ReadFile(m.path)
		if err != nil {
			return err
		}
		if err := a.add(entry{name: "lib/modules/" + g.Release + "/" + m.rel, mode: modeRegular | 0o644, data: data}); err != nil {
			return err
		}
		names = append(names, m.name)
	}
	b.logf("linuxguest: modules in load order: %s", strings.Join(names, " "))

	bbtree, err := b.tree(b.busybox)
	if err != nil {
		return err
	}
	if err := addFile(bbtree, "/bin/busybox", 0o755); err != nil {
		return err
	}
	mtree, err := b.tree(b.memcached)
	if err != nil {
		return err
	}
	if err := addFile(mtree, "/usr/bin/memcached", 0o755); err != nil {
		return err
	}
	libPaths := make([]string, 0, len(b.libs))
	for p := range b.libs {
		libPaths = append(libPaths, p)
	}
	sort.Strings(libPaths)
	for _, p := range libPaths {
		t, err := b.tree(Package{Name: b.libs[p], Version: versionOf(g.Packages, b.libs[p])})
		if err != nil {
			return err
		}
		if err := addFile(t, p, 0o755); err != nil {
			return fmt.Errorf("library from %s: %w", b.libs[p], err)
		}
	}

	script, err := renderInit(g.Release, mods)
	if err != nil {
		return err
	}
	for _, e := range []entry{
		{name: "init", mode: modeRegular | 0o755, data: script},
		// The kernel opens /dev/console for init's standard streams
		// before /init can mount devtmpfs.
		{name: "dev/console", mode: modeCharDev | 0o600, major: 5, minor: 1},
		{name: "etc/passwd", mode: modeRegular | 0o644, data: []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{name: "etc/group", mode: modeRegular | 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{name: "etc/packages", mode: modeRegular | 0o644, data: []byte(pkgList(g.Packages) + "\n")},
	} {
		if err := a.add(e); err != nil {
			return err
		}
	}
	for _, d := range []string{"proc", "sys", "bin", "sbin", "usr/sbin"} {
		if err := a.add(entry{name: d, mode: modeDir | 0o755}); err != nil {
			return err
		}
	}
	if err := a.add(entry{name: "tmp", mode: modeDir | 0o1777}); err != nil {
		return err
	}

	var raw, gz bytes.Buffer
	if err := a.writeTo(&raw); err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		return err
	}
	b.logf("linuxguest: initramfs: %d entries, %.1f MB, %.1f MB gzipped", len(a), float64(raw.Len())/1e6, float64(gz.Len())/1e6)

	// Fill a temporary directory and rename it: a guest directory exists
	// only complete.
	tmp, err := os.MkdirTemp(filepath.Dir(out), "guest-tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	vmlinuz, err := os.ReadFile(filepath.Join(ktree, "boot", "vmlinuz-"+g.Release))
	if err != nil {
		return fmt.Errorf("kernel image: %w", err)
	}
	for name, data := range map[string][]byte{
		"vmlinuz":        vmlinuz,
		"initrd.cpio.gz": gz.Bytes(),
		"packages.txt":   []byte(pkgList(g.Packages) + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	os.RemoveAll(out) // a partial directory from an older layout, if any
	return os.Rename(tmp, out)
}

// renderInit fills init.sh's module list.
func renderInit(release string, mods []kmod) ([]byte, error) {
	t, err := template.New("init").Parse(initScript)
	if err != nil {
		return nil, fmt.Errorf("init.sh: %w", err)
	}
	type mod struct{ Name, Rel string }
	data := struct {
		Release string
		Modules []mod
		Marker  string
	}{Release: release, Marker: strings.TrimPrefix(ReadyMarker, "linuxguest: ")}
	for _, m := range mods {
		data.Modules = append(data.Modules, mod{m.name, m.rel})
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("init.sh: %w", err)
	}
	return b.Bytes(), nil
}

// cacheKey names a guest by what goes into it.
func cacheKey(pkgs []Package) string {
	h := sha256.New()
	fmt.Fprintf(h, "layout %s\n%s\n", layoutVersion, initScript)
	for _, p := range pkgs {
		fmt.Fprintf(h, "%s=%s\n", p.Name, p.Version)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func pkgList(pkgs []Package) string {
	s := make([]string, len(pkgs))
	for i, p := range pkgs {
		s[i] = p.Name + "=" + p.Version
	}
	return strings.Join(s, " ")
}

func versionOf(pkgs []Package, name string) string {
	for _, p := range pkgs {
		if p.Name == name {
			return p.Version
		}
	}
	return ""
}

// lock takes an exclusive flock on path, waiting while another process
// holds it, until ctx is done.
func lock(ctx context.Context, path string, logf func(string, ...any)) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !waited {
			logf("linuxguest: waiting for another build holding %s", path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
