package bsp

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"testing"
)

var bspOut = flag.String("bsp.out", "", "TestWriteDefaultMap writes the default map to this file (for trying it in a client)")

func mustGenerate(t testing.TB, cfg Config) *Map {
	t.Helper()
	m, err := Generate(cfg)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return m
}

// testConfigs are rooms that exercise the generator's corners: no blocks,
// blocks touching walls and each other, overlapping and floating blocks,
// rooms large enough that faces must be cut for their lightmaps.
func testConfigs() map[string]Config {
	return map[string]Config{
		"default": DefaultConfig(),
		"empty":   {Size: [3]int{256, 384, 128}},
		"odd":     {Size: [3]int{301, 255, 97}, Blocks: []Box{{[3]int{-10, -10, 0}, [3]int{13, 7, 5}}}},
		"wall-touching": {Blocks: []Box{
			{[3]int{-512, -512, 0}, [3]int{-384, 512, 48}}, // a ledge along a whole wall
			{[3]int{384, 384, 0}, [3]int{512, 512, 256}},   // a column in a corner, floor to ceiling
		}},
		"overlapping": {Blocks: []Box{
			{[3]int{-100, -100, 0}, [3]int{100, 100, 40}},
			{[3]int{0, 0, 0}, [3]int{150, 150, 20}},
			{[3]int{-50, -50, 20}, [3]int{50, 50, 80}},
		}},
		"floating": {Blocks: []Box{{[3]int{-64, -64, 100}, [3]int{64, 64, 116}}}},
		"big":      {Size: [3]int{4096, 2048, 512}, Blocks: []Box{{[3]int{-300, -200, 0}, [3]int{1700, 300, 64}}}},
		"fine-texture": {Size: [3]int{512, 512, 128}, TexScale: 2, Blocks: []Box{
			{[3]int{-64, -64, 0}, [3]int{64, 64, 32}},
		}},
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a := mustGenerate(t, DefaultConfig())
	b := mustGenerate(t, DefaultConfig())
	if !bytes.Equal(a.Data, b.Data) {
		t.Fatal("two Generate(DefaultConfig()) calls gave different bytes")
	}
	c := mustGenerate(t, Config{})
	if bytes.Equal(a.Data, c.Data) {
		t.Fatal("an empty room gave the same bytes as the default map")
	}
}

// TestDefaultMapGolden pins the default map. A change here is a change of
// the map every client caches under this checksum: bump it on purpose.
func TestDefaultMapGolden(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	const wantLen, wantSum, wantSum2 = 10720, 0xd5acbea8, 0x8996e7b2
	if len(m.Data) != wantLen || m.Checksums.Checksum != wantSum || m.Checksums.Checksum2 != wantSum2 {
		t.Errorf("default map: %d bytes, checksums %08x/%08x; want %d, %08x/%08x",
			len(m.Data), m.Checksums.Checksum, m.Checksums.Checksum2, wantLen, wantSum, wantSum2)
	}
}

func TestGeneratedMapsAreValid(t *testing.T) {
	for name, cfg := range testConfigs() {
		t.Run(name, func(t *testing.T) {
			m := mustGenerate(t, cfg)
			f, err := Decode(m.Data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := f.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			checkStructure(t, m, f)
			checkWatertight(t, f)
			checkMarkSurfaces(t, f)
			checkLightmaps(t, f)
		})
	}
}

// checkStructure: the lumps a stock client needs are all there, with the
// expected shapes.
func checkStructure(t *testing.T, m *Map, f *File) {
	t.Helper()
	for i := range NumLumps {
		_, n := lumpRange(m.Data, i)
		if empty := n == 0; empty != (i == LumpVisibility) {
			t.Errorf("lump %s has %d bytes", lumpNames[i], n)
		}
	}
	if len(f.Models) != 1 {
		t.Fatalf("%d models; want the world only", len(f.Models))
	}
	w := f.Models[0]
	if w.HeadNode[0] != 0 || w.HeadNode[1] != 0 || w.HeadNode[2] <= 0 || int(w.HeadNode[2]) >= len(f.ClipNodes) {
		t.Errorf("world headnodes %v with %d clipnodes", w.HeadNode, len(f.ClipNodes))
	}
	if int(w.VisLeafs) != len(f.Leafs)-1 || w.FirstFace != 0 || int(w.NumFaces) != len(f.Faces) {
		t.Errorf("world: %d vis leafs, faces %d+%d; want %d, 0+%d", w.VisLeafs, w.FirstFace, w.NumFaces, len(f.Leafs)-1, len(f.Faces))
	}
	for a := range 3 {
		if w.Mins[a] > float32(m.Room.Min[a]) || w.Maxs[a] < float32(m.Room.Max[a]) {
			t.Errorf("world bounds %v..%v do not contain the room %v", w.Mins, w.Maxs, m.Room)
		}
	}
	if len(f.Textures) != 1 || f.Textures[0] == nil || f.Textures[0].Width != 64 || f.Textures[0].Height != 64 {
		t.Errorf("textures %v; want one 64x64 miptex", f.Textures)
	}
	for i, l := range f.Leafs[1:] {
		if l.Contents != ContentsEmpty || l.VisOfs != -1 {
			t.Errorf("leaf %d: contents %d, visofs %d; want empty, -1", i+1, l.Contents, l.VisOfs)
		}
	}
	ents, err := ParseEntities(f.Entities)
	if err != nil {
		t.Fatal(err)
	}
	dm := 0
	for _, e := range ents {
		if e.Get("classname") == "info_player_deathmatch" {
			dm++
		}
	}
	if ents[0].Get("classname") != "worldspawn" || ents[0].Get("message") == "" || dm < 4 {
		t.Errorf("entities: %v; want a worldspawn with a message and at least 4 deathmatch spawns", ents)
	}
}

// checkWatertight: the faces close the room with no crack: every edge is
// walked once in each direction. This holds only if T-junctions were mended
// and no face is missing or doubled.
func checkWatertight(t *testing.T, f *File) {
	t.Helper()
	seen := map[[2]int]int{}
	for i := range f.Faces {
		vs := f.FaceVertexes(i)
		for k, v := range vs {
			seen[[2]int{v, vs[(k+1)%len(vs)]}]++
		}
	}
	for e, n := range seen {
		if n != 1 || seen[[2]int{e[1], e[0]}] != 1 {
			t.Errorf("edge %v walked %d times, its reverse %d times; want 1 and 1", e, n, seen[[2]int{e[1], e[0]}])
		}
	}
}

// checkMarkSurfaces: every face is listed by some leaf (else the renderer
// never draws it), and a leaf lists only faces on its own boundary.
func checkMarkSurfaces(t *testing.T, f *File) {
	t.Helper()
	listed := make([]bool, len(f.Faces))
	for li, l := range f.Leafs {
		for _, fi := range f.MarkSurfaces[l.FirstMarkSurface : l.FirstMarkSurface+l.NumMarkSurfaces] {
			listed[fi] = true
			fc := f.Faces[fi]
			pl := f.Planes[fc.PlaneNum]
			a := pl.Type
			bound := l.Mins[a]
			if fc.Side == 1 {
				bound = l.Maxs[a]
			}
			if float32(bound) != pl.Dist {
				t.Errorf("leaf %d (%v..%v) lists face %d on plane %v side %d, not on its boundary", li, l.Mins, l.Maxs, fi, pl, fc.Side)
			}
		}
	}
	for fi, ok := range listed {
		if !ok {
			t.Errorf("face %d is in no leaf's marksurfaces", fi)
		}
	}
}

// checkLightmaps: each face's lightmap is within the client limit, starts
// where the previous one ended, and the lighting lump holds exactly them.
func checkLightmaps(t *testing.T, f *File) {
	t.Helper()
	next := 0
	for i, fc := range f.Faces {
		s, tt, err := f.LightmapSize(i)
		if err != nil {
			t.Fatal(err)
		}
		if s > MaxLightmapSide || tt > MaxLightmapSide || s > 17 || tt > 17 {
			t.Errorf("face %d: lightmap %dx%d", i, s, tt)
		}
		if int(fc.LightOfs) != next {
			t.Errorf("face %d: light offset %d; want %d", i, fc.LightOfs, next)
		}
		next += s * tt
	}
	if next != len(f.Lighting) {
		t.Errorf("lighting lump %d bytes; faces use %d", len(f.Lighting), next)
	}
}

// TestDefaultMapSize: the default map stays small enough to download in a
// few svc_download chunks and at 17x17 samples on its largest face.
func TestDefaultMapSize(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	if len(m.Data) > 16<<10 {
		t.Errorf("default map is %d bytes; want under 16 KiB", len(m.Data))
	}
}

func TestGenerateRefusesBadConfigs(t *testing.T) {
	for name, cfg := range map[string]Config{
		"tiny room":              {Size: [3]int{32, 1024, 256}},
		"too wide":               {Size: [3]int{9000, 1024, 256}},
		"too low for hull 2":     {Size: [3]int{1024, 1024, 80}},
		"scale not power of two": {TexScale: 0.3},
		"scale too fine":         {TexScale: 1.0 / 32},
		"block outside":          {Blocks: []Box{{[3]int{500, 0, 0}, [3]int{600, 10, 10}}}},
		"empty block":            {Blocks: []Box{{[3]int{0, 0, 0}, [3]int{0, 10, 10}}}},
		"spawn outside":          {Spawns: []Spawn{{Origin: [3]int{0, 0, -10}}}},
		"spawn in block": {
			Blocks: []Box{{[3]int{-100, -100, 0}, [3]int{100, 100, 64}}},
			Spawns: []Spawn{{Origin: [3]int{0, 0, 24}}},
		},
		"spawn in a wall's reach": {Spawns: []Spawn{{Origin: [3]int{505, 0, 24}}}},
		"quote in message":        {Message: `say "hi"`},
	} {
		if _, err := Generate(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Generate error %v; want ErrConfig", name, err)
		}
	}
}

func TestWriteDefaultMap(t *testing.T) {
	if *bspOut == "" {
		t.Skip("set -bsp.out=FILE to write the default map")
	}
	m := mustGenerate(t, DefaultConfig())
	if err := os.WriteFile(*bspOut, m.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d bytes, checksum %d, checksum2 %d", *bspOut, len(m.Data), int32(m.Checksums.Checksum), int32(m.Checksums.Checksum2))
}
