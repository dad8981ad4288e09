package conntable

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics; whatever it accepts re-encodes to the
// same bytes (the encoding is canonical) and decodes to the same table.
func FuzzDecode(f *testing.F) {
	if b, err := sample().Encode(); err == nil {
		f.Add(b)
	}
	if b, err := (&Table{NextID: 1}).Encode(); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := Decode(b)
		if err != nil {
			if tb != nil {
				t.Fatalf("Decode returned a table with error %v", err)
			}
			return
		}
		b2, err := tb.Encode()
		if err != nil {
			t.Fatalf("Encode(Decode(b)): %v", err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("not canonical:\nin  %x\nout %x", b, b2)
		}
		tb2, err := Decode(b2)
		if err != nil || !reflect.DeepEqual(tb, tb2) {
			t.Fatalf("second decode: %v", err)
		}
	})
}
