package qemu

import (
	"path/filepath"
	"testing"

	"github.com/molt-os/molt/boot/image"
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
