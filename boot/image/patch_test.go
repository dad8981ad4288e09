package image

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/molt-os/molt/boot/layout"
)

func writeImage(t testing.TB, data []byte, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "molt.elf")
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onlyFile fails unless the directory of p holds nothing but p: Patch must
// not leave temporary files behind.
func onlyFile(t testing.TB, p string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != filepath.Base(p) {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q; want only %s", names, filepath.Base(p))
	}
}

func TestPatchSynthetic(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    synth
		perm os.FileMode
		sym  string
	}{
		{"abi0 entry with wrapper", synth{plainWrapper: true}, 0o755, layout.EntrySymbol + ".abi0"},
		{"abi0 entry", synth{}, 0o755, layout.EntrySymbol + ".abi0"},
		{"plain entry", synth{entryName: layout.EntrySymbol}, 0o640, layout.EntrySymbol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := tc.s.bytes()
			p := writeImage(t, orig, tc.perm)
			r, err := Patch(p)
			if err != nil {
				t.Fatal(err)
			}
			got := readFile(t, p)
			le := binary.LittleEndian
			entry := uint64(layout.ImageText + synthEntryOff)

			// The note: one PVH note, the rest of the old note zeroed.
			wantNote := make([]byte, 0x64)
			le.PutUint32(wantNote[0:], 4)
			le.PutUint32(wantNote[4:], 8)
			le.PutUint32(wantNote[8:], 18)
			copy(wantNote[12:], "Xen\x00")
			le.PutUint64(wantNote[16:], entry)
			if n := got[synthNoteOff : synthNoteOff+0x64]; !bytes.Equal(n, wantNote) {
				t.Errorf("note bytes = %x; want %x", n, wantNote)
			}
			f, err := elf.NewFile(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if n := f.Progs[2]; n.Type != elf.PT_NOTE || n.Filesz != 24 || n.Memsz != 24 {
				t.Errorf("PT_NOTE = %+v; want p_filesz = p_memsz = 24", n.ProgHeader)
			}
			if s := f.Section(".note.go.buildid"); s == nil || s.Size != 24 {
				t.Errorf("note section = %+v; want size 24", s)
			}

			// The build ID: SHA-256 with the field zeroed.
			var id [32]byte
			copy(id[:], got[synthBuildIDAt:])
			zeroed := bytes.Clone(got)
			clear(zeroed[synthBuildIDAt : synthBuildIDAt+32])
			if want := sha256.Sum256(zeroed); id != want {
				t.Errorf("build ID = %x; want SHA-256 of the zeroed file %x", id, want)
			}

			// Nothing else changed: everything outside note, headers
			// and build ID is as before.
			diff := bytes.Clone(got)
			copy(diff[:synthNoteOff+0x64], orig)
			copy(diff[synthBuildIDAt:synthBuildIDAt+32], orig[synthBuildIDAt:])
			shoff := le.Uint64(orig[40:])
			copy(diff[shoff:], orig[shoff:])
			if !bytes.Equal(diff, orig) {
				t.Error("Patch changed bytes outside the note, program and section headers and build ID")
			}

			want := Report{
				Entry: entry, EntrySym: tc.sym, ImageStart: layout.ImageBase, ImageEnd: layout.ImageBase + synthDataOff + synthDataSize,
				FileSize: int64(len(orig)), BuildID: id, Version: synthVersion,
			}
			r2 := *r
			r2.Segments = nil
			if !reflect.DeepEqual(r2, want) {
				t.Errorf("Patch() = %+v; want %+v", r2, want)
			}
			if len(r.Segments) != 2 || r.Segments[0].Flags != elf.PF_R|elf.PF_X || r.Segments[1].Vaddr != layout.ImageBase+synthDataOff {
				t.Errorf("Segments = %+v", r.Segments)
			}

			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.perm {
				t.Errorf("mode after Patch = %v; want %v", st.Mode().Perm(), tc.perm)
			}
			onlyFile(t, p)

			v, err := Verify(p)
			if err != nil {
				t.Fatalf("Verify after Patch: %v", err)
			}
			if v.BuildID != r.BuildID || v.Entry != r.Entry {
				t.Errorf("Verify() = %+v; want %+v", v, r)
			}

			// Idempotent.
			r3, err := Patch(p)
			if err != nil {
				t.Fatalf("second Patch: %v", err)
			}
			if again := readFile(t, p); !bytes.Equal(again, got) {
				t.Error("second Patch changed the file")
			}
			if r3.BuildID != r.BuildID {
				t.Errorf("second Patch build ID %x; want %x", r3.BuildID, r.BuildID)
			}
		})
	}
}

func TestPatchSymlink(t *testing.T) {
	p := writeImage(t, synth{}.bytes(), 0o755)
	link := filepath.Join(t.TempDir(), "link.elf")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Patch(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Patch replaced the symlink: %v %v", fi, err)
	}
	if _, err := Verify(p); err != nil {
		t.Errorf("Verify(target) = %v", err)
	}
}

func TestPatchErrors(t *testing.T) {
	valid := synth{}.bytes()
	tests := []struct {
		name string
		data []byte
		is   error
		want []string // substrings of the error
	}{
		{"not ELF", []byte("#!/bin/sh\necho not a kernel\n"), ErrFormat, []string{"bad magic"}},
		{"empty", nil, ErrFormat, nil},
		{"ELF32", synth{class: elf.ELFCLASS32}.bytes(), ErrFormat, []string{"ELFCLASS32"}},
		{"aarch64", synth{machine: elf.EM_AARCH64}.bytes(), ErrFormat, []string{"EM_AARCH64"}},
		{"big-endian", synth{data: elf.ELFDATA2MSB}.bytes(), ErrFormat, nil},
		{"shared object", synth{typ: elf.ET_DYN}.bytes(), ErrFormat, []string{"ET_DYN"}},
		{"missing entry symbol", synth{noEntry: true}.bytes(), ErrFormat, []string{layout.EntrySymbol, "not found"}},
		{"entry is not the symbol", synth{entryDelta: 4}.bytes(), ErrFormat, []string{"-E " + layout.EntrySymbol}},
		{"entry not executable", synth{textFlags: elf.PF_R}.bytes(), ErrFormat, []string{"executable PT_LOAD"}},
		{"image too big", synth{bss: layout.ImageLimit}.bytes(), ErrLayout, []string{"image end 0x6201100 (98.00 MiB)", "limit 0x6000000 (96.00 MiB)"}},
		{"image at the default address", synth{base: 0x400000}.bytes(), ErrLayout, []string{"0x400000", "0x1ff000"}},
		{"image below the base", synth{base: 0x100000}.bytes(), ErrLayout, []string{"below the image base"}},
		{"paddr differs", synth{paddrDelta: 0x1000}.bytes(), ErrLayout, []string{"p_paddr == p_vaddr"}},
		{"note too small", synth{noteSize: 16}.bytes(), ErrFormat, []string{"16 bytes"}},
		{"foreign note", synth{noteName: "GNU\x00", noteType: 3}.bytes(), ErrFormat, []string{`"GNU"`}},
		{"no build ID", synth{noBuildID: true}.bytes(), ErrFormat, []string{layout.BuildIDSymbol}},
		{"build ID in BSS", synth{buildIDInBSS: true, bss: 0x100}.bytes(), ErrFormat, []string{"BSS", ".bss"}},
		{"build ID wrong size", synth{buildIDSize: 16}.bytes(), ErrFormat, []string{"size 16"}},
		{"stripped", synth{noSymtab: true}.bytes(), ErrFormat, []string{"symbol table"}},
		{"truncated header", valid[:40], ErrFormat, nil},
		{"truncated in program headers", valid[:100], ErrFormat, nil},
		{"truncated in text", valid[:synthTextOff+0x10], ErrFormat, []string{"truncated"}},
		{"truncated in data", valid[:synthDataOff+0x10], ErrFormat, []string{"truncated"}},
		{"truncated at the end", valid[:len(valid)-1], ErrFormat, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeImage(t, tt.data, 0o755)
			r, err := Patch(p)
			if err == nil {
				t.Fatalf("Patch() = %+v; want an error", r)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("Patch() error = %v; want one wrapping %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "patch "+p+": ") {
				t.Errorf("Patch() error = %q; want it to start with the path", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Patch() error = %q; want it to contain %q", err, w)
				}
			}
			if got := readFile(t, p); !bytes.Equal(got, tt.data) {
				t.Error("Patch changed the file although it failed")
			}
			onlyFile(t, p)
			if _, err := Verify(p); err == nil {
				t.Error("Verify accepted the bad image")
			}
		})
	}
}

func TestPatchImageLimit(t *testing.T) {
	end := uint64(layout.ImageBase + synthDataOff + synthDataSize)
	fits := writeImage(t, synth{bss: layout.ImageLimit - end}.bytes(), 0o755)
	r, err := Patch(fits)
	if err != nil {
		t.Fatalf("Patch(image ending at the limit) = %v", err)
	}
	if r.ImageEnd != layout.ImageLimit || r.Headroom() != 0 {
		t.Errorf("ImageEnd = %#x, Headroom = %d; want %#x, 0", r.ImageEnd, r.Headroom(), layout.ImageLimit)
	}
	over := writeImage(t, synth{bss: layout.ImageLimit - end + 1}.bytes(), 0o755)
	if _, err := Patch(over); !errors.Is(err, ErrLayout) {
		t.Errorf("Patch(image one byte over the limit) = %v; want ErrLayout", err)
	}
}

func TestPatchMissingFile(t *testing.T) {
	_, err := Patch(filepath.Join(t.TempDir(), "missing.elf"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Patch(missing) = %v; want os.ErrNotExist", err)
	}
	_, err = Patch(t.TempDir())
	if !errors.Is(err, ErrFormat) {
		t.Errorf("Patch(directory) = %v; want ErrFormat", err)
	}
}

func TestVerify(t *testing.T) {
	orig := synth{}.bytes()
	p := writeImage(t, orig, 0o755)
	if _, err := Verify(p); !errors.Is(err, ErrNotPatched) {
		t.Errorf("Verify(unpatched) = %v; want ErrNotPatched", err)
	}
	if _, err := Patch(p); err != nil {
		t.Fatal(err)
	}
	patched := readFile(t, p)
	le := binary.LittleEndian

	tamper := func(name string, is error, f func(b []byte)) {
		b := bytes.Clone(patched)
		f(b)
		q := writeImage(t, b, 0o755)
		if _, err := Verify(q); !errors.Is(err, is) {
			t.Errorf("%s: Verify() = %v; want %v", name, err, is)
		}
		if got := readFile(t, q); !bytes.Equal(got, b) {
			t.Errorf("%s: Verify changed the file", name)
		}
	}
	tamper("text changed", ErrNotPatched, func(b []byte) { b[synthTextOff] ^= 1 })
	tamper("build ID changed", ErrNotPatched, func(b []byte) { b[synthBuildIDAt+31] ^= 1 })
	tamper("note points elsewhere", ErrNotPatched, func(b []byte) { le.PutUint64(b[synthNoteOff+16:], 0x200000) })
	tamper("note grown", ErrNotPatched, func(b []byte) { le.PutUint64(b[64+2*56+32:], 32) })
	tamper("layout broken", ErrLayout, func(b []byte) { le.PutUint64(b[64+56+40:], layout.ImageLimit) }) // data memsz
}

func TestReportString(t *testing.T) {
	r := &Report{Entry: 0x279220, EntrySym: "e", ImageStart: layout.ImageBase, ImageEnd: 0x358a00, FileSize: 123, Version: "v1"}
	r.BuildID[0] = 0xab
	s := r.String()
	for _, want := range []string{
		"entry     0x279220 (e)",
		"image     0x1ff000-0x358a00 (2.00-3.35 MiB, 1.35 MiB incl. BSS)",
		"headroom  92.65 MiB below the handoff region at 0x6000000",
		"version   v1",
		"build ID  ab00000000",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() =\n%s\nwant a line %q", s, want)
		}
	}
	if h := (&Report{ImageEnd: layout.HandoffBase + 1}).Headroom(); h != 0 {
		t.Errorf("Headroom() past the handoff base = %d; want 0", h)
	}
}

// FuzzPatch checks that Patch never panics, leaves the file unchanged when
// it fails, and when it succeeds produces an image that Verify accepts and
// that a second Patch leaves byte-identical.
//
// Run it with a short minimisation time: the seeds are 9 KiB, and the
// default of 60 s per new input stalls the run while the coordinator shows
// no progress:
//
//	go test -run '^$' -fuzz FuzzPatch -fuzzminimizetime 2s ./boot/image
func FuzzPatch(f *testing.F) {
	valid := synth{}.bytes()
	f.Add(valid)
	f.Add(synth{plainWrapper: true, bss: 0x5000}.bytes())
	f.Add(synth{entryName: layout.EntrySymbol}.bytes())
	f.Add(valid[:synthDataOff+0x10])
	f.Add(valid[:64])
	f.Add(synth{machine: elf.EM_AARCH64}.bytes())
	f.Add(synth{bss: layout.ImageLimit}.bytes())
	f.Add([]byte("\x7fELF"))
	dir := f.TempDir()
	patched := filepath.Join(dir, "patched.elf")
	if err := os.WriteFile(patched, valid, 0o755); err != nil {
		f.Fatal(err)
	}
	if _, err := Patch(patched); err != nil {
		f.Fatal(err)
	}
	pb, err := os.ReadFile(patched)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb)
	for _, off := range []int{4, 5, 18, 24, 32, 40, 54, 64 + 8, 64 + 16, 64 + 32, 64 + 2*56 + 32, synthNoteOff, synthNoteOff + 8} {
		b := bytes.Clone(valid)
		b[off] ^= 0x41
		f.Add(b)
	}

	// One file per worker process, rewritten for each input: the fuzz
	// function runs sequentially within a process, and a fresh directory
	// per input would halve the rate.
	p := filepath.Join(f.TempDir(), "k.elf")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := Patch(p)
		got, rerr := os.ReadFile(p)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !bytes.Equal(got, data) {
				t.Fatalf("Patch failed (%v) and changed the file", err)
			}
			return
		}
		v, err := Verify(p)
		if err != nil {
			t.Fatalf("Patch succeeded but Verify failed: %v", err)
		}
		if v.BuildID != r.BuildID {
			t.Fatalf("Verify build ID %x; Patch %x", v.BuildID, r.BuildID)
		}
		if _, err := Patch(p); err != nil {
			t.Fatalf("second Patch failed: %v", err)
		}
		if again, _ := os.ReadFile(p); !bytes.Equal(again, got) {
			t.Fatal("second Patch changed the file")
		}
	})
}
