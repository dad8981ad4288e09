package bsp

import "fmt"

// Hulls are the boxes of Quake's three collision hulls, relative to the
// origin of what moves. They are fixed by the engines (Mod_LoadBrushModel
// sets clip_mins/clip_maxs; the map only carries the trees), and Generate
// grows its solids by exactly these boxes. Hull 0 is the point hull (missiles,
// the renderer), hull 1 the player box, hull 2 the large monster box.
var Hulls = [3]struct{ Mins, Maxs Vec3 }{
	{},
	{Mins: Vec3{-16, -16, -24}, Maxs: Vec3{16, 16, 32}},
	{Mins: Vec3{-32, -32, -24}, Maxs: Vec3{32, 32, 64}},
}

// distEpsilon is how far before a plane a trace stops (DIST_EPSILON, 1/32
// unit): far enough that the end point tests as open on the next move, which
// client prediction relies on too.
const distEpsilon = 0.03125

// Collision is the world's collision model: the three hulls of model 0. A
// box touches a solid exactly when its origin is in a solid of the hull for
// its size, so player movement needs only point tests and line traces.
// A Collision is immutable and safe for concurrent use.
type Collision struct {
	hulls [3]Hull
}

// Hull is one clip tree: a point is tested down from head, going to child 0
// when dot(normal, p) - dist >= 0 and to child 1 otherwise, until it reaches
// a contents value.
type Hull struct {
	nodes      []ClipNode
	planes     []Plane
	head       int32
	Mins, Maxs Vec3 // the box this hull is built for (Hulls[i])
}

// NewCollision returns the collision model of f's world (model 0). Hull 0
// is derived from the node tree as the engines' MakeHull0 does: a node
// child that is a leaf becomes that leaf's contents. It fails if an index is
// out of range or a tree has a cycle, which would make the walks below
// misbehave.
func NewCollision(f *File) (*Collision, error) {
	if err := f.checkIndices(); err != nil {
		return nil, err
	}
	if err := checkAcyclic(len(f.Nodes), func(i, s int) int { return int(f.Nodes[i].Children[s]) }); err != nil {
		return nil, fmt.Errorf("%w: nodes: %v", ErrGeometry, err)
	}
	if err := checkAcyclic(len(f.ClipNodes), func(i, s int) int { return int(f.ClipNodes[i].Children[s]) }); err != nil {
		return nil, fmt.Errorf("%w: clipnodes: %v", ErrGeometry, err)
	}
	hull0 := make([]ClipNode, len(f.Nodes))
	for i, n := range f.Nodes {
		hull0[i].PlaneNum = n.PlaneNum
		for s, c := range n.Children {
			if c < 0 {
				c = int16(f.Leafs[-(int(c) + 1)].Contents)
			}
			hull0[i].Children[s] = c
		}
	}
	m := f.Models[0]
	c := &Collision{}
	c.hulls[0] = Hull{nodes: hull0, planes: f.Planes, head: m.HeadNode[0]}
	for h := 1; h <= 2; h++ {
		c.hulls[h] = Hull{nodes: f.ClipNodes, planes: f.Planes, head: m.HeadNode[h], Mins: Hulls[h].Mins, Maxs: Hulls[h].Maxs}
		if len(f.ClipNodes) == 0 {
			// A map without clip hulls: everything is open to boxes.
			c.hulls[h].head = ContentsEmpty
		}
	}
	return c, nil
}

// Hull returns hull i (0, 1 or 2).
func (c *Collision) Hull(i int) *Hull { return &c.hulls[i] }

// HullForBox returns the hull a box of extents mins..maxs collides with and
// the offset from the box's origin to the hull's origin, chosen as the
// engines' SV_HullForEntity does: by the box's width, under 3 units hull 0,
// up to 32 hull 1, wider hull 2. A box whose mins differ from the hull's
// (an item box from 0 to 56 instead of -24 to 32) is tested at origin -
// offset, which puts the hull's box where the real box is.
func (c *Collision) HullForBox(mins, maxs Vec3) (h *Hull, offset Vec3) {
	width := maxs[0] - mins[0]
	switch {
	case width < 3:
		h = &c.hulls[0]
	case width <= 32:
		h = &c.hulls[1]
	default:
		h = &c.hulls[2]
	}
	for a := range 3 {
		offset[a] = h.Mins[a] - mins[a]
	}
	return h, offset
}

// BoxContents returns the contents a box of extents mins..maxs at origin
// touches, as hull point contents (solid beats everything else).
func (c *Collision) BoxContents(mins, maxs, origin Vec3) int32 {
	h, off := c.HullForBox(mins, maxs)
	return h.PointContents(sub(origin, off))
}

// TraceBox moves a box of extents mins..maxs from start towards end and
// reports where it stops; EndPos is the box's origin.
func (c *Collision) TraceBox(mins, maxs, start, end Vec3) Trace {
	h, off := c.HullForBox(mins, maxs)
	tr := h.Trace(sub(start, off), sub(end, off))
	tr.EndPos = add(tr.EndPos, off)
	return tr
}

// PointContents returns the contents at p: ContentsEmpty, ContentsSolid,
// or another ContentsXxx value.
func (h *Hull) PointContents(p Vec3) int32 { return h.contents(h.head, p) }

func (h *Hull) contents(num int32, p Vec3) int32 {
	for num >= 0 {
		n := &h.nodes[num]
		if h.planes[n.PlaneNum].distance(p) < 0 {
			num = int32(n.Children[1])
		} else {
			num = int32(n.Children[0])
		}
	}
	return num
}

// distance is the signed distance of p from the plane; axial planes read
// the coordinate directly, as the engines do, which gives bit-identical
// results to the clients' prediction.
func (pl *Plane) distance(p Vec3) float32 {
	if pl.Type < 3 && pl.Type >= 0 {
		return p[pl.Type] - pl.Dist
	}
	return dot(pl.Normal, p) - pl.Dist
}

// Trace is the result of a line trace through a hull.
type Trace struct {
	// AllSolid: the whole line lies in solid.
	AllSolid bool
	// StartSolid: the start point is in solid. Then Fraction is 0 and
	// EndPos is the start, as QuakeWorld's player movement (PM_PlayerTrace)
	// treats it, so a stuck player does not move through walls.
	StartSolid bool
	// InOpen, InWater: the trace passed through empty, or through water,
	// slime or lava.
	InOpen, InWater bool
	// Fraction is how far along start..end the trace got, 1 if it was not
	// stopped.
	Fraction float32
	// EndPos is where the trace stopped: distEpsilon short of the plane it
	// hit, so it tests open itself.
	EndPos Vec3
	// Plane is the plane hit, its normal facing back along the trace (for
	// sliding along it and for "on ground": Normal[2] > 0.7). Zero if
	// nothing was hit.
	Plane Plane
}

// Trace follows the line from start to end through the hull, as the
// engines' recursive hull check does: split the line at each plane it
// crosses, nearer part first, and stop in front of the first solid.
func (h *Hull) Trace(start, end Vec3) Trace {
	tr := Trace{AllSolid: true, Fraction: 1, EndPos: end}
	h.check(h.head, 0, 1, start, end, &tr)
	if tr.AllSolid {
		tr.StartSolid = true
	}
	if tr.StartSolid {
		tr.Fraction = 0
		tr.EndPos = start
	}
	return tr
}

// check traces p1..p2 (fractions p1f..p2f of the whole line) through the
// subtree num. It returns false once the trace has stopped.
func (h *Hull) check(num int32, p1f, p2f float32, p1, p2 Vec3, tr *Trace) bool {
	if num < 0 {
		if num != ContentsSolid {
			tr.AllSolid = false
			if num == ContentsEmpty {
				tr.InOpen = true
			} else {
				tr.InWater = true
			}
		} else {
			tr.StartSolid = true
		}
		return true
	}
	n := &h.nodes[num]
	pl := &h.planes[n.PlaneNum]
	t1, t2 := pl.distance(p1), pl.distance(p2)
	if t1 >= 0 && t2 >= 0 {
		return h.check(int32(n.Children[0]), p1f, p2f, p1, p2, tr)
	}
	if t1 < 0 && t2 < 0 {
		return h.check(int32(n.Children[1]), p1f, p2f, p1, p2, tr)
	}
	// The line crosses the plane: cut it distEpsilon before the crossing,
	// on the near side.
	side := 0
	frac := (t1 - distEpsilon) / (t1 - t2)
	if t1 < 0 {
		side = 1
		frac = (t1 + distEpsilon) / (t1 - t2)
	}
	frac = min(max(frac, 0), 1)
	midf := p1f + (p2f-p1f)*frac
	mid := lerp(p1, p2, frac)
	if !h.check(int32(n.Children[side]), p1f, midf, p1, mid, tr) {
		return false
	}
	if h.contents(int32(n.Children[side^1]), mid) != ContentsSolid {
		return h.check(int32(n.Children[side^1]), midf, p2f, mid, p2, tr)
	}
	if tr.AllSolid {
		return false // never left solid: nothing to stop against
	}
	// The far side is solid: this plane stops the trace.
	tr.Plane = *pl
	if side == 1 {
		tr.Plane.Normal = sub(Vec3{}, pl.Normal) // 0-n, not -n: no -0 components
		tr.Plane.Dist = -pl.Dist
	}
	// Rounding can leave mid just inside solid; back off in tenths of the
	// remaining way (bounded, so a NaN cannot loop).
	for i := 0; i < 10 && h.PointContents(mid) == ContentsSolid; i++ {
		frac -= 0.1
		if frac < 0 {
			break
		}
		midf = p1f + (p2f-p1f)*frac
		mid = lerp(p1, p2, frac)
	}
	tr.Fraction = midf
	tr.EndPos = mid
	return false
}

func lerp(a, b Vec3, t float32) Vec3 {
	return Vec3{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1]), a[2] + t*(b[2]-a[2])}
}

func add(a, b Vec3) Vec3 { return Vec3{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }

func sub(a, b Vec3) Vec3 { return Vec3{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
