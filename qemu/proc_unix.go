//go:build unix && !linux

package qemu

import (
	"errors"
	"syscall"
)

// sysProcAttr puts QEMU in its own process group, so that a kill reaches
// anything it spawned.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

// canSweep is false: without waitid(WNOWAIT) the launcher cannot kill
// QEMU's leftover children after QEMU exits without risking a recycled pid.
const canSweep = false

func waitExited(pid int) error { return errors.ErrUnsupported }

func checkKVM(dev string) error { return errors.New("KVM is Linux-only") }
