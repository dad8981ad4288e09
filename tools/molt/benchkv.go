package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/molt-os/molt/internal/linuxguest"
	"github.com/molt-os/molt/internal/memcload"
	"github.com/molt-os/molt/qemu"
)

// KV benchmark: the same memcslap load (package memcload) against several
// memcached-compatible servers in one run, typically molt's kv service and
// Debian's memcached in a Linux guest under the same QEMU settings
// (package linuxguest), with the host's memcached as a reference that has
// no virtualisation in the way.
//
// All targets are booted first and stay up for the whole run. Each gets
// one unmeasured warm-up run (connections, page faults, the guest's
// caches), then the rounds alternate between targets, reversing the order
// every other round (A B, B A, A B, ...), so that a drift in the host's
// load (a noisy 2-core machine under TCG) falls on all targets alike
// rather than on whichever ran last. Medians, not means, summarise the
// rounds because one disturbed round should not move the result.

// kvTarget is a server to load. Start boots it and returns a host:port
// on 127.0.0.1 where it answers memcached requests, and a function that
// stops it; stop's error says the server did not survive the run.
type kvTarget struct {
	Name  string
	Start func(ctx context.Context) (addr string, stop func() error, err error)
}

// kvResult is one target's measurements.
type kvResult struct {
	Name    string
	Addr    string
	Samples []memcload.Result // one per round, in round order
	// Medians over the rounds.
	OpsPerSec   float64
	MeanLatency time.Duration
	// Ratio is OpsPerSec over the first target's OpsPerSec.
	Ratio float64
	// Latency is the round-trip distribution of single gets on one
	// connection (memcslap reports no percentiles).
	Latency memcload.Latency
}

// kvLatencyGets is the number of gets that measure the latency percentiles.
var kvLatencyGets = 2000

// kvReadyTimeout bounds the wait for a started target to answer (a
// variable for tests).
var kvReadyTimeout = 2 * time.Minute

// benchKV boots the targets, warms each with one run of load, measures
// rounds runs per target alternating between them, stops them and prints
// a table to stdout. Any failed run (memcload reports errors and failed
// requests as errors) or failed stop ends the benchmark with an error:
// a comparison in which one side dropped requests is not a comparison.
// When only stopping fails, the results are returned with the error.
func benchKV(ctx context.Context, targets []kvTarget, load memcload.Options, rounds int, stdout io.Writer) (_ []kvResult, err error) {
	if len(targets) == 0 {
		return nil, errors.New("kv bench: no targets")
	}
	if rounds < 1 {
		return nil, fmt.Errorf("kv bench: %d rounds; want at least 1", rounds)
	}
	args, err := load.Args("ADDR")
	if err != nil {
		return nil, fmt.Errorf("kv bench: %w", err)
	}
	results := make([]kvResult, len(targets))
	var stops []func() error
	defer func() {
		// Stop in reverse order of starting; a stop error matters even
		// when the run succeeded.
		for i := len(stops) - 1; i >= 0; i-- {
			if serr := stops[i](); serr != nil {
				err = errors.Join(err, fmt.Errorf("kv bench: stopping %s: %w", targets[i].Name, serr))
			}
		}
	}()

	for i, t := range targets {
		start := time.Now()
		addr, stop, err := t.Start(ctx)
		if err != nil {
			return nil, fmt.Errorf("kv bench: starting %s: %w", t.Name, err)
		}
		stops = append(stops, stop)
		rctx, cancel := context.WithTimeout(ctx, kvReadyTimeout)
		version, err := memcload.WaitReady(rctx, addr)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kv bench: %s: %w", t.Name, err)
		}
		results[i] = kvResult{Name: t.Name, Addr: addr}
		fmt.Fprintf(stdout, "kv bench: %s (%s) answers on %s after %v\n", t.Name, version, addr, time.Since(start).Round(time.Millisecond))
	}
	for i, t := range targets {
		r, err := memcload.Run(ctx, results[i].Addr, load)
		if err != nil {
			return nil, fmt.Errorf("kv bench: warming %s: %w", t.Name, err)
		}
		fmt.Fprintf(stdout, "kv bench: warm-up %s: %v\n", t.Name, r)
	}
	for round := 0; round < rounds; round++ {
		for _, i := range roundOrder(len(targets), round) {
			r, err := memcload.Run(ctx, results[i].Addr, load)
			if err != nil {
				return nil, fmt.Errorf("kv bench: round %d, %s: %w", round+1, targets[i].Name, err)
			}
			results[i].Samples = append(results[i].Samples, r)
			fmt.Fprintf(stdout, "kv bench: round %d/%d %s: %v\n", round+1, rounds, targets[i].Name, r)
		}
	}
	for i, t := range targets {
		l, err := memcload.MeasureLatency(ctx, results[i].Addr, kvLatencyGets)
		if err != nil {
			return nil, fmt.Errorf("kv bench: latency of %s: %w", t.Name, err)
		}
		results[i].Latency = l
		fmt.Fprintf(stdout, "kv bench: latency %s: %v\n", t.Name, l)
	}
	for i := range results {
		var ops []float64
		var lat []time.Duration
		for _, s := range results[i].Samples {
			ops = append(ops, s.OpsPerSec)
			lat = append(lat, s.MeanLatency)
		}
		results[i].OpsPerSec = median(ops)
		results[i].MeanLatency = median(lat)
	}
	for i := range results {
		results[i].Ratio = results[i].OpsPerSec / results[0].OpsPerSec
	}
	printKV(stdout, results, "memcslap "+strings.Join(args[1:], " "), rounds)
	return results, nil
}

// roundOrder is the order in which round r visits n targets: forward on
// even rounds, backward on odd ones.
func roundOrder(n, r int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
		if r%2 == 1 {
			o[i] = n - 1 - i
		}
	}
	return o
}

// median returns the middle value, or the mean of the two middle values.
func median[T int64 | float64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printKV(w io.Writer, rs []kvResult, load string, rounds int) {
	fmt.Fprintf(w, "kv benchmark: %s, %d rounds per target (medians)\n", load, rounds)
	fmt.Fprintf(w, "%-16s %10s %10s %10s %10s %8s %10s %10s %10s\n", "target", "ops/s", "min", "max", "mean lat", "ratio", "get p50", "get p99", "get max")
	for _, r := range rs {
		lo, hi := r.Samples[0].OpsPerSec, r.Samples[0].OpsPerSec
		for _, s := range r.Samples {
			lo, hi = min(lo, s.OpsPerSec), max(hi, s.OpsPerSec)
		}
		us := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
		fmt.Fprintf(w, "%-16s %10.0f %10.0f %10.0f %10s %8.2f %10s %10s %10s\n", r.Name, r.OpsPerSec, lo, hi, us(r.MeanLatency), r.Ratio,
			us(r.Latency.P50), us(r.Latency.P99), us(r.Latency.Max))
	}
	fmt.Fprintf(w, "ratio: ops/s over %s's; get percentiles: %d sequential gets on one connection\n", rs[0].Name, kvLatencyGets)
}

// linuxTarget is Debian's memcached in the Linux guest of package
// linuxguest, built (or found cached) in buildDir and booted with accel,
// which must be "tcg" or "kvm" (pass the accelerator molt's VM got, so
// both run alike). logf receives build progress (downloads, packing), and
// with console also the guest's console; it may be nil.
func linuxTarget(buildDir, accel string, logf func(format string, args ...any), console bool) kvTarget {
	return kvTarget{
		Name: "linux-memcached",
		Start: func(ctx context.Context) (string, func() error, error) {
			g, err := linuxguest.Build(ctx, buildDir, logf)
			if err != nil {
				return "", nil, err
			}
			port, err := freeLocalPort()
			if err != nil {
				return "", nil, err
			}
			var extra []qemu.Option
			if logf != nil && console {
				extra = append(extra, qemu.Logf(logf))
			}
			vm, err := linuxguest.Boot(ctx, g, linuxguest.BootConfig{HostPort: port, Accel: accel}, extra...)
			if err != nil {
				return "", nil, err
			}
			stop := func() error {
				vm.Kill()
				r, err := vm.Wait()
				switch {
				case errors.Is(err, qemu.ErrKilled):
					return nil
				case err == nil:
					return fmt.Errorf("the Linux guest ended during the benchmark: %s", r.Describe())
				}
				return err
			}
			return vm.Addr, stop, nil
		},
	}
}

// hostTarget is Debian's memcached on the host (memcload.StartServer, with
// the guest's -m 64 -t 1): the reference without a VM.
func hostTarget() kvTarget {
	return kvTarget{
		Name: "host-memcached",
		Start: func(ctx context.Context) (string, func() error, error) {
			s, err := memcload.StartServer(ctx)
			if err != nil {
				return "", nil, err
			}
			return s.Addr, s.Stop, nil
		},
	}
}

// freeLocalPort returns a port on 127.0.0.1 that was free a moment ago,
// for QEMU's host forward.
func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
