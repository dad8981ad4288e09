package bsp

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

func mustCollision(t testing.TB, m *Map) *Collision {
	t.Helper()
	c, err := NewCollision(m.File)
	if err != nil {
		t.Fatalf("NewCollision: %v", err)
	}
	return c
}

// touchesSolid is the reference the hulls must agree with: a box of extents
// mins..maxs at origin p touches a solid when it leaves the room or overlaps
// a block with positive volume.
func touchesSolid(cfg Config, room Box, mins, maxs, p Vec3) bool {
	for a := range 3 {
		if p[a]+mins[a] < float32(room.Min[a]) || p[a]+maxs[a] > float32(room.Max[a]) {
			return true
		}
	}
	for _, b := range cfg.Blocks {
		in := true
		for a := range 3 {
			if !(p[a]+mins[a] < float32(b.Max[a]) && p[a]+maxs[a] > float32(b.Min[a])) {
				in = false
			}
		}
		if in {
			return true
		}
	}
	return false
}

// TestHullsMatchGeometry samples random points in and around every test
// room and checks each hull's contents against the box-overlap reference:
// hull 0 for points, hulls 1 and 2 for their boxes.
func TestHullsMatchGeometry(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, cfg := range testConfigs() {
		m := mustGenerate(t, cfg)
		col := mustCollision(t, m)
		full, err := cfg.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		for h := range 3 {
			mins, maxs := Hulls[h].Mins, Hulls[h].Maxs
			bad := 0
			for range 4000 {
				var p Vec3
				for a := range 3 {
					lo, hi := float32(m.Room.Min[a]-40), float32(m.Room.Max[a]+40)
					p[a] = lo + rng.Float32()*(hi-lo)
				}
				got := col.Hull(h).PointContents(p) == ContentsSolid
				if want := touchesSolid(full, m.Room, mins, maxs, p); got != want && bad < 5 {
					bad++
					t.Errorf("%s: hull %d at %v: solid %v; want %v", name, h, p, got, want)
				}
			}
		}
	}
}

// TestDefaultMapContents checks named spots of the default map, on both
// sides of each surface (one hundredth of a unit apart) and exactly on the
// hull planes, where the engines' rule "d >= 0 is in front" decides.
func TestDefaultMapContents(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	col := mustCollision(t, m)
	p1 := col.Hull(1)
	for _, tc := range []struct {
		name string
		p    Vec3
		want int32
	}{
		{"spawn", Vec3{-448, -448, 24}, ContentsEmpty},
		{"standing on the floor", Vec3{0, -300, 24}, ContentsEmpty},
		{"feet in the floor", Vec3{0, -300, 23.99}, ContentsSolid},
		{"head at the ceiling", Vec3{0, -300, 223.99}, ContentsEmpty},
		{"head in the ceiling", Vec3{0, -300, 224}, ContentsSolid},
		{"against the +x wall", Vec3{495.99, 0, 100}, ContentsEmpty},
		{"in the +x wall", Vec3{496, 0, 100}, ContentsSolid},
		{"against the -y wall", Vec3{0, -496, 100}, ContentsEmpty},
		{"in the -y wall", Vec3{0, -496.01, 100}, ContentsSolid},
		{"beside the platform", Vec3{-144.01, 0, 24}, ContentsEmpty},
		{"touching the platform's side", Vec3{-144, 0, 24}, ContentsSolid},
		{"standing on the platform", Vec3{100, 100, 56}, ContentsEmpty},
		{"feet in the platform", Vec3{100, 100, 55.99}, ContentsSolid},
		{"standing on the pillar", Vec3{0, 0, 96}, ContentsEmpty},
		{"feet in the pillar", Vec3{0, 0, 95.99}, ContentsSolid},
		{"beside the pillar on the platform", Vec3{49, 0, 56}, ContentsEmpty},
		{"outside the room", Vec3{0, 0, -100}, ContentsSolid},
	} {
		if got := p1.PointContents(tc.p); got != tc.want {
			t.Errorf("%s: hull 1 contents at %v = %d; want %d", tc.name, tc.p, got, tc.want)
		}
	}
	// The point hull sees the geometry unexpanded.
	if got := col.Hull(0).PointContents(Vec3{0, -300, 0.01}); got != ContentsEmpty {
		t.Errorf("hull 0 just above the floor = %d; want empty", got)
	}
	if got := col.Hull(0).PointContents(Vec3{0, 0, 71.99}); got != ContentsSolid {
		t.Errorf("hull 0 inside the pillar = %d; want solid", got)
	}
	// The large hull reaches 32 sideways and 64 up.
	if got := col.Hull(2).PointContents(Vec3{-160.01, 0, 24}); got != ContentsEmpty {
		t.Errorf("hull 2 beside the platform = %d; want empty", got)
	}
	if got := col.Hull(2).PointContents(Vec3{-159.99, 0, 24}); got != ContentsSolid {
		t.Errorf("hull 2 touching the platform = %d; want solid", got)
	}
	if got := col.Hull(2).PointContents(Vec3{0, -300, 192.01}); got != ContentsSolid {
		t.Errorf("hull 2 head in the ceiling = %d; want solid", got)
	}
}

func near(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-3 }

func TestTraces(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	col := mustCollision(t, m)
	p1 := col.Hull(1)

	// Falling onto the floor stops distEpsilon above the plane z = 24,
	// with the floor's normal facing up.
	tr := p1.Trace(Vec3{-448, -448, 100}, Vec3{-448, -448, -100})
	if tr.Fraction >= 1 || !near(tr.EndPos[2], 24+distEpsilon) || tr.Plane.Normal != (Vec3{0, 0, 1}) || tr.Plane.Dist != 24 || tr.StartSolid {
		t.Errorf("fall: %+v; want a stop at z=%g on normal (0,0,1)", tr, 24+distEpsilon)
	}
	if p1.PointContents(tr.EndPos) != ContentsEmpty {
		t.Errorf("fall ends at %v, which is not open", tr.EndPos)
	}

	// Running into the platform's side stops before x = -144, the
	// normal facing back along the run.
	tr = p1.Trace(Vec3{-300, 0, 24}, Vec3{0, 0, 24})
	if !near(tr.EndPos[0], -144-distEpsilon) || tr.Plane.Normal != (Vec3{-1, 0, 0}) || tr.Plane.Dist != 144 {
		t.Errorf("run into the platform: %+v; want a stop at x=%g on normal (-1,0,0)", tr, -144-distEpsilon)
	}
	want := (-144 - distEpsilon + 300) / 300.0
	if !near(tr.Fraction, float32(want)) {
		t.Errorf("run into the platform: fraction %g; want %g", tr.Fraction, want)
	}

	// Sliding along the floor (on the plane z = 24) is free.
	tr = p1.Trace(Vec3{-448, -448, 24}, Vec3{-448, 448, 24})
	if tr.Fraction != 1 || !tr.InOpen || tr.AllSolid || tr.StartSolid || tr.EndPos != (Vec3{-448, 448, 24}) {
		t.Errorf("slide along the floor: %+v; want an unobstructed move", tr)
	}

	// Over the platform, high enough and clear of the pillar, is free too;
	// at the same height the pillar (grown to -48..48) stops it.
	tr = p1.Trace(Vec3{-300, 0, 60}, Vec3{300, 0, 60})
	if !near(tr.EndPos[0], -48-distEpsilon) {
		t.Errorf("run into the pillar: %+v; want a stop at x=%g", tr, -48-distEpsilon)
	}
	tr = p1.Trace(Vec3{-300, 100, 60}, Vec3{300, 100, 60})
	if tr.Fraction != 1 {
		t.Errorf("jump over the platform: %+v; want fraction 1", tr)
	}

	// Starting inside the platform: stuck where it is.
	start := Vec3{0, -100, 30}
	tr = p1.Trace(start, Vec3{0, -100, 200})
	if !tr.StartSolid || tr.Fraction != 0 || tr.EndPos != start {
		t.Errorf("start in solid: %+v; want StartSolid, fraction 0, end at the start", tr)
	}
	tr = p1.Trace(start, Vec3{0, -90, 30})
	if !tr.AllSolid || !tr.StartSolid {
		t.Errorf("move within solid: %+v; want AllSolid", tr)
	}

	// Hitting the ceiling from below: the normal faces down.
	tr = p1.Trace(Vec3{0, -300, 100}, Vec3{0, -300, 400})
	if !near(tr.EndPos[2], 224-distEpsilon) || tr.Plane.Normal != (Vec3{0, 0, -1}) || tr.Plane.Dist != -224 {
		t.Errorf("jump into the ceiling: %+v; want a stop at z=%g on normal (0,0,-1)", tr, 224-distEpsilon)
	}
}

// TestBoxOffsets: boxes whose mins differ from their hull's are tested with
// the hull shifted to where the box is, as SV_HullForEntity does.
func TestBoxOffsets(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	col := mustCollision(t, m)
	// An item-style box: 32 wide (hull 1), from 0 to 56 above its origin.
	mins, maxs := Vec3{-16, -16, 0}, Vec3{16, 16, 56}
	if h, off := col.HullForBox(mins, maxs); h != col.Hull(1) || off != (Vec3{0, 0, -24}) {
		t.Fatalf("HullForBox(item) = hull %p, offset %v; want hull 1, (0,0,-24)", h, off)
	}
	if got := col.BoxContents(mins, maxs, Vec3{0, -300, 0}); got != ContentsEmpty {
		t.Errorf("item box on the floor: %d; want empty", got)
	}
	if got := col.BoxContents(mins, maxs, Vec3{0, -300, -0.01}); got != ContentsSolid {
		t.Errorf("item box dipping into the floor: %d; want solid", got)
	}
	tr := col.TraceBox(mins, maxs, Vec3{0, -300, 50}, Vec3{0, -300, -50})
	if !near(tr.EndPos[2], distEpsilon) {
		t.Errorf("item box falls to z=%g; want %g", tr.EndPos[2], distEpsilon)
	}
	// The player box is its own hull: no offset.
	if h, off := col.HullForBox(Hulls[1].Mins, Hulls[1].Maxs); h != col.Hull(1) || off != (Vec3{}) {
		t.Errorf("HullForBox(player) offset %v; want none", off)
	}
	// Points use hull 0; wide boxes hull 2.
	if h, _ := col.HullForBox(Vec3{}, Vec3{}); h != col.Hull(0) {
		t.Error("a point box does not use hull 0")
	}
	if h, off := col.HullForBox(Vec3{-32, -32, 0}, Vec3{32, 32, 88}); h != col.Hull(2) || off != (Vec3{0, 0, -24}) {
		t.Errorf("HullForBox(wide) offset %v; want hull 2, (0,0,-24)", off)
	}
	if got := col.BoxContents(Vec3{}, Vec3{}, Vec3{0, -300, 1}); got != ContentsEmpty {
		t.Errorf("point just above the floor: %d; want empty", got)
	}
}

// TestCollisionConcurrent: a Collision is read-only; traces from many
// goroutines race on nothing (run with -race).
func TestCollisionConcurrent(t *testing.T) {
	col := mustCollision(t, mustGenerate(t, DefaultConfig()))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				x := float32(-400 + (g*200+i)%800)
				col.Hull(1).Trace(Vec3{x, -400, 100}, Vec3{-x, 400, 0})
			}
		})
	}
	wg.Wait()
}

// TestCollisionWithoutClipNodes: a map with no clip hulls (a hand-made
// File) leaves boxes free rather than failing.
func TestCollisionWithoutClipNodes(t *testing.T) {
	m := mustGenerate(t, DefaultConfig())
	f := *m.File
	f.ClipNodes = nil
	f.Models = []Model{m.File.Models[0]}
	f.Models[0].HeadNode = [4]int32{}
	col, err := NewCollision(&f)
	if err != nil {
		t.Fatal(err)
	}
	if got := col.Hull(1).PointContents(Vec3{0, 0, -1000}); got != ContentsEmpty {
		t.Errorf("hull 1 without clipnodes = %d; want empty", got)
	}
}
