package qw

import "fmt"

// EntityState is what a client knows of an entity (entity_state_t): a
// server keeps one per entity per frame and baseline, and sends deltas.
type EntityState struct {
	Number   uint16 // 1..511
	Model    uint8
	Frame    uint8
	Colormap uint8
	Skin     uint8
	Effects  uint8
	Origin   [3]float32
	Angles   [3]float32
	Solid    bool // U_SOLID: solid for client-side prediction
}

// Quantize returns s with origin and angles rounded to what the wire
// carries.
func (s EntityState) Quantize() EntityState {
	for i := range 3 {
		s.Origin[i] = float32(CoordBits(s.Origin[i])) / 8
		s.Angles[i] = float32(int8(AngleBits(s.Angles[i]))) * (360.0 / 256)
	}
	return s
}

// EntityDelta is one entry of svc_packetentities as it is on the wire:
// the entity number, the U_* bits (bits 9..15 from the first word, bits
// 0..7 from the U_MOREBITS byte; bit 8 is never set) and the fields the
// bits announce. Fields whose bit is clear are ignored when writing and
// zero when read.
type EntityDelta struct {
	Number   uint16 // 0..511
	Bits     uint16 // U_* bits
	Model    uint8
	Frame    uint8
	Colormap uint8
	Skin     uint8
	Effects  uint8
	Origin   [3]float32
	Angles   [3]float32
}

// Removed reports whether the delta removes the entity (U_REMOVE).
func (d *EntityDelta) Removed() bool { return d.Bits&U_REMOVE != 0 }

// DeltaEntity returns the delta that turns from into to, as SV_WriteDelta
// builds it: a bit for every field whose wire value changes, U_SOLID if to
// is solid, U_MOREBITS if any low bit is set. ok is false when nothing
// changed and force is false (nothing need be sent); a server forces
// entities it sends against their baseline.
func DeltaEntity(from, to *EntityState, force bool) (d EntityDelta, ok bool) {
	var bits uint16
	originBits := [3]uint16{U_ORIGIN1, U_ORIGIN2, U_ORIGIN3}
	angleBits := [3]uint16{U_ANGLE1, U_ANGLE2, U_ANGLE3}
	for i := range 3 {
		if CoordBits(to.Origin[i]) != CoordBits(from.Origin[i]) {
			bits |= originBits[i]
		}
		if AngleBits(to.Angles[i]) != AngleBits(from.Angles[i]) {
			bits |= angleBits[i]
		}
	}
	if to.Colormap != from.Colormap {
		bits |= U_COLORMAP
	}
	if to.Skin != from.Skin {
		bits |= U_SKIN
	}
	if to.Frame != from.Frame {
		bits |= U_FRAME
	}
	if to.Effects != from.Effects {
		bits |= U_EFFECTS
	}
	if to.Model != from.Model {
		bits |= U_MODEL
	}
	if to.Solid {
		bits |= U_SOLID
	}
	if bits&0xff != 0 {
		bits |= U_MOREBITS
	}
	if bits == 0 && !force {
		return EntityDelta{}, false
	}
	return EntityDelta{
		Number: to.Number, Bits: bits,
		Model: to.Model, Frame: to.Frame, Colormap: to.Colormap, Skin: to.Skin, Effects: to.Effects,
		Origin: to.Origin, Angles: to.Angles,
	}, true
}

// RemoveEntity returns the delta that removes entity num.
func RemoveEntity(num uint16) EntityDelta { return EntityDelta{Number: num, Bits: U_REMOVE} }

// Apply returns base updated by d, as CL_ParseDelta does (the number is
// d's; Solid follows U_SOLID, which is sent with every update of a solid
// entity rather than as a change).
func (d *EntityDelta) Apply(base EntityState) EntityState {
	s := base
	s.Number = d.Number
	b := d.Bits
	if b&U_MODEL != 0 {
		s.Model = d.Model
	}
	if b&U_FRAME != 0 {
		s.Frame = d.Frame
	}
	if b&U_COLORMAP != 0 {
		s.Colormap = d.Colormap
	}
	if b&U_SKIN != 0 {
		s.Skin = d.Skin
	}
	if b&U_EFFECTS != 0 {
		s.Effects = d.Effects
	}
	originBits := [3]uint16{U_ORIGIN1, U_ORIGIN2, U_ORIGIN3}
	angleBits := [3]uint16{U_ANGLE1, U_ANGLE2, U_ANGLE3}
	for i := range 3 {
		if b&originBits[i] != 0 {
			s.Origin[i] = d.Origin[i]
		}
		if b&angleBits[i] != 0 {
			s.Angles[i] = d.Angles[i]
		}
	}
	s.Solid = b&U_SOLID != 0
	return s
}

// EntityDelta writes d: the word (number | high bits), the U_MOREBITS byte
// if any low bit is set, then model, frame, colormap, skin, effects,
// origin 1, angle 1, origin 2, angle 2, origin 3, angle 3 as announced. A
// U_REMOVE entry is the word alone, which is all a client reads of it, so
// it may carry no low bits. A word of 0 would end the list: it is refused.
func (w *Writer) EntityDelta(d *EntityDelta) {
	bits := d.Bits
	switch {
	case d.Number > entityNumberMask:
		w.Fail(fmt.Errorf("%w: entity number %d over %d", ErrUnencodable, d.Number, entityNumberMask))
		return
	case bits&0x100 != 0:
		w.Fail(fmt.Errorf("%w: entity %d: bit 8 is part of the entity number", ErrUnencodable, d.Number))
		return
	case bits&U_REMOVE != 0 && bits&0xff != 0:
		w.Fail(fmt.Errorf("%w: entity %d: U_REMOVE with low bits %#02x", ErrUnencodable, d.Number, bits&0xff))
		return
	}
	if bits&U_REMOVE == 0 && bits&0xff != 0 {
		bits |= U_MOREBITS
	}
	word := d.Number | bits&0xfe00
	if word == 0 {
		w.Fail(fmt.Errorf("%w: entity 0 with no high bits would end the entity list", ErrUnencodable))
		return
	}
	w.UShort(word)
	if bits&U_REMOVE != 0 {
		return
	}
	if bits&U_MOREBITS != 0 {
		w.Byte(uint8(bits))
	}
	if bits&U_MODEL != 0 {
		w.Byte(d.Model)
	}
	if bits&U_FRAME != 0 {
		w.Byte(d.Frame)
	}
	if bits&U_COLORMAP != 0 {
		w.Byte(d.Colormap)
	}
	if bits&U_SKIN != 0 {
		w.Byte(d.Skin)
	}
	if bits&U_EFFECTS != 0 {
		w.Byte(d.Effects)
	}
	if bits&U_ORIGIN1 != 0 {
		w.Coord(d.Origin[0])
	}
	if bits&U_ANGLE1 != 0 {
		w.Angle(d.Angles[0])
	}
	if bits&U_ORIGIN2 != 0 {
		w.Coord(d.Origin[1])
	}
	if bits&U_ANGLE2 != 0 {
		w.Angle(d.Angles[1])
	}
	if bits&U_ORIGIN3 != 0 {
		w.Coord(d.Origin[2])
	}
	if bits&U_ANGLE3 != 0 {
		w.Angle(d.Angles[2])
	}
}

// entityDeltaBody reads the rest of an entry whose first word was word
// (non-zero), as CL_ParsePacketEntities and CL_ParseDelta do.
func (r *Reader) entityDeltaBody(word uint16) EntityDelta {
	d := EntityDelta{Number: word & entityNumberMask, Bits: word &^ entityNumberMask}
	if d.Bits&U_REMOVE != 0 {
		return d
	}
	if d.Bits&U_MOREBITS != 0 {
		d.Bits |= uint16(r.Byte())
	}
	b := d.Bits
	if b&U_MODEL != 0 {
		d.Model = r.Byte()
	}
	if b&U_FRAME != 0 {
		d.Frame = r.Byte()
	}
	if b&U_COLORMAP != 0 {
		d.Colormap = r.Byte()
	}
	if b&U_SKIN != 0 {
		d.Skin = r.Byte()
	}
	if b&U_EFFECTS != 0 {
		d.Effects = r.Byte()
	}
	if b&U_ORIGIN1 != 0 {
		d.Origin[0] = r.Coord()
	}
	if b&U_ANGLE1 != 0 {
		d.Angles[0] = r.Angle()
	}
	if b&U_ORIGIN2 != 0 {
		d.Origin[1] = r.Coord()
	}
	if b&U_ANGLE2 != 0 {
		d.Angles[1] = r.Angle()
	}
	if b&U_ORIGIN3 != 0 {
		d.Origin[2] = r.Coord()
	}
	if b&U_ANGLE3 != 0 {
		d.Angles[2] = r.Angle()
	}
	return d
}

// entityList writes deltas and the terminating 0 word.
func (w *Writer) entityList(ds []EntityDelta) {
	for i := range ds {
		w.EntityDelta(&ds[i])
	}
	w.UShort(0)
}

// entityList reads entries up to the terminating 0 word.
func (r *Reader) entityList() []EntityDelta {
	var ds []EntityDelta
	for r.Err() == nil {
		word := r.UShort()
		if word == 0 || r.Err() != nil {
			break
		}
		ds = append(ds, r.entityDeltaBody(word))
	}
	return ds
}
