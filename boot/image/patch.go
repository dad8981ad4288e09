package image

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/molt-os/molt/boot/layout"
)

// Patch applies the post-link step to the image at path (see the package
// documentation for what it checks and edits) and returns a description of
// the result. On error the file is left unchanged.
func Patch(path string) (*Report, error) {
	r, err := patch(path)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", path, err)
	}
	return r, nil
}

func patch(path string) (*Report, error) {
	// Resolve symlinks so the rename replaces the image, not the link.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrFormat)
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return nil, err
	}
	info, err := parse(data)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	copy(out, data)
	info.data = out
	applyPVHNote(info)
	sum := stampBuildID(info)
	if err := writeAtomic(real, out, st.Mode().Perm()); err != nil {
		return nil, err
	}
	return info.report(sum), nil
}

// applyPVHNote replaces the first PT_NOTE with one PVH note and shrinks the
// segment (and its section, if any) to it.
func applyPVHNote(info *imageInfo) {
	le := binary.LittleEndian
	d := info.data
	note := d[info.noteOff : info.noteOff+info.noteSize]
	// The stale Go build ID must not linger in the header page.
	clear(note)
	le.PutUint32(note[0:], 4) // namesz: "Xen\0"
	le.PutUint32(note[4:], 8) // descsz: a uint64 address
	le.PutUint32(note[8:], xenElfnotePhys32Entry)
	copy(note[12:], "Xen\x00")
	le.PutUint64(note[16:], info.entry)
	le.PutUint64(d[info.notePhdrOff+phdrFileszOffset:], pvhNoteSize)
	le.PutUint64(d[info.notePhdrOff+phdrMemszOffset:], pvhNoteSize)
	if info.noteShdrOff != 0 {
		le.PutUint64(d[info.noteShdrOff+shdrSizeOffset:], pvhNoteSize)
	}
	info.noteSize = pvhNoteSize
	info.notePVH, info.notePVHDesc = true, info.entry
}

// stampBuildID writes the build ID into info.data and returns it.
func stampBuildID(info *imageInfo) [32]byte {
	sum := layout.BuildIDOf(info.data, info.buildIDAt)
	copy(info.data[info.buildIDAt:], sum[:])
	return sum
}

// writeAtomic replaces path with data: a crash leaves either the old or the
// new file, never a mix.
func writeAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".patch-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; give it the image's permissions.
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename durable; failing to sync a directory is not worth
	// failing the build for (some file systems refuse it).
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Verify checks that the image at path is post-linked: it satisfies the
// contract of Patch, its first PT_NOTE is a PVH note holding the entry
// address, and its build ID equals the SHA-256 of the file with the field
// zeroed. It does not modify the file.
func Verify(path string) (*Report, error) {
	r, err := verify(path)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", path, err)
	}
	return r, nil
}

func verify(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	info, err := parse(data)
	if err != nil {
		return nil, err
	}
	if !info.notePVH {
		return nil, fmt.Errorf("%w: first PT_NOTE is the Go build-ID note, not a PVH note", ErrNotPatched)
	}
	if info.noteSize != pvhNoteSize {
		return nil, fmt.Errorf("%w: PT_NOTE is %d bytes, want %d", ErrNotPatched, info.noteSize, pvhNoteSize)
	}
	if info.notePVHDesc != info.entry {
		return nil, fmt.Errorf("%w: PVH note enters at %#x, but the entry symbol is at %#x", ErrNotPatched, info.notePVHDesc, info.entry)
	}
	want := layout.BuildIDOf(data, info.buildIDAt)
	var got [32]byte
	copy(got[:], data[info.buildIDAt:])
	if got != want {
		return nil, fmt.Errorf("%w: stored build ID %x does not match the file's %x", ErrNotPatched, got, want)
	}
	return info.report(got), nil
}
