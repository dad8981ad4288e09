package selftest

import (
	"time"
)

// Timer bounds. Timing under QEMU TCG is inflated and noisy, so the check
// reports drift (measured minus expected) and fails only on gross errors:
// waking early, a clock going backwards, or a wait longer than
// timerSlowFactor times the requested duration (a lost wakeup or a clock
// running far too slow).
const (
	timerShort      = 10 * time.Millisecond
	timerSlowFactor = 50
	monotonicReads  = 100000
)

// checkTimers checks time.Sleep, time.After, Timer Stop/Reset and Ticker
// against the monotonic clock, and that the clock never goes backwards. In
// the VM these depend on the kernel's clock source (clock_gettime), its
// timed futex waits and epoll_pwait timeouts used by the runtime's timers.
func checkTimers(t *T) {
	timerSleep(t)
	timerAfter(t)
	timerStopReset(t)
	timerTicker(t)
	timerMonotonic(t)
}

// within checks one measured wait against want and returns its drift.
func within(t *T, what string, got, want time.Duration) time.Duration {
	switch {
	case got < 0:
		t.Errorf("%s: monotonic time went backwards (elapsed %v)", what, got)
	case got < want:
		t.Errorf("%s took %v; want >= %v (woke early)", what, got, want)
	case got > timerSlowFactor*want:
		t.Errorf("%s took %v; want <= %v (%d× the duration)", what, got, timerSlowFactor*want, timerSlowFactor)
	}
	return got - want
}

func timerSleep(t *T) {
	const n = 10
	var total, worst time.Duration
	for range n {
		start := time.Now()
		time.Sleep(timerShort)
		d := within(t, "time.Sleep(10ms)", time.Since(start), timerShort)
		total += d
		worst = max(worst, d)
	}
	t.Logf("time.Sleep(%v) ×%d: mean drift %v, worst %v", timerShort, n, total/n, worst)

	start := time.Now()
	time.Sleep(0)
	time.Sleep(-time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("time.Sleep(0) and Sleep(-1s) took %v; want immediate", d)
	}
}

func timerAfter(t *T) {
	start := time.Now()
	<-time.After(timerShort)
	t.Logf("time.After(%v): drift %v", timerShort, within(t, "time.After(10ms)", time.Since(start), timerShort))

	// AfterFunc timers set out of order each fire no earlier than their
	// own deadline. (Their callbacks run in new goroutines, so the order
	// the callbacks run in is up to the scheduler and is not checked.)
	type fired struct {
		i       int
		elapsed time.Duration
	}
	ch := make(chan fired, 3)
	start = time.Now()
	for _, i := range []int{3, 1, 2} {
		time.AfterFunc(time.Duration(i)*timerShort, func() { ch <- fired{i, time.Since(start)} })
	}
	for range 3 {
		f := <-ch
		within(t, "time.AfterFunc", f.elapsed, time.Duration(f.i)*timerShort)
	}
}

func timerStopReset(t *T) {
	// A stopped timer reports it was active and never delivers (Go 1.23+
	// semantics: no stale value after Stop).
	tm := time.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Errorf("Stop of a pending 1h timer returned false")
	}
	select {
	case <-tm.C:
		t.Errorf("stopped timer delivered a value")
	case <-time.After(3 * timerShort):
	}
	// Reset re-arms it; it fires no earlier than the new duration.
	start := time.Now()
	if tm.Reset(timerShort) {
		t.Errorf("Reset of a stopped timer returned true")
	}
	<-tm.C
	t.Logf("Timer.Reset(%v): drift %v", timerShort, within(t, "Timer after Reset(10ms)", time.Since(start), timerShort))

	// Reset of a pending timer moves its deadline later.
	tm = time.NewTimer(timerShort)
	start = time.Now()
	if !tm.Reset(5 * timerShort) {
		t.Errorf("Reset of a pending timer returned false")
	}
	<-tm.C
	within(t, "Timer reset from 10ms to 50ms", time.Since(start), 5*timerShort)
}

func timerTicker(t *T) {
	const ticks = 10
	start := time.Now()
	tk := time.NewTicker(timerShort)
	for range ticks {
		<-tk.C
	}
	// Ticks are due at start + k·period; a late receiver may lose ticks
	// but never gets one early, so n ticks take at least n periods.
	d := within(t, "10 ticks of a 10ms Ticker", time.Since(start), ticks*timerShort)
	t.Logf("Ticker(%v) ×%d: drift %v", timerShort, ticks, d)

	tk.Reset(2 * timerShort)
	start = time.Now()
	<-tk.C
	within(t, "Ticker tick after Reset(20ms)", time.Since(start), 2*timerShort)

	tk.Stop()
	select {
	case <-tk.C:
		t.Errorf("stopped Ticker delivered a tick")
	case <-time.After(5 * timerShort):
	}
}

// timerMonotonic reads the clock monotonicReads times and fails on any
// decrease, which would break every deadline in the runtime.
func timerMonotonic(t *T) {
	start := time.Now()
	prev := start
	var backwards int
	var maxStep time.Duration
	for range monotonicReads {
		now := time.Now()
		step := now.Sub(prev) // uses the monotonic readings
		if step < 0 {
			if backwards == 0 {
				t.Errorf("monotonic clock went backwards by %v", -step)
			}
			backwards++
		}
		maxStep = max(maxStep, step)
		prev = now
	}
	total := prev.Sub(start)
	if backwards > 0 {
		t.Errorf("monotonic clock went backwards %d times in %d reads", backwards, monotonicReads)
	}
	if total <= 0 {
		t.Errorf("monotonic clock did not advance over %d reads", monotonicReads)
	}
	t.Logf("%d clock reads in %v (%v per read), largest step %v",
		monotonicReads, total, total/monotonicReads, maxStep)
}
