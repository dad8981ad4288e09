package main

import (
	"context"
	"errors"
	"github.com/molt-os/molt/internal/testtool"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/internal/memcload"
	"github.com/molt-os/molt/qemu"
)

func needMemcached(t *testing.T) {
	t.Helper()
	testtool.Find(t, "libmemcached-tools", "memcslap")
	testtool.Find(t, "memcached", "memcached")
}

func TestRoundOrder(t *testing.T) {
	var got []string
	for r := 0; r < 3; r++ {
		got = append(got, strings.Trim(strings.Join(strings.Fields(strings.Trim(fmtInts(roundOrder(3, r)), "[]")), " "), " "))
	}
	if want := []string{"0 1 2", "2 1 0", "0 1 2"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("roundOrder = %q; want %q", got, want)
	}
	if median([]float64{3, 1, 2}) != 2 || median([]float64{4, 1, 3, 2}) != 2.5 || median([]time.Duration{5}) != 5 {
		t.Errorf("median wrong")
	}
}

func fmtInts(v []int) string {
	var b strings.Builder
	for _, x := range v {
		b.WriteString(" " + string(rune('0'+x)))
	}
	return b.String()
}

// TestBenchKVHost runs the benchmark against two host memcached servers:
// fast, and it checks the rounds, medians and ratios on real output.
func TestBenchKVHost(t *testing.T) {
	needMemcached(t)
	a, b := hostTarget(), hostTarget()
	b.Name = "host-memcached-2"
	var out strings.Builder
	rs, err := benchKV(t.Context(), []kvTarget{a, b}, memcload.Options{Concurrency: 2, ExecuteNumber: 1000, Test: "get"}, 3, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if len(rs) != 2 {
		t.Fatalf("%d results; want 2", len(rs))
	}
	for _, r := range rs {
		if len(r.Samples) != 3 {
			t.Errorf("%s: %d samples; want 3", r.Name, len(r.Samples))
		}
		for _, s := range r.Samples {
			if s.Ops != 2000 || s.Failures != 0 || s.Test != "get" {
				t.Errorf("%s: sample %+v", r.Name, s)
			}
		}
		if r.OpsPerSec <= 0 || r.MeanLatency <= 0 {
			t.Errorf("%s: medians %v ops/s, %v", r.Name, r.OpsPerSec, r.MeanLatency)
		}
	}
	if rs[0].Ratio != 1 || rs[1].Ratio != rs[1].OpsPerSec/rs[0].OpsPerSec {
		t.Errorf("ratios %v, %v", rs[0].Ratio, rs[1].Ratio)
	}
	for _, want := range []string{"kv benchmark: memcslap --concurrency=2 --execute-number=1000 --test=get, 3 rounds", "host-memcached-2", "round 2/3 host-memcached-2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestBenchKVFailures: a target that cannot start, or whose server dies
// under the benchmark, fails the run, and started targets are stopped.
func TestBenchKVFailures(t *testing.T) {
	needMemcached(t)
	stopped := 0
	counted := kvTarget{Name: "host", Start: func(ctx context.Context) (string, func() error, error) {
		addr, stop, err := hostTarget().Start(ctx)
		return addr, func() error { stopped++; return stop() }, err
	}}
	broken := kvTarget{Name: "broken", Start: func(context.Context) (string, func() error, error) {
		return "", nil, errors.New("no image")
	}}
	load := memcload.Options{Concurrency: 1, ExecuteNumber: 200}
	_, err := benchKV(t.Context(), []kvTarget{counted, broken}, load, 1, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "starting broken: no image") {
		t.Errorf("benchKV with a broken target: %v", err)
	}
	if stopped != 1 {
		t.Errorf("started target stopped %d times; want 1", stopped)
	}

	if _, err := benchKV(t.Context(), []kvTarget{counted}, load, 0, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "0 rounds") {
		t.Errorf("benchKV with 0 rounds: %v", err)
	}

	// A stop that reports the server died: the results come back, with
	// the error.
	dies := kvTarget{Name: "dies", Start: func(ctx context.Context) (string, func() error, error) {
		addr, stop, err := hostTarget().Start(ctx)
		return addr, func() error { stop(); return errors.New("server crashed") }, err
	}}
	rs, err := benchKV(t.Context(), []kvTarget{dies}, load, 1, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "stopping dies: server crashed") || len(rs) != 1 {
		t.Errorf("benchKV with a failing stop: %d results, %v", len(rs), err)
	}

	// A target whose address never answers.
	defer func(d time.Duration) { kvReadyTimeout = d }(kvReadyTimeout)
	kvReadyTimeout = time.Second
	silent := kvTarget{Name: "silent", Start: func(ctx context.Context) (string, func() error, error) {
		addr, stop, err := hostTarget().Start(ctx)
		if err == nil {
			err = stop() // nothing listens there now
		}
		return addr, func() error { return nil }, err
	}}
	if _, err := benchKV(t.Context(), []kvTarget{silent}, load, 1, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "silent:") || !strings.Contains(err.Error(), "never answered") {
		t.Errorf("benchKV with a silent target: %v", err)
	}
}

// TestBenchKVLinux is the real comparison on a small scale: the Linux
// guest under TCG against the host's memcached.
func TestBenchKVLinux(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a Linux guest under TCG")
	}
	needMemcached(t)
	if err := qemu.Available(); err != nil {
		t.Skip(err)
	}
	for _, tool := range []string{"apt-get", "dpkg-deb", "ldd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the Linux guest is built from Debian packages: %v", tool, err)
		}
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "build", "linuxguest")
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	var out strings.Builder
	rs, err := benchKV(ctx, []kvTarget{linuxTarget(dir, "tcg", t.Logf, true), hostTarget()},
		memcload.Options{Concurrency: 4, ExecuteNumber: 2000, Test: "set"}, 2, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Name != "linux-memcached" || len(rs[0].Samples) != 2 || rs[0].Ratio != 1 {
		t.Errorf("linux result %+v", rs[0])
	}
	// The host runs memcached natively; the guest runs it under TCG
	// behind QEMU's user networking. Anything else means the benchmark
	// measured something other than the servers.
	if rs[1].Ratio <= 1 {
		t.Errorf("host memcached at %.0f ops/s is not faster than the TCG guest at %.0f ops/s", rs[1].OpsPerSec, rs[0].OpsPerSec)
	}
}

// buildKernel builds the default image for the benchmark tests.
func buildKernel(t *testing.T) string {
	t.Helper()
	needGo(t)
	return qemu.BuildT(t, "../..", "./cmd/kernel", "bench-test")
}

// TestBenchKVMolt runs the kv benchmark against molt's kv service (booted
// on user networking with a host forward, as in `make bench`) and the
// host's memcached, and the network benchmark against molt on a TAP.
func TestBenchMolt(t *testing.T) {
	needMemcached(t)
	elf := buildKernel(t)
	t.Chdir(t.TempDir()) // console logs go to build/bench here
	var got string
	var out strings.Builder
	rs, err := benchKV(t.Context(), []kvTarget{moltTarget(elf, "tcg", "", &got), hostTarget()},
		memcload.Options{Concurrency: 4, ExecuteNumber: 1000, Test: "get", Flush: true}, 1, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if got != "tcg" {
		t.Errorf("molt target reports accelerator %q; want tcg", got)
	}
	if rs[0].Name != "molt-kv" || len(rs[0].Samples) != 1 || rs[0].Samples[0].Ops != 4000 || rs[0].Latency.N != kvLatencyGets {
		t.Errorf("molt result %+v", rs[0])
	}

	t.Run("net", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: creates a network namespace")
		}
		nr, err := benchNet(t.Context(), elf, "tcg", netBenchConfig{RTTCount: 200, StreamBytes: 1 << 20, StreamConns: 4}, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if nr.RTTCount != 200 || nr.RTTP50 <= 0 || nr.RTTP50 > nr.RTTP99 || nr.RTTP99 > nr.RTTMax || nr.Stream1MBps <= 0 || nr.StreamNMBps <= 0 {
			t.Errorf("net result %+v", nr)
		}
	})
}
