package bsp

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// ErrConfig: Generate was given parameters it cannot build a map from.
var ErrConfig = errors.New("bsp: bad map config")

// Defaults of Config's zero fields.
var (
	// DefaultSize is a room in which eight players have space to run and
	// that takes a few seconds to cross (maxspeed 320 units/s).
	DefaultSize = [3]int{1024, 1024, 256}
	// DefaultTexScale maps 4 units to a texel, so a 1024-unit wall spans
	// 256 texels: 17 lightmap samples, within the client's limit of 18
	// without splitting the wall.
	DefaultTexScale float32 = 0.25
)

// DefaultMessage is the worldspawn "message", the level name clients show.
const DefaultMessage = "molt arena"

// maxCoord bounds every coordinate of a room. QuakeWorld sends coordinates
// as int16 eighths of a unit, so the world must stay inside +-4096; the walls
// (wallThickness) and the hull expansion stay within that too.
const maxCoord = 4096 - 2*wallThickness

// wallThickness is how far the world bounds reach past the room: the walls
// are the solid outside of the room and have no real thickness, but the
// world model's bounds and outer node bounds enclose them.
const wallThickness = 16

// maxTextureSpan caps a face's texture extent at 256 texels, split if need
// be: that is at most 17 lightmap samples per axis, inside ezquake's 18 and
// inside the 256-texel extent some older engines enforce.
const maxTextureSpan = 256

// Config describes the room Generate builds. The room's floor is at z = 0
// and its centre at x = y = 0.
type Config struct {
	// Size is the room's inner width (x), depth (y) and height (z) in
	// units; zero means DefaultSize.
	Size [3]int
	// Blocks are solid boxes inside the room, in room coordinates
	// (DefaultConfig has a platform and a pillar). They may touch the walls
	// and each other; Blocks is used as given, so nil means an empty room.
	Blocks []Box
	// TexScale is texels per unit, a power of two from 1/16 to 4, so the
	// texture coordinates of integer vertices are exact in float32 and the
	// engine computes the same lightmap sizes as Generate. Zero means
	// DefaultTexScale.
	TexScale float32
	// Message is the level name (worldspawn "message"); "" means
	// DefaultMessage.
	Message string
	// Spawns are the deathmatch spawn points; nil means one near each
	// corner, facing the centre. The first is also the info_player_start.
	Spawns []Spawn
}

// Spawn is a spawn point: a player origin (24 units above the floor it
// stands on: the player box reaches 24 below its origin) and a yaw in degrees.
type Spawn struct {
	Origin [3]int
	Angle  int
}

// DefaultConfig is the map molt serves: the default room with a platform
// in the middle (32 units high, which needs a jump: walking climbs 18) and a
// pillar on it that needs a second jump (40 more).
func DefaultConfig() Config {
	return Config{
		Size: DefaultSize,
		Blocks: []Box{
			{Min: [3]int{-128, -128, 0}, Max: [3]int{128, 128, 32}},
			{Min: [3]int{-32, -32, 32}, Max: [3]int{32, 32, 72}},
		},
		TexScale: DefaultTexScale,
		Message:  DefaultMessage,
	}
}

// Map is a generated map.
type Map struct {
	Data      []byte // the .bsp file
	File      *File  // Data decoded
	Checksums Checksums
	Room      Box // the open room
	Spawns    []Spawn
}

// Generate builds a closed room with the given blocks as a BSP v29 map. Equal
// configs give identical bytes.
func Generate(cfg Config) (*Map, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	room := roomBox(cfg.Size)
	b := newBuilder(cfg.TexScale)
	if err := b.world(room, cfg.Blocks); err != nil {
		return nil, err
	}
	col, err := NewCollision(b.f)
	if err != nil {
		return nil, fmt.Errorf("bsp: internal error: %w", err)
	}
	spawns := slices.Clone(cfg.Spawns)
	if spawns == nil {
		spawns = cornerSpawns(room, col)
	}
	if len(spawns) == 0 {
		return nil, fmt.Errorf("%w: blocks leave no room for a spawn point near any corner", ErrConfig)
	}
	for i, s := range spawns {
		if c := col.Hull(1).PointContents(vec(s.Origin)); c != ContentsEmpty {
			return nil, fmt.Errorf("%w: spawn %d at %v: a player there would be stuck (contents %d)", ErrConfig, i, s.Origin, c)
		}
	}
	ents := []Entity{{{"classname", "worldspawn"}, {"message", cfg.Message}}}
	for i, s := range spawns {
		origin := strconv.Itoa(s.Origin[0]) + " " + strconv.Itoa(s.Origin[1]) + " " + strconv.Itoa(s.Origin[2])
		if i == 0 {
			ents = append(ents, Entity{{"classname", "info_player_start"}, {"origin", origin}, {"angle", strconv.Itoa(s.Angle)}})
		}
		ents = append(ents, Entity{{"classname", "info_player_deathmatch"}, {"origin", origin}, {"angle", strconv.Itoa(s.Angle)}})
	}
	if b.f.Entities, err = appendEntities(nil, ents); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	data, err := Encode(b.f)
	if err != nil {
		return nil, err
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("bsp: generated map does not decode: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("bsp: generated map does not validate: %w", err)
	}
	sums, err := ComputeChecksums(data)
	if err != nil {
		return nil, err
	}
	return &Map{Data: data, File: f, Checksums: sums, Room: room, Spawns: spawns}, nil
}

// withDefaults fills zero fields and checks the rest.
func (cfg Config) withDefaults() (Config, error) {
	bad := func(format string, a ...any) (Config, error) {
		return cfg, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	if cfg.Size == [3]int{} {
		cfg.Size = DefaultSize
	}
	if cfg.TexScale == 0 {
		cfg.TexScale = DefaultTexScale
	}
	if cfg.Message == "" {
		cfg.Message = DefaultMessage
	}
	// The large hull (64x64x88) must fit, or hull 2 would have no open
	// cell; and the room must stay within the protocol's coordinate range.
	large := Hulls[2]
	for a := range 3 {
		need := int(large.Maxs[a]-large.Mins[a]) + 1
		limit := 2 * maxCoord
		if a == 2 {
			limit = maxCoord
		}
		if cfg.Size[a] < need || cfg.Size[a] > limit {
			return bad("size %v: each side must be from %d (the large hull) to %d units", cfg.Size, need, limit)
		}
	}
	if e := math.Log2(float64(cfg.TexScale)); e != math.Trunc(e) || e < -4 || e > 2 {
		return bad("texture scale %g is not a power of two from 1/16 to 4", cfg.TexScale)
	}
	room := roomBox(cfg.Size)
	for i, b := range cfg.Blocks {
		for a := range 3 {
			if b.Min[a] >= b.Max[a] || b.Min[a] < room.Min[a] || b.Max[a] > room.Max[a] {
				return bad("block %d %v: must have positive size and lie inside the room %v", i, b, room)
			}
		}
	}
	for i, s := range cfg.Spawns {
		for a := range 3 {
			if s.Origin[a] <= room.Min[a] || s.Origin[a] >= room.Max[a] {
				return bad("spawn %d at %v is outside the room %v", i, s.Origin, room)
			}
		}
	}
	return cfg, nil
}

// roomBox places a room of the given size with its floor at z = 0 and its
// middle at x = y = 0 (to the unit below, for odd sizes).
func roomBox(size [3]int) Box {
	room := Box{Max: size}
	for a := range 2 {
		room.Min[a] = -size[a] / 2
		room.Max[a] = room.Min[a] + size[a]
	}
	return room
}

// cornerSpawns puts a spawn point near each corner, standing on the floor
// and facing the middle of the room: 64 units in from both walls (less in a
// small room) or, where a block is in the way, the first open spot further
// along the diagonal in steps of 32. A corner with no open spot before the
// middle gets none.
func cornerSpawns(room Box, col *Collision) []Spawn {
	z := room.Min[2] - int(Hulls[1].Mins[2])
	var out []Spawn
	for _, c := range []struct{ sx, sy, angle int }{
		{-1, -1, 45}, {+1, -1, 135}, {+1, +1, 225}, {-1, +1, 315},
	} {
		// Small rooms start nearer the walls, so the spot stays off the middle.
		first := min(64, (room.Max[0]-room.Min[0])/4, (room.Max[1]-room.Min[1])/4)
		for in := first; ; in += 32 {
			x, y := room.Min[0]+in, room.Min[1]+in
			if c.sx > 0 {
				x = room.Max[0] - in
			}
			if c.sy > 0 {
				y = room.Max[1] - in
			}
			if x*c.sx <= 0 || y*c.sy <= 0 {
				break // reached the middle
			}
			o := [3]int{x, y, z}
			if col.Hull(1).PointContents(vec(o)) == ContentsEmpty {
				out = append(out, Spawn{Origin: o, Angle: c.angle})
				break
			}
		}
	}
	return out
}

// builder accumulates the lumps of the map being generated.
type builder struct {
	f        *File
	texScale float32
	planes   map[[2]int]int32 // (axis, dist) -> plane index
	vertexes map[[3]int]int   // point -> vertex index
	edges    map[[2]int]int32 // (lower, higher vertex) -> signed edge index
	// leafCells holds each emitted leaf's cell, by leaf index (0 is the
	// solid leaf and has none), for the marksurface pass.
	leafCells []Box
	faceQuads []quad // each emitted face, by face index
}

func newBuilder(texScale float32) *builder {
	return &builder{
		f:         &File{},
		texScale:  texScale,
		planes:    map[[2]int]int32{},
		vertexes:  map[[3]int]int{},
		edges:     map[[2]int]int32{},
		leafCells: []Box{{}},
	}
}

// world fills every lump but the entities for the given room and blocks.
func (b *builder) world(room Box, blocks []Box) error {
	f := b.f
	f.Textures = []*MipTex{checkerTexture("molt_checker", 64, 16)}
	// One texinfo per axis: faces on both sides of an axis share texture
	// axes, as in qbsp's projection of textures onto the nearest axial plane.
	for a := range 3 {
		sAxis, sSign, tAxis, tSign := texAxes(a)
		var ti TexInfo
		ti.Vecs[0][sAxis] = sSign * b.texScale
		ti.Vecs[1][tAxis] = tSign * b.texScale
		f.TexInfo = append(f.TexInfo, ti)
	}
	f.Leafs = []Leaf{{Contents: ContentsSolid, VisOfs: -1}}

	// Hull 0: the room and blocks as they are, with faces.
	bounds := room
	for a := range 3 {
		bounds.Min[a] -= wallThickness
		bounds.Max[a] += wallThickness
	}
	tree := buildTree(bounds, room, blocks)
	var faces []quad
	for _, q := range visibleFaces(room, blocks) {
		faces = append(faces, b.subdivide(q)...)
	}
	if !pushFaces(tree, faces) {
		return errors.New("bsp: internal error: a face did not land on a node plane")
	}
	var corners [][3]int
	collectCorners(tree, &corners)
	slices.SortFunc(corners, func(x, y [3]int) int { return slices.Compare(x[:], y[:]) })
	corners = slices.Compact(corners)
	if _, err := b.emitNodes(tree, corners); err != nil {
		return err
	}
	b.markSurfaces()
	if err := b.lighting(); err != nil {
		return err
	}

	// Hulls 1 and 2: the open room shrunk and the blocks grown by the hull's
	// box, so that the box at origin o touches a solid exactly when o is in
	// the grown solid.
	var heads [4]int32
	for h := 1; h <= 2; h++ {
		var mins, maxs [3]int
		for a := range 3 {
			mins[a], maxs[a] = int(Hulls[h].Mins[a]), int(Hulls[h].Maxs[a])
		}
		open := room
		for a := range 3 {
			open.Min[a] -= mins[a]
			open.Max[a] -= maxs[a]
		}
		grown := make([]Box, len(blocks))
		for i, bl := range blocks {
			grown[i] = bl.expand(mins, maxs)
		}
		heads[h] = int32(len(f.ClipNodes))
		if _, err := b.emitClipNodes(buildTree(bounds, open, grown)); err != nil {
			return err
		}
	}
	f.Models = []Model{{
		Mins:      vec(bounds.Min),
		Maxs:      vec(bounds.Max),
		HeadNode:  heads, // heads[0] = 0: node 0 is the root
		VisLeafs:  int32(len(f.Leafs) - 1),
		FirstFace: 0,
		NumFaces:  int32(len(f.Faces)),
	}}
	return nil
}

// texAxes gives, for faces on axis a, the world axes and signs of the
// texture's s and t: s runs along the first horizontal axis, t downwards on
// walls (so textures stand upright) and along -y on floors and ceilings.
func texAxes(a int) (sAxis int, sSign float32, tAxis int, tSign float32) {
	switch a {
	case 0:
		return 1, 1, 2, -1
	case 1:
		return 0, 1, 2, -1
	default:
		return 0, 1, 1, -1
	}
}

// subdivide cuts q until its texture extent is at most maxTextureSpan texels
// per axis, at texture coordinates that are multiples of 16 texels, so each
// piece's lightmap stays within the client's limit.
func (b *builder) subdivide(q quad) []quad {
	sAxis, sSign, tAxis, tSign := texAxes(q.axis)
	for _, ax := range []struct {
		axis int
		sign float32
	}{{sAxis, sSign}, {tAxis, tSign}} {
		k := float64(ax.sign * b.texScale)
		lo, hi := float64(q.rect.Min[ax.axis])*k, float64(q.rect.Max[ax.axis])*k
		if lo > hi {
			lo, hi = hi, lo
		}
		first := math.Floor(lo / 16)
		if math.Ceil(hi/16)-first <= maxTextureSpan/16 {
			continue
		}
		// Cut where the texture coordinate is a whole number of 16-texel
		// cells past the face's first cell: an integer coordinate, since
		// texScale is a power of two no finer than 1/16.
		cut := int((first + maxTextureSpan/16) * 16 / k)
		x, y := splitQuad(q, ax.axis, cut)
		return append(b.subdivide(x), b.subdivide(y)...)
	}
	return []quad{q}
}

// collectCorners gathers the corners of every face in the tree.
func collectCorners(n *bspNode, out *[][3]int) {
	if n.leaf {
		return
	}
	for _, q := range n.faces {
		w := q.winding()
		*out = append(*out, w[:]...)
	}
	collectCorners(n.front, out)
	collectCorners(n.back, out)
}

// plane returns the index of the axial plane p[axis] = dist. Planes are
// always stored with the positive axis as normal, and faces looking the
// other way use side 1, as qbsp does: engines test axial planes by
// coordinate, so their normals must be exactly +X, +Y or +Z.
func (b *builder) plane(axis, dist int) int32 {
	key := [2]int{axis, dist}
	if i, ok := b.planes[key]; ok {
		return i
	}
	var n Vec3
	n[axis] = 1
	i := int32(len(b.f.Planes))
	b.f.Planes = append(b.f.Planes, Plane{Normal: n, Dist: float32(dist), Type: int32(axis)})
	b.planes[key] = i
	return i
}

// emitNodes writes the hull 0 tree in preorder (the root is node 0, which
// model 0's headnode[0] names) and returns n's child reference. Faces are
// written as their node is, so each node's faces are contiguous.
func (b *builder) emitNodes(n *bspNode, corners [][3]int) (int16, error) {
	f := b.f
	if n.leaf {
		if n.solid {
			return -1, nil // leaf 0, the shared solid leaf
		}
		if len(f.Leafs) > math.MaxInt16 {
			return 0, fmt.Errorf("%w: more than %d leafs", ErrConfig, math.MaxInt16)
		}
		f.Leafs = append(f.Leafs, Leaf{
			Contents: ContentsEmpty,
			VisOfs:   -1, // no visibility data: clients then see every leaf
			Mins:     shorts(n.cell.Min),
			Maxs:     shorts(n.cell.Max),
		})
		b.leafCells = append(b.leafCells, n.cell)
		return int16(-len(f.Leafs)), nil // -(index+1)
	}
	idx := len(f.Nodes)
	if idx > math.MaxInt16 || len(f.Faces)+len(n.faces) > math.MaxUint16 {
		return 0, fmt.Errorf("%w: too many nodes or faces for the format", ErrConfig)
	}
	f.Nodes = append(f.Nodes, Node{
		PlaneNum:  b.plane(n.axis, n.dist),
		Mins:      shorts(n.cell.Min),
		Maxs:      shorts(n.cell.Max),
		FirstFace: uint16(len(f.Faces)),
		NumFaces:  uint16(len(n.faces)),
	})
	for _, q := range n.faces {
		if err := b.emitFace(q, corners); err != nil {
			return 0, err
		}
	}
	front, err := b.emitNodes(n.front, corners)
	if err != nil {
		return 0, err
	}
	back, err := b.emitNodes(n.back, corners)
	if err != nil {
		return 0, err
	}
	f.Nodes[idx].Children = [2]int16{front, back}
	return int16(idx), nil
}

// emitClipNodes writes a clip hull tree in preorder and returns n's child
// reference: a clipnode index, or the contents of a leaf.
func (b *builder) emitClipNodes(n *bspNode) (int16, error) {
	f := b.f
	if n.leaf {
		if n.solid {
			return ContentsSolid, nil
		}
		return ContentsEmpty, nil
	}
	idx := len(f.ClipNodes)
	if idx > math.MaxInt16 {
		return 0, fmt.Errorf("%w: more than %d clipnodes", ErrConfig, math.MaxInt16)
	}
	f.ClipNodes = append(f.ClipNodes, ClipNode{PlaneNum: b.plane(n.axis, n.dist)})
	front, err := b.emitClipNodes(n.front)
	if err != nil {
		return 0, err
	}
	back, err := b.emitClipNodes(n.back)
	if err != nil {
		return 0, err
	}
	f.ClipNodes[idx].Children = [2]int16{front, back}
	return int16(idx), nil
}

// emitFace writes q's vertexes, edges, surfedges and face record. Corners of
// other faces that lie on q's edges become vertexes of q too (T-junctions
// are mended, as qbsp's tjunc pass does), so neighbouring faces share their
// edges exactly and the renderer leaves no cracks between them.
func (b *builder) emitFace(q quad, corners [][3]int) error {
	f := b.f
	w := q.winding()
	var loop [][3]int
	for k := range w {
		p, r := w[k], w[(k+1)%4]
		loop = append(loop, p)
		ax := 0
		for ax < 3 && p[ax] == r[ax] {
			ax++
		}
		var on [][3]int
		for _, c := range corners {
			if onSegment(c, p, r, ax) {
				on = append(on, c)
			}
		}
		// Order from p towards r.
		slices.SortFunc(on, func(x, y [3]int) int {
			if p[ax] < r[ax] {
				return cmp.Compare(x[ax], y[ax])
			}
			return cmp.Compare(y[ax], x[ax])
		})
		loop = append(loop, on...)
	}
	first := len(f.SurfEdges)
	for k, p := range loop {
		se, err := b.edge(b.vertex(p), b.vertex(loop[(k+1)%len(loop)]))
		if err != nil {
			return err
		}
		f.SurfEdges = append(f.SurfEdges, se)
	}
	side := int16(0)
	if q.dir < 0 {
		side = 1
	}
	pn := b.plane(q.axis, q.dist())
	if pn > math.MaxInt16 || len(loop) > math.MaxInt16 {
		return fmt.Errorf("%w: too many planes or edges for the format", ErrConfig)
	}
	f.Faces = append(f.Faces, Face{
		PlaneNum:  int16(pn),
		Side:      side,
		FirstEdge: int32(first),
		NumEdges:  int16(len(loop)),
		TexInfo:   int16(q.axis),
		Styles:    [4]uint8{0, 255, 255, 255}, // style 0: steady light
	})
	b.faceQuads = append(b.faceQuads, q)
	return nil
}

// onSegment reports whether c lies strictly between p and r, which differ
// only along axis ax.
func onSegment(c, p, r [3]int, ax int) bool {
	for a := range 3 {
		if a != ax && c[a] != p[a] {
			return false
		}
	}
	lo, hi := min(p[ax], r[ax]), max(p[ax], r[ax])
	return lo < c[ax] && c[ax] < hi
}

func (b *builder) vertex(p [3]int) int {
	if i, ok := b.vertexes[p]; ok {
		return i
	}
	i := len(b.f.Vertexes)
	b.f.Vertexes = append(b.f.Vertexes, vec(p))
	b.vertexes[p] = i
	return i
}

// edge returns the surfedge for the directed edge from vertex v0 to v1:
// each edge is stored once and the face walking it the other way refers to
// it negated. Edge 0 is never used, because -0 could not say "backwards".
func (b *builder) edge(v0, v1 int) (int32, error) {
	f := b.f
	if len(f.Edges) == 0 {
		f.Edges = append(f.Edges, Edge{})
	}
	if v0 > math.MaxUint16 || v1 > math.MaxUint16 {
		return 0, fmt.Errorf("%w: more than %d vertexes", ErrConfig, math.MaxUint16+1)
	}
	key := [2]int{min(v0, v1), max(v0, v1)}
	if i, ok := b.edges[key]; ok {
		if int(f.Edges[i].V[0]) == v0 {
			return i, nil
		}
		return -i, nil
	}
	i := int32(len(f.Edges))
	f.Edges = append(f.Edges, Edge{V: [2]uint16{uint16(v0), uint16(v1)}})
	b.edges[key] = i
	return i, nil
}

// markSurfaces lists, for each open leaf, the faces on its boundary that
// look into it. Without visibility data the renderer marks every leaf
// visible and draws the faces their marksurfaces name, so a face missing
// here would never be drawn.
func (b *builder) markSurfaces() {
	f := b.f
	for li := 1; li < len(f.Leafs); li++ {
		f.Leafs[li].FirstMarkSurface = uint16(len(f.MarkSurfaces))
		for fi, q := range b.faceQuads {
			if q.touches(b.leafCells[li]) {
				f.MarkSurfaces = append(f.MarkSurfaces, uint16(fi))
			}
		}
		f.Leafs[li].NumMarkSurfaces = uint16(len(f.MarkSurfaces)) - f.Leafs[li].FirstMarkSurface
	}
}

// faceLight is the flat light level of a face by the way it looks: floors
// brightest, ceilings darkest, the two wall directions apart, so the block's
// edges show against the floor and walls without a light pass. GL clients
// double lightmap values (overbright), so 128 shows the texture as it is.
func faceLight(q quad) byte {
	switch {
	case q.axis == 2 && q.dir > 0:
		return 160
	case q.axis == 2:
		return 88
	case q.axis == 0:
		return 128
	default:
		return 108
	}
}

// lighting gives every face its own lightmap of smax*tmax samples (one
// style), sized exactly as the engine will compute it.
func (b *builder) lighting() error {
	f := b.f
	for i := range f.Faces {
		smax, tmax, err := f.LightmapSize(i)
		if err != nil {
			return fmt.Errorf("bsp: internal error: face %d: %v", i, err)
		}
		if smax > MaxLightmapSide || tmax > MaxLightmapSide {
			return fmt.Errorf("bsp: internal error: face %d lightmap %dx%d", i, smax, tmax)
		}
		f.Faces[i].LightOfs = int32(len(f.Lighting))
		level := faceLight(b.faceQuads[i])
		for range smax * tmax {
			f.Lighting = append(f.Lighting, level)
		}
	}
	return nil
}

func vec(p [3]int) Vec3 { return Vec3{float32(p[0]), float32(p[1]), float32(p[2])} }

func shorts(p [3]int) [3]int16 { return [3]int16{int16(p[0]), int16(p[1]), int16(p[2])} }
