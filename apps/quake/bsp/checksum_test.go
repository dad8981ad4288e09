package bsp

import (
	"encoding/binary"
	"testing"
)

// TestBlockChecksumFolds: Com_BlockChecksum is the XOR of MD4's four
// little-endian words; for the empty input MD4 is 31d6cfe0 d16ae931 b73c59d7
// e0c089c0 (as bytes), so the words are e0cfd631 31e96ad1 d7593cb7 c089c0e0.
func TestBlockChecksumFolds(t *testing.T) {
	want := uint32(0xe0cfd631 ^ 0x31e96ad1 ^ 0xd7593cb7 ^ 0xc089c0e0)
	if got := blockChecksum(nil); got != want {
		t.Errorf("blockChecksum(nil) = %08x; want %08x", got, want)
	}
}

// lumpRange returns the byte range of lump i in an encoded map.
func lumpRange(data []byte, i int) (ofs, n int) {
	return int(binary.LittleEndian.Uint32(data[4+8*i:])), int(binary.LittleEndian.Uint32(data[8+8*i:]))
}

// TestChecksumLumpRules: editing a lump changes the checksums exactly as
// QuakeWorld's rule says: entities change neither, visibility, nodes and
// leafs change Checksum only, every other lump changes both.
func TestChecksumLumpRules(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	for i := range NumLumps {
		ofs, n := lumpRange(m.Data, i)
		if n == 0 {
			continue // visibility is empty: nothing to edit
		}
		data := append([]byte(nil), m.Data...)
		data[ofs+n-1] ^= 0x5a
		got, err := ComputeChecksums(data)
		if err != nil {
			t.Fatalf("lump %s: %v", lumpNames[i], err)
		}
		c1 := got.Checksum != m.Checksums.Checksum
		c2 := got.Checksum2 != m.Checksums.Checksum2
		w1 := i != LumpEntities
		w2 := w1 && i != LumpVisibility && i != LumpNodes && i != LumpLeafs
		if c1 != w1 || c2 != w2 {
			t.Errorf("editing %s: checksum changed %v, checksum2 changed %v; want %v, %v", lumpNames[i], c1, c2, w1, w2)
		}
	}
}

// TestChecksumByHand recomputes checksum2 of the default map from its lumps.
func TestChecksumByHand(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	var want uint32
	for _, i := range []int{LumpPlanes, LumpTextures, LumpVertexes, LumpTexInfo, LumpFaces, LumpLighting, LumpClipNodes, LumpMarkSurfaces, LumpEdges, LumpSurfEdges, LumpModels} {
		ofs, n := lumpRange(m.Data, i)
		d := md4Sum(m.Data[ofs : ofs+n])
		for w := 0; w < 16; w += 4 {
			want ^= binary.LittleEndian.Uint32(d[w:])
		}
	}
	if m.Checksums.Checksum2 != want {
		t.Errorf("Checksum2 = %08x; want %08x", m.Checksums.Checksum2, want)
	}
}

func TestComputeChecksumsRefusesBadHeader(t *testing.T) {
	if _, err := ComputeChecksums([]byte("IBSP")); err == nil {
		t.Error("ComputeChecksums of 4 bytes succeeded")
	}
}
