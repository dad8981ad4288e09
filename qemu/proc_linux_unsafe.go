//go:build linux

package qemu

import (
	"syscall"
	"unsafe"
)

// waitExited blocks until process pid has exited, without reaping it: the
// zombie keeps the pid (and so the process group id) reserved until
// exec.Cmd.Wait reaps it. It uses waitid(P_PID, pid, WEXITED|WNOWAIT),
// which has no wrapper in package syscall.
func waitExited(pid int) error {
	const (
		pPID    = 1          // P_PID, linux/wait.h
		wNOWAIT = 0x01000000 // WNOWAIT
	)
	var info [128]byte // siginfo_t; only waited on, never read
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|wNOWAIT, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return errno
		}
	}
}
