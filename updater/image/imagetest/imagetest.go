// Package imagetest provides real, post-linked kernel images and fixed keys
// for tests of the update path (updater/image, updater/push, molt push).
package imagetest

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	bootimagetest "github.com/molt-os/molt/boot/image/imagetest"
)

// Key returns a fixed ed25519 key derived from seed, so that test bundles
// are reproducible.
func Key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// TinyKernel links boot/image/imagetest's tiny kernel with this tree's
// kernel/imageinfo.go added (so it declares the handoff formats the real
// kernel declares), post-links it, and returns the ELF bytes. It skips the
// test when there is no go command.
func TinyKernel(t testing.TB, version string) []byte {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("imagetest: cannot find its own source file")
	}
	info, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "..", "kernel", "imageinfo.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := bootimagetest.WriteModule(dir, bootimagetest.Kernel{Version: version}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kernel", "imageinfo.go"), info, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "molt.elf")
	if _, err := bootimagetest.BuildModule(t.Context(), dir, out, version); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
