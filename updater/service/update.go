package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/molt-os/molt/updater/handoff"
	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/push"
	"github.com/molt-os/molt/updater/task"
)

// Refusal is an update the service declined, with nothing changed: the
// image was bad, or the tasks did not quiesce in time. Code names the
// class for programs (it is what the push client receives); the error
// says what happened for people.
type Refusal struct {
	Code push.Code
	Err  error
}

func (r *Refusal) Error() string { return fmt.Sprintf("update refused (%s): %v", r.Code, r.Err) }
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(code push.Code, err error) error { return &Refusal{Code: code, Err: err} }

// TargetSlot returns the image store slot the next image goes to: never
// the one holding the running image, so that a rollback can still reach
// it. The caller writes the bundle there and calls Verify, then Update.
func (s *Service) TargetSlot() (mem []byte, slot int, err error) {
	s.mu.Lock()
	cur := s.slot
	s.mu.Unlock()
	slot = 0
	if cur == 0 {
		slot = 1
	}
	mem, _, err = s.cfg.Machine.Slot(slot)
	return mem, slot, err
}

// Verify checks a bundle written into slot: signature, architecture,
// layout, size, the handoff format, what the jump needs, and that every
// task can save its state in a version the image's tasks read (its task
// manifest). It returns the image and those versions (for
// Options.Targets). On error the update is refused and nothing has
// changed.
func (s *Service) Verify(bundle []byte, slot int) (*image.Image, task.Targets, error) {
	limits := image.DefaultLimits()
	img, err := image.Verify(bundle, s.cfg.Trusted, limits)
	if err != nil {
		return nil, nil, refuse(push.CodeOf(err), err)
	}
	if err := s.cfg.Machine.CheckJump(img, slot); err != nil {
		return nil, nil, refuse(push.CodeBadLayout, err)
	}
	var targets task.Targets
	if img.TaskManifest != "" {
		specs, err := task.ParseManifest(img.TaskManifest)
		if err != nil {
			return nil, nil, refuse(push.CodeBadImage, err)
		}
		targets = task.ManifestTargets(specs)
		if err := s.cfg.Tasks.CheckTargets(targets); err != nil {
			return nil, nil, refuse(push.CodeHandoff, fmt.Errorf("the image cannot read this kernel's task state: %w", err))
		}
	}
	return img, targets, nil
}

// Options tune one update.
type Options struct {
	// QuiesceTimeout is the quiesce deadline; 0 means the service's.
	QuiesceTimeout time.Duration
	// Reply is the client's connection: it crosses the jump with the
	// others, and the new kernel answers on it.
	Reply net.Conn
	// Targets are the task schema versions the new image reads (from its
	// manifest); nil means each task's current version.
	Targets task.Targets
	// Progress, if set, hears each phase as it starts.
	Progress func(phase string)
	// Phases are steps the caller already timed (upload, verify); the
	// report lists them first.
	Phases []Phase

	// rollback marks a return to the previous image after a failed
	// health check (rollBack): the handoff is flagged FlagRollback, the
	// pending history entry is recorded as rolled back rather than a new
	// one added, and no slot is named to come back to.
	rollback bool
}

// Update replaces the running kernel with img, staged in slot by the
// caller. It returns only if the update was refused or aborted, with the
// old kernel still serving: a *Refusal says why.
func (s *Service) Update(ctx context.Context, img *image.Image, slot int, opts Options) error {
	if !s.mu.TryLock() {
		return refuse(push.CodeBusy, errors.New("another update is in progress"))
	}
	defer s.mu.Unlock()
	m := s.cfg.Machine
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	phases := slices.Clone(opts.Phases)
	timed := func(name string, f func() error) error {
		progress(name)
		t0 := time.Now()
		err := f()
		phases = append(phases, Phase{name, time.Since(t0)})
		return err
	}
	var replyID uint32
	if opts.Reply != nil {
		id, ok := s.cfg.Network.SocketID(opts.Reply)
		if !ok {
			return refuse(push.CodeInternal, errors.New("the client's connection is not in the socket table"))
		}
		replyID = id
	}
	timeout := opts.QuiesceTimeout
	if timeout == 0 {
		timeout = s.cfg.QuiesceTimeout
	}

	// From here on, every failure undoes what was done and refuses.
	began := m.Clock()
	s.logf("update: to %s (build %x) from slot %d: quiescing", img.Version, img.BuildID[:8], slot)
	var qrep *task.QuiesceReport
	if err := timed("quiesce", func() (err error) {
		qrep, err = s.cfg.Tasks.QuiesceAll(ctx, timeout)
		return err
	}); err != nil {
		return refuse(push.CodeQuiesceTimeout, err)
	}
	_ = qrep
	abort := func(code push.Code, err error) error {
		if terr := s.cfg.Network.Thaw(); terr != nil {
			err = errors.Join(err, fmt.Errorf("reopening the network after the abort: %w", terr))
		}
		if _, rerr := s.cfg.Tasks.ResumeAll(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("resuming after the abort: %w", rerr))
		}
		return refuse(code, err)
	}
	if err := timed("freeze", s.cfg.Network.Freeze); err != nil {
		return abort(push.CodeInternal, fmt.Errorf("freeze the network: %w", err))
	}
	region, err := m.Region()
	if err != nil {
		return abort(push.CodeInternal, err)
	}
	var length int
	if err := timed("save", func() (err error) {
		length, err = s.save(region, img, slot, replyID, began.MonotonicNs, phases, opts, func() { progress("jump") })
		return err
	}); err != nil {
		handoff.Invalidate(region)
		return abort(push.CodeInternal, err)
	}
	// The save phase's own time cannot be inside the region it timed; the
	// new kernel's report takes it from the jump stamps instead.
	s.logf("update: saved %d bytes of state; jumping", length)
	if err := s.cfg.Network.Detach(); err != nil {
		// The NIC is reset; the connections cannot be carried back into
		// this kernel's stack either. Jumping is the way forward.
		s.logf("update: detach the NIC: %v (jumping anyway)", err)
	}
	err = m.Jump(img, slot, length)
	// Not reached unless the machine refused after CheckJump passed.
	return fmt.Errorf("service: jump: %w", err)
}

// save writes the whole handoff into region and returns its length.
//
// lastWords runs just before the network is exported: what it writes to
// a carried connection (the "jumping" progress message) is in that
// connection's send queue when the queues are saved, so the new kernel's
// stack delivers it. Anything written after the export would be lost, as
// the network is frozen.
func (s *Service) save(region []byte, img *image.Image, slot int, replyID uint32, began uint64, phases []Phase, opts Options, lastWords func()) (int, error) {
	m := s.cfg.Machine
	gen := s.generation + 1
	hdr := handoff.Header{Generation: gen, BuildID: m.BuildID()}
	if opts.rollback {
		hdr.Flags |= handoff.FlagRollback
	}
	enc, err := s.reg.NewEncoder(region, hdr)
	if err != nil {
		return 0, err
	}
	prev := uint32(NoSlot)
	if s.slot >= 0 && !opts.rollback {
		prev = uint32(s.slot)
	}
	var listenID uint32
	if s.listener != nil {
		listenID, _ = s.cfg.Network.ListenerID(s.listener)
	}
	pending := Pending{ReplySocket: replyID, ListenSocket: listenID, Slot: uint32(slot), PreviousSlot: prev, QuiesceBegan: began, Phases: slices.Clone(phases)}
	p, err := pending.Append(nil)
	if err != nil {
		return 0, err
	}
	if err := enc.Add(handoff.TypeUpdate, PendingVersion, 0, p); err != nil {
		return 0, fmt.Errorf("update section: %w", err)
	}
	lastWords()
	if _, err := s.cfg.Network.Save(enc); err != nil {
		return 0, fmt.Errorf("network: %w", err)
	}
	if _, err := s.cfg.Tasks.Save(enc, opts.Targets); err != nil {
		return 0, fmt.Errorf("tasks: %w", err)
	}
	now := m.Clock()
	hist := handoff.History{Entries: slices.Clone(s.history.Entries)}
	if last := hist.Last(); opts.rollback && last != nil {
		last.Outcome = handoff.OutcomeRolledBack
	} else {
		hist.Add(handoff.HistoryEntry{
			Generation: gen, FromVersion: m.Version(), ToVersion: img.Version,
			FromBuild: m.BuildID(), ToBuild: img.BuildID,
			StartedNs: now.WallNs, HandoffNs: now.WallNs, Outcome: handoff.OutcomePending,
		})
	}
	hb, err := hist.Append(nil)
	if err != nil {
		return 0, err
	}
	if err := enc.Add(handoff.TypeUpdateHistory, handoff.HistoryVersion, 0, hb); err != nil {
		return 0, fmt.Errorf("history: %w", err)
	}
	// The clock goes last, read as late as possible: the new kernel's
	// clock continues from the jump's own stamp, this one is for reports.
	c := m.Clock()
	clk := handoff.Clock{MonotonicNs: c.MonotonicNs, TSC: c.TSC, WallNs: c.WallNs, TSCHz: c.TSCHz}
	if err := enc.Add(handoff.TypeClock, handoff.ClockVersion, 0, clk.Append(nil)); err != nil {
		return 0, fmt.Errorf("clock: %w", err)
	}
	out, err := enc.Finish()
	if err != nil {
		return 0, err
	}
	return len(out), nil
}
