package bsp

import (
	"fmt"
	"math"
)

// MaxLightmapSide is the most lightmap samples a face may have along s or t.
// ezquake 3.6.1 stops with "R_LightmapCreateForSurface: smax * tmax > MAX_LIGHTMAP_SIZE"
// on larger faces (seen with the box spike: 33x33 = 1089 samples).
const MaxLightmapSide = 18

// maxSurfaceExtent is the largest texture-space extent of a lit face, in
// texels; Quake engines stop with "Bad surface extents" past it.
const maxSurfaceExtent = 512

// lightmapShift: one lightmap sample covers 16x16 texels (1<<4).
const lightmapShift = 4

// Validate checks what Decode leaves out: the geometry and the invariants
// engines assume without checking. It assumes f came from Decode or passes
// its index checks (it calls them again first). Each error wraps one of the
// package's sentinel errors and names the record.
func (f *File) Validate() error {
	if err := f.checkIndices(); err != nil {
		return err
	}
	geo := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrGeometry}, a...)...)
	}
	for i, p := range f.Planes {
		if err := checkPlane(p); err != nil {
			return geo("plane %d: %v", i, err)
		}
	}
	for i, v := range f.Vertexes {
		if !finiteVec(v) {
			return geo("vertex %d: %v is not finite", i, v)
		}
	}
	for i, t := range f.TexInfo {
		for _, row := range t.Vecs {
			for _, c := range row {
				if !finite(c) {
					return geo("texinfo %d: vector %v is not finite", i, t.Vecs)
				}
			}
		}
	}
	for i := range f.Faces {
		if err := f.checkFace(i); err != nil {
			return geo("face %d: %v", i, err)
		}
	}
	if len(f.Leafs) == 0 || f.Leafs[0].Contents != ContentsSolid {
		return geo("leaf 0 must exist and be solid: node children -1 mean the shared solid leaf")
	}
	if err := checkAcyclic(len(f.Nodes), func(i, s int) int { return int(f.Nodes[i].Children[s]) }); err != nil {
		return geo("nodes: %v", err)
	}
	if err := checkAcyclic(len(f.ClipNodes), func(i, s int) int { return int(f.ClipNodes[i].Children[s]) }); err != nil {
		return geo("clipnodes: %v", err)
	}
	for i, m := range f.Models {
		if !finiteVec(m.Mins) || !finiteVec(m.Maxs) || !finiteVec(m.Origin) {
			return geo("model %d: bounds not finite", i)
		}
		for a := range 3 {
			if m.Mins[a] > m.Maxs[a] {
				return geo("model %d: mins %v above maxs %v", i, m.Mins, m.Maxs)
			}
		}
	}
	ents, err := ParseEntities(f.Entities)
	if err != nil {
		return err
	}
	if len(ents) == 0 || ents[0].Get("classname") != "worldspawn" {
		return fmt.Errorf("%w: the first entity must be the worldspawn", ErrEntities)
	}
	return nil
}

// checkPlane: a unit normal, and for the axial types exactly that positive
// axis, because engines then test p[type]-dist and ignore the normal.
func checkPlane(p Plane) error {
	if !finiteVec(p.Normal) || !finite(p.Dist) {
		return fmt.Errorf("not finite: %v %v", p.Normal, p.Dist)
	}
	l := math.Sqrt(float64(dot(p.Normal, p.Normal)))
	if math.Abs(l-1) > 1e-4 {
		return fmt.Errorf("normal %v has length %g", p.Normal, l)
	}
	switch {
	case p.Type >= PlaneX && p.Type <= PlaneZ:
		var want Vec3
		want[p.Type] = 1
		if p.Normal != want {
			return fmt.Errorf("axial type %d with normal %v, want %v", p.Type, p.Normal, want)
		}
	case p.Type >= PlaneAnyX && p.Type <= PlaneAnyZ:
		a := p.Type - PlaneAnyX
		for b := range 3 {
			if abs(p.Normal[b]) > abs(p.Normal[a]) {
				return fmt.Errorf("type %d but axis %d dominates normal %v", p.Type, b, p.Normal)
			}
		}
	default:
		return fmt.Errorf("type %d", p.Type)
	}
	return nil
}

// FaceVertexes returns the vertex indices of face i in winding order.
// Surfedge e >= 0 walks edge e forwards, e < 0 walks edge -e backwards.
func (f *File) FaceVertexes(i int) []int {
	fc := f.Faces[i]
	out := make([]int, fc.NumEdges)
	for k := range out {
		se := f.SurfEdges[int(fc.FirstEdge)+k]
		if se >= 0 {
			out[k] = int(f.Edges[se].V[0])
		} else {
			out[k] = int(f.Edges[-se].V[1])
		}
	}
	return out
}

// checkFace: at least three edges forming a closed loop, vertices on the
// face's plane, clockwise seen from the front (Quake's winding; the renderers
// cull the other way round), and a lightmap the client accepts inside the
// lighting lump.
func (f *File) checkFace(i int) error {
	fc := f.Faces[i]
	if fc.NumEdges < 3 {
		return fmt.Errorf("%d edges", fc.NumEdges)
	}
	if fc.Side != 0 && fc.Side != 1 {
		return fmt.Errorf("side %d", fc.Side)
	}
	for k := range int(fc.NumEdges) {
		a := f.SurfEdges[int(fc.FirstEdge)+k]
		b := f.SurfEdges[int(fc.FirstEdge)+(k+1)%int(fc.NumEdges)]
		end := f.Edges[abs32(a)].V[1]
		if a < 0 {
			end = f.Edges[-a].V[0]
		}
		start := f.Edges[abs32(b)].V[0]
		if b < 0 {
			start = f.Edges[-b].V[1]
		}
		if end != start {
			return fmt.Errorf("edge loop open: surfedge %d ends at vertex %d, the next starts at %d", k, end, start)
		}
	}
	pl := f.Planes[fc.PlaneNum]
	normal := pl.Normal
	if fc.Side == 1 {
		normal = scale(normal, -1)
	}
	vs := f.FaceVertexes(i)
	var area [3]float64 // Newell's method: twice the vector area
	for k, vi := range vs {
		p, q := f.Vertexes[vi], f.Vertexes[vs[(k+1)%len(vs)]]
		if d := dot(pl.Normal, p) - pl.Dist; abs(d) > 0.1 {
			return fmt.Errorf("vertex %d is %g off plane %d", vi, d, fc.PlaneNum)
		}
		area[0] += float64(p[1]-q[1]) * float64(p[2]+q[2])
		area[1] += float64(p[2]-q[2]) * float64(p[0]+q[0])
		area[2] += float64(p[0]-q[0]) * float64(p[1]+q[1])
	}
	facing := area[0]*float64(normal[0]) + area[1]*float64(normal[1]) + area[2]*float64(normal[2])
	if facing > -1e-3 {
		return fmt.Errorf("winding is not clockwise seen from the front (area . normal = %g)", facing/2)
	}
	if f.TexInfo[fc.TexInfo].Flags&TexSpecial != 0 {
		return nil
	}
	smax, tmax, err := f.LightmapSize(i)
	if err != nil {
		return err
	}
	if smax > MaxLightmapSide || tmax > MaxLightmapSide {
		return fmt.Errorf("lightmap %dx%d samples, clients accept at most %dx%d", smax, tmax, MaxLightmapSide, MaxLightmapSide)
	}
	if fc.LightOfs == -1 {
		return nil
	}
	styles := 0
	for styles < MaxLightStyles && fc.Styles[styles] != 255 {
		styles++
	}
	if end := int64(fc.LightOfs) + int64(smax*tmax*styles); end > int64(len(f.Lighting)) {
		return fmt.Errorf("lightmap %dx%d x %d styles at %d ends past the %d-byte lighting lump", smax, tmax, styles, fc.LightOfs, len(f.Lighting))
	}
	return nil
}

// LightmapSize returns the lightmap size of face i in samples, computed the
// way the engines' CalcSurfaceExtents do: the face's texture coordinates,
// rounded outwards to multiples of 16 texels, one sample per 16 texels plus
// one. The engine reads smax*tmax bytes per light style at the face's light
// offset.
func (f *File) LightmapSize(i int) (smax, tmax int, err error) {
	tex := f.TexInfo[f.Faces[i].TexInfo]
	var size [2]int
	for j := range 2 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, vi := range f.FaceVertexes(i) {
			v := f.Vertexes[vi]
			val := float64(v[0])*float64(tex.Vecs[j][0]) + float64(v[1])*float64(tex.Vecs[j][1]) +
				float64(v[2])*float64(tex.Vecs[j][2]) + float64(tex.Vecs[j][3])
			lo, hi = math.Min(lo, val), math.Max(hi, val)
		}
		ext := (math.Ceil(hi/16) - math.Floor(lo/16)) * 16
		if !(ext >= 0 && ext <= maxSurfaceExtent) {
			return 0, 0, fmt.Errorf("texture extent %g texels along %c (engines allow %d)", ext, "st"[j], maxSurfaceExtent)
		}
		size[j] = int(ext)>>lightmapShift + 1
	}
	return size[0], size[1], nil
}

// checkAcyclic reports a cycle in a graph of n nodes whose two children are
// child(i, 0) and child(i, 1) (negative = not a node). Point and trace
// walks loop forever on a cycle; sharing a subtree is harmless.
func checkAcyclic(n int, child func(i, side int) int) error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, n)
	type frame struct{ node, side int }
	for root := range n {
		if state[root] != unseen {
			continue
		}
		stack := []frame{{root, 0}}
		state[root] = onPath
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.side == 2 {
				state[top.node] = done
				stack = stack[:len(stack)-1]
				continue
			}
			c := child(top.node, top.side)
			top.side++
			if c < 0 {
				continue
			}
			switch state[c] {
			case onPath:
				return fmt.Errorf("cycle through node %d", c)
			case unseen:
				state[c] = onPath
				stack = append(stack, frame{c, 0})
			}
		}
	}
	return nil
}

func finite(v float32) bool { return !math.IsInf(float64(v), 0) && !math.IsNaN(float64(v)) }

func finiteVec(v Vec3) bool { return finite(v[0]) && finite(v[1]) && finite(v[2]) }

func abs(v float32) float32 { return float32(math.Abs(float64(v))) }

func dot(a, b Vec3) float32 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

func scale(v Vec3, s float32) Vec3 { return Vec3{v[0] * s, v[1] * s, v[2] * s} }
