package push

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"
)

// ReportVersion is the report record version this package writes. A
// version N+1 record is a version N record with fields appended, so a
// reader of version N reads the first part of any newer record and ignores
// the rest.
const ReportVersion = 1

// Report caps (docs/images.md §6.4).
const (
	MaxReportVersionLen = 128  // release version strings
	MaxPhases           = 64   // phase timings
	MaxPhaseName        = 64   // bytes of a phase name
	MaxLines            = 256  // free-form lines
	MaxLine             = 1024 // bytes of a line
	reportFixedSize     = 0x70
)

// Report is what the new kernel tells `molt push` once it runs.
type Report struct {
	// Format is the version of the record as received (ReportVersion when
	// this package wrote it). It is set by UnmarshalBinary and ignored by
	// MarshalBinary.
	Format uint16

	Version     string   // the new kernel's release version
	BuildID     [32]byte // the new kernel's build ID
	PrevVersion string   // the kernel it replaced
	PrevBuildID [32]byte
	Generation  uint64        // handoff generation of this update
	Blackout    time.Duration // from quiesce to resume, measured across both kernels

	Phases   []Phase  // where the blackout went, in order
	Restored Restored // what the new kernel carried on with
	Lines    []string // free-form notes (warnings, per-task outcomes)
}

// Phase is one timed step of an update.
type Phase struct {
	Name     string // printable ASCII without spaces, e.g. "quiesce"
	Duration time.Duration
}

// Restored counts what survived the update.
type Restored struct {
	Tasks       uint64 // tasks resumed with their state
	Connections uint64 // TCP/UDP connections carried over
	Items       uint64 // application items (e.g. kv entries)
}

// Report field offsets (version 1).
const (
	repOffVersion   = 0x00
	repOffReserved  = 0x02
	repOffGen       = 0x08
	repOffBlackout  = 0x10
	repOffBuildID   = 0x18
	repOffPrevBuild = 0x38
	repOffTasks     = 0x58
	repOffConns     = 0x60
	repOffItems     = 0x68
)

// MarshalBinary encodes the report as a version-ReportVersion record. It
// refuses values beyond the caps, negative durations and names that are
// not printable ASCII; lines are sanitized like refusal reasons.
func (r *Report) MarshalBinary() ([]byte, error) {
	for _, v := range []string{r.Version, r.PrevVersion} {
		if err := checkName("version", v, MaxReportVersionLen, true); err != nil {
			return nil, err
		}
	}
	if r.Blackout < 0 {
		return nil, fmt.Errorf("push: report: negative blackout %v", r.Blackout)
	}
	if len(r.Phases) > MaxPhases || len(r.Lines) > MaxLines {
		return nil, fmt.Errorf("push: report: %d phases and %d lines, at most %d and %d", len(r.Phases), len(r.Lines), MaxPhases, MaxLines)
	}
	le := binary.LittleEndian
	b := make([]byte, reportFixedSize, 512)
	le.PutUint16(b[repOffVersion:], ReportVersion)
	le.PutUint64(b[repOffGen:], r.Generation)
	le.PutUint64(b[repOffBlackout:], uint64(r.Blackout))
	copy(b[repOffBuildID:], r.BuildID[:])
	copy(b[repOffPrevBuild:], r.PrevBuildID[:])
	le.PutUint64(b[repOffTasks:], r.Restored.Tasks)
	le.PutUint64(b[repOffConns:], r.Restored.Connections)
	le.PutUint64(b[repOffItems:], r.Restored.Items)
	b = append(b, byte(len(r.Version)))
	b = append(b, r.Version...)
	b = append(b, byte(len(r.PrevVersion)))
	b = append(b, r.PrevVersion...)
	b = le.AppendUint16(b, uint16(len(r.Phases)))
	for _, p := range r.Phases {
		if err := checkName("phase name", p.Name, MaxPhaseName, false); err != nil {
			return nil, err
		}
		if p.Duration < 0 {
			return nil, fmt.Errorf("push: report: phase %s has a negative duration %v", p.Name, p.Duration)
		}
		b = append(b, byte(len(p.Name)))
		b = append(b, p.Name...)
		b = le.AppendUint64(b, uint64(p.Duration))
	}
	b = le.AppendUint16(b, uint16(len(r.Lines)))
	for _, l := range r.Lines {
		l = sanitize(l, MaxLine)
		b = le.AppendUint16(b, uint16(len(l)))
		b = append(b, l...)
	}
	if len(b) > MaxReplyBody {
		return nil, fmt.Errorf("push: report: %d bytes encoded, at most %d", len(b), MaxReplyBody)
	}
	return b, nil
}

// checkName refuses s unless it is printable ASCII without spaces and at
// most max bytes (and not empty, unless empty is allowed).
func checkName(what, s string, max int, empty bool) error {
	if len(s) > max || (s == "" && !empty) {
		return fmt.Errorf("push: report: %s %q: want 1 to %d bytes", what, s, max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("push: report: %s %q: want printable ASCII without spaces", what, s)
		}
	}
	return nil
}

// UnmarshalBinary decodes a report record. A version-1 record must be
// exact (nothing after its last field); a newer record's trailing fields
// are ignored. Errors wrap ErrProtocol.
func (r *Report) UnmarshalBinary(b []byte) error {
	d := reportDecoder{b: b}
	if len(b) < reportFixedSize {
		return d.fail("%d bytes, the fixed part alone is %d", len(b), reportFixedSize)
	}
	le := binary.LittleEndian
	*r = Report{Format: le.Uint16(b[repOffVersion:])}
	if r.Format == 0 {
		return d.fail("version 0")
	}
	if le.Uint16(b[repOffReserved:]) != 0 || le.Uint32(b[repOffReserved+2:]) != 0 {
		return d.fail("nonzero reserved bytes at %#x", repOffReserved)
	}
	r.Generation = le.Uint64(b[repOffGen:])
	blackout := le.Uint64(b[repOffBlackout:])
	if blackout > math.MaxInt64 {
		return d.fail("blackout %d ns out of range", blackout)
	}
	r.Blackout = time.Duration(blackout)
	copy(r.BuildID[:], b[repOffBuildID:])
	copy(r.PrevBuildID[:], b[repOffPrevBuild:])
	r.Restored = Restored{Tasks: le.Uint64(b[repOffTasks:]), Connections: le.Uint64(b[repOffConns:]), Items: le.Uint64(b[repOffItems:])}
	d.off = reportFixedSize

	var ok bool
	if r.Version, ok = d.name(MaxReportVersionLen, true); !ok {
		return d.fail("bad version string at %#x", d.off)
	}
	if r.PrevVersion, ok = d.name(MaxReportVersionLen, true); !ok {
		return d.fail("bad previous version string at %#x", d.off)
	}
	n, ok := d.u16()
	if !ok || n > MaxPhases {
		return d.fail("phase count at %#x: missing or above %d", d.off, MaxPhases)
	}
	// The counts are capped, so these allocations are bounded.
	for i := 0; i < int(n); i++ {
		name, ok := d.name(MaxPhaseName, false)
		if !ok {
			return d.fail("bad name of phase %d at %#x", i, d.off)
		}
		ns, ok := d.u64()
		if !ok || ns > math.MaxInt64 {
			return d.fail("duration of phase %s missing or out of range", name)
		}
		r.Phases = append(r.Phases, Phase{Name: name, Duration: time.Duration(ns)})
	}
	if n, ok = d.u16(); !ok || n > MaxLines {
		return d.fail("line count at %#x: missing or above %d", d.off, MaxLines)
	}
	for i := 0; i < int(n); i++ {
		l, ok := d.u16()
		if !ok || l > MaxLine || d.off+int(l) > len(b) {
			return d.fail("line %d at %#x: missing or longer than %d bytes", i, d.off, MaxLine)
		}
		r.Lines = append(r.Lines, sanitize(string(b[d.off:d.off+int(l)]), MaxLine))
		d.off += int(l)
	}
	if d.off != len(b) && r.Format == 1 {
		return d.fail("%d bytes after the last field of a version 1 record", len(b)-d.off)
	}
	return nil
}

type reportDecoder struct {
	b   []byte
	off int
}

func (d *reportDecoder) fail(format string, args ...any) error {
	return fmt.Errorf("push: %w: report: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

func (d *reportDecoder) u16() (int, bool) {
	if d.off+2 > len(d.b) {
		return 0, false
	}
	v := binary.LittleEndian.Uint16(d.b[d.off:])
	d.off += 2
	return int(v), true
}

func (d *reportDecoder) u64() (uint64, bool) {
	if d.off+8 > len(d.b) {
		return 0, false
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, true
}

// name reads a one-byte length and that many bytes of printable ASCII.
func (d *reportDecoder) name(max int, empty bool) (string, bool) {
	if d.off >= len(d.b) {
		return "", false
	}
	n := int(d.b[d.off])
	if n > max || d.off+1+n > len(d.b) {
		return "", false
	}
	s := string(d.b[d.off+1 : d.off+1+n])
	if checkName("", s, max, empty) != nil {
		return "", false
	}
	d.off += 1 + n
	return s, true
}

// String formats the report for people: what runs now, the blackout and
// its phases, what was restored, then the lines.
func (r *Report) String() string {
	var b strings.Builder
	ver := func(v string, id [32]byte) string {
		if v == "" {
			v = "(no version)"
		}
		return fmt.Sprintf("%s (build %s)", v, hex.EncodeToString(id[:6]))
	}
	fmt.Fprintf(&b, "updated to %s from %s, generation %d\n", ver(r.Version, r.BuildID), ver(r.PrevVersion, r.PrevBuildID), r.Generation)
	fmt.Fprintf(&b, "blackout  %s\n", r.Blackout)
	if len(r.Phases) > 0 {
		parts := make([]string, len(r.Phases))
		for i, p := range r.Phases {
			parts[i] = fmt.Sprintf("%s %s", p.Name, p.Duration)
		}
		fmt.Fprintf(&b, "phases    %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "restored  %d tasks, %d connections, %d items\n", r.Restored.Tasks, r.Restored.Connections, r.Restored.Items)
	for _, l := range r.Lines {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if r.Format > ReportVersion {
		fmt.Fprintf(&b, "(report version %d; this molt reads version %d, newer fields not shown)\n", r.Format, ReportVersion)
	}
	return b.String()
}
