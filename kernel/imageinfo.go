package kernel

// handoffFormats lists the handoff container format versions
// (updater/handoff.FormatVersion) this image reads, unused entries zero. It is
// a contract with the previous kernel: before a self-update, the running
// kernel finds this array in the pushed image's symbol table
// (layout.HandoffFormatsSymbol; docs/images.md) and refuses an image that
// cannot read the format it is about to write. Change it together with the
// handoff reader the image links. The non-zero entry keeps it in a data
// section, so its bytes are in the file.
var handoffFormats = [8]uint32{1}

// HandoffFormats returns the handoff container format versions this image
// reads.
func HandoffFormats() []uint32 {
	var v []uint32
	for _, f := range handoffFormats {
		if f != 0 {
			v = append(v, f)
		}
	}
	return v
}

// The linker drops variables nothing reachable refers to; an init function
// is always reachable, so this reference keeps handoffFormats in the image
// even when nothing calls HandoffFormats.
func init() {
	if handoffFormats[0] == 0 {
		panic("kernel: handoffFormats lists no format")
	}
}
