package handoff

import "errors"

// Encoder builds a region in a buffer of bounded size. In a kernel the
// buffer is the reserved range itself, so sections are written in place.
//
// The zero value is not usable; call NewEncoder or Registry.NewEncoder.
// An Encoder is not safe for concurrent use.
type Encoder struct {
	buf      []byte // capped at MaxRegionSize
	off      int    // end of the last section
	count    int
	hdr      Header
	reg      *Registry // per-type caps, if any
	finished bool
}

// errFinished is returned by every method after Finish.
var errFinished = errors.New("handoff: encoder already finished")

// NewEncoder starts a region in buf with the given generation, flags and
// build ID (the other Header fields are computed). The region may use all
// of buf up to MaxRegionSize. The header is cleared at once, so a region
// abandoned before Finish has no magic.
func NewEncoder(buf []byte, h Header) (*Encoder, error) {
	return newEncoder(buf, h, nil)
}

func newEncoder(buf []byte, h Header, reg *Registry) (*Encoder, error) {
	if len(buf) < HeaderSize {
		return nil, headerErr(ErrTooLarge, 0, "a buffer of %d bytes cannot hold the %d-byte header", len(buf), HeaderSize)
	}
	if h.Generation == 0 {
		return nil, headerErr(ErrInvalid, offGeneration, "generation 0 (generations start at 1)")
	}
	if unknown := h.Flags &^ knownFlags; unknown != 0 {
		return nil, headerErr(ErrReserved, offFlags, "unknown header flags %#x", uint32(unknown))
	}
	if len(buf) > MaxRegionSize {
		buf = buf[:MaxRegionSize]
	}
	clear(buf[:HeaderSize])
	return &Encoder{buf: buf, off: HeaderSize, hdr: h, reg: reg}, nil
}

// Len returns the bytes used so far, header included.
func (e *Encoder) Len() int { return e.off }

// Free returns the largest payload the next section could hold.
func (e *Encoder) Free() int {
	n := len(e.buf) - e.off - SectionHeaderSize
	if n < 0 || e.finished || e.count == MaxSections {
		return 0
	}
	return n &^ (Align - 1)
}

// Reserve appends a section with an n-byte payload and returns the payload
// for the caller to fill (it is zeroed only as far as the padding goes:
// the caller must write all n bytes). If the section does not fit, or breaks
// a cap, nothing is written and the error, wrapping ErrTooLarge, names the
// section and the space left.
func (e *Encoder) Reserve(t Type, version uint32, flags SectionFlags, n int) ([]byte, error) {
	if e.finished {
		return nil, errFinished
	}
	i, off := e.count, e.off
	switch {
	case t == 0:
		return nil, sectionErr(ErrInvalid, i, off+secType, "section type 0")
	case version == 0:
		return nil, sectionErr(ErrInvalid, i, off+secVersion, "%s version 0 (versions start at 1)", t)
	case flags&^knownSectionFlags != 0:
		return nil, sectionErr(ErrReserved, i, off+secFlags, "unknown section flags %#x for %s", uint32(flags&^knownSectionFlags), t)
	case n < 0:
		return nil, sectionErr(ErrInvalid, i, off+secLength, "%s v%d with a negative length %d", t, version, n)
	case e.count == MaxSections:
		return nil, sectionErr(ErrTooLarge, i, off, "%s v%d would be section %d; the cap is %d sections", t, version, i+1, MaxSections)
	case n > MaxSectionSize:
		return nil, sectionErr(ErrTooLarge, i, off, "%s v%d of %d bytes exceeds the section cap of %d", t, version, n, MaxSectionSize)
	}
	if limit, ok := e.reg.maxLen(t); ok && n > limit {
		return nil, sectionErr(ErrTooLarge, i, off, "%s v%d of %d bytes exceeds the %d-byte cap for %s", t, version, n, limit, t)
	}
	need := SectionHeaderSize + align(n)
	if need > len(e.buf)-off {
		return nil, sectionErr(ErrTooLarge, i, off, "%s v%d of %d bytes does not fit: %d of %d bytes left", t, version, n, len(e.buf)-off, len(e.buf))
	}
	h := e.buf[off : off+SectionHeaderSize]
	le.PutUint32(h[secType:], uint32(t))
	le.PutUint32(h[secVersion:], version)
	le.PutUint32(h[secLength:], uint32(n))
	le.PutUint32(h[secFlags:], uint32(flags))
	p := off + SectionHeaderSize
	clear(e.buf[p+n : p+align(n)])
	e.off += need
	e.count++
	return e.buf[p : p+n : p+n], nil
}

// Add appends a section holding a copy of payload; see Reserve.
func (e *Encoder) Add(t Type, version uint32, flags SectionFlags, payload []byte) error {
	p, err := e.Reserve(t, version, flags, len(payload))
	if err != nil {
		return err
	}
	copy(p, payload)
	return nil
}

// Finish writes the header and the checksum, and returns the region: a
// prefix of the buffer. The Encoder cannot be used afterwards.
func (e *Encoder) Finish() ([]byte, error) {
	if e.finished {
		return nil, errFinished
	}
	e.finished = true
	b := e.buf[:e.off]
	copy(b[offMagic:], Magic)
	le.PutUint32(b[offFormat:], FormatVersion)
	le.PutUint32(b[offFlags:], uint32(e.hdr.Flags))
	le.PutUint64(b[offGeneration:], e.hdr.Generation)
	le.PutUint64(b[offLength:], uint64(e.off))
	le.PutUint32(b[offCount:], uint32(e.count))
	le.PutUint32(b[offReserved:], 0)
	copy(b[offBuildID:], e.hdr.BuildID[:])
	sum := checksum(b)
	copy(b[offChecksum:], sum[:])
	return b, nil
}

// Encode writes r (its Flags, Generation, BuildID and Sections, in order)
// into buf and returns the region. For a region returned by Decode the
// result equals the decoded bytes. buf must not overlap r's payloads except
// at their own offsets (re-encoding in place is fine).
func (r *Region) Encode(buf []byte) ([]byte, error) {
	e, err := NewEncoder(buf, r.Header)
	if err != nil {
		return nil, err
	}
	for _, s := range r.Sections {
		if err := e.Add(s.Type, s.Version, s.Flags, s.Payload); err != nil {
			return nil, err
		}
	}
	return e.Finish()
}
