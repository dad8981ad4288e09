package selftest

import (
	"bytes"
	"crypto/rand"
	"math"
	"math/bits"
	"time"
)

const randSize = 1 << 20

// Bounds on the byte-frequency chi-square statistic of randSize random
// bytes (255 degrees of freedom: mean 255, standard deviation 22.6). A
// uniform source falls outside them with probability below 1e-7 (by the
// Wilson-Hilferty approximation, 400 is 5.5 and 120 is 7.5 standard
// deviations out), while a constant or badly skewed source lands far above,
// and output that is too even, such as a byte counter, lands below.
const (
	randChiMin = 120
	randChiMax = 400
)

// checkCryptoRand checks crypto/rand, which in the VM is served by the
// kernel's getrandom: it must fill the whole buffer with distinct, plausibly
// uniform bytes. (Since Go 1.24 rand.Read crashes the program rather than
// return an error, so a broken getrandom ends the run instead of failing
// here.)
func checkCryptoRand(t *T) {
	a, b := make([]byte, randSize), make([]byte, randSize)
	start := time.Now()
	if _, err := rand.Read(a); err != nil {
		t.Fatalf("rand.Read(1 MiB): %v", err)
	}
	took := time.Since(start)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("second rand.Read(1 MiB): %v", err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two 1 MiB reads returned the same bytes")
	}

	// A getrandom that fills only part of the buffer leaves zero pages.
	zero := make([]byte, 4096)
	for off := 0; off < randSize; off += len(zero) {
		if bytes.Equal(a[off:off+len(zero)], zero) {
			t.Errorf("4 KiB page at offset %#x of the random buffer is all zero", off)
			break
		}
	}

	var counts [256]int
	ones := 0
	for _, c := range a {
		counts[c]++
		ones += bits.OnesCount8(c)
	}
	expected := float64(randSize) / 256
	chi := 0.0
	for _, n := range counts {
		d := float64(n) - expected
		chi += d * d / expected
	}
	if chi < randChiMin || chi > randChiMax {
		t.Errorf("byte-frequency chi-square = %.1f; want within [%d, %d] (255 degrees of freedom)", chi, randChiMin, randChiMax)
	}
	// Bit balance: 8 Mi bits, standard deviation 0.00017 of a fraction.
	frac := float64(ones) / (8 * randSize)
	if math.Abs(frac-0.5) > 0.002 {
		t.Errorf("fraction of one bits = %.5f; want 0.5 ± 0.002", frac)
	}
	t.Logf("1 MiB in %v; chi-square %.1f (255 dof), one bits %.5f", took, chi, frac)

	// Small reads go through the same path; none may be left unfilled.
	seen := make(map[[16]byte]bool)
	for range 64 {
		var k [16]byte
		rand.Read(k[:])
		if seen[k] {
			t.Errorf("16-byte random key repeated: %x", k)
		}
		seen[k] = true
	}
	if s := rand.Text(); len(s) != 26 {
		t.Errorf("rand.Text() = %q; want 26 characters", s)
	}
}
