package service

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/molt-os/molt/updater/handoff"
)

// Pending is the update section (handoff type 8): what the old kernel's
// update service tells the new one about the update in progress.
//
// Payload, version 1 (all integers little-endian):
//
//	0x00  uint32  reply socket: the socket ID of the push connection the
//	              new kernel answers on; 0 if none
//	0x04  uint32  listen socket: the update service's own listener, which
//	              crosses the jump like every socket; 0 if none
//	0x08  uint32  image slot the new image runs from
//	0x0c  uint32  image slot holding the previous image; NoSlot if none
//	0x10  uint32  phase count n (at most MaxPhases)
//	0x14  uint32  reserved, zero
//	0x18  uint64  monotonic ns when quiescing began: the blackout's start
//	0x20  n × 24  phases, in order: name (16 bytes, NUL-padded, at least
//	              one byte, [a-z0-9-]), duration ns (uint64)
type Pending struct {
	ReplySocket  uint32
	ListenSocket uint32
	Slot         uint32
	PreviousSlot uint32
	QuiesceBegan uint64 // monotonic ns
	Phases       []Phase
}

// Phase is one measured step of an update.
type Phase struct {
	Name string
	D    time.Duration
}

// NoSlot means no image store slot.
const NoSlot = 0xffff_ffff

// MaxPhases caps Pending.Phases.
const MaxPhases = 32

// PendingVersion is the update section version this kernel writes.
const PendingVersion = 1

const (
	pendingFixed = 0x20
	phaseSize    = 24
	phaseName    = 16
)

// ErrPending is wrapped by DecodePending's errors.
var ErrPending = errors.New("service: update section")

// Append encodes p as a v1 payload.
func (p Pending) Append(dst []byte) ([]byte, error) {
	if len(p.Phases) > MaxPhases {
		return nil, fmt.Errorf("service: update section: %d phases, at most %d", len(p.Phases), MaxPhases)
	}
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, p.ReplySocket)
	dst = le.AppendUint32(dst, p.ListenSocket)
	dst = le.AppendUint32(dst, p.Slot)
	dst = le.AppendUint32(dst, p.PreviousSlot)
	dst = le.AppendUint32(dst, uint32(len(p.Phases)))
	dst = le.AppendUint32(dst, 0)
	dst = le.AppendUint64(dst, p.QuiesceBegan)
	for _, ph := range p.Phases {
		if !validPhaseName(ph.Name) {
			return nil, fmt.Errorf("service: update section: bad phase name %q", ph.Name)
		}
		if ph.D < 0 {
			return nil, fmt.Errorf("service: update section: phase %s: negative duration", ph.Name)
		}
		var name [phaseName]byte
		copy(name[:], ph.Name)
		dst = append(dst, name[:]...)
		dst = le.AppendUint64(dst, uint64(ph.D))
	}
	return dst, nil
}

func validPhaseName(s string) bool {
	if len(s) == 0 || len(s) > phaseName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// DecodePending decodes a v1 payload, rejecting anything Append would not
// write.
func DecodePending(b []byte) (Pending, error) {
	le := binary.LittleEndian
	bad := func(off int, format string, args ...any) (Pending, error) {
		return Pending{}, fmt.Errorf("%w: offset %#x: %s", ErrPending, off, fmt.Sprintf(format, args...))
	}
	if len(b) < pendingFixed {
		return bad(0, "%d bytes, the fixed part is %d", len(b), pendingFixed)
	}
	p := Pending{
		ReplySocket:  le.Uint32(b),
		ListenSocket: le.Uint32(b[4:]),
		Slot:         le.Uint32(b[8:]),
		PreviousSlot: le.Uint32(b[0x0c:]),
		QuiesceBegan: le.Uint64(b[0x18:]),
	}
	n := le.Uint32(b[0x10:])
	if n > MaxPhases {
		return bad(0x10, "%d phases, at most %d", n, MaxPhases)
	}
	if le.Uint32(b[0x14:]) != 0 {
		return bad(0x14, "reserved field is not zero")
	}
	if want := pendingFixed + int(n)*phaseSize; len(b) != want {
		return bad(0, "%d bytes for %d phases; want %d", len(b), n, want)
	}
	for i := range int(n) {
		off := pendingFixed + i*phaseSize
		raw := b[off : off+phaseName]
		end := 0
		for end < phaseName && raw[end] != 0 {
			end++
		}
		for _, c := range raw[end:] {
			if c != 0 {
				return bad(off, "phase name is not NUL-padded")
			}
		}
		name := string(raw[:end])
		if !validPhaseName(name) {
			return bad(off, "bad phase name %q", name)
		}
		d := le.Uint64(b[off+phaseName:])
		if d > 1<<63-1 {
			return bad(off+phaseName, "phase %s: duration %d overflows", name, d)
		}
		p.Phases = append(p.Phases, Phase{Name: name, D: time.Duration(d)})
	}
	return p, nil
}

// PendingSection is the update section type, for a handoff.Registry.
var PendingSection = handoff.SectionType{
	Type:   handoff.TypeUpdate,
	MaxLen: pendingFixed + MaxPhases*phaseSize,
	Codecs: []handoff.Codec{{
		Version: PendingVersion,
		Decode:  func(p []byte) (any, error) { return DecodePending(p) },
	}},
}
