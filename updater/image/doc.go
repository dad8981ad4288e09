// Package image is molt's signed image bundle: the format `molt build`
// writes and `molt push` sends, and the checks the running kernel makes
// before it lets an image replace it. docs/images.md specifies the format
// byte by byte and lists the checks; this comment is the summary.
//
// A bundle is a header, the post-linked ELF, and an ed25519 signature over
// everything before it:
//
//	0x00  magic "MOLTIMAG"      8 bytes
//	0x08  format version        uint16 (FormatVersion)
//	0x0a  arch                  uint16 (ELF machine: 62, EM_X86_64)
//	0x0c  flags                 uint32 (zero)
//	0x10  ELF length            uint64
//	0x18  build ID              32 bytes (the ELF's, as stamped by the post-link step)
//	0x38  key ID                8 bytes (SHA-256 of the signing public key, first 8 bytes)
//	0x40  version length        uint16 (at most MaxVersionLen)
//	0x42  reserved              6 bytes (zero)
//	0x48  version string, zero padding to a multiple of 8
//	      ELF bytes
//	      ed25519 signature     64 bytes, over every byte before it
//
// Sign builds a bundle from a post-linked ELF (it refuses an ELF that
// Verify would refuse for what it contains). Verify checks a bundle against
// the keys the kernel trusts (TrustedKeys: stamped by molt build with -X)
// and the running kernel's Limits, parsing the ELF only once the signature
// is good, and returns the loadable segments (aliasing the bundle), the PVH
// entry, the build ID, the version and the handoff formats the image reads.
// Every refusal wraps one sentinel (ErrSignature, ErrArch, ...). Neither
// function panics on any input, and Verify's allocations are bounded by a
// constant (MaxSegments), not by sizes the input claims.
//
// The package is pure Go and runs in the kernel and on the host.
package image
