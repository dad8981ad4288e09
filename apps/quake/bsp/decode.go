package bsp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Errors Decode and Validate wrap; the message around them names the lump,
// record and field. Test with errors.Is.
var (
	// ErrVersion: the file is not BSP version 29.
	ErrVersion = errors.New("bsp: unsupported version")
	// ErrTruncated: the file is shorter than its header.
	ErrTruncated = errors.New("bsp: truncated")
	// ErrLump: a lump lies outside the file or is not a whole number of
	// records.
	ErrLump = errors.New("bsp: bad lump")
	// ErrIndex: a record refers to a record that does not exist.
	ErrIndex = errors.New("bsp: index out of range")
	// ErrTexture: the textures lump is malformed.
	ErrTexture = errors.New("bsp: bad texture")
	// ErrGeometry: the file decodes but an engine would misbehave on it
	// (open face loop, unnormalized plane, oversized lightmap, cycle, ...).
	ErrGeometry = errors.New("bsp: bad geometry")
)

// lump is one header directory entry.
type lump struct{ ofs, len int }

// readHeader checks the version and that every lump lies within data and
// after the header, and returns the directory.
func readHeader(data []byte) ([NumLumps]lump, error) {
	var dir [NumLumps]lump
	if len(data) < headerSize {
		return dir, fmt.Errorf("%w: %d bytes, header needs %d", ErrTruncated, len(data), headerSize)
	}
	if v := int32(binary.LittleEndian.Uint32(data)); v != Version {
		return dir, fmt.Errorf("%w: %d, want %d", ErrVersion, v, Version)
	}
	for i := range dir {
		ofs := int64(int32(binary.LittleEndian.Uint32(data[4+8*i:])))
		n := int64(int32(binary.LittleEndian.Uint32(data[8+8*i:])))
		switch {
		case n < 0:
			return dir, fmt.Errorf("%w: %s: negative length %d", ErrLump, lumpNames[i], n)
		case n == 0:
			// Empty lumps may carry any offset: tools write 0 or the
			// current end of file.
			dir[i] = lump{}
			continue
		case ofs < headerSize:
			return dir, fmt.Errorf("%w: %s: offset %d overlaps the header", ErrLump, lumpNames[i], ofs)
		case ofs+n > int64(len(data)):
			return dir, fmt.Errorf("%w: %s: bytes %d..%d past end of file (%d bytes)", ErrLump, lumpNames[i], ofs, ofs+n, len(data))
		}
		if rs := recordSize[i]; rs != 0 && n%int64(rs) != 0 {
			return dir, fmt.Errorf("%w: %s: length %d is not a multiple of the %d-byte record", ErrLump, lumpNames[i], n, rs)
		}
		dir[i] = lump{int(ofs), int(n)}
	}
	return dir, nil
}

// Decode parses a BSP v29 file and checks that it is well formed: lumps in
// range and made of whole records, and every index (plane, vertex, edge,
// surfedge, texinfo, miptex, face, marksurface, node, leaf, clipnode, lighting
// and visibility offset) inside the table it refers to. It does not check
// geometry; Validate does. The File shares no memory with data.
func Decode(data []byte) (*File, error) {
	dir, err := readHeader(data)
	if err != nil {
		return nil, err
	}
	body := func(i int) []byte {
		l := dir[i]
		return data[l.ofs : l.ofs+l.len]
	}
	f := &File{
		Entities:   clone(body(LumpEntities)),
		Visibility: clone(body(LumpVisibility)),
		Lighting:   clone(body(LumpLighting)),
	}
	if f.Textures, err = decodeTextures(body(LumpTextures)); err != nil {
		return nil, err
	}
	f.Planes = decodeRecords(body(LumpPlanes), 20, func(b []byte) Plane {
		return Plane{Normal: vecAt(b), Dist: f32At(b[12:]), Type: i32At(b[16:])}
	})
	f.Vertexes = decodeRecords(body(LumpVertexes), 12, vecAt)
	f.Nodes = decodeRecords(body(LumpNodes), 24, func(b []byte) Node {
		return Node{
			PlaneNum:  i32At(b),
			Children:  [2]int16{i16At(b[4:]), i16At(b[6:])},
			Mins:      shortsAt(b[8:]),
			Maxs:      shortsAt(b[14:]),
			FirstFace: u16At(b[20:]),
			NumFaces:  u16At(b[22:]),
		}
	})
	f.TexInfo = decodeRecords(body(LumpTexInfo), 40, func(b []byte) TexInfo {
		var t TexInfo
		for i := range 8 {
			t.Vecs[i/4][i%4] = f32At(b[4*i:])
		}
		t.MipTex = i32At(b[32:])
		t.Flags = i32At(b[36:])
		return t
	})
	f.Faces = decodeRecords(body(LumpFaces), 20, func(b []byte) Face {
		return Face{
			PlaneNum:  i16At(b),
			Side:      i16At(b[2:]),
			FirstEdge: i32At(b[4:]),
			NumEdges:  i16At(b[8:]),
			TexInfo:   i16At(b[10:]),
			Styles:    [4]uint8(b[12:16]),
			LightOfs:  i32At(b[16:]),
		}
	})
	f.ClipNodes = decodeRecords(body(LumpClipNodes), 8, func(b []byte) ClipNode {
		return ClipNode{PlaneNum: i32At(b), Children: [2]int16{i16At(b[4:]), i16At(b[6:])}}
	})
	f.Leafs = decodeRecords(body(LumpLeafs), 28, func(b []byte) Leaf {
		return Leaf{
			Contents:         i32At(b),
			VisOfs:           i32At(b[4:]),
			Mins:             shortsAt(b[8:]),
			Maxs:             shortsAt(b[14:]),
			FirstMarkSurface: u16At(b[20:]),
			NumMarkSurfaces:  u16At(b[22:]),
			Ambient:          [4]uint8(b[24:28]),
		}
	})
	f.MarkSurfaces = decodeRecords(body(LumpMarkSurfaces), 2, u16At)
	f.Edges = decodeRecords(body(LumpEdges), 4, func(b []byte) Edge {
		return Edge{V: [2]uint16{u16At(b), u16At(b[2:])}}
	})
	f.SurfEdges = decodeRecords(body(LumpSurfEdges), 4, i32At)
	f.Models = decodeRecords(body(LumpModels), 64, func(b []byte) Model {
		m := Model{Mins: vecAt(b), Maxs: vecAt(b[12:]), Origin: vecAt(b[24:])}
		for i := range m.HeadNode {
			m.HeadNode[i] = i32At(b[36+4*i:])
		}
		m.VisLeafs = i32At(b[52:])
		m.FirstFace = i32At(b[56:])
		m.NumFaces = i32At(b[60:])
		return m
	})
	if err := f.checkIndices(); err != nil {
		return nil, err
	}
	return f, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

func decodeRecords[T any](b []byte, size int, dec func([]byte) T) []T {
	if len(b) == 0 {
		return nil
	}
	out := make([]T, len(b)/size)
	for i := range out {
		out[i] = dec(b[i*size : (i+1)*size])
	}
	return out
}

func u16At(b []byte) uint16      { return binary.LittleEndian.Uint16(b) }
func i16At(b []byte) int16       { return int16(u16At(b)) }
func u32At(b []byte) uint32      { return binary.LittleEndian.Uint32(b) }
func i32At(b []byte) int32       { return int32(u32At(b)) }
func f32At(b []byte) float32     { return math.Float32frombits(u32At(b)) }
func vecAt(b []byte) Vec3        { return Vec3{f32At(b), f32At(b[4:]), f32At(b[8:])} }
func shortsAt(b []byte) [3]int16 { return [3]int16{i16At(b), i16At(b[2:]), i16At(b[4:])} }

// decodeTextures parses the miptex directory. Each miptex must lie in the
// lump, have a size that is a positive multiple of 16 (the engine refuses
// others) and four mip levels inside the lump.
func decodeTextures(b []byte) ([]*MipTex, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: lump of %d bytes has no count", ErrTexture, len(b))
	}
	n := int64(i32At(b))
	if n < 0 || 4+4*n > int64(len(b)) {
		return nil, fmt.Errorf("%w: count %d does not fit a %d-byte lump", ErrTexture, n, len(b))
	}
	ts := make([]*MipTex, n)
	for i := range ts {
		ofs := int64(i32At(b[4+4*i:]))
		if ofs == -1 {
			continue
		}
		if ofs < 0 || ofs+mipTexHeaderSize > int64(len(b)) {
			return nil, fmt.Errorf("%w: texture %d: header at %d outside the %d-byte lump", ErrTexture, i, ofs, len(b))
		}
		h := b[ofs:]
		name := h[:maxMipTexName]
		for j, c := range name {
			if c == 0 {
				name = name[:j]
				break
			}
		}
		w, ht := int64(u32At(h[16:])), int64(u32At(h[20:]))
		if w == 0 || ht == 0 || w%16 != 0 || ht%16 != 0 || w > int64(len(b)) || ht > int64(len(b)) || w*ht > int64(len(b)) {
			return nil, fmt.Errorf("%w: texture %d (%q): size %dx%d", ErrTexture, i, name, w, ht)
		}
		t := &MipTex{Name: string(name), Width: int(w), Height: int(ht)}
		for l := range MipLevels {
			lo := ofs + int64(u32At(h[24+4*l:]))
			n := (w >> l) * (ht >> l)
			if lo < ofs+mipTexHeaderSize || lo+n > int64(len(b)) {
				return nil, fmt.Errorf("%w: texture %d (%q): mip level %d at %d+%d outside the %d-byte lump", ErrTexture, i, name, l, lo, n, len(b))
			}
			t.Pixels[l] = clone(b[lo : lo+n])
		}
		ts[i] = t
	}
	return ts, nil
}

// checkIndices checks every cross-reference between lumps, so that code
// walking a decoded File (Validate, NewCollision, an engine) never indexes
// out of range.
func (f *File) checkIndices() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrIndex}, a...)...)
	}
	nPlanes, nFaces, nLeafs := len(f.Planes), len(f.Faces), len(f.Leafs)
	for i, n := range f.Nodes {
		if n.PlaneNum < 0 || int(n.PlaneNum) >= nPlanes {
			return bad("node %d: plane %d of %d", i, n.PlaneNum, nPlanes)
		}
		for s, c := range n.Children {
			if c >= 0 && int(c) >= len(f.Nodes) {
				return bad("node %d: child %d is node %d of %d", i, s, c, len(f.Nodes))
			}
			if c < 0 && int(-(c+1)) >= nLeafs {
				return bad("node %d: child %d is leaf %d of %d", i, s, -(int(c) + 1), nLeafs)
			}
		}
		if int(n.FirstFace)+int(n.NumFaces) > nFaces {
			return bad("node %d: faces %d+%d of %d", i, n.FirstFace, n.NumFaces, nFaces)
		}
	}
	for i, c := range f.ClipNodes {
		if c.PlaneNum < 0 || int(c.PlaneNum) >= nPlanes {
			return bad("clipnode %d: plane %d of %d", i, c.PlaneNum, nPlanes)
		}
		for s, ch := range c.Children {
			if ch >= 0 && int(ch) >= len(f.ClipNodes) {
				return bad("clipnode %d: child %d is clipnode %d of %d", i, s, ch, len(f.ClipNodes))
			}
			if ch < 0 && !validContents(int32(ch)) {
				return bad("clipnode %d: child %d has contents %d", i, s, ch)
			}
		}
	}
	for i, t := range f.TexInfo {
		if t.MipTex < 0 || int(t.MipTex) >= len(f.Textures) {
			return bad("texinfo %d: miptex %d of %d", i, t.MipTex, len(f.Textures))
		}
	}
	for i, fc := range f.Faces {
		if fc.PlaneNum < 0 || int(fc.PlaneNum) >= nPlanes {
			return bad("face %d: plane %d of %d", i, fc.PlaneNum, nPlanes)
		}
		if fc.TexInfo < 0 || int(fc.TexInfo) >= len(f.TexInfo) {
			return bad("face %d: texinfo %d of %d", i, fc.TexInfo, len(f.TexInfo))
		}
		if fc.NumEdges < 0 || fc.FirstEdge < 0 || int64(fc.FirstEdge)+int64(fc.NumEdges) > int64(len(f.SurfEdges)) {
			return bad("face %d: surfedges %d+%d of %d", i, fc.FirstEdge, fc.NumEdges, len(f.SurfEdges))
		}
		if fc.LightOfs < -1 || int64(fc.LightOfs) >= int64(len(f.Lighting)) && fc.LightOfs != -1 {
			return bad("face %d: light offset %d in a %d-byte lighting lump", i, fc.LightOfs, len(f.Lighting))
		}
	}
	for i, l := range f.Leafs {
		if !validContents(l.Contents) {
			return bad("leaf %d: contents %d", i, l.Contents)
		}
		if l.VisOfs < -1 || int64(l.VisOfs) >= int64(len(f.Visibility)) && l.VisOfs != -1 {
			return bad("leaf %d: vis offset %d in a %d-byte visibility lump", i, l.VisOfs, len(f.Visibility))
		}
		if int(l.FirstMarkSurface)+int(l.NumMarkSurfaces) > len(f.MarkSurfaces) {
			return bad("leaf %d: marksurfaces %d+%d of %d", i, l.FirstMarkSurface, l.NumMarkSurfaces, len(f.MarkSurfaces))
		}
	}
	for i, m := range f.MarkSurfaces {
		if int(m) >= nFaces {
			return bad("marksurface %d: face %d of %d", i, m, nFaces)
		}
	}
	for i, e := range f.Edges {
		for _, v := range e.V {
			if int(v) >= len(f.Vertexes) {
				return bad("edge %d: vertex %d of %d", i, v, len(f.Vertexes))
			}
		}
	}
	for i, se := range f.SurfEdges {
		if se == math.MinInt32 || int(abs32(se)) >= len(f.Edges) {
			return bad("surfedge %d: edge %d of %d", i, se, len(f.Edges))
		}
	}
	if len(f.Models) == 0 {
		return bad("no models: model 0 is the world")
	}
	for i, m := range f.Models {
		if m.HeadNode[0] < 0 || int(m.HeadNode[0]) >= len(f.Nodes) {
			return bad("model %d: hull 0 head node %d of %d", i, m.HeadNode[0], len(f.Nodes))
		}
		for h := 1; h < len(m.HeadNode); h++ {
			// Quake 1 builds hulls 1 and 2 only; qbsp leaves headnode[3]
			// at 0, which is in range only when there are clipnodes.
			if hn := m.HeadNode[h]; hn < 0 || int(hn) >= max(len(f.ClipNodes), 1) {
				return bad("model %d: hull %d head clipnode %d of %d", i, h, hn, len(f.ClipNodes))
			}
		}
		if m.VisLeafs < 0 || int(m.VisLeafs) >= max(nLeafs, 1) {
			return bad("model %d: %d vis leafs of %d leafs", i, m.VisLeafs, nLeafs)
		}
		if m.FirstFace < 0 || m.NumFaces < 0 || int64(m.FirstFace)+int64(m.NumFaces) > int64(nFaces) {
			return bad("model %d: faces %d+%d of %d", i, m.FirstFace, m.NumFaces, nFaces)
		}
	}
	return nil
}

func validContents(c int32) bool { return c <= ContentsEmpty && c >= ContentsSky }

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}
