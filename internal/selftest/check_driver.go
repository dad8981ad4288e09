package selftest

import (
	"errors"
	"time"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/kernel"
)

// pitPin is the IOAPIC pin of the 8254 PIT's IRQ 0 on microvm (the usual
// IRQ0-to-GSI2 override). The kernel leaves the PIT counting after it
// calibrates the clocks, so the pin fires at about 18 Hz: a real interrupt
// source for testing interrupt descriptors without any other device.
const pitPin = 2

// checkIRQ opens an interrupt descriptor, waits for interrupts through
// Go's netpoller, unmasks, waits again, and checks that a closed pin can be
// reopened and that a second descriptor for an open pin is refused.
func checkIRQ(t *T) {
	q, err := kernel.OpenIRQ(pitPin)
	if err != nil {
		t.Fatalf("OpenIRQ(%d): %v", pitPin, err)
	}
	if _, err := kernel.OpenIRQ(pitPin); err == nil {
		t.Errorf("a second OpenIRQ(%d) succeeded; want an error", pitPin)
	}
	for i := 0; i < 3; i++ {
		start := time.Now()
		n, err := q.Wait()
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if n == 0 {
			t.Errorf("Wait returned a count of 0")
		}
		t.Logf("round %d: %d interrupt(s) after %v", i, n, time.Since(start).Round(time.Microsecond))
		if err := q.Done(); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	q, err = kernel.OpenIRQ(pitPin)
	if err != nil {
		t.Fatalf("OpenIRQ after Close: %v", err)
	}
	q.Close()
	if _, err := kernel.OpenIRQ(99); err == nil {
		t.Errorf("OpenIRQ(99) succeeded; want an error")
	}
}

// checkDMA claims the DMA region and checks its place and that it is
// usable memory; a second claim must fail.
func checkDMA(t *T) {
	mem, phys, err := kernel.DMA()
	if err != nil {
		t.Fatalf("DMA: %v", err)
	}
	if phys != layout.DMABase || len(mem) != layout.DMASize {
		t.Errorf("DMA region %#x+%#x; want %#x+%#x", phys, len(mem), layout.DMABase, layout.DMASize)
	}
	for _, off := range []int{0, len(mem) / 2, len(mem) - 1} {
		mem[off] = 0xa5
		if mem[off] != 0xa5 {
			t.Errorf("DMA byte %#x did not keep its value", off)
		}
		mem[off] = 0
	}
	if _, _, err := kernel.DMA(); err == nil || errors.Is(err, kernel.ErrNotBooted) {
		t.Errorf("second DMA claim: err = %v; want already claimed", err)
	}
}
