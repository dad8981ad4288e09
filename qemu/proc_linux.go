//go:build linux

package qemu

import (
	"fmt"
	"os"
	"syscall"
)

// sysProcAttr puts QEMU in its own process group, so that a kill reaches
// anything it spawned, and has the kernel kill it if the launching thread
// dies, so that a crashed or killed launcher leaves no VM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

// canSweep reports whether waitExited is available, so that the launcher
// can kill QEMU's leftover children after QEMU exits but before reaping it
// (while its pid still names the group, so the kill cannot hit a recycled
// process group).
const canSweep = true

// checkKVM reports whether dev is a usable KVM device: it opens for reading
// and writing and answers KVM_GET_API_VERSION with the stable API version.
func checkKVM(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	const (
		kvmGetAPIVersion = 0xae00 // _IO(KVMIO, 0x00), linux/kvm.h
		kvmAPIVersion    = 12     // the only version since Linux 2.6.22
	)
	v, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), kvmGetAPIVersion, 0)
	if errno != 0 {
		return fmt.Errorf("%s: KVM_GET_API_VERSION: %w", dev, errno)
	}
	if v != kvmAPIVersion {
		return fmt.Errorf("%s: KVM API version %d, want %d", dev, v, kvmAPIVersion)
	}
	return nil
}
