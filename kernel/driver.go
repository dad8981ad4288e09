package kernel

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/molt-os/molt/boot/layout"
)

// Support for device drivers written as ordinary Go code: interrupt
// descriptors and the DMA region.

// ErrNotBooted is returned by driver APIs on a host.
var ErrNotBooted = errors.New("not running on molt")

// IRQ is an interrupt descriptor for one IOAPIC pin. The pin is masked from
// the moment it fires until Done, so a level-triggered device cannot storm
// the CPU while its driver is not looking.
type IRQ struct {
	pin int
	f   *os.File
}

// OpenIRQ routes an IOAPIC pin (level-triggered, active-high) to an
// interrupt descriptor. Only one descriptor may exist per pin.
func OpenIRQ(pin int) (*IRQ, error) {
	if !booted {
		return nil, ErrNotBooted
	}
	fd, _, e := syscall.RawSyscall(sysMoltIRQOpen, uintptr(pin), 0, 0)
	if e != 0 {
		return nil, fmt.Errorf("open interrupt pin %d: %w", pin, e)
	}
	// The descriptor reports O_NONBLOCK, so os registers it with the
	// netpoller: Wait parks the goroutine, not a thread.
	return &IRQ{pin: pin, f: os.NewFile(fd, fmt.Sprintf("irq%d", pin))}, nil
}

// Wait blocks until the pin has fired and returns how often it fired since
// the last Wait. The pin stays masked until Done.
func (q *IRQ) Wait() (uint64, error) {
	var b [8]byte
	if _, err := q.f.Read(b[:]); err != nil {
		return 0, fmt.Errorf("wait for interrupt pin %d: %w", q.pin, err)
	}
	return *(*uint64)(unsafe.Pointer(&b[0])), nil
}

// Done unmasks the pin after the driver has serviced (acknowledged) the
// device. A level-triggered line that is still asserted fires again.
func (q *IRQ) Done() error {
	var b [8]byte
	if _, err := q.f.Write(b[:]); err != nil {
		return fmt.Errorf("unmask interrupt pin %d: %w", q.pin, err)
	}
	return nil
}

// Close masks the pin and releases the descriptor; a blocked Wait returns
// an error.
func (q *IRQ) Close() error { return q.f.Close() }

var dmaClaimed sync.Once

// DMA hands out the DMA region: physically contiguous, identity-mapped
// memory (layout.DMABase, layout.DMASize) whose physical address equals the
// address of mem[0]. It can be claimed once; devices must never be given
// any other memory.
func DMA() (mem []byte, phys uintptr, err error) {
	if !booted {
		return nil, 0, ErrNotBooted
	}
	err = errors.New("the DMA region was already claimed")
	dmaClaimed.Do(func() {
		mem = unsafe.Slice((*byte)(u64ptr(layout.DMABase)), layout.DMASize)
		phys = layout.DMABase
		err = nil
	})
	return mem, phys, err
}
