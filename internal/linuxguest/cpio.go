package linuxguest

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
)

// A small writer for the cpio "newc" format, the only one the kernel's
// initramfs unpacker reads. Written here rather than taken from u-root's
// pkg/cpio: adding u-root v0.16.0 pulls nine modules into go.mod and
// upgrades u-root/uio and pierrec/lz4, which molt's DHCP client already
// depends on, for some sixty lines of code.
//
// The archive is deterministic: entries are written sorted by name with
// inode numbers in that order, mtime 0 and owner root, so the same files
// give the same bytes (and, through compress/gzip without a header name or
// time, the same initramfs).

// Mode bits of newc's mode field (those of stat(2)).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// entry is one file of the archive.
type entry struct {
	name  string // path without a leading slash
	mode  uint32 // type and permission bits
	data  []byte // contents, or a symlink's target
	major uint32 // device numbers for device nodes
	minor uint32
}

// archive is a set of entries keyed by name.
type archive map[string]entry

// addDirs adds name's parent directories (mode 0755) that are missing.
func (a archive) addDirs(name string) {
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
		d := name[:i]
		if _, ok := a[d]; !ok {
			a[d] = entry{name: d, mode: modeDir | 0o755}
		}
	}
}

// add adds e and its parent directories. Names are cleaned of a leading
// slash; adding a name twice is an error, so that two packages cannot
// silently provide the same file.
func (a archive) add(e entry) error {
	e.name = strings.TrimPrefix(e.name, "/")
	if e.name == "" || strings.Contains(e.name, "//") || strings.HasSuffix(e.name, "/") {
		return fmt.Errorf("cpio: bad name %q", e.name)
	}
	if old, ok := a[e.name]; ok && !(old.mode&0o170000 == modeDir && e.mode&0o170000 == modeDir) {
		return fmt.Errorf("cpio: %s added twice", e.name)
	}
	a.addDirs(e.name)
	a[e.name] = e
	return nil
}

// writeTo writes the archive in newc format, parents before children, and
// the trailer.
func (a archive) writeTo(w io.Writer) error {
	names := make([]string, 0, len(a))
	for n := range a {
		names = append(names, n)
	}
	// Sorting puts "lib" before "lib/x": a prefix sorts first.
	sort.Strings(names)
	var buf bytes.Buffer
	for i, n := range names {
		e := a[n]
		nlink := uint32(1)
		if e.mode&0o170000 == modeDir {
			nlink = 2
		}
		writeHeader(&buf, uint32(i+1), e.mode, nlink, uint32(len(e.data)), e.major, e.minor, n)
		buf.Write(e.data)
		pad4(&buf)
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
	}
	writeHeader(&buf, 0, 0, 1, 0, 0, 0, "TRAILER!!!")
	_, err := w.Write(buf.Bytes())
	return err
}

// writeHeader writes a newc header and the NUL-terminated name, padded
// so that the data starts at a multiple of 4.
func writeHeader(b *bytes.Buffer, ino, mode, nlink, size, rmajor, rminor uint32, name string) {
	fmt.Fprintf(b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size,
		0, 0, // device holding the file
		rmajor, rminor, // device the node names
		len(name)+1, 0)
	b.WriteString(name)
	b.WriteByte(0)
	pad4(b)
}

func pad4(b *bytes.Buffer) {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}
