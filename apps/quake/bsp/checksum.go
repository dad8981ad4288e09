package bsp

import "encoding/binary"

// Checksums are the two map checksums QuakeWorld computes when it loads a
// map (CM_LoadMap in mvdsv, Mod_LoadBrushModel in the clients). Each lump
// contributes blockChecksum(lump): MD4 of the lump's bytes, its four
// little-endian u32 words XORed together.
type Checksums struct {
	// Checksum is the XOR over every lump except the entities, so that
	// servers may edit entities without changing it.
	Checksum uint32
	// Checksum2 also leaves out visibility, nodes and leafs (the lumps a
	// vis pass rewrites). It is the one a client sends in
	// "prespawn <servercount> 0 <checksum2>", printed as a signed decimal
	// (int32(Checksum2)), and servers drop clients whose map differs.
	Checksum2 uint32
}

// ComputeChecksums returns the checksums of an encoded map. It needs a valid
// header (version and lumps in range), not a valid map.
func ComputeChecksums(data []byte) (Checksums, error) {
	dir, err := readHeader(data)
	if err != nil {
		return Checksums{}, err
	}
	var c Checksums
	for i, l := range dir {
		if i == LumpEntities {
			continue
		}
		sum := blockChecksum(data[l.ofs : l.ofs+l.len])
		c.Checksum ^= sum
		if i == LumpVisibility || i == LumpNodes || i == LumpLeafs {
			continue
		}
		c.Checksum2 ^= sum
	}
	return c, nil
}

// blockChecksum is Com_BlockChecksum: MD4, folded to 32 bits by XOR of its
// words. An empty lump still contributes MD4("") folded.
func blockChecksum(b []byte) uint32 {
	d := md4Sum(b)
	var sum uint32
	for i := 0; i < 16; i += 4 {
		sum ^= binary.LittleEndian.Uint32(d[i:])
	}
	return sum
}
