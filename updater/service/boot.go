package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/molt-os/molt/updater/handoff"
	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/task"
)

// BootReport says how this kernel came up: cold, or warm from a handoff,
// and what it restored.
type BootReport struct {
	Warm       bool
	Cold       string // why the boot was cold (a cold boot's region status)
	Generation uint64 // of the handoff; 0 when cold
	From       string // the previous kernel's version
	// Blackout runs from the moment the previous kernel began quiescing
	// to the moment every task here was resumed: the longest pause any
	// client saw, as the kernels measure it.
	Blackout time.Duration
	// Phases are the update's steps, old kernel's then jump's then
	// this kernel's.
	Phases []Phase
	Net    Counts
	Tasks  *task.RestoreReport
	// Items are the application items the tasks hold after the restore
	// (task.ItemCounter).
	Items uint64
	// Reply is the push connection to answer, nil if none came across.
	Reply net.Conn
	// RolledBack is set when a newer kernel stopped before it committed
	// and the kernel rolled back into this (the previous) image;
	// StopCode is the code it stopped with.
	RolledBack bool
	StopCode   int
	// HealthFailed is set, with RolledBack, when the newer kernel was
	// running but failed its health check and handed its state back.
	HealthFailed bool
	// RollbackArmed says whether this kernel will return to the previous
	// image if it stops before the commit.
	RollbackArmed bool
	// Problems joins what went wrong without stopping the boot (a section
	// that failed to decode, a network that had to start fresh).
	Problems error
}

// Boot brings the network and the tasks up: from the handoff region if
// the previous kernel handed one over (a warm boot), else from scratch. A
// handoff that cannot be used costs the state it carried, never the boot:
// the kernel then starts fresh and the report says what was lost.
func (s *Service) Boot(ctx context.Context) (*BootReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.booted != nil {
		return nil, errors.New("service: Boot called twice")
	}
	rep, err := s.boot(ctx)
	if err != nil {
		return nil, err
	}
	s.booted = rep
	if rep.Warm {
		go s.commitAfter(s.cfg.HealthWindow)
	}
	return rep, nil
}

func (s *Service) boot(ctx context.Context) (*BootReport, error) {
	m := s.cfg.Machine
	bootAt := m.Clock().MonotonicNs
	region, err := m.Region()
	if err != nil {
		return nil, err
	}
	n, warm := m.Inherited()
	if !warm {
		st, _, why := handoff.Inspect(region[:min(len(region), 4096)])
		reason := fmt.Sprintf("no handoff from a previous kernel (region %s: %v)", st, why)
		if st == handoff.Valid {
			reason = "no handoff from a previous kernel (the region holds a stale one, ignored)"
		}
		return s.cold(ctx, &BootReport{Cold: reason})
	}
	// Decode from a copy: the region itself is rewritten below (as the
	// rollback handoff) while the decoded sections are still in use.
	buf := append([]byte(nil), region[:n]...)
	st, r, err := handoff.Inspect(buf)
	if st != handoff.Valid {
		s.logf("handoff: %s region: %v: the state it carried is lost", st, err)
		return s.cold(ctx, &BootReport{Cold: fmt.Sprintf("the handoff is %s: %v", st, err)})
	}
	decoded, derr := s.reg.DecodeAll(r)
	rep := &BootReport{Warm: true, Generation: r.Generation, Problems: derr}
	var pending Pending
	for _, d := range decoded {
		switch v := d.Value.(type) {
		case Pending:
			pending = v
		case handoff.History:
			s.history = v
		}
	}
	s.generation = r.Generation
	rolledBack := r.Flags&handoff.FlagRollback != 0
	if code, ok := m.RolledBack(); ok || rolledBack {
		rep.RolledBack, rep.StopCode = true, code
		rep.HealthFailed = !ok
	}
	if last := s.history.Last(); last != nil {
		switch {
		case !rolledBack && last.Generation == r.Generation:
			rep.From = last.FromVersion
			if last.ToBuild != m.BuildID() {
				rep.Problems = errors.Join(rep.Problems, fmt.Errorf("the handoff was written for image %x, this is %x", last.ToBuild[:8], m.BuildID()))
			}
		case rolledBack:
			rep.From = last.ToVersion // the image that failed
		}
	}
	s.slot, s.prevSlot = int(pending.Slot), int(pending.PreviousSlot)
	s.listenID = pending.ListenSocket
	if pending.PreviousSlot == NoSlot || s.prevSlot >= m.Slots() {
		s.prevSlot = -1
	}
	if s.slot >= m.Slots() {
		s.slot = -1
	}
	rep.Phases = append(rep.Phases, pending.Phases...)
	rep.Phases = append(rep.Phases, s.handoverPhases(pending, bootAt)...)
	if !rolledBack && s.prevSlot >= 0 {
		// From here until the commit, a stop of this kernel returns to
		// the previous image with the state it handed over.
		t0 := time.Now()
		err := s.armRollback(region, r, pending)
		rep.Phases = append(rep.Phases, Phase{"arm-rollback", time.Since(t0)})
		if err != nil {
			rep.Problems = errors.Join(rep.Problems, fmt.Errorf("no rollback to the previous image: %w", err))
		} else {
			rep.RollbackArmed = true
		}
	}
	if panicDuringRestore && !rolledBack {
		panic("service: deliberate panic during restore (built with molt_panic_restore)")
	}

	t0 := time.Now()
	counts, err := s.cfg.Network.Restore(ctx, decoded)
	if err != nil {
		// The connections are lost; the tasks still get their state.
		rep.Problems = errors.Join(rep.Problems, fmt.Errorf("network: %w (connections lost; configuring afresh)", err))
		if cerr := s.cfg.Network.Configure(ctx); cerr != nil {
			return nil, fmt.Errorf("network: configure after a failed restore: %w", cerr)
		}
	}
	rep.Net = counts
	rep.Phases = append(rep.Phases, Phase{"restore-net", time.Since(t0)})

	rep.Tasks = s.cfg.Tasks.Restore(decoded)
	rep.Phases = append(rep.Phases, Phase{"restore-tasks", rep.Tasks.Elapsed})
	if rep.Tasks.Err != nil {
		rep.Problems = errors.Join(rep.Problems, rep.Tasks.Err)
	}
	t0 = time.Now()
	if err := s.cfg.Network.GoLive(); err != nil {
		rep.Problems = errors.Join(rep.Problems, fmt.Errorf("network: go live: %w", err))
	}
	if _, err := s.cfg.Tasks.Start(); err != nil {
		rep.Problems = errors.Join(rep.Problems, err)
	}
	rep.Phases = append(rep.Phases, Phase{"resume", time.Since(t0)})
	rep.Items = s.cfg.Tasks.Items()
	now := m.Clock()
	if pending.QuiesceBegan != 0 && now.MonotonicNs > pending.QuiesceBegan {
		rep.Blackout = time.Duration(now.MonotonicNs - pending.QuiesceBegan)
	}
	if last := s.history.Last(); last != nil && last.Generation == r.Generation {
		last.ResumedNs = now.WallNs
		last.BlackoutNs = uint64(rep.Blackout)
	}
	if pending.ReplySocket != 0 {
		if c, ok := s.cfg.Network.Conn(pending.ReplySocket); ok {
			rep.Reply = c
		} else {
			rep.Problems = errors.Join(rep.Problems, fmt.Errorf("the push connection (socket %d) did not come across", pending.ReplySocket))
		}
	}
	return rep, nil
}

// armRollback rewrites the region as the handoff a rollback would give the
// previous image: the same sections, generation + 1, flagged rollback,
// the pending update recorded as rolled back and the previous slot as the
// running one, then arms the kernel's jump to that image. r was decoded
// from a copy of the region.
func (s *Service) armRollback(region []byte, r *handoff.Region, pending Pending) error {
	m := s.cfg.Machine
	prev, err := s.previousImage(s.prevSlot)
	if err != nil {
		return err
	}
	hist := handoff.History{Entries: append([]handoff.HistoryEntry(nil), s.history.Entries...)}
	hist.Last().Outcome = handoff.OutcomeRolledBack
	back := pending
	back.Slot, back.PreviousSlot = uint32(s.prevSlot), NoSlot
	enc, err := s.reg.NewEncoder(region, handoff.Header{Generation: r.Generation + 1, Flags: handoff.FlagRollback, BuildID: m.BuildID()})
	if err != nil {
		return err
	}
	for _, sec := range r.Sections {
		payload := sec.Payload
		switch sec.Type {
		case handoff.TypeUpdate:
			if payload, err = back.Append(nil); err != nil {
				return err
			}
		case handoff.TypeUpdateHistory:
			if payload, err = hist.Append(nil); err != nil {
				return err
			}
		}
		if err := enc.Add(sec.Type, sec.Version, sec.Flags, payload); err != nil {
			return err
		}
	}
	out, err := enc.Finish()
	if err != nil {
		return err
	}
	return m.ArmRollback(prev, s.prevSlot, len(out))
}

// previousImage reads the image in slot (unauthenticated: it passed
// verification when it was pushed) and checks that it is the image that
// handed over to this kernel, the one a rollback returns to.
func (s *Service) previousImage(slot int) (*image.Image, error) {
	mem, _, err := s.cfg.Machine.Slot(slot)
	if err != nil {
		return nil, err
	}
	prev, err := image.InspectSlot(mem)
	if err != nil {
		return nil, fmt.Errorf("slot %d: %w", slot, err)
	}
	if last := s.history.Last(); last == nil || last.FromBuild != prev.BuildID {
		return nil, fmt.Errorf("slot %d holds image %x, not the one that handed over", slot, prev.BuildID[:8])
	}
	return prev, nil
}

// cold brings everything up from scratch.
func (s *Service) cold(ctx context.Context, rep *BootReport) (*BootReport, error) {
	if err := s.cfg.Network.Configure(ctx); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if _, err := s.cfg.Tasks.Start(); err != nil {
		rep.Problems = errors.Join(rep.Problems, err)
	}
	s.slot = s.findOwnSlot()
	return rep, nil
}

// findOwnSlot returns the slot a launcher put this kernel's own signed
// image in (so that a first update can roll back to it), or -1.
func (s *Service) findOwnSlot() int {
	id := s.cfg.Machine.BuildID()
	for i := range s.cfg.Machine.Slots() {
		mem, _, err := s.cfg.Machine.Slot(i)
		if err != nil {
			continue
		}
		if h, err := image.ReadHeaderPrefix(mem); err == nil && h.BuildID == id {
			return i
		}
	}
	return -1
}

// commitAfter commits the update that started this kernel once it has run
// for the health window: the history records it as committed and the
// region is invalidated, so that a later reset cannot replay it.
func (s *Service) commitAfter(d time.Duration) {
	time.Sleep(d)
	if err := s.healthy(); err != nil {
		s.logf("update: generation %d failed its health check after %v: %v; handing the state back to the previous image", s.generation, d, err)
		err := s.rollBack(context.Background())
		// Not reached if the rollback jumped.
		s.logf("update: rollback to the previous image: %v; running on, uncommitted (a stop still returns to the previous image)", err)
		return
	}
	s.commit(d)
}

// healthy runs the health check: the configured one, and the test hook
// of images built with molt_fail_health.
func (s *Service) healthy() error {
	if failHealth {
		return errors.New("deliberate health check failure (built with molt_fail_health)")
	}
	if s.cfg.Health != nil {
		return s.cfg.Health()
	}
	return nil
}

// rollBack hands the current state back to the previous image, as an
// update to it: the tasks are quiesced and saved in the schema versions
// the previous image wrote (and so reads), the connections carried, and
// the handoff flagged as a rollback, so that the previous image does not
// arm a return to this one and its report says what happened. Unlike the
// armed rollback of a panic, whatever changed since this kernel resumed
// (items stored, connections opened) goes back with it. It returns only
// if that could not be done; the armed rollback then stays armed.
func (s *Service) rollBack(ctx context.Context) error {
	s.mu.Lock()
	prevSlot := s.prevSlot
	var prev *image.Image
	err := errors.New("no previous image to return to")
	if !s.committed && prevSlot >= 0 {
		prev, err = s.previousImage(prevSlot)
	}
	s.mu.Unlock() // Update takes it
	if err != nil {
		return err
	}
	var targets task.Targets
	if pt := s.cfg.Tasks.Previous(); pt != nil {
		targets = pt.Targets()
	}
	return s.Update(ctx, prev, prevSlot, Options{Targets: targets, rollback: true})
}

// commit makes the update that started this kernel final.
func (s *Service) commit(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.committed {
		return
	}
	s.cfg.Machine.DisarmRollback()
	if last := s.history.Last(); last != nil && last.Generation == s.generation {
		last.Outcome = handoff.OutcomeCommitted
	}
	if region, err := s.cfg.Machine.Region(); err == nil {
		handoff.Invalidate(region)
	}
	s.committed = true
	s.logf("update: generation %d committed after %v", s.generation, d)
}

// handoverPhases times what happened between the old kernel's freeze and
// this kernel's service start, from the monotonic clock that continues
// across the jump: "save" (the old kernel writing the region, up to the
// jump), "jump" (interrupts off, purgatory, copy, BSS, up to this kernel's
// entry), "kinit", "boot" (runtime start, drivers, NIC, up to bootAt) and
// "decode" (validating and decoding the handoff, until now). With the
// phases before and after them they add up to the blackout.
func (s *Service) handoverPhases(pending Pending, bootAt uint64) []Phase {
	now := s.cfg.Machine.Clock().MonotonicNs
	j, ok := s.cfg.Machine.PreviousJump()
	if !ok {
		return nil
	}
	entry := uint64(j.MonoAtEnd)
	jump := j.Total - j.Kinit
	decided := entry - uint64(jump)
	frozen := pending.QuiesceBegan
	for _, p := range pending.Phases {
		if p.Name == "quiesce" || p.Name == "freeze" {
			frozen += uint64(p.D)
		}
	}
	span := func(a, b uint64) time.Duration {
		if b < a {
			return 0
		}
		return time.Duration(b - a)
	}
	var out []Phase
	if pending.QuiesceBegan != 0 {
		out = append(out, Phase{"save", span(frozen, decided)})
	}
	return append(out,
		Phase{"jump", jump},
		Phase{"kinit", j.Kinit},
		Phase{"boot", span(entry+uint64(j.Kinit), bootAt)},
		Phase{"decode", span(bootAt, now)})
}
