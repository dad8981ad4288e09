package handoff

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Describer is implemented by decoded section values that can print
// themselves for Describe (Clock, History).
type Describer interface {
	Describe(w io.Writer) error
}

// Describe prints the region for a human: the header, then each section
// with what the Builtin registry makes of it. It is the body of a
// `molt handoff describe FILE` command.
func (r *Region) Describe(w io.Writer) error {
	return Builtin().Describe(w, r)
}

// Describe prints region r, decoding its sections with this registry.
func (reg *Registry) Describe(w io.Writer, r *Region) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "handoff region: format %d, generation %d, %d bytes, %d sections\n", r.Format, r.Generation, r.Length, len(r.Sections))
	fmt.Fprintf(bw, "  flags    %v\n", r.Flags)
	fmt.Fprintf(bw, "  writer   build %x\n", r.BuildID)
	fmt.Fprintf(bw, "  sha-256  %x\n", r.Checksum)
	for _, s := range r.Sections {
		fmt.Fprintf(bw, "section %d at %#x: %s v%d, %d bytes", s.Index, s.Offset, s.Type, s.Version, len(s.Payload))
		if s.Flags != 0 {
			fmt.Fprintf(bw, ", %v", s.Flags)
		}
		v, err := reg.Decode(s)
		var ve *VersionError
		switch {
		case errors.Is(err, ErrUnknownType):
			fmt.Fprintf(bw, ": unknown type, skipped\n")
			continue
		case errors.As(err, &ve):
			if ve.Min == ve.Max {
				fmt.Fprintf(bw, ": cannot read v%d (this reader reads v%d)\n", ve.Found, ve.Min)
			} else {
				fmt.Fprintf(bw, ": cannot read v%d (this reader reads v%d to v%d)\n", ve.Found, ve.Min, ve.Max)
			}
			continue
		case err != nil:
			fmt.Fprintf(bw, "\n  error: %v\n", err)
			continue
		}
		fmt.Fprintln(bw)
		d, ok := v.(Describer)
		if !ok {
			continue
		}
		var body strings.Builder
		if err := d.Describe(&body); err != nil {
			return err
		}
		for line := range strings.Lines(body.String()) {
			bw.WriteString("  ")
			bw.WriteString(line)
		}
	}
	return bw.Flush()
}
