package handoff

import (
	"fmt"
	"io"
	"time"
)

// HistoryVersion is the update-history section's current schema version.
const HistoryVersion = 1

// Caps of the update-history section.
const (
	// MaxHistoryEntries is the most entries a history holds; Add drops
	// the oldest beyond it.
	MaxHistoryEntries = 256
	// MaxVersionLen caps a release version string.
	MaxVersionLen = 128

	historyHeader = 8
	entryFixed    = 0x70
	// historyMaxLen is the largest valid payload.
	historyMaxLen = historyHeader + MaxHistoryEntries*(entryFixed+2*MaxVersionLen)
)

// Outcome is how an update ended.
type Outcome uint32

const (
	// OutcomePending: the old kernel handed off; the new one has not
	// committed yet. The old kernel writes its entry with this outcome.
	OutcomePending Outcome = 0
	// OutcomeCommitted: the new kernel passed its health window.
	OutcomeCommitted Outcome = 1
	// OutcomeRolledBack: the new kernel failed before commit and the
	// previous image took over again.
	OutcomeRolledBack Outcome = 2
	// OutcomeAborted: the update was refused before the jump (bad image,
	// quiesce timeout); nothing changed.
	OutcomeAborted Outcome = 3

	maxOutcome = OutcomeAborted
)

func (o Outcome) String() string {
	switch o {
	case OutcomePending:
		return "pending"
	case OutcomeCommitted:
		return "committed"
	case OutcomeRolledBack:
		return "rolled-back"
	case OutcomeAborted:
		return "aborted"
	}
	return fmt.Sprintf("outcome(%d)", uint32(o))
}

// HistoryEntry records one update.
type HistoryEntry struct {
	// Generation is the generation of the handoff this update wrote (or,
	// if aborted, would have written). At least 1; entries never go down.
	Generation  uint64
	FromVersion string   // release version of the old image (at most MaxVersionLen bytes)
	ToVersion   string   // release version of the new image
	FromBuild   [32]byte // build ID of the old image
	ToBuild     [32]byte // build ID of the new image
	StartedNs   int64    // wall clock when the update was accepted, Unix ns
	HandoffNs   int64    // wall clock when the state was saved, just before the jump; 0 if aborted
	ResumedNs   int64    // wall clock when the new kernel resumed its tasks; 0 until then
	BlackoutNs  uint64   // monotonic ns from quiesce to resume (the pause clients saw); 0 until known
	Outcome     Outcome
}

// History is the update-history section (TypeUpdateHistory): past updates,
// oldest first. Each kernel carries it forward and appends its own update,
// so the running kernel knows the chain of images that led to it.
//
// Payload, version 1:
//
//	0x00  uint32  entry count (at most MaxHistoryEntries)
//	0x04  uint32  reserved, zero
//	0x08  entries, each 8-byte aligned:
//	      +0x00 uint64 generation      +0x08 int64 started ns
//	      +0x10 int64  handoff ns      +0x18 int64 resumed ns
//	      +0x20 uint64 blackout ns     +0x28 uint32 outcome
//	      +0x2c uint16 from-version length
//	      +0x2e uint16 to-version length
//	      +0x30 [32] from build ID     +0x50 [32] to build ID
//	      +0x70 from version, to version, zero padding to a multiple of 8
type History struct {
	Entries []HistoryEntry
}

// Add appends e, dropping the oldest entries beyond MaxHistoryEntries.
func (h *History) Add(e HistoryEntry) {
	h.Entries = append(h.Entries, e)
	if n := len(h.Entries) - MaxHistoryEntries; n > 0 {
		h.Entries = append(h.Entries[:0], h.Entries[n:]...)
	}
}

// Last returns the newest entry, or nil.
func (h *History) Last() *HistoryEntry {
	if len(h.Entries) == 0 {
		return nil
	}
	return &h.Entries[len(h.Entries)-1]
}

// Size returns the length of the v1 payload.
func (h History) Size() int {
	n := historyHeader
	for _, e := range h.Entries {
		n += entryFixed + align(len(e.FromVersion)+len(e.ToVersion))
	}
	return n
}

func (h History) check() error {
	if len(h.Entries) > MaxHistoryEntries {
		return fmt.Errorf("update-history: %d entries exceed the cap of %d: %w", len(h.Entries), MaxHistoryEntries, ErrTooLarge)
	}
	for i, e := range h.Entries {
		if err := e.check(i, h.Entries); err != nil {
			return fmt.Errorf("update-history entry %d: %w", i, err)
		}
	}
	return nil
}

func (e *HistoryEntry) check(i int, all []HistoryEntry) error {
	switch {
	case e.Generation == 0:
		return fmt.Errorf("generation 0: %w", ErrInvalid)
	case i > 0 && e.Generation < all[i-1].Generation:
		return fmt.Errorf("generation %d below the previous entry's %d: %w", e.Generation, all[i-1].Generation, ErrInvalid)
	case e.Outcome > maxOutcome:
		return fmt.Errorf("unknown %v: %w", e.Outcome, ErrInvalid)
	case len(e.FromVersion) > MaxVersionLen:
		return fmt.Errorf("from-version of %d bytes exceeds %d: %w", len(e.FromVersion), MaxVersionLen, ErrTooLarge)
	case len(e.ToVersion) > MaxVersionLen:
		return fmt.Errorf("to-version of %d bytes exceeds %d: %w", len(e.ToVersion), MaxVersionLen, ErrTooLarge)
	}
	return nil
}

// Append appends the v1 payload to dst. It refuses a history that
// DecodeHistory would refuse.
func (h History) Append(dst []byte) ([]byte, error) {
	if err := h.check(); err != nil {
		return dst, err
	}
	dst = le.AppendUint32(dst, uint32(len(h.Entries)))
	dst = le.AppendUint32(dst, 0)
	for _, e := range h.Entries {
		dst = le.AppendUint64(dst, e.Generation)
		dst = le.AppendUint64(dst, uint64(e.StartedNs))
		dst = le.AppendUint64(dst, uint64(e.HandoffNs))
		dst = le.AppendUint64(dst, uint64(e.ResumedNs))
		dst = le.AppendUint64(dst, e.BlackoutNs)
		dst = le.AppendUint32(dst, uint32(e.Outcome))
		dst = le.AppendUint16(dst, uint16(len(e.FromVersion)))
		dst = le.AppendUint16(dst, uint16(len(e.ToVersion)))
		dst = append(dst, e.FromBuild[:]...)
		dst = append(dst, e.ToBuild[:]...)
		dst = append(dst, e.FromVersion...)
		dst = append(dst, e.ToVersion...)
		n := len(e.FromVersion) + len(e.ToVersion)
		dst = append(dst, make([]byte, align(n)-n)...)
	}
	return dst, nil
}

// DecodeHistory parses a v1 payload.
func DecodeHistory(p []byte) (History, error) {
	if len(p) < historyHeader {
		return History{}, fmt.Errorf("update-history payload of %d bytes cannot hold its %d-byte header: %w", len(p), historyHeader, ErrTruncated)
	}
	n := le.Uint32(p[0:])
	if v := le.Uint32(p[4:]); v != 0 {
		return History{}, fmt.Errorf("update-history reserved field at payload offset 0x4 holds %#x: %w", v, ErrReserved)
	}
	if n > MaxHistoryEntries {
		return History{}, fmt.Errorf("update-history: %d entries exceed the cap of %d: %w", n, MaxHistoryEntries, ErrTooLarge)
	}
	if need := int(n) * entryFixed; need > len(p)-historyHeader {
		return History{}, fmt.Errorf("update-history: %d entries need at least %d bytes, payload has %d after its header: %w", n, need, len(p)-historyHeader, ErrTruncated)
	}
	h := History{Entries: make([]HistoryEntry, 0, n)}
	off := historyHeader
	for i := 0; i < int(n); i++ {
		fail := func(format string, args ...any) (History, error) {
			return History{}, fmt.Errorf("update-history entry %d at payload offset %#x: "+format, append([]any{i, off}, args...)...)
		}
		if len(p)-off < entryFixed {
			return fail("%d bytes left, an entry needs %d: %w", len(p)-off, entryFixed, ErrTruncated)
		}
		q := p[off:]
		e := HistoryEntry{
			Generation: le.Uint64(q[0x00:]),
			StartedNs:  int64(le.Uint64(q[0x08:])),
			HandoffNs:  int64(le.Uint64(q[0x10:])),
			ResumedNs:  int64(le.Uint64(q[0x18:])),
			BlackoutNs: le.Uint64(q[0x20:]),
			Outcome:    Outcome(le.Uint32(q[0x28:])),
		}
		fl, tl := int(le.Uint16(q[0x2c:])), int(le.Uint16(q[0x2e:]))
		copy(e.FromBuild[:], q[0x30:0x50])
		copy(e.ToBuild[:], q[0x50:0x70])
		if fl > MaxVersionLen || tl > MaxVersionLen {
			return fail("version strings of %d and %d bytes; the cap is %d: %w", fl, tl, MaxVersionLen, ErrTooLarge)
		}
		strs := off + entryFixed
		next := strs + align(fl+tl)
		if next > len(p) {
			return fail("version strings end at %#x, past the payload end %#x: %w", next, len(p), ErrTruncated)
		}
		if !allZero(p[strs+fl+tl : next]) {
			return fail("nonzero padding after the version strings: %w", ErrReserved)
		}
		e.FromVersion = string(p[strs : strs+fl])
		e.ToVersion = string(p[strs+fl : strs+fl+tl])
		h.Entries = append(h.Entries, e)
		if err := e.check(i, h.Entries); err != nil {
			return fail("%w", err)
		}
		off = next
	}
	if off != len(p) {
		return History{}, fmt.Errorf("update-history: %d bytes follow the last entry at payload offset %#x: %w", len(p)-off, off, ErrInvalid)
	}
	return h, nil
}

// Describe prints one line per entry.
func (h History) Describe(w io.Writer) error {
	if len(h.Entries) == 0 {
		_, err := fmt.Fprintln(w, "no updates")
		return err
	}
	for _, e := range h.Entries {
		line := fmt.Sprintf("gen %d  %s (%x) -> %s (%x)  %s  started %s",
			e.Generation, orDash(e.FromVersion), e.FromBuild[:6], orDash(e.ToVersion), e.ToBuild[:6],
			e.Outcome, wall(e.StartedNs))
		if e.BlackoutNs != 0 {
			line += fmt.Sprintf("  blackout %v", time.Duration(e.BlackoutNs))
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return fmt.Sprintf("%q", s)
}

func wall(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339)
}

var historyType = SectionType{
	Type:   TypeUpdateHistory,
	MaxLen: historyMaxLen,
	Codecs: []Codec{{
		Version: 1,
		Decode:  func(p []byte) (any, error) { return DecodeHistory(p) },
	}},
}
