package selftest

import (
	"runtime"
	"strings"
)

// checkNilDeref checks that a nil pointer dereference becomes a recoverable
// runtime error. It is HostOnly: Go does not test pointers for nil before
// small-offset loads, it lets the load fault and relies on the kernel
// delivering SIGSEGV, which the runtime turns into a panic. molt does not
// deliver signals yet, so in the VM the #PF is fatal and ends the run with
// a fault report (cmd/faulttest checks that report). Drop HostOnly once
// molt delivers SIGSEGV.
func checkNilDeref(t *T) {
	r := recoverFrom(func() { _ = derefInt(nil) })
	e, ok := r.(runtime.Error)
	if !ok {
		t.Fatalf("nil dereference recovered %v (%T); want a runtime.Error", r, r)
	}
	if !strings.Contains(e.Error(), "nil pointer dereference") {
		t.Errorf("nil dereference error = %q; want it to mention a nil pointer dereference", e)
	}
	t.Logf("recovered: %v", e)
}

//go:noinline
func derefInt(p *int) int { return *p }
