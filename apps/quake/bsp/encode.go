package bsp

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Encode writes f as a BSP v29 file. Lumps follow the header in lump order,
// each starting on a 4-byte boundary (qbsp's layout; mvdsv copies misaligned
// lumps before use, so alignment is not required, only cheap). Padding bytes
// are zero, so equal Files give equal bytes.
//
// Encode checks only what it needs to write f (texture sizes against their
// pixel data); Validate checks the rest.
func Encode(f *File) ([]byte, error) {
	var lumps [NumLumps][]byte
	lumps[LumpEntities] = f.Entities
	lumps[LumpPlanes] = appendPlanes(nil, f.Planes)
	tex, err := appendTextures(nil, f.Textures)
	if err != nil {
		return nil, err
	}
	lumps[LumpTextures] = tex
	lumps[LumpVertexes] = appendVertexes(nil, f.Vertexes)
	lumps[LumpVisibility] = f.Visibility
	lumps[LumpNodes] = appendNodes(nil, f.Nodes)
	lumps[LumpTexInfo] = appendTexInfo(nil, f.TexInfo)
	lumps[LumpFaces] = appendFaces(nil, f.Faces)
	lumps[LumpLighting] = f.Lighting
	lumps[LumpClipNodes] = appendClipNodes(nil, f.ClipNodes)
	lumps[LumpLeafs] = appendLeafs(nil, f.Leafs)
	lumps[LumpMarkSurfaces] = appendU16s(nil, f.MarkSurfaces)
	lumps[LumpEdges] = appendEdges(nil, f.Edges)
	lumps[LumpSurfEdges] = appendI32s(nil, f.SurfEdges)
	lumps[LumpModels] = appendModels(nil, f.Models)

	size := headerSize
	for _, l := range lumps {
		size = align4(size) + len(l)
	}
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("bsp: encoded map would be %d bytes, more than a lump offset can address", size)
	}
	out := make([]byte, headerSize, align4(size))
	binary.LittleEndian.PutUint32(out, Version)
	for i, l := range lumps {
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		binary.LittleEndian.PutUint32(out[4+8*i:], uint32(len(out)))
		binary.LittleEndian.PutUint32(out[8+8*i:], uint32(len(l)))
		out = append(out, l...)
	}
	return out, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

func appendU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func appendI16(b []byte, v int16) []byte  { return appendU16(b, uint16(v)) }
func appendI32(b []byte, v int32) []byte  { return appendU32(b, uint32(v)) }
func appendF32(b []byte, v float32) []byte {
	return appendU32(b, math.Float32bits(v))
}

func appendVec(b []byte, v Vec3) []byte {
	for _, c := range v {
		b = appendF32(b, c)
	}
	return b
}

func appendShorts(b []byte, v [3]int16) []byte {
	for _, c := range v {
		b = appendI16(b, c)
	}
	return b
}

func appendPlanes(b []byte, ps []Plane) []byte {
	for _, p := range ps {
		b = appendVec(b, p.Normal)
		b = appendF32(b, p.Dist)
		b = appendI32(b, p.Type)
	}
	return b
}

// appendTextures writes the miptex directory: a count, one offset per
// texture (relative to the lump, -1 for a missing texture), then each miptex
// header followed by its four mip levels.
func appendTextures(b []byte, ts []*MipTex) ([]byte, error) {
	if len(ts) == 0 {
		return b, nil
	}
	start := len(b)
	b = appendI32(b, int32(len(ts)))
	dir := len(b)
	for range ts {
		b = appendI32(b, -1)
	}
	for i, t := range ts {
		if t == nil {
			continue
		}
		if t.Width <= 0 || t.Height <= 0 || t.Width%16 != 0 || t.Height%16 != 0 {
			return nil, fmt.Errorf("bsp: texture %d (%q): size %dx%d is not a positive multiple of 16", i, t.Name, t.Width, t.Height)
		}
		if len(t.Name) > maxMipTexName {
			return nil, fmt.Errorf("bsp: texture %d: name %q longer than %d bytes", i, t.Name, maxMipTexName)
		}
		binary.LittleEndian.PutUint32(b[dir+4*i:], uint32(len(b)-start))
		var name [maxMipTexName]byte
		copy(name[:], t.Name)
		b = append(b, name[:]...)
		b = appendU32(b, uint32(t.Width))
		b = appendU32(b, uint32(t.Height))
		ofs := mipTexHeaderSize
		for l := 0; l < MipLevels; l++ {
			b = appendU32(b, uint32(ofs))
			ofs += (t.Width >> l) * (t.Height >> l)
		}
		for l := 0; l < MipLevels; l++ {
			if want := (t.Width >> l) * (t.Height >> l); len(t.Pixels[l]) != want {
				return nil, fmt.Errorf("bsp: texture %d (%q): mip level %d has %d bytes, want %d", i, t.Name, l, len(t.Pixels[l]), want)
			}
			b = append(b, t.Pixels[l]...)
		}
	}
	return b, nil
}

func appendVertexes(b []byte, vs []Vec3) []byte {
	for _, v := range vs {
		b = appendVec(b, v)
	}
	return b
}

func appendNodes(b []byte, ns []Node) []byte {
	for _, n := range ns {
		b = appendI32(b, n.PlaneNum)
		b = appendI16(b, n.Children[0])
		b = appendI16(b, n.Children[1])
		b = appendShorts(b, n.Mins)
		b = appendShorts(b, n.Maxs)
		b = appendU16(b, n.FirstFace)
		b = appendU16(b, n.NumFaces)
	}
	return b
}

func appendTexInfo(b []byte, ts []TexInfo) []byte {
	for _, t := range ts {
		for _, row := range t.Vecs {
			for _, c := range row {
				b = appendF32(b, c)
			}
		}
		b = appendI32(b, t.MipTex)
		b = appendI32(b, t.Flags)
	}
	return b
}

func appendFaces(b []byte, fs []Face) []byte {
	for _, f := range fs {
		b = appendI16(b, f.PlaneNum)
		b = appendI16(b, f.Side)
		b = appendI32(b, f.FirstEdge)
		b = appendI16(b, f.NumEdges)
		b = appendI16(b, f.TexInfo)
		b = append(b, f.Styles[:]...)
		b = appendI32(b, f.LightOfs)
	}
	return b
}

func appendClipNodes(b []byte, cs []ClipNode) []byte {
	for _, c := range cs {
		b = appendI32(b, c.PlaneNum)
		b = appendI16(b, c.Children[0])
		b = appendI16(b, c.Children[1])
	}
	return b
}

func appendLeafs(b []byte, ls []Leaf) []byte {
	for _, l := range ls {
		b = appendI32(b, l.Contents)
		b = appendI32(b, l.VisOfs)
		b = appendShorts(b, l.Mins)
		b = appendShorts(b, l.Maxs)
		b = appendU16(b, l.FirstMarkSurface)
		b = appendU16(b, l.NumMarkSurfaces)
		b = append(b, l.Ambient[:]...)
	}
	return b
}

func appendU16s(b []byte, vs []uint16) []byte {
	for _, v := range vs {
		b = appendU16(b, v)
	}
	return b
}

func appendI32s(b []byte, vs []int32) []byte {
	for _, v := range vs {
		b = appendI32(b, v)
	}
	return b
}

func appendEdges(b []byte, es []Edge) []byte {
	for _, e := range es {
		b = appendU16(b, e.V[0])
		b = appendU16(b, e.V[1])
	}
	return b
}

func appendModels(b []byte, ms []Model) []byte {
	for _, m := range ms {
		b = appendVec(b, m.Mins)
		b = appendVec(b, m.Maxs)
		b = appendVec(b, m.Origin)
		for _, h := range m.HeadNode {
			b = appendI32(b, h)
		}
		b = appendI32(b, m.VisLeafs)
		b = appendI32(b, m.FirstFace)
		b = appendI32(b, m.NumFaces)
	}
	return b
}
