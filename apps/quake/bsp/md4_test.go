package bsp

import (
	"encoding/hex"
	"testing"
)

// TestMD4RFC1320 checks md4Sum against the test suite of RFC 1320 A.5. The
// 62- and 80-byte messages need a second padding block, so both padding
// paths are covered.
func TestMD4RFC1320(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "31d6cfe0d16ae931b73c59d7e0c089c0"},
		{"a", "bde52cb31de33e46245e05fbdbd6fb24"},
		{"abc", "a448017aaf21d8525fc10ae87aa6729d"},
		{"message digest", "d9130a8164549fe818874806e1c7014b"},
		{"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"},
		{"12345678901234567890123456789012345678901234567890123456789012345678901234567890", "e33b4ddc9c38f2199c3e7b164fcc0536"},
	} {
		got := md4Sum([]byte(tc.in))
		if h := hex.EncodeToString(got[:]); h != tc.want {
			t.Errorf("md4Sum(%q) = %s; want %s", tc.in, h, tc.want)
		}
	}
}

// TestMD4BlockBoundaries: messages around the 56- and 64-byte boundaries hash
// the same whether the input slice has spare capacity or not (the padding
// must not write into the caller's array).
func TestMD4BlockBoundaries(t *testing.T) {
	for n := 50; n <= 130; n++ {
		buf := make([]byte, n, n+64)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		spare := buf[:n+64]
		for i := n; i < len(spare); i++ {
			spare[i] = 0xaa
		}
		a := md4Sum(buf)
		b := md4Sum(append([]byte(nil), buf...))
		if a != b {
			t.Fatalf("md4Sum of %d bytes depends on the slice's capacity", n)
		}
		for i := n; i < len(spare); i++ {
			if spare[i] != 0xaa {
				t.Fatalf("md4Sum of %d bytes wrote past the input", n)
			}
		}
	}
}
