// Package debugexit drives QEMU's isa-debug-exit device: writing a byte to
// its port ends QEMU with exit status (code<<1)|1 (QEMU docs,
// hw/misc/debugexit.c). molt uses it to report how the kernel stopped.
//
// Exit is //go:nosplit: the kernel stops from trap context.
package debugexit

import "github.com/molt-os/molt/drivers/internal/reg"

// DebugExit is one isa-debug-exit device.
type DebugExit struct {
	Port uint16
}

// Exit writes code to the device. Under QEMU it does not return; on a
// machine without the device it does, and the caller must halt.
//
//go:nosplit
func (d *DebugExit) Exit(code uint8) { reg.Out8(d.Port, code) }
