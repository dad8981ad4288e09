package qemu

import (
	"testing"
)

// StartT starts a VM for a test: the console goes to t.Logf line by line
// (unless a Logf option says otherwise), QEMU dies with the test's context,
// and at cleanup the command line is logged for reproduction. The test fails
// if QEMU cannot start, or if Wait was never called.
func StartT(t testing.TB, opts ...Option) *VM {
	t.Helper()
	opts = append([]Option{Logf(t.Logf)}, opts...)
	v, err := Start(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !v.waited.Load() {
			t.Errorf("qemu: the test never called Wait on its VM")
			v.Kill()
			v.Wait()
		}
		t.Logf("qemu: reproduce with: %s", v.CommandLine())
	})
	return v
}
