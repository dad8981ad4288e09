package bsp

import (
	"encoding/binary"
	"math/bits"
)

// md4Sum returns the MD4 digest of data (RFC 1320).
//
// QuakeWorld checksums maps with MD4 (Com_BlockChecksum). Go's standard
// library has no MD4; golang.org/x/crypto/md4 does, but the module graph
// already selects x/crypto v0.49.0 through gVisor, so pinning the older
// release would downgrade (in fact drop) gVisor, and MD4 is 60 lines of a
// fixed, fully specified algorithm checked here against the RFC's test
// suite. Not for security: MD4 is broken, and QuakeWorld uses it only to
// tell whether two map files are the same.
func md4Sum(data []byte) [16]byte {
	s := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	// Padding (RFC 1320 3.1-3.2): a 1 bit, zeros up to 56 mod 64 bytes, then
	// the message length in bits as a little-endian u64.
	n := len(data)
	tail := make([]byte, 0, 128)
	tail = append(tail, data[n&^63:]...)
	tail = append(tail, 0x80)
	for len(tail)%64 != 56 {
		tail = append(tail, 0)
	}
	tail = binary.LittleEndian.AppendUint64(tail, uint64(n)<<3)
	for b := data[:n&^63]; len(b) > 0; b = b[64:] {
		md4Block(&s, b[:64])
	}
	for b := tail; len(b) > 0; b = b[64:] {
		md4Block(&s, b[:64])
	}
	var out [16]byte
	for i, v := range s {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return out
}

// md4Shifts are the per-round rotation amounts (RFC 1320 3.4).
var md4Shifts = [3][4]int{{3, 7, 11, 19}, {3, 5, 9, 13}, {3, 9, 11, 15}}

// md4Round3Order is the word order of round 3 (bit-reversed 0..15).
var md4Round3Order = [16]int{0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15}

// md4Block processes one 64-byte block (RFC 1320 3.4).
func md4Block(s *[4]uint32, block []byte) {
	var x [16]uint32
	for i := range x {
		x[i] = binary.LittleEndian.Uint32(block[4*i:])
	}
	a, b, c, d := s[0], s[1], s[2], s[3]
	// Each step updates one of a, d, c, b in turn; rotating the roles of
	// the four registers after each step keeps the step function single.
	step := func(f func(x, y, z uint32) uint32, k int, add uint32, shift int) {
		a = bits.RotateLeft32(a+f(b, c, d)+x[k]+add, shift)
		a, b, c, d = d, a, b, c
	}
	F := func(x, y, z uint32) uint32 { return x&y | ^x&z }
	G := func(x, y, z uint32) uint32 { return x&y | x&z | y&z }
	H := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	for i := range 16 {
		step(F, i, 0, md4Shifts[0][i%4])
	}
	for i := range 16 {
		step(G, i%4*4+i/4, 0x5a827999, md4Shifts[1][i%4])
	}
	for i := range 16 {
		step(H, md4Round3Order[i], 0x6ed9eba1, md4Shifts[2][i%4])
	}
	s[0] += a
	s[1] += b
	s[2] += c
	s[3] += d
}
