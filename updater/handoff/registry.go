package handoff

import (
	"errors"
	"fmt"
)

// Codec reads one schema version of a section type.
type Codec struct {
	// Version is the schema version this codec reads.
	Version uint32
	// Decode parses a payload of this version into a value. It must reject
	// any malformed payload with an error (wrapping ErrTruncated,
	// ErrInvalid, ... where one fits), never panic, and never allocate in
	// proportion to a count it has not checked against len(payload).
	Decode func(payload []byte) (any, error)
	// Upgrade converts a value of this version into a value of the next
	// version (Version+1): the migration hook. It is nil for the current
	// (last) version.
	Upgrade func(v any) (any, error)
}

// SectionType is what a kernel knows about one section type.
type SectionType struct {
	Type Type
	// MaxLen caps a payload of any version this kernel reads; 0 means
	// MaxSectionSize.
	// Registry.Decode checks it before calling a codec, and an Encoder
	// from Registry.NewEncoder refuses larger sections.
	MaxLen int
	// Codecs lists one codec per version this kernel reads, versions
	// consecutive and oldest first. The last one is the current version:
	// the one this kernel writes, and the one Decode returns values of.
	Codecs []Codec
}

// Current returns the version this kernel writes.
func (st *SectionType) Current() uint32 { return st.Codecs[len(st.Codecs)-1].Version }

// Oldest returns the oldest version this kernel still reads.
func (st *SectionType) Oldest() uint32 { return st.Codecs[0].Version }

// Registry maps section types to codecs. Build it once at start-up
// (Register is not safe for concurrent use); reading is.
type Registry struct {
	types map[Type]*SectionType
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: map[Type]*SectionType{}} }

// Builtin returns a new registry holding the section types this package
// defines (clock, update-history). Subsystems register theirs on top.
func Builtin() *Registry {
	r := NewRegistry()
	for _, st := range []SectionType{clockType, historyType} {
		if err := r.Register(st); err != nil {
			panic(err) // a bug in this package, caught by its tests
		}
	}
	return r
}

// Register adds a section type. It fails if the type is 0 or already
// registered, if there are no codecs, if versions are not consecutive from
// 1 or more, or if an Upgrade is missing (or present on the last codec).
func (r *Registry) Register(st SectionType) error {
	switch {
	case st.Type == 0:
		return fmt.Errorf("handoff: register: section type 0")
	case r.types[st.Type] != nil:
		return fmt.Errorf("handoff: register %s: already registered", st.Type)
	case len(st.Codecs) == 0:
		return fmt.Errorf("handoff: register %s: no codecs", st.Type)
	case st.MaxLen < 0 || st.MaxLen > MaxSectionSize:
		return fmt.Errorf("handoff: register %s: MaxLen %d outside [0, %d]", st.Type, st.MaxLen, MaxSectionSize)
	}
	for i, c := range st.Codecs {
		switch {
		case c.Version == 0:
			return fmt.Errorf("handoff: register %s: codec %d has version 0", st.Type, i)
		case i > 0 && c.Version != st.Codecs[i-1].Version+1:
			return fmt.Errorf("handoff: register %s: version %d follows %d; versions must be consecutive", st.Type, c.Version, st.Codecs[i-1].Version)
		case c.Decode == nil:
			return fmt.Errorf("handoff: register %s: v%d has no Decode", st.Type, c.Version)
		case i < len(st.Codecs)-1 && c.Upgrade == nil:
			return fmt.Errorf("handoff: register %s: v%d has no Upgrade to v%d", st.Type, c.Version, c.Version+1)
		case i == len(st.Codecs)-1 && c.Upgrade != nil:
			return fmt.Errorf("handoff: register %s: the current version v%d has an Upgrade", st.Type, c.Version)
		}
	}
	if st.MaxLen == 0 {
		st.MaxLen = MaxSectionSize
	}
	st.Codecs = append([]Codec(nil), st.Codecs...)
	r.types[st.Type] = &st
	return nil
}

// Lookup returns the registered section type t.
func (r *Registry) Lookup(t Type) (SectionType, bool) {
	st, ok := r.types[t]
	if !ok {
		return SectionType{}, false
	}
	return *st, true
}

func (r *Registry) maxLen(t Type) (int, bool) {
	if r == nil {
		return 0, false
	}
	st, ok := r.types[t]
	if !ok {
		return 0, false
	}
	return st.MaxLen, true
}

// NewEncoder is NewEncoder with this registry's per-type caps enforced.
func (r *Registry) NewEncoder(buf []byte, h Header) (*Encoder, error) {
	return newEncoder(buf, h, r)
}

// Decode decodes section s with the codec for its version and upgrades the
// value, one version at a time, to the current version. Errors: ErrUnknownType,
// ErrTooLarge (payload above MaxLen), a *VersionError (ErrSectionVersion),
// ErrPayload (the codec refused the payload or an upgrade failed).
func (r *Registry) Decode(s Section) (any, error) {
	st, ok := r.types[s.Type]
	if !ok {
		return nil, sectionErr(ErrUnknownType, s.Index, s.Offset+secType, "%s v%d, %d bytes", s.Type, s.Version, len(s.Payload))
	}
	// The version first: a newer version may legitimately be larger than
	// this reader's cap.
	oldest, cur := st.Oldest(), st.Current()
	if s.Version < oldest || s.Version > cur {
		return nil, &VersionError{Section: s.Index, Type: s.Type, Offset: int64(s.Offset + secVersion), Found: s.Version, Min: oldest, Max: cur}
	}
	if len(s.Payload) > st.MaxLen {
		return nil, sectionErr(ErrTooLarge, s.Index, s.Offset+secLength, "%s payload of %d bytes exceeds its cap of %d", s.Type, len(s.Payload), st.MaxLen)
	}
	i := int(s.Version - oldest)
	v, err := st.Codecs[i].Decode(s.Payload)
	if err != nil {
		return nil, payloadErr(s, err)
	}
	for ; i < len(st.Codecs)-1; i++ {
		c := st.Codecs[i]
		if v, err = c.Upgrade(v); err != nil {
			return nil, payloadErr(s, fmt.Errorf("upgrading v%d to v%d: %w", c.Version, c.Version+1, err))
		}
	}
	return v, nil
}

// Decoded is the outcome of decoding one section.
type Decoded struct {
	Section Section
	Value   any   // the current-version value; nil if Err is set
	Err     error // why the section could not be used
}

// Skipped reports whether the section was left out because its type is
// unknown and it is not critical: the one error that is not a problem.
func (d Decoded) Skipped() bool {
	return errors.Is(d.Err, ErrUnknownType) && d.Section.Flags&SectionCritical == 0
}

// DecodeAll decodes every section of reg. It returns one Decoded per
// section, in order, and an error joining every section error except those
// of skipped sections (unknown type, not critical). The caller decides what
// a failed section costs (typically: the subsystem that owns it starts
// fresh); the returned error is what to log.
func (r *Registry) DecodeAll(reg *Region) ([]Decoded, error) {
	out := make([]Decoded, len(reg.Sections))
	var errs []error
	for i, s := range reg.Sections {
		v, err := r.Decode(s)
		out[i] = Decoded{Section: s, Value: v, Err: err}
		if err != nil && !out[i].Skipped() {
			if s.Flags&SectionCritical != 0 {
				err = fmt.Errorf("%w (the writer marked it critical)", err)
			}
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}
