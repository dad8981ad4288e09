package linuxguest

import (
	"errors"
	"runtime"
	"sort"
	"time"
)

// HostTSCkHz measures the host's TSC frequency in kHz against the
// monotonic clock. It is what the Linux guest is told with
// tsc_early_khz=: QEMU's TCG reads the host TSC for the guest's RDTSC,
// and KVM passes it through unscaled. The figure /proc/cpuinfo calls
// "cpu MHz" is the current core clock on hosts with frequency scaling,
// not the TSC rate, and the kernel's own calibration is only in dmesg.
func HostTSCkHz() (int, error) {
	if !haveTSC {
		return 0, errors.New("no TSC on " + runtime.GOARCH)
	}
	var khz []float64
	for i := 0; i < 3; i++ {
		t0, c0 := time.Now(), rdtsc()
		time.Sleep(20 * time.Millisecond)
		c1, t1 := rdtsc(), time.Now()
		if c1 <= c0 {
			return 0, errors.New("TSC did not advance")
		}
		khz = append(khz, float64(c1-c0)/float64(t1.Sub(t0).Nanoseconds())*1e6)
	}
	sort.Float64s(khz)
	return int(khz[1] + 0.5), nil
}
