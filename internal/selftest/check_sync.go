package selftest

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// checkSync checks the sync primitives under contention. In the VM their
// slow paths park goroutines on runtime semaphores and, with more than one
// M, on futexes, so lost wakeups in the kernel show up as hangs (caught by
// the runner's timeout) and lost updates as wrong counts.
func checkSync(t *T) {
	start := time.Now()
	syncMutex(t)
	syncRWMutex(t)
	syncOnce(t)
	syncCond(t)
	syncAtomic(t)
	t.Logf("all sync sub-checks took %v", time.Since(start))
}

const (
	syncWorkers = 8
	syncIters   = 5000
)

func syncMutex(t *T) {
	var mu sync.Mutex
	counter := 0
	var wg sync.WaitGroup
	for range syncWorkers {
		wg.Go(func() {
			for range syncIters {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if want := syncWorkers * syncIters; counter != want {
		t.Errorf("Mutex-guarded counter = %d; want %d", counter, want)
	}
	if !mu.TryLock() {
		t.Errorf("TryLock on a free Mutex failed")
	} else if mu.TryLock() {
		t.Errorf("TryLock on a held Mutex succeeded")
	}
}

// syncRWMutex has writers keep a == b as an invariant that only holds
// outside the write lock, and readers check it under the read lock.
func syncRWMutex(t *T) {
	var (
		mu    sync.RWMutex
		a, b  int
		torn  atomic.Int64
		reads atomic.Int64
		wg    sync.WaitGroup
	)
	for range syncWorkers / 2 {
		wg.Go(func() {
			for range syncIters / 10 {
				mu.Lock()
				a++
				b++
				mu.Unlock()
			}
		})
	}
	for range syncWorkers / 2 {
		wg.Go(func() {
			// The RLock/RUnlock fast paths inline to atomics, so this loop
			// has no preemption point of its own: without the Gosched it
			// would starve the writers in the VM (see check_preempt.go).
			for range syncIters / 5 {
				mu.RLock()
				if a != b {
					torn.Add(1)
				}
				mu.RUnlock()
				reads.Add(1)
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	if torn.Load() != 0 {
		t.Errorf("RWMutex readers saw a torn update %d times", torn.Load())
	}
	if want := syncWorkers / 2 * syncIters / 10; a != want || b != want {
		t.Errorf("RWMutex counters = %d, %d; want %d", a, b, want)
	}
	t.Logf("RWMutex: %d writes, %d reads", a, reads.Load())
}

func syncOnce(t *T) {
	var once sync.Once
	var calls atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { once.Do(func() { calls.Add(1); time.Sleep(time.Millisecond) }) })
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("sync.Once ran its function %d times; want 1", calls.Load())
	}
	v := sync.OnceValue(func() int { calls.Add(1); return 42 })
	if v() != 42 || v() != 42 || calls.Load() != 2 {
		t.Errorf("sync.OnceValue: calls = %d; want 2", calls.Load())
	}
}

// syncCond has waiters wait for a generation number; Signal must wake one
// and Broadcast the rest.
func syncCond(t *T) {
	const waiters = 20
	var mu sync.Mutex
	// Two Conds on one Mutex: waiters announce themselves on arrived, so
	// that only this function's Signal and Broadcast wake cond's waiters.
	cond, arrived := sync.NewCond(&mu), sync.NewCond(&mu)
	gen, waiting := 0, 0
	woke := make(chan int, waiters)
	for range waiters {
		go func() {
			mu.Lock()
			waiting++
			arrived.Signal()
			for gen == 0 {
				cond.Wait()
			}
			g := gen
			mu.Unlock()
			woke <- g
		}()
	}
	mu.Lock()
	for waiting < waiters {
		arrived.Wait()
	}
	gen = 1
	cond.Signal()
	mu.Unlock()
	select {
	case g := <-woke:
		if g != 1 {
			t.Errorf("Cond waiter woke with generation %d; want 1", g)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no Cond waiter woke after Signal")
	}
	// Go's Cond has no spurious wakeups: Signal wakes exactly one.
	woken := 1
	select {
	case <-woke:
		t.Errorf("Signal woke more than one Cond waiter")
		woken++
	case <-time.After(20 * time.Millisecond):
	}
	mu.Lock()
	cond.Broadcast()
	mu.Unlock()
	for ; woken < waiters; woken++ {
		select {
		case <-woke:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d Cond waiters woke after Broadcast", woken, waiters)
		}
	}
}

func syncAtomic(t *T) {
	var (
		add  atomic.Int64
		cas  atomic.Uint32
		max  atomic.Int64
		wg   sync.WaitGroup
		swap atomic.Pointer[int]
	)
	for w := range syncWorkers {
		wg.Go(func() {
			for i := range syncIters {
				add.Add(2)
				for { // a CAS loop: increments must not be lost
					old := cas.Load()
					if cas.CompareAndSwap(old, old+1) {
						break
					}
				}
				v := int64(w*syncIters + i)
				for {
					old := max.Load()
					if v <= old || max.CompareAndSwap(old, v) {
						break
					}
				}
			}
			p := new(int)
			*p = w
			swap.Store(p)
		})
	}
	wg.Wait()
	total := syncWorkers * syncIters
	if add.Load() != int64(2*total) {
		t.Errorf("atomic Add counter = %d; want %d", add.Load(), 2*total)
	}
	if cas.Load() != uint32(total) {
		t.Errorf("atomic CAS counter = %d; want %d", cas.Load(), total)
	}
	if max.Load() != int64(total-1) {
		t.Errorf("atomic max = %d; want %d", max.Load(), total-1)
	}
	if p := swap.Load(); p == nil || *p < 0 || *p >= syncWorkers {
		t.Errorf("atomic.Pointer holds %v", p)
	}
}
