package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/molt-os/molt/apps/echo"
	"github.com/molt-os/molt/apps/kv"
	"github.com/molt-os/molt/internal/board"
	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/kernel/shell"
	"github.com/molt-os/molt/netstack"
	"github.com/molt-os/molt/netstack/link"
	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/push"
	"github.com/molt-os/molt/updater/service"
	"github.com/molt-os/molt/updater/task"
)

// Service ports. Tests, `molt run` and the benchmarks forward these.
const (
	kvPort   = 11211
	echoPort = 7007
)

// configureTimeout bounds the IP configuration (the DHCP exchange); past
// it the services still start, on loopback and IPv6 link-local.
const configureTimeout = 30 * time.Second

// system is what the image runs: the stack, its NIC, the tasks and the
// update service.
type system struct {
	out   io.Writer
	stack *netstack.Stack
	nic   *board.NIC     // nil without a network card
	ep    *link.Endpoint // nil without a network card
	tasks *task.Table
	kv    *kv.Task
	echo  *echo.Task
	svc   *service.Service
	boot  *service.BootReport

	logMu sync.Mutex
}

// logf writes one console line; services call it from many goroutines.
func (s *system) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.out, "molt: "+format+"\n", args...)
}

// start brings up the network, the tasks and the update service: from the
// previous kernel's handoff when there is one, else from scratch. A missing
// network card is not an error (the image also boots without one); a card
// that fails to attach, a malformed ip= option or a port that cannot be
// bound is.
func start(cmdline string, out io.Writer) (*system, error) {
	s := &system{out: out}
	_, warm := kernel.Inherited()
	// A warm boot attaches the NIC gated, so that nothing reaches the
	// wire before the connections are rebuilt, and skips duplicate
	// address detection for the addresses the previous kernel verified.
	st, err := netstack.New(netstack.Config{Hostname: "molt", Logf: s.netLogf, StartGated: warm, SkipDAD: warm})
	if err != nil {
		return nil, err
	}
	s.stack = st
	ipc, err := netstack.ParseIPConfig(cmdline)
	if err != nil {
		return nil, err
	}
	nic, err := board.OpenNIC(cmdline, board.NICConfig{
		OnLinkChange: func(up bool) { s.logf("net: link %s", map[bool]string{true: "up", false: "down"}[up]) },
	})
	switch {
	case errors.Is(err, board.ErrNoNIC):
		s.logf("net: %v; services on loopback only", err)
	case err != nil:
		return nil, err
	default:
		s.nic = nic
		s.logf("net: %v", nic)
		if s.ep, err = link.New(nic); err != nil {
			return nil, fmt.Errorf("net: link endpoint: %w", err)
		}
		if err := st.AttachNIC(s.ep, nil); err != nil {
			return nil, fmt.Errorf("net: %w", err)
		}
	}
	if err := s.newTasks(); err != nil {
		return nil, err
	}
	netw := &service.StackNetwork{Stack: st, Fresh: func(ctx context.Context) error { return s.configure(ctx, ipc) }}
	if s.nic != nil {
		netw.Reset = s.nic.Close
	}
	trusted, err := image.TrustedKeys()
	if err != nil {
		return nil, fmt.Errorf("update: trusted keys: %w", err)
	}
	if len(trusted) == 0 {
		s.logf("update: no trusted image key built in; every push will be refused")
	}
	machine := service.KernelMachine{}
	if s.nic != nil {
		machine.Resets = append(machine.Resets, s.nic.ResetRegister())
	}
	s.svc, err = service.New(service.Config{
		Machine: machine, Network: netw, Tasks: s.tasks,
		Trusted: trusted, Logf: s.logf,
	})
	if err != nil {
		return nil, err
	}
	s.boot, err = s.svc.Boot(context.Background())
	if err != nil {
		return nil, err
	}
	s.reportBoot()
	go func() {
		if err := s.svc.Answer(s.boot); err != nil {
			s.logf("%v", err)
		}
	}()
	go func() {
		if err := s.svc.Serve(context.Background(), push.DefaultPort); err != nil {
			s.logf("update: service stopped: %v", err)
		}
	}()
	where := "loopback"
	if info, ok := s.stack.Info(); ok && len(info.Addrs) > 0 {
		where = prefixes(info.Addrs)
	}
	s.logf("services ready on %s: kv tcp %d, echo tcp+udp %d, update tcp %d", where, kvPort, echoPort, push.DefaultPort)
	return s, nil
}

// configure sets the NIC up from the command line's ip= (or DHCP) on a
// cold boot. A failure is logged, not fatal: the machine stays reachable on
// its console and on IPv6 link-local.
func (s *system) configure(ctx context.Context, ipc netstack.IPConfig) error {
	if s.nic == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, configureTimeout)
	defer cancel()
	if err := s.stack.Configure(ctx, ipc); err != nil {
		s.logf("net: configure %v: %v", ipc, err)
	} else if info, ok := s.stack.Info(); ok {
		s.logf("net: %s %s", info.Config.Mode, prefixes(info.Addrs))
	}
	return nil
}

// taskManifest lists this image's tasks and the state versions they read
// (layout.TaskManifestSymbol): a kernel this image is pushed to reads it
// from the file to save each task's state in a version this image reads.
// It is built from constants so that its bytes are in the file; newTasks
// checks that it matches the tasks it registers.
var taskManifest = task.ManifestHeader + kv.ManifestLine + echo.ManifestLine

// newTasks registers kv and echo in the process table.
func (s *system) newTasks() error {
	if want := task.FormatManifest(kv.TaskSpec(), echo.TaskSpec()); taskManifest != want {
		return fmt.Errorf("task manifest %q does not match the tasks %q", taskManifest, want)
	}
	socks := socketTable{s.stack}
	var err error
	s.kv, err = kv.NewTask(kv.TaskConfig{
		Server:  kv.ServerConfig{Logf: s.logf},
		Sockets: socks,
		Listen: func() (net.Listener, error) {
			_, l, err := s.stack.Listen("tcp", fmt.Sprintf(":%d", kvPort))
			return l, err
		},
	})
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	s.echo, err = echo.NewTask(echo.TaskConfig{
		Config:  echo.Config{Logf: s.logf},
		Sockets: socks,
		ListenTCP: func() (net.Listener, error) {
			_, l, err := s.stack.Listen("tcp", fmt.Sprintf(":%d", echoPort))
			return l, err
		},
		ListenUDP: func() (net.PacketConn, error) {
			_, pc, err := s.stack.ListenPacket("udp", fmt.Sprintf(":%d", echoPort))
			return pc, err
		},
	})
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	s.tasks = task.NewTable()
	if err := s.tasks.Register(kv.TaskSpec(), s.kv); err != nil {
		return err
	}
	return s.tasks.Register(echo.TaskSpec(), s.echo)
}

// reportBoot prints how this kernel came up.
func (s *system) reportBoot() {
	r := s.boot
	if !r.Warm {
		s.logf("cold boot: %s", r.Cold)
	} else {
		if r.RolledBack && r.HealthFailed {
			s.logf("rolled back: %s failed its health check before it committed; back on the previous image with the state %s had", r.From, r.From)
		} else if r.RolledBack {
			s.logf("rolled back: %s stopped with code %d before it committed; back on the previous image with the state it was handed", r.From, r.StopCode)
		}
		s.logf("warm boot: handoff generation %d from %s, blackout %v", r.Generation, r.From, r.Blackout.Round(time.Microsecond))
		var b strings.Builder
		for _, ph := range r.Phases {
			fmt.Fprintf(&b, " %s %v", ph.Name, ph.D.Round(time.Microsecond))
		}
		if j, ok := kernel.PreviousJump(); ok {
			fmt.Fprintf(&b, " | jump: copy %v zero %v boot %v kinit %v",
				j.Copy.Round(time.Microsecond), j.Zero.Round(time.Microsecond), j.Boot.Round(time.Microsecond), j.Kinit.Round(time.Microsecond))
		}
		s.logf("update phases:%s", b.String())
		s.logf("restored: network %v", r.Net)
		if r.RollbackArmed {
			s.logf("update: rollback to the previous image armed until the commit")
		}
		if r.Tasks != nil {
			for _, t := range r.Tasks.Tasks {
				s.logf("restored: task %s %s (schema v%d, %d bytes, %d sockets)", t.Name, t.Outcome, t.FromVersion, t.Bytes, len(t.Sockets))
			}
		}
	}
	if r.Problems != nil {
		s.logf("boot problems: %v", r.Problems)
	}
}

// socketTable lets tasks name their sockets by netstack ID.
type socketTable struct{ st *netstack.Stack }

func (t socketTable) Lookup(id task.SocketID) (any, bool) {
	return t.st.Lookup(netstack.SocketID(id))
}

func (t socketTable) ID(sock any) (task.SocketID, bool) {
	v, ok := sock.(interface{ ID() netstack.SocketID })
	if !ok {
		return 0, false
	}
	return task.SocketID(v.ID()), true
}

// netLogf passes the stack's diagnostics (DHCP progress) to the console.
func (s *system) netLogf(format string, args ...any) { s.logf("net: "+format, args...) }

func (s *system) registerCommands() {
	shell.Register("net", "addresses, sockets and NIC counters", s.netCommand)
	shell.Register("services", "service counters", s.servicesCommand)
}

func (s *system) netCommand(w io.Writer, _ []string) {
	if info, ok := s.stack.Info(); ok {
		fmt.Fprintf(w, "%s %s mtu %d, %s: %s\n", info.Name, info.MAC, info.MTU, info.Config.Mode, prefixes(info.Addrs))
		if info.Lease != nil {
			fmt.Fprintf(w, "lease from %v\n", info.Lease.Server)
		}
	} else {
		fmt.Fprintln(w, "no network card")
	}
	if s.nic != nil {
		fmt.Fprintf(w, "%v\ndriver %+v\n", s.nic, s.nic.Stats())
		fmt.Fprintf(w, "link %+v\n", s.ep.Stats())
	}
	fmt.Fprintf(w, "stack %+v\n", s.stack.Counters())
	socks := s.stack.List()
	fmt.Fprintf(w, "%d sockets:\n", len(socks))
	for _, si := range socks {
		fmt.Fprintf(w, "  %v\n", si)
	}
}

func (s *system) servicesCommand(w io.Writer, _ []string) {
	ks := s.kv.Store().Stats()
	fmt.Fprintf(w, "kv   :%d %+v\n", kvPort, ks)
	fmt.Fprintf(w, "echo :%d %+v\n", echoPort, s.echo.Server().Stats())
	fmt.Fprintf(w, "uptime %v, frames in use %d\n", kernel.Uptime().Round(time.Millisecond), kernel.ReadMemStats().FramesInUse)
}

func prefixes(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, " ")
}
