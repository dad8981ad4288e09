package bsp

// Version is the only BSP version this package reads and writes: Quake's
// and QuakeWorld's (BSPVERSION in bspfile.h).
const Version = 29

// Lump indices, in header order (LUMP_* in bspfile.h).
const (
	LumpEntities = iota
	LumpPlanes
	LumpTextures
	LumpVertexes
	LumpVisibility
	LumpNodes
	LumpTexInfo
	LumpFaces
	LumpLighting
	LumpClipNodes
	LumpLeafs
	LumpMarkSurfaces
	LumpEdges
	LumpSurfEdges
	LumpModels
	NumLumps // HEADER_LUMPS
)

// lumpNames names lumps in error messages.
var lumpNames = [NumLumps]string{
	"entities", "planes", "textures", "vertexes", "visibility", "nodes",
	"texinfo", "faces", "lighting", "clipnodes", "leafs", "marksurfaces",
	"edges", "surfedges", "models",
}

// Record sizes in bytes of the fixed-size lumps; 0 for the byte lumps.
var recordSize = [NumLumps]int{
	LumpPlanes:       20,
	LumpVertexes:     12,
	LumpNodes:        24,
	LumpTexInfo:      40,
	LumpFaces:        20,
	LumpClipNodes:    8,
	LumpLeafs:        28,
	LumpMarkSurfaces: 2,
	LumpEdges:        4,
	LumpSurfEdges:    4,
	LumpModels:       64,
}

// headerSize is the version word plus the 15 lump directory entries.
const headerSize = 4 + NumLumps*8

// Leaf and clipnode contents (CONTENTS_* in bspfile.h). Quake 1 defines
// these six; later engines' extra values (clip, currents) are not accepted.
const (
	ContentsEmpty = -1
	ContentsSolid = -2
	ContentsWater = -3
	ContentsSlime = -4
	ContentsLava  = -5
	ContentsSky   = -6
)

// Plane types (PLANE_* in bspfile.h): 0..2 are planes whose normal is the
// positive X, Y or Z axis, 3..5 other planes by their dominant axis.
const (
	PlaneX = iota
	PlaneY
	PlaneZ
	PlaneAnyX
	PlaneAnyY
	PlaneAnyZ
)

// TexSpecial marks texinfo whose faces have no lightmap (sky, liquids): the
// engine neither computes their extents limit nor reads their samples.
const TexSpecial = 1

// MipLevels is the number of mip levels stored for each texture.
const MipLevels = 4

// maxMipTexName is the size of a miptex's NUL-padded name field.
const maxMipTexName = 16

// mipTexHeaderSize is a miptex's name, width, height and four offsets.
const mipTexHeaderSize = maxMipTexName + 4 + 4 + 4*MipLevels

// MaxLightStyles is the number of light style slots per face (MAXLIGHTMAPS);
// a slot of 255 ends the list.
const MaxLightStyles = 4

// Vec3 is a point or direction in map units (float32, as in the file).
type Vec3 [3]float32

// Plane is a dplane_t.
type Plane struct {
	Normal Vec3
	Dist   float32
	Type   int32
}

// MipTex is one texture of the textures lump: an 8-bit paletted image and
// its three reduced mip levels. Pixels[i] is (Width>>i)*(Height>>i) bytes.
type MipTex struct {
	Name          string
	Width, Height int
	Pixels        [MipLevels][]byte
}

// Node is a dnode_t: an interior node of the hull 0 tree. The faces
// FirstFace..FirstFace+NumFaces-1 lie on its plane.
type Node struct {
	PlaneNum            int32
	Children            [2]int16
	Mins, Maxs          [3]int16
	FirstFace, NumFaces uint16
}

// TexInfo is a texinfo_t: texture coordinates s and t of a point p are
// dot(Vecs[i][:3], p) + Vecs[i][3].
type TexInfo struct {
	Vecs   [2][4]float32
	MipTex int32
	Flags  int32
}

// Face is a dface_t: a convex polygon given by NumEdges surfedges starting at
// FirstEdge. Side 1 means the face looks the opposite way of its plane.
type Face struct {
	PlaneNum  int16
	Side      int16
	FirstEdge int32
	NumEdges  int16
	TexInfo   int16
	Styles    [MaxLightStyles]uint8
	LightOfs  int32
}

// ClipNode is a dclipnode_t: a node of a collision hull (1 or 2).
type ClipNode struct {
	PlaneNum int32
	Children [2]int16
}

// Leaf is a dleaf_t: a convex region of hull 0. MarkSurfaces
// FirstMarkSurface.. list the faces on its boundary, which is how the
// renderer finds the faces of the leafs it sees.
type Leaf struct {
	Contents                          int32
	VisOfs                            int32
	Mins, Maxs                        [3]int16
	FirstMarkSurface, NumMarkSurfaces uint16
	Ambient                           [4]uint8
}

// Edge is a dedge_t: two vertex indices.
type Edge struct {
	V [2]uint16
}

// Model is a dmodel_t. Model 0 is the world; HeadNode[0] is its root in the
// nodes lump and HeadNode[1], HeadNode[2] its roots in the clipnodes lump.
type Model struct {
	Mins, Maxs, Origin  Vec3
	HeadNode            [4]int32
	VisLeafs            int32
	FirstFace, NumFaces int32
}

// File is a decoded BSP file: every lump as Go values. Encode writes it back;
// Decode(Encode(f)) reproduces f.
type File struct {
	Entities     []byte // entity text, normally ending in one NUL
	Planes       []Plane
	Textures     []*MipTex // nil entries are missing textures (offset -1)
	Vertexes     []Vec3
	Visibility   []byte
	Nodes        []Node
	TexInfo      []TexInfo
	Faces        []Face
	Lighting     []byte
	ClipNodes    []ClipNode
	Leafs        []Leaf
	MarkSurfaces []uint16
	Edges        []Edge
	SurfEdges    []int32
	Models       []Model
}
