package image_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/image/imagetest"
	"github.com/molt-os/molt/boot/layout"
)

// These tests link real images with the go command (package imagetest).

func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH")
	}
}

func TestBuildRealImage(t *testing.T) {
	needGo(t)
	for _, plain := range []bool{false, true} {
		name := "abi0 entry"
		if plain {
			name = "plain entry"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := imagetest.WriteModule(dir, imagetest.Kernel{PlainEntry: plain}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "sub", "molt.elf") // parent created by Build
			r, err := imagetest.BuildModule(t.Context(), dir, out, "v9.8.7")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", r)

			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			syms, err := f.Symbols()
			if err != nil {
				t.Fatal(err)
			}
			var entrySym elf.Symbol
			for _, s := range syms {
				if s.Name == r.EntrySym {
					entrySym = s
				}
			}
			wantSym := layout.EntrySymbol + ".abi0"
			if plain {
				wantSym = layout.EntrySymbol
			}
			if r.EntrySym != wantSym || r.Entry != entrySym.Value || r.Entry != f.Entry {
				t.Errorf("entry %s %#x; want %s = e_entry %#x", r.EntrySym, r.Entry, wantSym, f.Entry)
			}
			if r.ImageStart != layout.ImageBase || r.ImageEnd <= layout.ImageText || r.ImageEnd > layout.ImageLimit {
				t.Errorf("image %#x-%#x", r.ImageStart, r.ImageEnd)
			}
			if r.Version != "v9.8.7" {
				t.Errorf("Version = %q; want v9.8.7 (stamped with -X)", r.Version)
			}
			var note *elf.Prog
			for _, p := range f.Progs {
				if p.Type == elf.PT_NOTE {
					note = p
					break
				}
			}
			b := make([]byte, 24)
			if _, err := note.ReadAt(b, 0); err != nil || note.Filesz != 24 {
				t.Fatalf("PT_NOTE %+v: %v", note.ProgHeader, err)
			}
			if binary.LittleEndian.Uint32(b[8:]) != 18 || string(b[12:16]) != "Xen\x00" || binary.LittleEndian.Uint64(b[16:]) != r.Entry {
				t.Errorf("PT_NOTE = %x; want a PVH note for %#x", b, r.Entry)
			}
			if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o755 {
				t.Errorf("image mode %v, %v; want 0755", st.Mode(), err)
			}

			v, err := image.Verify(out)
			if err != nil {
				t.Fatal(err)
			}
			if v.BuildID != r.BuildID {
				t.Errorf("Verify build ID %x; Build %x", v.BuildID, r.BuildID)
			}
			before, _ := os.ReadFile(out)
			if _, err := image.Patch(out); err != nil {
				t.Fatalf("Patch of a built image: %v", err)
			}
			if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
				t.Error("patching a patched image changed it")
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	needGo(t)
	t.Parallel()
	ctx := t.Context()

	// A compile error: the error names the package and quotes the compiler.
	dir := t.TempDir()
	if err := imagetest.WriteModule(dir, imagetest.Kernel{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmd/kernel/broken.go"), []byte("package main\n\nvar x int = \"s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "molt.elf")
	var stderr bytes.Buffer
	_, err := image.Build(ctx, image.BuildOptions{Dir: dir, Package: "./cmd/kernel", Output: out, Env: []string{"GOWORK=off"}, Stderr: &stderr})
	if err == nil || !strings.HasPrefix(err.Error(), "build ./cmd/kernel: go build: exit status 1") || !strings.Contains(err.Error(), "broken.go:3") {
		t.Errorf("Build(broken) error = %v; want the package, the exit status and the compiler message", err)
	}
	if !strings.Contains(stderr.String(), "broken.go:3") {
		t.Errorf("go build's stderr was not passed on: %q", stderr.String())
	}

	// A missing entry symbol: go build succeeds, the post-link step fails.
	dir = t.TempDir()
	if err := imagetest.WriteModule(dir, imagetest.Kernel{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmd/kernel/main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = image.Build(ctx, image.BuildOptions{Dir: dir, Package: "./cmd/kernel", Output: out, Env: []string{"GOWORK=off"}})
	// Without the kernel package the linker rejects -E itself.
	if err == nil || !strings.Contains(err.Error(), "build ./cmd/kernel") {
		t.Errorf("Build(no kernel package) error = %v", err)
	}

	// An image whose BSS runs into the handoff region.
	dir = t.TempDir()
	if err := imagetest.WriteModule(dir, imagetest.Kernel{}); err != nil {
		t.Fatal(err)
	}
	big := "package main\n\nvar big [100 << 20]byte\n\nfunc init() { big[len(big)-1] = 1 }\n"
	if err := os.WriteFile(filepath.Join(dir, "cmd/kernel/big.go"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = image.Build(ctx, image.BuildOptions{Dir: dir, Package: "./cmd/kernel", Output: out, Env: []string{"GOWORK=off"}})
	if !errors.Is(err, image.ErrLayout) || !strings.Contains(err.Error(), "above the limit 0x6000000") {
		t.Errorf("Build(100 MiB BSS) error = %v; want ErrLayout", err)
	}

	// A canceled context stops go build.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := image.Build(canceled, image.BuildOptions{Dir: dir, Package: "./cmd/kernel", Output: out}); err == nil {
		t.Error("Build with a canceled context succeeded")
	}
}
