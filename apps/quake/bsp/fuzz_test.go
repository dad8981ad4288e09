package bsp

import (
	"bytes"
	"testing"
)

// FuzzDecode: Decode never panics; whatever it accepts, Validate,
// ComputeChecksums and NewCollision handle without panicking, and it
// re-encodes to a canonical form that decodes to the same bytes again.
// Seeds are generated maps and cut or patched copies of them.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 20s ./apps/quake/bsp/
func FuzzDecode(f *testing.F) {
	for _, cfg := range []Config{DefaultConfig(), {Size: [3]int{128, 128, 96}}, testConfigs()["overlapping"]} {
		m, err := Generate(cfg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Data)
		f.Add(m.Data[:headerSize])
		f.Add(m.Data[:len(m.Data)/2])
	}
	f.Add([]byte{})
	f.Add(make([]byte, headerSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data)
		if err != nil {
			return
		}
		if _, err := ComputeChecksums(data); err != nil {
			t.Fatalf("Decode accepted what ComputeChecksums refuses: %v", err)
		}
		_ = file.Validate()
		if col, err := NewCollision(file); err == nil {
			for h := range 3 {
				col.Hull(h).PointContents(Vec3{1, 2, 3})
			}
		}
		enc, err := Encode(file)
		if err != nil {
			t.Fatalf("Encode of a decoded file: %v", err)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode of a re-encoded file: %v", err)
		}
		enc2, err := Encode(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatal("re-encoding is not stable")
		}
	})
}
