package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
)

// Service ports. Tests, `molt run` and the benchmarks forward these.
const (
	kvPort   = 11211
	echoPort = 7007
)

// configureTimeout bounds the IP configuration (the DHCP exchange); past
// it the services still start, on loopback and IPv6 link-local.
const configureTimeout = 30 * time.Second

// system is what the image runs: the stack, its NIC and the services.
type system struct {
	out   io.Writer
	stack *netstack.Stack
	nic   *board.NIC     // nil without a network card
	ep    *link.Endpoint // nil without a network card
	kv    *kv.Server
	echo  *echo.Server

	logMu sync.Mutex
}

// logf writes one console line; services call it from many goroutines.
func (s *system) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.out, "molt: "+format+"\n", args...)
}

// start brings up the network and the services. A missing network card is
// not an error (the image also boots without one); a card that fails to
// attach, a malformed ip= option or a port that cannot be bound is.
func start(cmdline string, out io.Writer) (*system, error) {
	s := &system{out: out}
	st, err := netstack.New(netstack.Config{Hostname: "molt", Logf: s.netLogf})
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
		ctx, cancel := context.WithTimeout(context.Background(), configureTimeout)
		err := st.Configure(ctx, ipc)
		cancel()
		if err != nil {
			// The machine stays reachable on its console; say why the
			// network is not.
			s.logf("net: configure %v: %v", ipc, err)
		} else if info, ok := st.Info(); ok {
			s.logf("net: %s %s", info.Config.Mode, prefixes(info.Addrs))
		}
	}

	if err := s.startServices(); err != nil {
		return nil, err
	}
	return s, nil
}

// netLogf passes the stack's diagnostics (DHCP progress) to the console.
func (s *system) netLogf(format string, args ...any) { s.logf("net: "+format, args...) }

func (s *system) startServices() error {
	store, err := kv.NewStore(kv.Config{})
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	s.kv = kv.NewServer(store, kv.ServerConfig{Logf: s.logf})
	_, kvl, err := s.stack.Listen("tcp", fmt.Sprintf(":%d", kvPort))
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	s.echo = echo.NewServer(echo.Config{Logf: s.logf})
	_, etl, err := s.stack.Listen("tcp", fmt.Sprintf(":%d", echoPort))
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	_, eul, err := s.stack.ListenPacket("udp", fmt.Sprintf(":%d", echoPort))
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	go s.serve("kv", func() error { return s.kv.Serve(kvl) })
	go s.serve("echo tcp", func() error { return s.echo.ServeTCP(etl) })
	go s.serve("echo udp", func() error { return s.echo.ServeUDP(eul) })
	where := "loopback"
	if info, ok := s.stack.Info(); ok && len(info.Addrs) > 0 {
		where = prefixes(info.Addrs)
	}
	s.logf("services ready on %s: kv tcp %d, echo tcp+udp %d", where, kvPort, echoPort)
	return nil
}

// serve runs a service loop and reports why it ended: a service that stops
// by itself is a fault the console must show.
func (s *system) serve(name string, loop func() error) {
	err := loop()
	if !errors.Is(err, kv.ErrServerClosed) && !errors.Is(err, echo.ErrServerClosed) {
		s.logf("%s: stopped: %v", name, err)
	}
}

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
	fmt.Fprintf(w, "echo :%d %+v\n", echoPort, s.echo.Stats())
	fmt.Fprintf(w, "uptime %v, frames in use %d\n", kernel.Uptime().Round(time.Millisecond), kernel.ReadMemStats().FramesInUse)
}

func prefixes(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, " ")
}
