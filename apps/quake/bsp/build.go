package bsp

import (
	"cmp"
	"slices"
)

// This file builds BSP trees for worlds made of axis-aligned boxes with
// integer coordinates. Every splitting plane is a box face, so every plane is
// axial, every cell of the tree is a box, and every face is a rectangle: no
// epsilon, no polygon clipping, and the same input always gives the same tree.

// Box is an axis-aligned box in map units from Min to Max. Boxes that only
// touch (share a face, edge or corner) do not overlap.
type Box struct {
	Min, Max [3]int
}

// overlaps reports whether a and b share a region of positive volume.
func (a Box) overlaps(b Box) bool {
	for i := range 3 {
		if a.Min[i] >= b.Max[i] || b.Min[i] >= a.Max[i] {
			return false
		}
	}
	return true
}

// intersect returns a ∩ b, and whether it has positive volume.
func (a Box) intersect(b Box) (Box, bool) {
	var c Box
	for i := range 3 {
		c.Min[i] = max(a.Min[i], b.Min[i])
		c.Max[i] = min(a.Max[i], b.Max[i])
	}
	return c, a.overlaps(b)
}

// expand grows a solid box into the region where a moving box with extents
// mins..maxs (relative to its origin) would touch it: the Minkowski sum that
// makes clip hulls work with point tests.
func (a Box) expand(mins, maxs [3]int) Box {
	var c Box
	for i := range 3 {
		c.Min[i] = a.Min[i] - maxs[i]
		c.Max[i] = a.Max[i] - mins[i]
	}
	return c
}

// bspNode is a node or leaf of a tree under construction. A node splits its
// cell at coordinate dist on axis: points with p[axis] >= dist go to front
// (child 0 in the file), others to back, as the engines test them.
type bspNode struct {
	axis, dist  int
	front, back *bspNode
	leaf, solid bool
	cell        Box
	faces       []quad // hull 0: faces lying on this node's plane
}

// buildTree returns the tree of a world that is solid everywhere except
// inside open, where the boxes in solids are solid again. bounds only sizes
// the cells of the six outer nodes (node bounds are for the renderer's
// culling; nothing lies outside the room).
func buildTree(bounds, open Box, solids []Box) *bspNode {
	return buildOuter(0, bounds, open, solids)
}

// buildOuter peels off the outside of open one side at a time (x min, x
// max, y min, ...): each node keeps open on one side and has the shared solid
// leaf on the other.
func buildOuter(side int, cell, open Box, solids []Box) *bspNode {
	if side == 6 {
		return buildInner(cell, solids)
	}
	a := side / 2
	n := &bspNode{axis: a, cell: cell}
	inner := cell
	if side%2 == 0 {
		n.dist = open.Min[a]
		inner.Min[a] = n.dist
		n.front = buildOuter(side+1, inner, open, solids)
		n.back = &bspNode{leaf: true, solid: true}
	} else {
		n.dist = open.Max[a]
		inner.Max[a] = n.dist
		n.front = &bspNode{leaf: true, solid: true}
		n.back = buildOuter(side+1, inner, open, solids)
	}
	return n
}

// buildInner splits cell by box faces until no face passes through a cell:
// then the cell lies entirely inside some box (solid) or in none (empty).
func buildInner(cell Box, solids []Box) *bspNode {
	var live []Box
	for _, s := range solids {
		if c, ok := s.intersect(cell); ok {
			live = append(live, c)
		}
	}
	type plane struct{ axis, dist int }
	var cands []plane
	for _, s := range live {
		for a := range 3 {
			for _, d := range [2]int{s.Min[a], s.Max[a]} {
				if cell.Min[a] < d && d < cell.Max[a] {
					cands = append(cands, plane{a, d})
				}
			}
		}
	}
	if len(cands) == 0 {
		return &bspNode{leaf: true, solid: len(live) > 0, cell: cell}
	}
	slices.SortFunc(cands, func(x, y plane) int {
		return cmp.Or(cmp.Compare(x.axis, y.axis), cmp.Compare(x.dist, y.dist))
	})
	cands = slices.Compact(cands)
	// Prefer planes that cut few boxes (each cut box is built twice) and
	// leave balanced halves; the first of equals wins, so the tree is
	// deterministic.
	best, bestScore := cands[0], -1
	for _, p := range cands {
		cut, front, back := 0, 0, 0
		for _, s := range live {
			if s.Min[p.axis] < p.dist && p.dist < s.Max[p.axis] {
				cut++
			}
			if s.Max[p.axis] > p.dist {
				front++
			}
			if s.Min[p.axis] < p.dist {
				back++
			}
		}
		score := 8*cut + max(front-back, back-front)
		if bestScore < 0 || score < bestScore {
			best, bestScore = p, score
		}
	}
	n := &bspNode{axis: best.axis, dist: best.dist, cell: cell}
	fc, bc := cell, cell
	fc.Min[best.axis] = best.dist
	bc.Max[best.axis] = best.dist
	n.front = buildInner(fc, live)
	n.back = buildInner(bc, live)
	return n
}

// quad is an axis-aligned rectangular face: rect is flat on axis
// (rect.Min[axis] == rect.Max[axis]) and the face looks towards +axis when
// dir is +1, -axis when -1.
type quad struct {
	axis, dir int
	rect      Box
}

func (q quad) dist() int { return q.rect.Min[q.axis] }

// otherAxes returns the two axes spanning a face on axis a, in the cyclic
// order that makes u x v point along +a.
func otherAxes(a int) (u, v int) { return (a + 1) % 3, (a + 2) % 3 }

// visibleFaces returns the boundary between the open room and its solids:
// the six inner walls looking in, and every block face that lies inside the
// room looking out, minus the parts covered by a block (a block standing on
// the floor hides that part of the floor and its own bottom).
func visibleFaces(room Box, blocks []Box) []quad {
	var qs []quad
	for a := range 3 {
		lo, hi := room, room
		lo.Max[a] = room.Min[a]
		hi.Min[a] = room.Max[a]
		qs = append(qs, quad{a, +1, lo}, quad{a, -1, hi})
	}
	for _, b := range blocks {
		for a := range 3 {
			if b.Min[a] > room.Min[a] {
				r := b
				r.Max[a] = b.Min[a]
				qs = append(qs, quad{a, -1, r})
			}
			if b.Max[a] < room.Max[a] {
				r := b
				r.Min[a] = b.Max[a]
				qs = append(qs, quad{a, +1, r})
			}
		}
	}
	var out []quad
	for _, q := range qs {
		pieces := []quad{q}
		for _, b := range blocks {
			if !covers(b, q) {
				continue
			}
			var next []quad
			for _, p := range pieces {
				next = append(next, subtract(p, b)...)
			}
			pieces = next
		}
		out = append(out, pieces...)
	}
	return out
}

// covers reports whether block b fills the space just in front of q's
// plane (so that any part of q under b is hidden).
func covers(b Box, q quad) bool {
	d := q.dist()
	if q.dir > 0 {
		return b.Min[q.axis] <= d && d < b.Max[q.axis]
	}
	return b.Min[q.axis] < d && d <= b.Max[q.axis]
}

// subtract returns the parts of q outside b's extent in q's plane: up to
// four rectangles, split first across u then across v.
func subtract(q quad, b Box) []quad {
	u, v := otherAxes(q.axis)
	r := q.rect
	if b.Min[u] >= r.Max[u] || b.Max[u] <= r.Min[u] || b.Min[v] >= r.Max[v] || b.Max[v] <= r.Min[v] {
		return []quad{q}
	}
	var out []quad
	piece := func(umin, umax, vmin, vmax int) {
		if umin < umax && vmin < vmax {
			p := q
			p.rect.Min[u], p.rect.Max[u] = umin, umax
			p.rect.Min[v], p.rect.Max[v] = vmin, vmax
			out = append(out, p)
		}
	}
	u0, u1 := max(r.Min[u], b.Min[u]), min(r.Max[u], b.Max[u])
	piece(r.Min[u], u0, r.Min[v], r.Max[v])
	piece(u1, r.Max[u], r.Min[v], r.Max[v])
	piece(u0, u1, r.Min[v], max(r.Min[v], b.Min[v]))
	piece(u0, u1, min(r.Max[v], b.Max[v]), r.Max[v])
	return out
}

// splitQuad cuts q at coordinate d of axis a (a is not q's axis).
func splitQuad(q quad, a, d int) (lo, hi quad) {
	lo, hi = q, q
	lo.rect.Max[a] = d
	hi.rect.Min[a] = d
	return lo, hi
}

// pushFaces files each face under the node whose plane it lies on, cutting
// faces that straddle a node's plane. Every face of visibleFaces separates
// an open cell from a solid one, so some node on its path splits at its
// plane; a face reaching a leaf would mean a bug in the tree.
func pushFaces(n *bspNode, qs []quad) bool {
	if n.leaf {
		return len(qs) == 0
	}
	var front, back []quad
	for _, q := range qs {
		switch {
		case q.axis == n.axis && q.dist() == n.dist:
			n.faces = append(n.faces, q)
		case q.rect.Min[n.axis] >= n.dist:
			front = append(front, q)
		case q.rect.Max[n.axis] <= n.dist:
			back = append(back, q)
		default:
			lo, hi := splitQuad(q, n.axis, n.dist)
			back = append(back, lo)
			front = append(front, hi)
		}
	}
	return pushFaces(n.front, front) && pushFaces(n.back, back)
}

// winding returns q's corners clockwise seen from the side q looks at
// (Quake's front-face order).
func (q quad) winding() [4][3]int {
	u, v := otherAxes(q.axis)
	r := q.rect
	corner := func(cu, cv int) [3]int {
		var p [3]int
		p[q.axis] = q.dist()
		p[u], p[v] = cu, cv
		return p
	}
	// (u0,v0) (u1,v0) (u1,v1) (u0,v1) runs counter-clockwise seen from +axis.
	ccw := [4][3]int{
		corner(r.Min[u], r.Min[v]), corner(r.Max[u], r.Min[v]),
		corner(r.Max[u], r.Max[v]), corner(r.Min[u], r.Max[v]),
	}
	if q.dir < 0 {
		return ccw
	}
	return [4][3]int{ccw[0], ccw[3], ccw[2], ccw[1]}
}

// touches reports whether face q lies on the boundary of cell c, looking
// into it, with a shared area: the faces the renderer must mark visible when
// it reaches leaf c.
func (q quad) touches(c Box) bool {
	a := q.axis
	if q.dir > 0 && c.Min[a] != q.dist() || q.dir < 0 && c.Max[a] != q.dist() {
		return false
	}
	u, v := otherAxes(a)
	return q.rect.Min[u] < c.Max[u] && c.Min[u] < q.rect.Max[u] &&
		q.rect.Min[v] < c.Max[v] && c.Min[v] < q.rect.Max[v]
}
