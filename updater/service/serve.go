package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/molt-os/molt/updater/push"
)

// Timeouts of the push connection on the old side. The upload has a
// deadline proportional to nothing: a client that stalls for idleTimeout
// between two reads is dropped, so a dead client cannot hold the update
// slot for ever.
const (
	idleTimeout   = 30 * time.Second
	hangupTimeout = 2 * time.Second
)

// Listen returns the update service's listener on port: the one the
// previous kernel carried over, or a new one.
func (s *Service) Listen(port int) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return s.listener, nil
	}
	if s.listenID != 0 {
		if l, ok := s.cfg.Network.Listener(s.listenID); ok {
			s.listener = l
			return l, nil
		}
		s.logf("update: the push listener (socket %d) did not come across; opening a new one", s.listenID)
	}
	l, err := s.cfg.Network.Listen(port)
	if err != nil {
		return nil, err
	}
	s.listener = l
	return l, nil
}

// Serve accepts push connections on the service's listener (Listen) until
// it is closed. Each runs in its own goroutine; a second client while an
// update runs is refused as busy.
func (s *Service) Serve(ctx context.Context, port int) error {
	l, err := s.Listen(port)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go s.handle(ctx, c)
	}
}

// handle runs one push: receive the bundle into the target slot, verify
// it, update. It returns only when the update was refused or aborted; on
// success the jump ends this kernel and the next one answers on c.
func (s *Service) handle(ctx context.Context, c net.Conn) {
	stalled := func() { c.SetReadDeadline(time.Now().Add(idleTimeout)) }
	stalled()
	mem, slot, err := s.TargetSlot()
	if err != nil {
		s.refuse(c, push.CodeInternal, err)
		return
	}
	if !s.stagingLock.TryLock() {
		s.refuse(c, push.CodeBusy, errors.New("another image is being received or an update is in progress"))
		return
	}
	defer s.stagingLock.Unlock()
	t0 := time.Now()
	req, err := push.ReadRequestInto(c, mem, func(got, total int64) {
		stalled()
		push.WriteProgress(c, push.Progress{Stage: push.StageReceiving, Done: uint64(got), Total: uint64(total)})
	})
	if err != nil {
		s.refuse(c, push.CodeOf(err), err)
		return
	}
	upload := time.Since(t0)
	c.SetReadDeadline(time.Time{})
	push.WriteProgress(c, push.Progress{Stage: push.StageVerifying})
	t0 = time.Now()
	img, targets, err := s.Verify(req.Bundle, slot)
	if err != nil {
		s.refuse(c, codeOf(err), err)
		return
	}
	verify := time.Since(t0)
	s.logf("update: received %s (%d bytes in %v) from %s, verified in %v", img.Version, len(req.Bundle), upload.Round(time.Millisecond), c.RemoteAddr(), verify.Round(time.Millisecond))
	if err := push.Accept(c); err != nil {
		s.logf("update: %s went away: %v", c.RemoteAddr(), err)
		c.Close()
		return
	}
	err = s.Update(ctx, img, slot, Options{
		QuiesceTimeout: req.QuiesceDeadline,
		Reply:          c,
		Targets:        targets,
		Phases:         []Phase{{"upload", upload}, {"verify", verify}},
		Progress: func(phase string) {
			stage := map[string]push.Stage{"quiesce": push.StageQuiescing, "save": push.StageSaving, "jump": push.StageJumping}[phase]
			if stage != 0 {
				push.WriteProgress(c, push.Progress{Stage: stage})
			}
		},
	})
	s.refuse(c, codeOf(err), err)
}

func codeOf(err error) push.Code {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code
	}
	return push.CodeInternal
}

// refuse tells the client why, logs it, and hangs up.
func (s *Service) refuse(c net.Conn, code push.Code, err error) {
	var r *Refusal
	if errors.As(err, &r) {
		err = r.Err // the code travels separately
	}
	s.logf("update: refused %s: %s: %v", c.RemoteAddr(), code, err)
	push.Refuse(c, code, err.Error())
	push.Hangup(c, 64<<20, hangupTimeout)
}

// Answer sends the update report to the client whose push started this
// kernel (BootReport.Reply), then hangs up. Call it after Boot.
func (s *Service) Answer(rep *BootReport) error {
	if rep == nil || rep.Reply == nil {
		return nil
	}
	r := s.pushReport(rep)
	err := push.WriteReport(rep.Reply, r)
	if herr := push.Hangup(rep.Reply, 1<<20, hangupTimeout); err == nil {
		err = herr
	}
	if err != nil {
		return fmt.Errorf("service: answer the push client: %w", err)
	}
	return nil
}

// pushReport turns a BootReport into the report record the client reads.
func (s *Service) pushReport(rep *BootReport) *push.Report {
	m := s.cfg.Machine
	r := &push.Report{
		Version: m.Version(), BuildID: m.BuildID(), PrevVersion: rep.From,
		Generation: rep.Generation, Blackout: rep.Blackout,
	}
	if last := s.history.Last(); last != nil {
		r.PrevBuildID = last.FromBuild
		if rep.RolledBack {
			r.PrevBuildID = last.ToBuild // the image that failed
		}
	}
	for _, ph := range rep.Phases {
		r.Phases = append(r.Phases, push.Phase{Name: ph.Name, Duration: ph.D})
	}
	r.Restored.Items = rep.Items
	if rep.Tasks != nil {
		r.Restored.Tasks = uint64(rep.Tasks.Restored)
		for _, t := range rep.Tasks.Tasks {
			line := fmt.Sprintf("task %s: %s", t.Name, t.Outcome)
			if t.FromVersion != 0 {
				line += fmt.Sprintf(" from schema v%d, %d bytes in %v", t.FromVersion, t.Bytes, t.Duration.Round(time.Microsecond))
			}
			if t.Err != nil {
				line += ": " + t.Err.Error()
			}
			r.Lines = append(r.Lines, line)
		}
	}
	for k, v := range rep.Net {
		if k == "tcp" || k == "udp" || k == "listeners" {
			r.Restored.Connections += uint64(v)
		}
	}
	if rep.RolledBack {
		r.Lines = append([]string{fmt.Sprintf("rolled back: %s stopped with code %d before it committed; %s runs again with the state it had handed over",
			rep.From, rep.StopCode, m.Version())}, r.Lines...)
	}
	if rep.Problems != nil {
		r.Lines = append(r.Lines, "problems: "+rep.Problems.Error())
	}
	return r
}
