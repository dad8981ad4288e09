package qw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Message buffer errors. Errors from a Reader or Writer wrap one of these.
var (
	// ErrTruncated: a read ran past the end of the buffer, or a string has
	// no terminating NUL.
	ErrTruncated = errors.New("qw: message truncated")
	// ErrMalformed: the bytes are all there but do not form a valid value
	// (a bad enum, an impossible length, a wrong protocol number).
	ErrMalformed = errors.New("qw: malformed message")
	// ErrOverflow: a write would make the buffer longer than its limit.
	ErrOverflow = errors.New("qw: message buffer overflow")
	// ErrUnencodable: a value cannot be represented on the wire (a string
	// with a NUL in it, an entity number over 511, ...).
	ErrUnencodable = errors.New("qw: value cannot be encoded")
)

// Writer builds a message buffer the way Quake's sizebuf does: little-endian
// integers, IEEE floats, NUL-terminated strings, and Quake's fixed-point
// coordinate and angle encodings. A failed write (over the limit, or a value
// the wire cannot carry) sets a sticky error, like sizebuf's overflowed
// flag, and every later write does nothing, so a caller can write a whole
// message and check Err once. The failed write itself adds nothing, but
// earlier parts of the same message stay: take a mark with Len and
// Truncate back to it (or use AppendServerMessages, which does) before
// sending the buffer.
type Writer struct {
	buf   []byte
	limit int
	err   error
}

// NewWriter returns a Writer that appends to buf[:0]'s storage and refuses
// to grow past limit bytes (0: no limit).
func NewWriter(buf []byte, limit int) *Writer {
	return &Writer{buf: buf[:0], limit: limit}
}

// Bytes returns the bytes written so far. They alias the Writer's storage.
func (w *Writer) Bytes() []byte { return w.buf }

// Len returns the number of bytes written.
func (w *Writer) Len() int { return len(w.buf) }

// Err returns the first error of any write, or nil.
func (w *Writer) Err() error { return w.err }

// Reset empties the buffer and clears the error, keeping the storage.
func (w *Writer) Reset() {
	w.buf = w.buf[:0]
	w.err = nil
}

// Truncate cuts the buffer back to n bytes (a mark taken with Len) and
// clears the error; a caller that tries to fit one more message into a
// datagram uses it to undo a message that did not fit.
func (w *Writer) Truncate(n int) {
	if n >= 0 && n <= len(w.buf) {
		w.buf = w.buf[:n]
	}
	w.err = nil
}

// Fail records err as the Writer's error unless one is already recorded.
func (w *Writer) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// grow reserves n bytes, or records ErrOverflow and returns nil.
func (w *Writer) grow(n int) []byte {
	if w.err != nil {
		return nil
	}
	if w.limit > 0 && len(w.buf)+n > w.limit {
		w.err = fmt.Errorf("%w: %d bytes written, %d more exceed the limit of %d", ErrOverflow, len(w.buf), n, w.limit)
		return nil
	}
	l := len(w.buf)
	w.buf = append(w.buf, make([]byte, n)...)
	return w.buf[l:]
}

// Byte writes an unsigned byte.
func (w *Writer) Byte(v uint8) {
	if b := w.grow(1); b != nil {
		b[0] = v
	}
}

// Char writes a signed byte.
func (w *Writer) Char(v int8) { w.Byte(uint8(v)) }

// Short writes a signed 16-bit integer.
func (w *Writer) Short(v int16) { w.UShort(uint16(v)) }

// UShort writes an unsigned 16-bit integer.
func (w *Writer) UShort(v uint16) {
	if b := w.grow(2); b != nil {
		binary.LittleEndian.PutUint16(b, v)
	}
}

// Long writes a signed 32-bit integer.
func (w *Writer) Long(v int32) { w.ULong(uint32(v)) }

// ULong writes an unsigned 32-bit integer.
func (w *Writer) ULong(v uint32) {
	if b := w.grow(4); b != nil {
		binary.LittleEndian.PutUint32(b, v)
	}
}

// Float writes an IEEE-754 single, bit for bit (NaN payloads included).
func (w *Writer) Float(v float32) { w.ULong(math.Float32bits(v)) }

// Str writes s and a terminating NUL. A string containing NUL cannot be
// sent (the receiver would stop at it and misparse the rest): it records
// ErrUnencodable.
func (w *Writer) Str(s string) {
	if w.err != nil {
		return
	}
	if strings.IndexByte(s, 0) >= 0 {
		w.err = fmt.Errorf("%w: string %.40q contains a NUL byte", ErrUnencodable, s)
		return
	}
	if b := w.grow(len(s) + 1); b != nil {
		copy(b, s)
		b[len(s)] = 0
	}
}

// Data writes b as is.
func (w *Writer) Data(b []byte) {
	if d := w.grow(len(b)); d != nil {
		copy(d, b)
	}
}

// Coord writes a map coordinate as a 16-bit integer of eighths of a unit
// (MSG_WriteCoord): f*8 truncated toward zero, as id's (int) cast does. The
// wire range is -4096 to 4095.875; values beyond it saturate and NaN is
// sent as 0, where C would wrap or be undefined.
func (w *Writer) Coord(f float32) { w.Short(CoordBits(f)) }

// CoordBits returns the 16-bit wire value Coord writes for f.
func CoordBits(f float32) int16 {
	v := float64(f) * 8
	switch {
	case v != v:
		return 0
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	}
	return int16(v) // truncation toward zero
}

// Angle writes an angle in degrees as one byte of 256ths of a turn
// (MSG_WriteAngle: rounded to nearest, wrapped). NaN and infinities are
// sent as 0.
func (w *Writer) Angle(f float32) { w.Byte(AngleBits(f)) }

// AngleBits returns the byte Angle writes for f.
func AngleBits(f float32) uint8 { return uint8(wrapRound(float64(f)*256/360, 256)) }

// Angle16 writes an angle in degrees as 16 bits of 65536ths of a turn
// (MSG_WriteAngle16, used in usercmds).
func (w *Writer) Angle16(f float32) { w.UShort(Angle16Bits(f)) }

// Angle16Bits returns the 16-bit value Angle16 writes for f.
func Angle16Bits(f float32) uint16 { return uint16(wrapRound(float64(f)*65536/360, 65536)) }

// wrapRound rounds x half away from zero (Q_rint) and reduces it modulo m
// into [0, m), so any finite angle maps to a wire value without relying on
// Go's implementation-defined out-of-range float-to-int conversion.
func wrapRound(x, m float64) int64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	r := math.Mod(math.Round(x), m)
	if r < 0 {
		r += m
	}
	return int64(r) % int64(m)
}

// Reader reads a message buffer. It never panics: a read past the end (or
// a string without its NUL) records ErrTruncated, every later read returns
// zero values, and the caller checks Err when it has read a whole message,
// as Quake checks msg_badread. Decoders record malformed values with Fail.
type Reader struct {
	data []byte
	off  int
	err  error
}

// NewReader returns a Reader over b. It does not copy b; byte slices it
// returns alias it.
func NewReader(b []byte) *Reader { return &Reader{data: b} }

// Err returns the first error recorded, or nil.
func (r *Reader) Err() error { return r.err }

// Offset returns the number of bytes consumed.
func (r *Reader) Offset() int { return r.off }

// Len returns the number of bytes not yet read.
func (r *Reader) Len() int { return len(r.data) - r.off }

// Fail records err unless an error is already recorded.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Failf records an ErrMalformed error with the current offset.
func (r *Reader) Failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s (offset %d)", ErrMalformed, fmt.Sprintf(format, args...), r.off)
	}
}

// take consumes n bytes, or records ErrTruncated and returns nil.
func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.data)-r.off {
		r.err = fmt.Errorf("%w: %s at offset %d needs %d bytes, %d left", ErrTruncated, what, r.off, n, len(r.data)-r.off)
		return nil
	}
	b := r.data[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

// Byte reads an unsigned byte.
func (r *Reader) Byte() uint8 {
	if b := r.take(1, "byte"); b != nil {
		return b[0]
	}
	return 0
}

// Char reads a signed byte.
func (r *Reader) Char() int8 { return int8(r.Byte()) }

// Short reads a signed 16-bit integer.
func (r *Reader) Short() int16 { return int16(r.UShort()) }

// UShort reads an unsigned 16-bit integer.
func (r *Reader) UShort() uint16 {
	if b := r.take(2, "short"); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

// Long reads a signed 32-bit integer.
func (r *Reader) Long() int32 { return int32(r.ULong()) }

// ULong reads an unsigned 32-bit integer.
func (r *Reader) ULong() uint32 {
	if b := r.take(4, "long"); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// Float reads an IEEE-754 single, bit for bit.
func (r *Reader) Float() float32 { return math.Float32frombits(r.ULong()) }

// Str reads a NUL-terminated string. A string that runs to the end of the
// buffer without a NUL is truncated: Quake would return it and read garbage
// as the next message, this Reader records ErrTruncated.
func (r *Reader) Str() string {
	if r.err != nil {
		return ""
	}
	rest := r.data[r.off:]
	i := indexNUL(rest)
	if i < 0 {
		r.err = fmt.Errorf("%w: string at offset %d has no terminating NUL (%d bytes left)", ErrTruncated, r.off, len(rest))
		return ""
	}
	s := string(rest[:i])
	r.off += i + 1
	return s
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// Bytes reads n bytes; the slice aliases the Reader's buffer.
func (r *Reader) Bytes(n int) []byte { return r.take(n, "byte block") }

// Rest reads everything that is left.
func (r *Reader) Rest() []byte { return r.take(r.Len(), "rest") }

// Coord reads a coordinate (16-bit eighths of a unit). Every wire value is
// exactly representable as a float32, so Coord and Writer.Coord round-trip
// bit for bit.
func (r *Reader) Coord() float32 { return float32(r.Short()) / 8 }

// Angle reads a one-byte angle. Like MSG_ReadAngle it reads a signed byte,
// so the result is in [-180, 178.59375] degrees.
func (r *Reader) Angle() float32 { return float32(r.Char()) * (360.0 / 256) }

// Angle16 reads a 16-bit angle, signed like MSG_ReadAngle16: [-180, 180).
func (r *Reader) Angle16() float32 { return float32(r.Short()) * (360.0 / 65536) }
