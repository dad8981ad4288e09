package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/molt-os/molt/internal/moltvm"
	"github.com/molt-os/molt/internal/streamcheck"
	"github.com/molt-os/molt/qemu"
	"github.com/molt-os/molt/qemu/netns"
)

// The parts of `molt bench` that boot the default image with its services:
// the kv target of the kv benchmark (QEMU user networking with a host
// forward, as `make run` and the Linux guest), and the network benchmark
// (TCP throughput and round trips between the guest and Linux in a network
// namespace, over a TAP interface).

// moltGuest is a booted default image whose console is also kept in a
// log file, for the report of a failed run.
type moltGuest struct {
	*moltvm.Guest
	log *os.File
}

// bootMolt starts the image through start (qemu.Start, or a namespace's
// StartVM) with its console in consoleLog, and waits for its services.
func bootMolt(ctx context.Context, start moltvm.Starter, elf, accel, consoleLog string, opts ...qemu.Option) (*moltGuest, error) {
	if err := os.MkdirAll(filepath.Dir(consoleLog), 0o755); err != nil {
		return nil, err
	}
	log, err := os.Create(consoleLog)
	if err != nil {
		return nil, err
	}
	g, err := moltvm.Boot(ctx, start, log, append([]qemu.Option{qemu.Kernel(elf), qemu.Accel(accel)}, opts...)...)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("%w (console in %s)", err, consoleLog)
	}
	return &moltGuest{g, log}, nil
}

// stop powers the guest off; any other end is an error.
func (g *moltGuest) stop() error {
	defer g.log.Close()
	if err := g.Poweroff(); err != nil {
		return fmt.Errorf("%w (console in %s)", err, g.log.Name())
	}
	return nil
}

// moltTarget is molt's kv service, booted from elf on QEMU user networking
// with a host forward to guest port 11211 (the setup `make run` uses and
// linuxTarget copies). The accelerator molt got is stored in *gotAccel,
// so that the Linux guest started after it runs alike.
// cmdline is appended to the kernel command line (the target is named
// molt-kv-<cmdline> when it is not empty, for A/B runs such as molt.novdso).
func moltTarget(elf, accel, cmdline string, gotAccel *string) kvTarget {
	name := "molt-kv"
	if cmdline != "" {
		name += "-" + strings.TrimPrefix(cmdline, "molt.")
	}
	return kvTarget{
		Name: name,
		Start: func(ctx context.Context) (string, func() error, error) {
			port, err := freeLocalPort()
			if err != nil {
				return "", nil, err
			}
			g, err := bootMolt(ctx, qemu.Start, elf, accel, "build/bench/"+name+"-console.log", qemu.Append(cmdline),
				qemu.UserNet(guestMAC, qemu.Forward{Proto: "tcp", HostPort: port, GuestPort: guestKVPort}))
			if err != nil {
				return "", nil, err
			}
			*gotAccel, _ = g.VM.Accel()
			return fmt.Sprintf("127.0.0.1:%d", port), g.stop, nil
		},
	}
}

// netResult is what the network benchmark measured.
type netResult struct {
	// Round trips of 64-byte messages through the echo service on one
	// connection.
	RTTCount               int
	RTTP50, RTTP99, RTTMax time.Duration
	// Echo throughput: bytes per second in each direction, summed over
	// the connections, for 1 and for StreamConns connections.
	StreamBytes int64   // per connection, each way
	Stream1MBps float64 // MB/s each way, one connection
	StreamConns int
	StreamNMBps float64 // MB/s each way, StreamConns connections at once
}

// netBenchConfig bounds the network benchmark.
type netBenchConfig struct {
	RTTCount    int
	StreamBytes int
	StreamConns int
}

// benchNet boots the image on a TAP interface in a fresh network namespace
// (static 10.0.3.2/24) and measures TCP round trips and echo throughput
// from Linux's side. It needs root.
func benchNet(ctx context.Context, elf, accel string, cfg netBenchConfig, logf func(string, ...any)) (netResult, error) {
	var res netResult
	ns, err := netns.New()
	if err != nil {
		return res, err
	}
	defer ns.Close()
	g, err := bootMolt(ctx, ns.StartVM, elf, accel, "build/bench/molt-net-console.log", qemu.TAP(ns.TAP, guestMAC),
		qemu.Append(fmt.Sprintf("ip=%s,gw=%s", ns.GuestIPv4, ns.HostIPv4.Addr())))
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			g.VM.Kill()
			g.VM.Wait()
			g.log.Close()
		}
	}()
	echoAddr := netip.AddrPortFrom(ns.GuestIPv4.Addr(), guestEchoPort).String()

	// Round trips.
	c, err := ns.Dial(ctx, "tcp", echoAddr)
	if err != nil {
		return res, fmt.Errorf("net bench: %w", err)
	}
	rtts, err := roundTrips(c, cfg.RTTCount)
	c.Close()
	if err != nil {
		return res, fmt.Errorf("net bench: round trips: %w (guest console in %s)", err, g.log.Name())
	}
	res.RTTCount = len(rtts)
	res.RTTP50, res.RTTP99, res.RTTMax = rtts[len(rtts)/2], rtts[(len(rtts)-1)*99/100], rtts[len(rtts)-1]
	logf("net bench: %d round trips of 64 bytes: p50 %v, p99 %v, max %v", res.RTTCount, res.RTTP50, res.RTTP99, res.RTTMax)

	// Throughput, one connection and several at once.
	res.StreamBytes, res.StreamConns = int64(cfg.StreamBytes), cfg.StreamConns
	for _, conns := range []int{1, cfg.StreamConns} {
		mbps, err := echoThroughput(ctx, ns, echoAddr, conns, cfg.StreamBytes)
		if err != nil {
			return res, fmt.Errorf("net bench: %d streams: %w (guest console in %s)", conns, err, g.log.Name())
		}
		if conns == 1 {
			res.Stream1MBps = mbps
		} else {
			res.StreamNMBps = mbps
		}
		logf("net bench: %d connection(s) × %d bytes each way through echo: %.2f MB/s each way", conns, cfg.StreamBytes, mbps)
	}
	stopped = true
	return res, g.stop()
}

// roundTrips sends n 64-byte messages one at a time and times each echo.
func roundTrips(c net.Conn, n int) ([]time.Duration, error) {
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	msg := make([]byte, 64)
	got := make([]byte, 64)
	out := make([]time.Duration, n)
	for i := range out {
		msg[0] = byte(i)
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return nil, err
		}
		out[i] = time.Since(start)
		if got[0] != byte(i) {
			return nil, fmt.Errorf("round trip %d: echo of another message", i)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// echoThroughput streams size checksummed bytes each way on each of conns
// connections at once and returns MB/s (10^6 bytes) each way, in total.
func echoThroughput(ctx context.Context, ns *netns.NS, addr string, conns, size int) (float64, error) {
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := ns.Dial(ctx, "tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Minute))
		cs[i] = c
	}
	start := time.Now()
	failed := streamcheck.EchoAll(cs, size, 0)
	elapsed := time.Since(start)
	if len(failed) > 0 {
		return 0, fmt.Errorf("%d of %d streams failed, first: %w", len(failed), conns, failed[0])
	}
	return float64(conns*size) / elapsed.Seconds() / 1e6, nil
}
