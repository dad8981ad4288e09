package image

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// TestMutations runs checkVerify (the fuzz target's body) over random
// mutations of the valid seeds, re-signed: a fixed-seed stand-in for the
// fuzzer that runs in every `go test`.
func TestMutations(t *testing.T) {
	seeds := fuzzSeeds(t)
	rng := rand.New(rand.NewPCG(1, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	var slowest time.Duration
	for _, name := range []string{"valid", "valid-32bitpvh", "valid-formats"} {
		base := seeds[name]
		for i := 0; i < n; i++ {
			b := bytes.Clone(base)
			for k := rng.IntN(4) + 1; k > 0; k-- {
				switch rng.IntN(3) {
				case 0:
					b[rng.IntN(len(b))] = byte(rng.Uint32())
				case 1:
					b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
				case 2:
					b = b[:rng.IntN(len(b))+1]
				}
			}
			start := time.Now()
			checkVerify(t, resign(b, testKey))
			slowest = max(slowest, time.Since(start))
		}
	}
	t.Logf("slowest input: %v", slowest)
}
