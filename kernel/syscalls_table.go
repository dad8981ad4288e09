package kernel

// Syscall numbers (linux/amd64) molt answers deliberately.
const (
	sysRead             = 0
	sysWrite            = 1
	sysClose            = 3
	sysMmap             = 9
	sysMprotect         = 10
	sysMunmap           = 11
	sysRtSigaction      = 13
	sysRtSigprocmask    = 14
	sysSchedYield       = 24
	sysMadvise          = 28
	sysNanosleep        = 35
	sysGetpid           = 39
	sysClone            = 56
	sysExit             = 60
	sysKill             = 62
	sysFcntl            = 72
	sysGetcwd           = 79
	sysGettimeofday     = 96
	sysGetuid           = 102
	sysGetgid           = 104
	sysGeteuid          = 107
	sysGetegid          = 108
	sysSigaltstack      = 131
	sysPrctl            = 157
	sysArchPrctl        = 158
	sysGettid           = 186
	sysTkill            = 200
	sysFutex            = 202
	sysSchedGetaffinity = 204
	sysEpollCreate      = 213
	sysClockGettime     = 228
	sysClockGetres      = 229
	sysClockNanosleep   = 230
	sysExitGroup        = 231
	sysEpollWait        = 232
	sysEpollCtl         = 233
	sysTgkill           = 234
	sysOpenat           = 257
	sysEpollPwait       = 281
	sysEventfd2         = 290
	sysEpollCreate1     = 291
	sysPrlimit64        = 302
	sysGetrandom        = 318

	// molt's own calls, for drivers written as ordinary Go code.
	sysMoltIRQOpen = 1000 // (pin) -> fd: interrupt descriptor, see fd.go
)

// Support says how completely molt implements a syscall.
type Support int

const (
	// Supported: implemented with the Linux semantics the runtime relies on.
	Supported Support = iota
	// Partial: implemented for the arguments the runtime passes; Note says
	// what is missing.
	Partial
	// Stub: succeeds without effect, deliberately (Note says why it is safe).
	Stub
	// Refused: fails with Errno, deliberately; the runtime handles that.
	Refused
)

func (s Support) String() string {
	switch s {
	case Supported:
		return "supported"
	case Partial:
		return "partial"
	case Stub:
		return "stub"
	case Refused:
		return "refused"
	}
	return "unknown"
}

// SyscallInfo documents one syscall number.
type SyscallInfo struct {
	Nr      int
	Name    string
	Support Support
	Errno   string // for Refused
	Note    string
}

// Syscalls is the contract between molt and the Go runtime: every syscall
// the runtime (and the standard library packages molt images use) may
// issue, with molt's answer. docs/syscalls.md is generated from it
// (`go test ./kernel -run TestSyscallDoc -update`), and any number not
// listed returns ENOSYS and is reported on the console once.
var Syscalls = []SyscallInfo{
	{sysRead, "read", Partial, "", "console (blocks until serial input arrives) and eventfd; EBADF elsewhere"},
	{sysWrite, "write", Partial, "", "console (serial) and eventfd"},
	{sysClose, "close", Supported, "", "eventfd and epoll descriptors"},
	{sysMmap, "mmap", Partial, "", "anonymous only; reservations cost no RAM, committed pages are zero-filled on first touch; hints honoured when free"},
	{sysMprotect, "mprotect", Stub, "", "protections are not enforced; Go uses mprotect only in debug modes"},
	{sysMunmap, "munmap", Supported, "", "frees frames and address space, splitting reservations"},
	{sysRtSigaction, "rt_sigaction", Stub, "", "signals are never delivered; old action reads as SIG_DFL"},
	{sysRtSigprocmask, "rt_sigprocmask", Stub, "", "old mask reads as empty"},
	{sysSchedYield, "sched_yield", Supported, "", "round-robin to the next runnable thread"},
	{sysMadvise, "madvise", Partial, "", "MADV_DONTNEED and MADV_FREE really drop the pages (next read is zero); other advice ignored"},
	{sysNanosleep, "nanosleep", Supported, "", "blocks the thread until the deadline (tickless)"},
	{sysGetpid, "getpid", Supported, "", "always 1: one process"},
	{sysClone, "clone", Partial, "", "threads only (CLONE_VM|CLONE_THREAD); new processes get ENOSYS"},
	{sysExit, "exit", Supported, "", "ends the calling thread"},
	{sysKill, "kill", Stub, "", "signals are not delivered"},
	{sysFcntl, "fcntl", Partial, "", "F_GETFD/F_SETFD/F_SETFL succeed; F_GETFL reports blocking console, non-blocking eventfd/epoll"},
	{sysGetcwd, "getcwd", Supported, "", "always \"/\""},
	{sysGettimeofday, "gettimeofday", Supported, "", "wall clock from the RTC at boot plus monotonic time"},
	{sysGetuid, "getuid", Supported, "", "0"},
	{sysGetgid, "getgid", Supported, "", "0"},
	{sysGeteuid, "geteuid", Supported, "", "0"},
	{sysGetegid, "getegid", Supported, "", "0"},
	{sysSigaltstack, "sigaltstack", Stub, "", "old stack reads as SS_DISABLE"},
	{sysPrctl, "prctl", Refused, "EINVAL", "Go stops naming mappings (PR_SET_VMA) after the first failure"},
	{sysArchPrctl, "arch_prctl", Partial, "", "ARCH_SET_FS (per thread); other codes EINVAL"},
	{sysGettid, "gettid", Supported, "", "thread IDs from 1"},
	{sysTkill, "tkill", Stub, "", "signals are not delivered"},
	{sysFutex, "futex", Partial, "", "FUTEX_WAIT and FUTEX_WAKE (private or not) on 32-bit words, relative timeouts; others ENOSYS"},
	{sysSchedGetaffinity, "sched_getaffinity", Supported, "", "one CPU"},
	{sysEpollCreate, "epoll_create", Supported, "", ""},
	{sysClockGettime, "clock_gettime", Supported, "", "REALTIME, MONOTONIC (kvmclock or calibrated TSC, never backwards), BOOTTIME, process and thread CPU time"},
	{sysClockGetres, "clock_getres", Supported, "", "1 ns"},
	{sysClockNanosleep, "clock_nanosleep", Supported, "", "relative and TIMER_ABSTIME"},
	{sysExitGroup, "exit_group", Supported, "", "powers off; the status reaches QEMU through isa-debug-exit"},
	{sysEpollWait, "epoll_wait", Supported, "", "edge-triggered readiness; blocks with timeout"},
	{sysEpollCtl, "epoll_ctl", Supported, "", "ADD, MOD, DEL; user data stored verbatim"},
	{sysTgkill, "tgkill", Stub, "", "signals are not delivered (async preemption is off)"},
	{sysOpenat, "openat", Refused, "ENOENT", "no file system: THP size, cgroup, /etc/localtime (UTC) all fall back"},
	{sysEpollPwait, "epoll_pwait", Supported, "", "Go's idle sleep; the signal mask is ignored"},
	{sysEventfd2, "eventfd2", Supported, "", "netpollBreak; reported as EPOLLIN only, as Go requires"},
	{sysEpollCreate1, "epoll_create1", Supported, "", ""},
	{sysPrlimit64, "prlimit64", Refused, "ENOSYS", "the syscall package ignores the error"},
	{sysGetrandom, "getrandom", Supported, "", "RDRAND/RDSEED after a CPUID check"},
	{sysMoltIRQOpen, "molt_irq_open", Supported, "", "molt only: an interrupt descriptor for an IOAPIC pin (kernel.OpenIRQ)"},
}
