package kernel

// getrandom. crypto/rand treats a failure as fatal (Go 1.24+), so the
// kernel answers from RDRAND (RDSEED where RDRAND is missing) after a CPUID
// check at boot. A CPU with neither gets a TSC-seeded xorshift generator and
// a loud warning: good enough for hash seeds, not for keys.

var rng struct {
	rdrand, rdseed bool
	state          uint64
	warned         bool
}

//go:nosplit
func randomInit() {
	_, _, c, _ := cpuid(1, 0)
	rng.rdrand = c&(1<<30) != 0
	if max, _, _, _ := cpuid(0, 0); max >= 7 {
		_, b, _, _ := cpuid(7, 0)
		rng.rdseed = b&(1<<18) != 0
	}
	rng.state = rdtsc() | 1
}

//go:nosplit
func random64() uint64 {
	for try := 0; try < 10; try++ {
		if rng.rdrand {
			if v, ok := rdrand(); ok {
				return v
			}
		} else if rng.rdseed {
			if v, ok := rdseed(); ok {
				return v
			}
		}
	}
	if !rng.warned {
		rng.warned = true
		kerr("warning: no hardware random number generator; getrandom is NOT cryptographically secure\n")
	}
	rng.state ^= rdtsc()
	rng.state ^= rng.state << 13
	rng.state ^= rng.state >> 7
	rng.state ^= rng.state << 17
	return rng.state
}

//go:nosplit
func getrandom(buf, n uintptr) uint64 {
	if n > 1<<25 {
		n = 1 << 25 // Linux returns at most 32 MiB per call
	}
	for i := uintptr(0); i < n; i += 8 {
		v := random64()
		for j := uintptr(0); j < 8 && i+j < n; j++ {
			*u8(buf + i + j) = byte(v >> (8 * j))
		}
	}
	return uint64(n)
}
