package selftest

import (
	"runtime"
	"sync"
	"time"
)

// checkGoroutines checks that many goroutines can exist at once and that
// channel semantics hold: every message is delivered exactly once, and
// unbuffered, buffered, select and close behave as the spec says. In the VM
// this exercises futex sleeps and wakeups between the runtime's threads
// whenever the scheduler parks and unparks Ms.
func checkGoroutines(t *T) {
	goroutineFanIn(t)
	goroutinePipeline(t)
	channelSemantics(t)
}

// goroutineFanIn starts numGoroutines goroutines that all block on one
// channel, so they are alive together, then releases them at once and
// expects each ID exactly once.
func goroutineFanIn(t *T) {
	const numGoroutines = 10000
	start := time.Now()
	release := make(chan struct{})
	results := make(chan int) // unbuffered: every send is a handoff
	var ready sync.WaitGroup
	ready.Add(numGoroutines)
	for i := range numGoroutines {
		go func() {
			ready.Done()
			<-release
			results <- i
		}()
	}
	ready.Wait()
	// Not a difference from before: goroutines of earlier checks may exit
	// meanwhile.
	if n := runtime.NumGoroutine(); n < numGoroutines {
		t.Errorf("NumGoroutine = %d with %d goroutines parked; want >= %d", n, numGoroutines, numGoroutines)
	}
	spawned := time.Since(start)
	close(release)
	seen := make([]bool, numGoroutines)
	for range numGoroutines {
		id := <-results
		if seen[id] {
			t.Fatalf("goroutine %d delivered twice", id)
		}
		seen[id] = true
	}
	t.Logf("%d goroutines: spawn+park %v, release+collect %v", numGoroutines, spawned, time.Since(start)-spawned)
}

// goroutinePipeline pushes values through generator → square workers →
// sum, mixing buffered and unbuffered stages, and checks the total.
func goroutinePipeline(t *T) {
	const (
		n       = 20000
		workers = 16
	)
	start := time.Now()
	src := make(chan int64, 64)
	squares := make(chan int64) // unbuffered
	go func() {
		for i := int64(1); i <= n; i++ {
			src <- i
		}
		close(src)
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for v := range src {
				squares <- v * v
			}
		})
	}
	go func() { wg.Wait(); close(squares) }()
	var sum, count int64
	for v := range squares {
		sum += v
		count++
	}
	want := int64(n) * (n + 1) * (2*n + 1) / 6
	if count != n || sum != want {
		t.Errorf("pipeline delivered %d values summing to %d; want %d summing to %d", count, sum, n, want)
	}
	t.Logf("pipeline of %d values through %d workers: %v", n, workers, time.Since(start))
}

func channelSemantics(t *T) {
	// Unbuffered: the receive is synchronized before the send completes, so
	// a write made before the receive is visible after the send (the race
	// detector checks the happens-before edge on the host).
	un := make(chan int)
	var shared int
	go func() {
		shared = 7
		<-un
	}()
	un <- 1
	if shared != 7 {
		t.Errorf("unbuffered send completed before the receiver ran")
	}
	if cap(un) != 0 || len(un) != 0 {
		t.Errorf("unbuffered channel cap,len = %d,%d", cap(un), len(un))
	}

	// Buffered: sends up to cap do not block; one more would.
	buf := make(chan int, 3)
	for i := range 3 {
		buf <- i
	}
	select {
	case buf <- 99:
		t.Errorf("send to a full buffered channel did not block")
	default:
	}
	if len(buf) != 3 {
		t.Errorf("len(buf) = %d; want 3", len(buf))
	}
	// Close: buffered values drain in order, then zero, false.
	close(buf)
	for i := range 3 {
		if v, ok := <-buf; v != i || !ok {
			t.Errorf("receive %d from closed buffered channel = %d, %v; want %d, true", i, v, ok, i)
		}
	}
	if v, ok := <-buf; v != 0 || ok {
		t.Errorf("receive from drained closed channel = %d, %v; want 0, false", v, ok)
	}
	if !panics(func() { buf <- 1 }) {
		t.Errorf("send on a closed channel did not panic")
	}
	if !panics(func() { close(buf) }) {
		t.Errorf("closing a closed channel did not panic")
	}

	// Select: a nil channel is never chosen, and among ready cases the
	// choice is pseudo-random, so both must come up.
	a, b := make(chan int, 1), make(chan int, 1)
	var never chan int
	const rounds = 1000
	var picks [2]int
	for range rounds {
		a <- 0
		b <- 1
		select {
		case v := <-a:
			picks[v]++
			<-b
		case v := <-b:
			picks[v]++
			<-a
		case <-never:
			t.Fatalf("select chose a nil channel")
		}
	}
	if picks[0] < rounds/10 || picks[1] < rounds/10 {
		t.Errorf("select between two ready channels picked %v of %d; want both >= %d", picks, rounds, rounds/10)
	}
	// A select with a timeout on an idle channel takes the timeout.
	select {
	case <-never:
		t.Errorf("received from a nil channel")
	case <-time.After(time.Millisecond):
	}
}

// panics reports whether f panics.
func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}
