package bsp

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeRoundTrip(t *testing.T) {
	for name, cfg := range testConfigs() {
		m := mustGenerate(t, cfg)
		f, err := Decode(m.Data)
		if err != nil {
			t.Fatalf("%s: Decode: %v", name, err)
		}
		if !reflect.DeepEqual(f, m.File) {
			t.Errorf("%s: Decode(Generate().Data) differs from Generate().File", name)
		}
		enc, err := Encode(f)
		if err != nil {
			t.Fatalf("%s: Encode: %v", name, err)
		}
		if string(enc) != string(m.Data) {
			t.Errorf("%s: Encode(Decode(data)) != data", name)
		}
	}
}

// record returns the bytes of record i of lump l in data, for patching.
func record(data []byte, l, i int) []byte {
	ofs, _ := lumpRange(data, l)
	rs := recordSize[l]
	return data[ofs+i*rs : ofs+(i+1)*rs]
}

func setLump(data []byte, l, ofs, n int) {
	binary.LittleEndian.PutUint32(data[4+8*l:], uint32(int32(ofs)))
	binary.LittleEndian.PutUint32(data[8+8*l:], uint32(int32(n)))
}

// TestDecodeRefusesMalformed patches one field of the default map at a time
// and checks Decode names the problem.
func TestDecodeRefusesMalformed(t *testing.T) {
	good := mustGenerate(t, DefaultConfig()).Data
	texOfs, _ := lumpRange(good, LumpTextures)
	for _, tc := range []struct {
		name   string
		patch  func(d []byte) []byte
		want   error
		detail string
	}{
		{"empty file", func(d []byte) []byte { return nil }, ErrTruncated, "0 bytes"},
		{"cut header", func(d []byte) []byte { return d[:100] }, ErrTruncated, "header"},
		{"version 30", func(d []byte) []byte { binary.LittleEndian.PutUint32(d, 30); return d }, ErrVersion, "30"},
		{"Quake 2 magic", func(d []byte) []byte { copy(d, "IBSP"); return d }, ErrVersion, ""},
		{"lump past end", func(d []byte) []byte { setLump(d, LumpFaces, len(d)-8, 20); return d }, ErrLump, "faces"},
		{"negative length", func(d []byte) []byte { setLump(d, LumpEdges, 200, -4); return d }, ErrLump, "edges: negative"},
		{"lump in header", func(d []byte) []byte { setLump(d, LumpPlanes, 8, 20); return d }, ErrLump, "overlaps the header"},
		{"truncated file", func(d []byte) []byte { return d[:len(d)-10] }, ErrLump, "past end"},
		{"partial plane", func(d []byte) []byte {
			ofs, n := lumpRange(d, LumpPlanes)
			setLump(d, LumpPlanes, ofs, n-3)
			return d
		}, ErrLump, "not a multiple of the 20-byte record"},
		{"face texinfo", func(d []byte) []byte { binary.LittleEndian.PutUint16(record(d, LumpFaces, 3)[10:], 99); return d }, ErrIndex, "face 3: texinfo 99"},
		{"face plane", func(d []byte) []byte { binary.LittleEndian.PutUint16(record(d, LumpFaces, 0), 0x8000); return d }, ErrIndex, "face 0: plane"},
		{"face edges", func(d []byte) []byte { binary.LittleEndian.PutUint32(record(d, LumpFaces, 1)[4:], 1<<20); return d }, ErrIndex, "face 1: surfedges"},
		{"face light", func(d []byte) []byte { binary.LittleEndian.PutUint32(record(d, LumpFaces, 1)[16:], 1<<20); return d }, ErrIndex, "face 1: light offset"},
		{"node leaf", func(d []byte) []byte {
			binary.LittleEndian.PutUint16(record(d, LumpNodes, 2)[4:], uint16(0xff00))
			return d
		}, ErrIndex, "node 2: child 0 is leaf"},
		{"node child", func(d []byte) []byte { binary.LittleEndian.PutUint16(record(d, LumpNodes, 2)[6:], 500); return d }, ErrIndex, "node 2: child 1 is node 500"},
		{"node plane", func(d []byte) []byte { binary.LittleEndian.PutUint32(record(d, LumpNodes, 0), 1000); return d }, ErrIndex, "node 0: plane 1000"},
		{"clipnode child", func(d []byte) []byte { binary.LittleEndian.PutUint16(record(d, LumpClipNodes, 5)[4:], 7000); return d }, ErrIndex, "clipnode 5: child 0 is clipnode 7000"},
		{"clipnode contents", func(d []byte) []byte {
			binary.LittleEndian.PutUint16(record(d, LumpClipNodes, 5)[6:], uint16(0xfff0))
			return d
		}, ErrIndex, "clipnode 5: child 1 has contents -16"},
		{"leaf contents", func(d []byte) []byte { binary.LittleEndian.PutUint32(record(d, LumpLeafs, 1), 7); return d }, ErrIndex, "leaf 1: contents 7"},
		{"leaf marksurfaces", func(d []byte) []byte { binary.LittleEndian.PutUint16(record(d, LumpLeafs, 1)[22:], 9999); return d }, ErrIndex, "leaf 1: marksurfaces"},
		{"leaf visofs", func(d []byte) []byte { binary.LittleEndian.PutUint32(record(d, LumpLeafs, 1)[4:], 0); return d }, ErrIndex, "leaf 1: vis offset 0"},
		{"marksurface", func(d []byte) []byte { binary.LittleEndian.PutUint16(record(d, LumpMarkSurfaces, 0), 9999); return d }, ErrIndex, "marksurface 0: face 9999"},
		{"edge vertex", func(d []byte) []byte { binary.LittleEndian.PutUint16(record(d, LumpEdges, 4)[2:], 9999); return d }, ErrIndex, "edge 4: vertex 9999"},
		{"surfedge", func(d []byte) []byte {
			binary.LittleEndian.PutUint32(record(d, LumpSurfEdges, 2), 0x80000000)
			return d
		}, ErrIndex, "surfedge 2"},
		{"texinfo miptex", func(d []byte) []byte { binary.LittleEndian.PutUint32(record(d, LumpTexInfo, 1)[32:], 1); return d }, ErrIndex, "texinfo 1: miptex 1 of 1"},
		{"no models", func(d []byte) []byte { setLump(d, LumpModels, 0, 0); return d }, ErrIndex, "no models"},
		{"model headnode", func(d []byte) []byte { binary.LittleEndian.PutUint32(record(d, LumpModels, 0)[40:], 9999); return d }, ErrIndex, "model 0: hull 1 head clipnode 9999"},
		{"texture count", func(d []byte) []byte { binary.LittleEndian.PutUint32(d[texOfs:], 2000); return d }, ErrTexture, "count 2000"},
		{"texture offset", func(d []byte) []byte { binary.LittleEndian.PutUint32(d[texOfs+4:], 1<<30); return d }, ErrTexture, "texture 0: header"},
		{"texture width", func(d []byte) []byte { binary.LittleEndian.PutUint32(d[texOfs+8+16:], 60); return d }, ErrTexture, "size 60x64"},
		{"texture mip offset", func(d []byte) []byte { binary.LittleEndian.PutUint32(d[texOfs+8+24+12:], 1<<20); return d }, ErrTexture, "mip level 3"},
	} {
		d := tc.patch(append([]byte(nil), good...))
		_, err := Decode(d)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
			t.Errorf("%s: Decode error %v; want %v mentioning %q", tc.name, err, tc.want, tc.detail)
		}
	}
}

// TestValidateRefusesBadGeometry breaks one invariant of a decoded default
// map at a time.
func TestValidateRefusesBadGeometry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breakf func(f *File)
		want   error
		detail string
	}{
		{"open edge loop", func(f *File) { f.SurfEdges[f.Faces[0].FirstEdge+1] = -f.SurfEdges[f.Faces[0].FirstEdge+1] }, ErrGeometry, "face 0: edge loop open"},
		{"two-edge face", func(f *File) { f.Faces[2].NumEdges = 2 }, ErrGeometry, "face 2: 2 edges"},
		{"bad side", func(f *File) { f.Faces[2].Side = 3 }, ErrGeometry, "face 2: side 3"},
		{"wrong winding", func(f *File) { f.Faces[4].Side ^= 1 }, ErrGeometry, "face 4: winding"},
		{"long normal", func(f *File) { f.Planes[7].Normal[f.Planes[7].Type] = 2 }, ErrGeometry, "plane 7: normal"},
		{"axial plane facing back", func(f *File) {
			f.Planes[3].Normal = scale(f.Planes[3].Normal, -1)
			f.Planes[3].Dist = -f.Planes[3].Dist
		}, ErrGeometry, "plane 3: axial type"},
		{"plane type", func(f *File) { f.Planes[1].Type = 9 }, ErrGeometry, "plane 1: type 9"},
		{"NaN vertex", func(f *File) { f.Vertexes[5][1] = float32(nan()) }, ErrGeometry, "vertex 5"},
		{"vertex off plane", func(f *File) { f.Vertexes[f.FaceVertexes(0)[0]][f.Planes[f.Faces[0].PlaneNum].Type] += 3 }, ErrGeometry, "off plane"},
		{"oversized lightmap", func(f *File) {
			// Unscaled textures: a 1024-unit wall would need 65 samples.
			for i := range f.TexInfo {
				for j := range 2 {
					for k := range 3 {
						f.TexInfo[i].Vecs[j][k] *= 4
					}
				}
			}
		}, ErrGeometry, "texture extent"},
		{"lightmap past lump", func(f *File) { f.Lighting = f.Lighting[:len(f.Lighting)-1] }, ErrGeometry, "past the"},
		{"clipnode cycle", func(f *File) { f.ClipNodes[3].Children[1] = 1 }, ErrGeometry, "clipnodes: cycle"},
		{"node cycle", func(f *File) { f.Nodes[5].Children[0] = 0 }, ErrGeometry, "nodes: cycle"},
		{"leaf 0 open", func(f *File) { f.Leafs[0].Contents = ContentsEmpty }, ErrGeometry, "leaf 0"},
		{"model bounds", func(f *File) { f.Models[0].Mins[0] = 1e6 }, ErrGeometry, "model 0: mins"},
		{"no worldspawn", func(f *File) { f.Entities = []byte("{\n\"classname\" \"info_null\"\n}\n\x00") }, ErrEntities, "worldspawn"},
		{"broken entities", func(f *File) { f.Entities = []byte("{ \"classname\" ") }, ErrEntities, "no value"},
		{"index after decode", func(f *File) { f.Faces[0].TexInfo = 50 }, ErrIndex, "face 0: texinfo 50"},
	} {
		f, err := Decode(mustGenerate(t, DefaultConfig()).Data)
		if err != nil {
			t.Fatal(err)
		}
		tc.breakf(f)
		err = f.Validate()
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
			t.Errorf("%s: Validate error %v; want %v mentioning %q", tc.name, err, tc.want, tc.detail)
		}
	}
}

func nan() float64 { var z float64; return z / z }

func TestParseEntities(t *testing.T) {
	ents, err := ParseEntities([]byte("// comment\n{\n\"classname\" \"worldspawn\"\nwad gfx.wad\n\"message\" \"a\"\n\"message\" \"b\"\n}\n{ }\x00garbage"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Get("wad") != "gfx.wad" || ents[0].Get("message") != "b" || len(ents[1]) != 0 {
		t.Errorf("ParseEntities = %v; want worldspawn (wad gfx.wad, message b) and an empty entity", ents)
	}
	for _, bad := range []string{"}", "{ \"a\" \"b\"", "{ \"a }", "{ \"a\" }"} {
		if _, err := ParseEntities([]byte(bad)); !errors.Is(err, ErrEntities) {
			t.Errorf("ParseEntities(%q) error %v; want ErrEntities", bad, err)
		}
	}
}

func TestEncodeRefusesBadTextures(t *testing.T) {
	f := mustGenerate(t, DefaultConfig()).File
	g := *f
	g.Textures = []*MipTex{{Name: "x", Width: 16, Height: 16}}
	if _, err := Encode(&g); err == nil || !strings.Contains(err.Error(), "mip level 0") {
		t.Errorf("Encode with missing pixels: %v; want a mip level error", err)
	}
	g.Textures = []*MipTex{{Name: strings.Repeat("n", 17), Width: 16, Height: 16}}
	if _, err := Encode(&g); err == nil {
		t.Error("Encode with a 17-byte texture name succeeded")
	}
	// A missing texture (nil) is written as offset -1 and read back as nil.
	g.Textures = []*MipTex{nil, f.Textures[0]}
	data, err := Encode(&g)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if h.Textures[0] != nil || !reflect.DeepEqual(h.Textures[1], f.Textures[0]) {
		t.Errorf("textures after round trip: %v", h.Textures)
	}
}
