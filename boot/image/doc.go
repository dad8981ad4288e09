// Package image builds molt kernel images and applies the post-link step
// that makes them bootable.
//
// A kernel image is an ordinary static Go executable (GOOS=linux,
// GOARCH=amd64, CGO_ENABLED=0) linked by the stock toolchain with
//
//	-ldflags '-E <layout.EntrySymbol> -T <layout.ImageText>'
//
// so that its text starts at layout.ImageText and its ELF header page at
// layout.ImageBase. Build runs that link; Patch then edits the file in place.
//
// # The post-link contract
//
// Patch accepts a file only if all of the following hold, and otherwise
// fails without touching it:
//
//   - ELF64, little-endian, EM_X86_64, ET_EXEC.
//   - The symbol table holds layout.EntrySymbol. When the kernel declares the
//     assembly entry in Go, the linker emits an ABI wrapper under that name
//     and the assembly body as "<name>.abi0"; the entry is whichever of the
//     two equals e_entry (the -E target). It lies below 4 GiB, inside an
//     executable PT_LOAD.
//   - Every PT_LOAD has p_paddr == p_vaddr, p_filesz <= p_memsz, its file
//     bytes inside the file, and lies at or above layout.ImageBase; the lowest
//     starts exactly at layout.ImageBase; the image end max(p_vaddr+p_memsz),
//     BSS included, is at most layout.ImageLimit (the handoff region starts
//     there).
//   - The first PT_NOTE is at least 24 bytes long and holds either the Go
//     build-ID note (name "Go", type 4) that the go command always emits, or
//     a PVH note written by an earlier Patch.
//   - layout.BuildIDSymbol is a 32-byte object whose bytes are in the file
//     (a data section, not BSS).
//
// Patch then makes these edits:
//
//  1. The first PT_NOTE becomes a single Xen PVH note: namesz 4, descsz 8,
//     type 18 (XEN_ELFNOTE_PHYS32_ENTRY), name "Xen\0", descriptor the entry
//     address as a little-endian uint64. The rest of the old note area is
//     zeroed, and the segment's p_filesz and p_memsz (and the size of the
//     section at the same offset, so readelf stays quiet) shrink to 24.
//     QEMU's PVH loader and qboot enter the kernel at that address in 32-bit
//     protected mode with paging off.
//  2. The build ID: the 32 bytes of layout.BuildIDSymbol are zeroed, the
//     SHA-256 of the whole file is computed, and the digest is written there.
//     The build ID of an image is therefore "SHA-256 of the file with the
//     build-ID field zeroed"; Verify recomputes it the same way.
//
// Patch is idempotent: patching a patched image recognises the PVH note and
// recomputes the same build ID, so the file stays byte-identical. The file
// is replaced atomically (temporary file in the same directory, fsync,
// rename) and keeps its permission bits.
//
// Errors wrap ErrFormat (not an image this package can handle), ErrLayout
// (an image that breaks the physical layout) or ErrNotPatched (Verify found
// an image that was not post-linked, or was changed afterwards).
package image
