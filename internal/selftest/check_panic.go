package selftest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// checkPanicRecover checks panics raised by Go code itself (explicit
// panic, and the runtime errors the compiler turns into calls such as
// runtime.panicIndex): they unwind deferred calls and are recovered, in
// the check's goroutine and in others. These need no kernel support beyond
// a working runtime, so they run in the VM.
//
// Integer division by zero belongs here too: on amd64 the compiler emits an
// explicit test and a call to runtime.panicdivide before IDIV (and a fixup
// for MinInt/-1), so it never raises the #DE hardware exception. Nil pointer
// dereferences are different; see checkNilDeref.
func checkPanicRecover(t *T) {
	var zero int
	var nilMap map[string]int
	idx := 5
	cases := []struct {
		name string
		f    func()
		want string // substring of the recovered value's message
		rt   bool   // whether the value must be a runtime.Error
	}{
		{"explicit panic", func() { panic("boom") }, "boom", false},
		{"panic(error)", func() { panic(fmt.Errorf("wrapped: %w", errSentinel)) }, "wrapped: sentinel", false},
		{"index out of range", func() { _ = []int{1, 2, 3}[idx] }, "index out of range [5] with length 3", true},
		{"slice bounds", func() { s := []int{1}; _ = s[idx:] }, "slice bounds out of range", true},
		{"nil map write", func() { nilMap["x"] = 1 }, "assignment to entry in nil map", true},
		{"integer divide by zero", func() { _ = idx / zero }, "integer divide by zero", true},
		{"type assertion", func() { var v any = "s"; _ = v.(int) }, "interface conversion", true},
		{"close of nil channel", func() { var c chan int; close(c) }, "close of nil channel", false},
		{"panic(nil)", func() { panic(nil) }, "panic called with nil argument", true},
	}
	for _, c := range cases {
		r := recoverFrom(c.f)
		if r == nil {
			t.Errorf("%s: did not panic", c.name)
			continue
		}
		msg := fmt.Sprint(r)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: recovered %q; want it to contain %q", c.name, msg, c.want)
		}
		if _, ok := r.(runtime.Error); c.rt && !ok {
			t.Errorf("%s: recovered %T; want a runtime.Error", c.name, r)
		}
	}

	if err, ok := recoverFrom(func() { panic(fmt.Errorf("ctx: %w", errSentinel)) }).(error); !ok || !errors.Is(err, errSentinel) {
		t.Errorf("recovered error does not wrap the sentinel: %v", err)
	}

	panicDeferOrder(t)
	panicInGoroutines(t)
}

var errSentinel = errors.New("sentinel")

// recoverFrom runs f and returns what it panicked with, or nil.
func recoverFrom(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

// panicDeferOrder checks that deferred calls run last-in first-out during
// a panic, that a deferred call can replace the panic value by panicking
// again, and that recover stops the unwinding at the right frame.
func panicDeferOrder(t *T) {
	var order []int
	r := recoverFrom(func() {
		defer func() { order = append(order, 1) }()
		defer func() { panic("second") }()
		defer func() { order = append(order, 3) }()
		panic("first")
	})
	if fmt.Sprint(order) != "[3 1]" {
		t.Errorf("deferred calls ran in order %v; want [3 1]", order)
	}
	if s := fmt.Sprint(r); !strings.Contains(s, "second") {
		t.Errorf("recovered %q after a re-panic in a defer; want the second panic", s)
	}

	// A deferred recover can set named results, the usual way to turn a
	// panic into an error.
	if q, err := safeDiv(6, 3); q != 2 || err != nil {
		t.Errorf("safeDiv(6, 3) = %d, %v; want 2, nil", q, err)
	}
	if q, err := safeDiv(1, 0); q != 0 || err == nil {
		t.Errorf("safeDiv(1, 0) = %d, %v; want 0 and an error", q, err)
	}
}

func safeDiv(a, b int) (q int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recovered: %v", r)
		}
	}()
	return a / b, nil
}

// panicInGoroutines panics in many goroutines at once; each recovers its
// own value, and none leaks into another.
func panicInGoroutines(t *T) {
	const n = 200
	var wg sync.WaitGroup
	got := make([]any, n)
	for i := range n {
		wg.Go(func() {
			defer func() { got[i] = recover() }()
			if i%2 == 0 {
				panic(i)
			}
			var s []int
			_ = s[i] // index out of range raised by Go code
		})
	}
	wg.Wait()
	for i, r := range got {
		switch {
		case i%2 == 0 && r != i:
			t.Errorf("goroutine %d recovered %v; want %d", i, r, i)
		case i%2 == 1:
			if e, ok := r.(runtime.Error); !ok || !strings.Contains(e.Error(), fmt.Sprintf("[%d]", i)) {
				t.Errorf("goroutine %d recovered %v; want an index [%d] runtime error", i, r, i)
			}
		}
	}
}
