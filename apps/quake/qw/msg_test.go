package qw

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestWriterEncodings(t *testing.T) {
	w := NewWriter(nil, 0)
	w.Byte(0xfe)
	w.Char(-2)
	w.Short(-2)
	w.UShort(0x1234)
	w.Long(-2)
	w.ULong(0x12345678)
	w.Float(1)
	w.Str("hi")
	w.Data([]byte{9, 8})
	want := []byte{
		0xfe, 0xfe,
		0xfe, 0xff, 0x34, 0x12,
		0xfe, 0xff, 0xff, 0xff, 0x78, 0x56, 0x34, 0x12,
		0x00, 0x00, 0x80, 0x3f,
		'h', 'i', 0,
		9, 8,
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), want) {
		t.Fatalf("Bytes() = % x; want % x", w.Bytes(), want)
	}
}

func TestCoordAngleEncodings(t *testing.T) {
	coords := []struct {
		f    float32
		want int16
	}{
		{0, 0}, {1, 8}, {-1, -8}, {0.125, 1}, {0.124, 0}, {-0.124, 0}, {100.9, 807},
		{-100.9, -807}, {4095.875, 32767}, {5000, 32767}, {-5000, -32768},
		{float32(math.NaN()), 0}, {float32(math.Inf(1)), 32767},
	}
	for _, c := range coords {
		if got := CoordBits(c.f); got != c.want {
			t.Errorf("CoordBits(%v) = %d; want %d", c.f, got, c.want)
		}
	}
	angles := []struct {
		f    float32
		want uint8
	}{
		{0, 0}, {90, 64}, {180, 128}, {-90, 192}, {359, 255}, {360, 0}, {720 + 45, 32},
		{1.40625 / 2, 1}, {-1.40625 / 2, 255}, {float32(math.NaN()), 0}, {1e30, 0},
	}
	for _, c := range angles {
		if got := AngleBits(c.f); got != c.want {
			t.Errorf("AngleBits(%v) = %d; want %d", c.f, got, c.want)
		}
	}
	a16 := []struct {
		f    float32
		want uint16
	}{{0, 0}, {90, 16384}, {-90, 49152}, {180, 32768}, {359.999, 0}, {float32(math.Inf(-1)), 0}}
	for _, c := range a16 {
		if got := Angle16Bits(c.f); got != c.want {
			t.Errorf("Angle16Bits(%v) = %d; want %d", c.f, got, c.want)
		}
	}
}

// Every wire value of a coord or angle decodes to a float that encodes
// back to the same wire value: decoding is exact.
func TestCoordAngleRoundTripAllValues(t *testing.T) {
	for v := math.MinInt16; v <= math.MaxInt16; v++ {
		b := []byte{byte(v), byte(v >> 8)}
		if got := CoordBits(NewReader(b).Coord()); got != int16(v) {
			t.Fatalf("coord %d decodes and re-encodes to %d", v, got)
		}
		if got := Angle16Bits(NewReader(b).Angle16()); got != uint16(v) {
			t.Fatalf("angle16 %d decodes and re-encodes to %d", uint16(v), got)
		}
	}
	for v := 0; v < 256; v++ {
		if got := AngleBits(NewReader([]byte{byte(v)}).Angle()); got != uint8(v) {
			t.Fatalf("angle %d decodes and re-encodes to %d", v, got)
		}
	}
	if got := NewReader([]byte{128}).Angle(); got != -180 {
		t.Errorf("Angle(128) = %v; want -180 (signed, as MSG_ReadAngle)", got)
	}
}

func TestReaderStickyTruncation(t *testing.T) {
	r := NewReader([]byte{1, 2, 3})
	if v := r.Short(); v != 0x0201 {
		t.Fatalf("Short() = %#x; want 0x0201", v)
	}
	if v := r.Long(); v != 0 || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("Long() past the end = %d, err %v; want 0, ErrTruncated", v, r.Err())
	}
	off := r.Offset()
	if v := r.Byte(); v != 0 || r.Offset() != off {
		t.Fatalf("Byte() after an error = %d at offset %d; want 0, offset unchanged %d", v, r.Offset(), off)
	}
	if !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("Err() = %v; want the first error kept", r.Err())
	}

	r = NewReader([]byte("abc"))
	if s := r.Str(); s != "" || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("Str() without NUL = %q, %v; want \"\", ErrTruncated", s, r.Err())
	}
	r = NewReader([]byte("ab\x00c\x00"))
	if a, b := r.Str(), r.Str(); a != "ab" || b != "c" || r.Err() != nil || r.Len() != 0 {
		t.Fatalf("Str(), Str() = %q, %q, err %v, %d left; want ab, c, nil, 0", a, b, r.Err(), r.Len())
	}
	r = NewReader([]byte{1})
	if b := r.Bytes(-1); b != nil || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("Bytes(-1) = %v, %v; want nil, ErrTruncated", b, r.Err())
	}
}

func TestWriterLimitAndErrors(t *testing.T) {
	w := NewWriter(make([]byte, 0, 8), 4)
	w.Short(1)
	w.Long(2) // does not fit
	w.Byte(3) // would fit, but the error is sticky
	if !errors.Is(w.Err(), ErrOverflow) || w.Len() != 2 {
		t.Fatalf("after overflow: err %v, len %d; want ErrOverflow, 2", w.Err(), w.Len())
	}
	w.Truncate(0)
	if w.Err() != nil || w.Len() != 0 {
		t.Fatalf("after Truncate(0): err %v, len %d", w.Err(), w.Len())
	}
	w.Str("a\x00b")
	if !errors.Is(w.Err(), ErrUnencodable) || w.Len() != 0 {
		t.Fatalf("Str with NUL: err %v, len %d; want ErrUnencodable, 0", w.Err(), w.Len())
	}
	w.Reset()
	w.Str("abc")
	if w.Err() != nil || w.Len() != 4 {
		t.Fatalf("Str(abc) after Reset: err %v, len %d; want nil, 4", w.Err(), w.Len())
	}
}

func TestFloatBitsExact(t *testing.T) {
	for _, bits := range []uint32{0, 0x80000000, 0x7fc00001, 0x7f800001, 0xffffffff, 0x3f800000} {
		w := NewWriter(nil, 0)
		w.Float(NewReader([]byte{byte(bits), byte(bits >> 8), byte(bits >> 16), byte(bits >> 24)}).Float())
		if got := uint32(w.Bytes()[0]) | uint32(w.Bytes()[1])<<8 | uint32(w.Bytes()[2])<<16 | uint32(w.Bytes()[3])<<24; got != bits {
			t.Errorf("float %#08x round-trips to %#08x", bits, got)
		}
	}
}
