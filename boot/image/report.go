package image

import (
	"fmt"
	"strings"

	"github.com/molt-os/molt/boot/layout"
)

// Report describes a post-linked image.
type Report struct {
	Entry      uint64 // PVH entry: address of layout.EntrySymbol
	EntrySym   string // the ELF symbol the entry resolved to
	ImageStart uint64 // lowest PT_LOAD address (layout.ImageBase)
	ImageEnd   uint64 // max(p_vaddr + p_memsz), BSS included
	FileSize   int64
	BuildID    [32]byte // SHA-256 of the file with this field zeroed
	Version    string   // value of layout.VersionVar, "" if not found
	Segments   []Segment
}

func (info *imageInfo) report(buildID [32]byte) *Report {
	return &Report{
		Entry:      info.entry,
		EntrySym:   info.entrySym,
		ImageStart: info.start,
		ImageEnd:   info.end,
		FileSize:   int64(len(info.data)),
		BuildID:    buildID,
		Version:    info.version,
		Segments:   info.segments,
	}
}

// Headroom is the number of bytes between the end of the image and the
// handoff region: how much the image can still grow.
func (r *Report) Headroom() uint64 {
	if r.ImageEnd >= layout.HandoffBase {
		return 0
	}
	return layout.HandoffBase - r.ImageEnd
}

// String is a short human summary, one fact per line.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "entry     %#x (%s)\n", r.Entry, r.EntrySym)
	fmt.Fprintf(&b, "image     %#x-%#x (%.2f-%.2f MiB, %.2f MiB incl. BSS)\n",
		r.ImageStart, r.ImageEnd, mibf(r.ImageStart), mibf(r.ImageEnd), mibf(r.ImageEnd-r.ImageStart))
	fmt.Fprintf(&b, "headroom  %.2f MiB below the handoff region at %#x\n", mibf(r.Headroom()), layout.HandoffBase)
	if r.Version != "" {
		fmt.Fprintf(&b, "version   %s\n", r.Version)
	}
	fmt.Fprintf(&b, "file      %d bytes\n", r.FileSize)
	fmt.Fprintf(&b, "build ID  %x\n", r.BuildID)
	return b.String()
}

func mibf(n uint64) float64 { return float64(n) / (1 << 20) }
