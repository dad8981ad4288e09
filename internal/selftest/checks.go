package selftest

// All returns every check in the order RunAll should run them: cheap
// runtime sanity first, so that a broken basic service shows up before the
// heavier checks that depend on it.
func All() []Check {
	return []Check{
		{Name: "kernel_info", Run: checkKernelInfo, VMOnly: true},
		{Name: "vdso", Run: checkVDSO, VMOnly: true},
		{Name: "irq_fd", Run: checkIRQ, VMOnly: true},
		{Name: "dma_region", Run: checkDMA, VMOnly: true},
		{Name: "smoke", Run: checkSmoke},
		{Name: "goroutines", Run: checkGoroutines},
		{Name: "sync", Run: checkSync},
		{Name: "timers", Run: checkTimers},
		{Name: "preemption", Run: checkPreemption},
		{Name: "panic_recover", Run: checkPanicRecover},
		{Name: "panic_nil_deref", Run: checkNilDeref, HostOnly: true},
		{Name: "crypto_rand", Run: checkCryptoRand},
		{Name: "gc_churn", Run: checkGCChurn},
	}
}
