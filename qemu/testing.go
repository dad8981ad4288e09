package qemu

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
	updimage "github.com/molt-os/molt/updater/image"
)

// BuildT builds package pkg of the module in dir (a path relative to the
// test's directory, such as "../..") as a kernel image for a test that
// boots it, and returns the image's path in t.TempDir(). It skips the test
// under -short or when QEMU is missing, since the test could not boot the
// image, and fails it if the build fails. Go's build cache makes repeated
// builds of the same package cheap.
func BuildT(t testing.TB, dir, pkg, version string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg)+".elf")
	if _, err := image.Build(t.Context(), image.BuildOptions{Dir: dir, Package: pkg, Output: out, Version: version}); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return out
}

// StartT starts a VM for a test: the console goes to t.Logf line by line
// (unless a Logf option says otherwise), QEMU dies with the test's context,
// and at cleanup the command line is logged for reproduction. The test fails
// if QEMU cannot start, or if Wait was never called.
func StartT(t testing.TB, opts ...Option) *VM {
	t.Helper()
	opts = append([]Option{Logf(t.Logf)}, opts...)
	v, err := Start(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !v.waited.Load() {
			t.Errorf("qemu: the test never called Wait on its VM")
			v.Kill()
			v.Wait()
		}
		t.Logf("qemu: reproduce with: %s", v.CommandLine())
	})
	return v
}

// BuildSignedT is BuildT for an image that takes self-updates: it trusts
// key's public key (stamped with -X, as molt build does), and its signed
// bundle (updater/image) is written next to it. tags are build tags. It
// returns the ELF's and the bundle's paths.
func BuildSignedT(t testing.TB, dir, pkg, version string, key ed25519.PrivateKey, tags ...string) (elfPath, bundlePath string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	tmp := t.TempDir()
	elfPath = filepath.Join(tmp, filepath.Base(pkg)+".elf")
	trust := layout.TrustedKeysVar + "=" + updimage.FormatTrustedKeys(key.Public().(ed25519.PublicKey))
	var env []string
	if len(tags) > 0 {
		env = append(env, "GOFLAGS=-tags="+strings.Join(tags, ","))
	}
	if _, err := image.Build(t.Context(), image.BuildOptions{Dir: dir, Package: pkg, Output: elfPath, Version: version, Vars: []string{trust}, Env: env}); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	elf, err := os.ReadFile(elfPath)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := updimage.Sign(elf, key)
	if err != nil {
		t.Fatalf("sign %s: %v", elfPath, err)
	}
	bundlePath = filepath.Join(tmp, filepath.Base(pkg)+".img")
	if err := os.WriteFile(bundlePath, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	return elfPath, bundlePath
}
