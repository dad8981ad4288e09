package selftest

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Why this check is shaped the way it is:
//
// In the VM the runtime runs with GOMAXPROCS=1 and GODEBUG=asyncpreemptoff=1,
// because molt does not deliver signals, so the runtime's SIGURG-based
// asynchronous preemption cannot work. A running goroutine then gives up
// its P only cooperatively: sysmon (on its own M, which the kernel's timer
// tick must schedule) notices a goroutine has run for over 10 ms and sets
// its stack guard to stackPreempt, and the goroutine yields at the next
// function prologue that has a stack check. A loop calling a non-inlined,
// non-leaf function passes such a prologue every iteration, so it must
// yield; this check verifies that the kernel runs sysmon often enough for
// that to happen.
//
// A loop with no calls, or calling only small leaf functions (which the
// compiler makes NOSPLIT, with no stack check), would never yield and would
// starve every other goroutine, including the runner's timeout timer, and
// stall GC stop-the-world. That is a known limitation until molt delivers
// signals, so it is deliberately not tested: it would wedge the VM.
//
// On a host, the check sets GOMAXPROCS=1 for its duration to mimic the VM.
// (Asynchronous preemption stays on there, so the host run is a weaker test.)

const (
	preemptNap    = 20 * time.Millisecond
	preemptWakes  = 5
	preemptBudget = 10 * time.Second // 100× the 100 ms the wakes need
)

// checkPreemption runs a CPU-bound spinner alongside a goroutine that
// sleeps preemptNap repeatedly, and requires preemptWakes wakeups within
// preemptBudget.
func checkPreemption(t *T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	var (
		stop    atomic.Bool
		spins   atomic.Int64
		spinEnd = make(chan struct{})
	)
	start := time.Now()
	go func() {
		defer close(spinEnd)
		var n int64
		acc := uint64(1)
		for !stop.Load() {
			acc = spinStep(acc)
			n++
			// Bound the spin by itself too, so a starved sleeper cannot
			// leave it running forever.
			if n%4096 == 0 && time.Since(start) > preemptBudget {
				break
			}
		}
		spins.Store(n)
		spinSink.Store(acc)
	}()

	var wakes []time.Duration // latency of each wake beyond preemptNap
	for len(wakes) < preemptWakes && time.Since(start) < preemptBudget {
		s := time.Now()
		time.Sleep(preemptNap)
		wakes = append(wakes, time.Since(s)-preemptNap)
	}
	elapsed := time.Since(start)
	stop.Store(true)
	<-spinEnd

	var worst time.Duration
	for _, w := range wakes {
		worst = max(worst, w)
	}
	t.Logf("sleeper woke %d times in %v beside a spinner (%d iterations); worst wake latency %v",
		len(wakes), elapsed, spins.Load(), worst)
	if len(wakes) < preemptWakes {
		t.Errorf("sleeper woke %d times in %v; want %d: the spinning goroutine starved it", len(wakes), elapsed, preemptWakes)
	}
	if spins.Load() == 0 {
		t.Errorf("spinner never ran")
	}
}

// spinSink keeps the spinner's result alive so its loop is not dead code.
var spinSink atomic.Uint64

// spinStep is the spinner's loop body. It must not be inlined and must not
// be a leaf: calling spinMix gives it a frame and a stack-check prologue,
// which is where cooperative preemption happens.
//
//go:noinline
func spinStep(x uint64) uint64 {
	return spinMix(x) + 1
}

//go:noinline
func spinMix(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}
