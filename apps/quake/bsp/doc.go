// Package bsp makes, reads and checks Quake BSP version 29 maps: the map
// format QuakeWorld (protocol 28) servers and clients load. molt's Quake
// server ships no id Software data, so it generates its own map with
// Generate, serves the bytes to stock clients through the download protocol,
// and moves players with the same clip hulls the clients predict with
// (NewCollision).
//
// # File format
//
// All integers and floats are little-endian; floats are IEEE-754 binary32.
// A file is a header followed by 15 lumps, each a contiguous byte range:
//
//	offset  size  field
//	0       4     version, int32 = 29
//	4       8*15  lumps: {fileofs int32, filelen int32} in the order below
//
//	lump              record                                     bytes
//	0  entities       text, "{ "key" "value" ... }" blocks, NUL end  -
//	1  planes         normal [3]f32, dist f32, type i32             20
//	2  textures       miptex directory (count, offsets, miptex)      -
//	3  vertexes       point [3]f32                                  12
//	4  visibility     run-length PVS bytes (may be empty)            -
//	5  nodes          plane i32, children [2]i16, mins/maxs [3]i16,
//	                  firstface, numfaces u16                       24
//	6  texinfo        vecs [2][4]f32, miptex i32, flags i32         40
//	7  faces          plane i16, side i16, firstedge i32,
//	                  numedges i16, texinfo i16, styles [4]u8,
//	                  lightofs i32                                  20
//	8  lighting       one byte per lightmap sample                   -
//	9  clipnodes      plane i32, children [2]i16                     8
//	10 leafs          contents i32, visofs i32, mins/maxs [3]i16,
//	                  firstmarksurface, nummarksurfaces u16,
//	                  ambient [4]u8                                 28
//	11 marksurfaces   face index u16                                 2
//	12 edges          vertex indices [2]u16                          4
//	13 surfedges      signed edge index i32                          4
//	14 models         mins, maxs, origin [3]f32, headnode [4]i32,
//	                  visleafs, firstface, numfaces i32             64
//
// The layout follows id's bspfile.h (as shipped with the GPL Quake sources,
// and kept by mvdsv and ezquake); names here follow it where they exist so
// the two can be read side by side.
//
// A node child >= 0 is a node index; a negative child c is leaf -(c+1), and
// leaf 0 is the one shared solid leaf. A clipnode child >= 0 is a clipnode
// index; a negative child is a contents value (ContentsEmpty, ContentsSolid,
// ...). A point p is in front of plane i (child 0) when dot(normal, p) - dist
// >= 0, else behind it (child 1); for the axial types 0..2 engines read
// p[type] - dist directly, which is why Validate insists that axial planes
// have a unit positive normal on that axis.
//
// Hull 0 (points) is the node tree, whose leafs carry contents; hulls 1 and
// 2 are clipnode trees built from the solids expanded by the player box
// (-16,-16,-24)..(16,16,32) and the large box (-32,-32,-24)..(32,32,64), so
// that a box's collision reduces to a point test at its origin (see
// Collision).
//
// # Limits
//
// Decode refuses files whose version is not 29, whose lumps leave the file or
// are not whole records, or whose indices point outside their tables; it never
// panics (FuzzDecode). Validate adds the checks an engine would otherwise trip
// over at load or render time: closed face loops, normalized planes, acyclic
// trees, lightmaps of at most MaxLightmapSide x MaxLightmapSide samples
// (ezquake 3.6 refuses larger ones), references inside the lighting lump.
package bsp
