// Command jumptest is a kernel image that exercises the self-update jump on
// its own, without services: it hops between the images a launcher placed
// in the two image store slots, carrying a handoff region from kernel to
// kernel, and checks what arrives. The QEMU test next to it drives it.
//
// Command-line words:
//
//	jumptest.hops=N  jump until the handoff generation reaches N, then
//	                 power off with status 0 (default 0: report and stop)
//	jumptest.panic=G the kernel that inherits generation G arms a rollback
//	                 to the image it came from, then panics; the kernel
//	                 rolled back into reports it and powers off
//
// The launcher puts signed bundles (updater/image) of the images in the
// slots; they are read without checking the signature (image.Inspect).
//
// Hop g (g = the generation this kernel inherited, 0 after a cold boot)
// jumps to the image in slot (g+1) mod 2, so with image A in slot 0 and B
// in slot 1 and A booted cold, the chain is A → B → A → ...
//
// Every kernel prints one line a test can match:
//
//	jumptest: <version> cold: <why>
//	jumptest: <version> warm generation <g> from <writer version> ...
//
// and exits with status 1 if what it inherited is wrong (bad region,
// clock went backwards, generation not the one expected).
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/updater/handoff"
	"github.com/molt-os/molt/updater/kexec"
)

func main() {
	if !kernel.Booted() {
		fmt.Fprintln(os.Stderr, "jumptest: this is a kernel image; boot it with molt run")
		os.Exit(2)
	}
	hops, panicAt := 0, -1
	for _, w := range strings.Fields(kernel.Cmdline()) {
		for name, dst := range map[string]*int{"jumptest.hops=": &hops, "jumptest.panic=": &panicAt} {
			if v, ok := strings.CutPrefix(w, name); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					fail("bad %s%q", name, v)
				}
				*dst = n
			}
		}
	}
	region, err := kernel.HandoffRegion()
	if err != nil {
		fail("%v", err)
	}
	gen, hist, err := inherit(region)
	if err != nil {
		fail("%v", err)
	}
	if code, ok := kernel.RolledBack(); ok {
		fmt.Printf("jumptest: %s rolled back into at generation %d: the next kernel stopped with code %d\n", kernel.Version(), gen, code)
		kernel.Poweroff(0)
	}
	if int(gen) == panicAt {
		if err := armRollback(region, gen, hist); err != nil {
			fail("arm rollback: %v", err)
		}
		panic("jumptest: deliberate panic with a rollback armed")
	}
	if int(gen) >= hops {
		fmt.Printf("jumptest: %s done after %d hops\n", kernel.Version(), gen)
		kernel.Poweroff(0)
	}
	if err := hop(region, gen, hist); err != nil {
		fail("hop %d: %v", gen+1, err)
	}
}

// inherit reads what the previous kernel handed over, checks it and
// returns its generation (0 on a cold boot) and update history.
func inherit(region []byte) (uint64, handoff.History, error) {
	n, warm := kernel.Inherited()
	if !warm {
		st, _, err := handoff.Inspect(region[:4096])
		fmt.Printf("jumptest: %s cold: region %s (%v); starting fresh\n", kernel.Version(), st, err)
		return 0, handoff.History{}, nil
	}
	st, r, err := handoff.Inspect(region[:n])
	if st != handoff.Valid {
		return 0, handoff.History{}, fmt.Errorf("warm boot with a %s region: %v", st, err)
	}
	decoded, err := handoff.Builtin().DecodeAll(r)
	if err != nil {
		return 0, handoff.History{}, fmt.Errorf("decode region: %w", err)
	}
	var clk handoff.Clock
	var hist handoff.History
	for _, d := range decoded {
		switch v := d.Value.(type) {
		case handoff.Clock:
			clk = v
		case handoff.History:
			hist = v
		}
	}
	last := hist.Last()
	rolledBack := r.Flags&handoff.FlagRollback != 0
	if _, ok := kernel.RolledBack(); ok != rolledBack {
		return 0, hist, fmt.Errorf("the region's rollback flag is %v, the jump's %v", rolledBack, ok)
	}
	// A forward handoff's newest entry is its own update, naming this
	// image as the target; a rollback's is the update being undone, from
	// this image, one generation back.
	if last == nil || !rolledBack && (last.Generation != r.Generation || last.ToBuild != kernel.BuildIDBytes()) ||
		rolledBack && (last.Generation+1 != r.Generation || last.FromBuild != kernel.BuildIDBytes() || last.Outcome != handoff.OutcomeRolledBack) {
		return 0, hist, fmt.Errorf("history does not name this image as the target of generation %d: %+v", r.Generation, last)
	}
	now := kernel.ReadClock()
	if now.MonotonicNs <= clk.MonotonicNs {
		return 0, hist, fmt.Errorf("monotonic clock went back: %d ns now, %d ns at save", now.MonotonicNs, clk.MonotonicNs)
	}
	gap := time.Duration(now.MonotonicNs - clk.MonotonicNs)
	if gap > time.Minute {
		return 0, hist, fmt.Errorf("monotonic clock jumped ahead by %v across the jump", gap)
	}
	blackout, _ := clk.MonotonicAt(now.TSC)
	line := fmt.Sprintf("jumptest: %s warm generation %d from %s, handoff %d bytes, clock +%v",
		kernel.Version(), r.Generation, last.FromVersion, n, gap.Round(time.Microsecond))
	if j, ok := kernel.PreviousJump(); ok {
		line += fmt.Sprintf(", jump: stop %v enter %v copy %v zero %v boot %v kinit %v total %v",
			j.Stop, j.Enter, j.Copy, j.Zero, j.Boot, j.Kinit, j.Total)
	}
	fmt.Println(line)
	_ = blackout
	return r.Generation, hist, nil
}

// armRollback rewrites the region as a rollback handoff to the image
// this kernel came from (slot (gen+1) mod 2) and arms the kernel's
// rollback jump to it.
func armRollback(region []byte, gen uint64, hist handoff.History) error {
	slot := int(gen+1) % 2
	img, segs, err := kexec.Slot(slot)
	if err != nil {
		return err
	}
	last := hist.Last()
	last.Outcome = handoff.OutcomeRolledBack
	n, err := writeRegion(region, gen+1, handoff.FlagRollback, hist)
	if err != nil {
		return err
	}
	fmt.Printf("jumptest: %s armed a rollback to slot %d with a %d-byte handoff\n", kernel.Version(), slot, n)
	return kernel.ArmRollback(segs, uintptr(img.Entry), n, nil)
}

// writeRegion encodes a region with the history and the clock.
func writeRegion(region []byte, gen uint64, flags handoff.Flags, hist handoff.History) (int, error) {
	histBytes, err := hist.Append(nil)
	if err != nil {
		return 0, err
	}
	enc, err := handoff.Builtin().NewEncoder(region, handoff.Header{Generation: gen, Flags: flags, BuildID: kernel.BuildIDBytes()})
	if err != nil {
		return 0, err
	}
	if err := enc.Add(handoff.TypeUpdateHistory, handoff.HistoryVersion, 0, histBytes); err != nil {
		return 0, err
	}
	clk := kernel.ReadClock()
	c := handoff.Clock{MonotonicNs: clk.MonotonicNs, TSC: clk.TSC, WallNs: clk.WallNs, TSCHz: clk.TSCHz}
	if err := enc.Add(handoff.TypeClock, handoff.ClockVersion, 0, c.Append(nil)); err != nil {
		return 0, err
	}
	out, err := enc.Finish()
	return len(out), err
}

// hop writes the next generation's region and jumps to the other slot.
func hop(region []byte, gen uint64, hist handoff.History) error {
	slot := int(gen+1) % 2
	img, segs, err := kexec.Slot(slot)
	if err != nil {
		return err
	}
	now := kernel.ReadClock()
	hist.Add(handoff.HistoryEntry{
		Generation: gen + 1, FromVersion: kernel.Version(), ToVersion: fmt.Sprintf("slot %d", slot),
		FromBuild: kernel.BuildIDBytes(), ToBuild: img.BuildID,
		StartedNs: now.WallNs, HandoffNs: now.WallNs, Outcome: handoff.OutcomePending,
	})
	n, err := writeRegion(region, gen+1, 0, hist)
	if err != nil {
		return err
	}
	var filesz, memsz uintptr
	for _, sg := range segs {
		filesz, memsz = filesz+sg.Filesz, memsz+sg.Memsz
	}
	fmt.Printf("jumptest: %s jumping to slot %d: %d segments, %d KiB copied, %d KiB in all, handoff %d bytes\n",
		kernel.Version(), slot, len(segs), filesz>>10, memsz>>10, n)
	return kernel.Jump(segs, uintptr(img.Entry), n)
}

func fail(format string, args ...any) {
	fmt.Printf("jumptest: %s FAIL: %s\n", kernel.Version(), fmt.Sprintf(format, args...))
	kernel.Poweroff(1)
}
