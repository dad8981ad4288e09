package netns

import (
	"context"
	"testing"

	"github.com/molt-os/molt/qemu"
)

// StartVM starts QEMU inside the namespace: qemu.Start on a thread switched
// into it (see Do), so that a qemu.TAP option finds the namespace's TAP
// interface.
func (ns *NS) StartVM(ctx context.Context, opts ...qemu.Option) (*qemu.VM, error) {
	var vm *qemu.VM
	err := ns.Do(func() error {
		var err error
		vm, err = qemu.Start(ctx, opts...)
		return err
	})
	return vm, err
}

// StartT is qemu.StartT inside the namespace.
func (ns *NS) StartT(t testing.TB, opts ...qemu.Option) *qemu.VM {
	t.Helper()
	var vm *qemu.VM
	ns.Do(func() error { vm = qemu.StartT(t, opts...); return nil })
	return vm
}
