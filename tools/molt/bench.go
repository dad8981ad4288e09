package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/internal/memcload"
	"github.com/molt-os/molt/qemu"
)

// Boot benchmark: boot the default image several times and measure, per
// boot, the time from starting QEMU to the kernel's ready line (host
// clock), the kernel's own entry-to-ready time, and the frames in use at
// ready and after a second of idle. Absolute times under TCG are inflated;
// docs/performance.md reports them with the accelerator used.

var (
	readyRE  = regexp.MustCompile(`ready in ([0-9.]+) ms from entry \(kinit ([0-9.]+) ms\), (\d+) KiB of frames in use`)
	framesRE = regexp.MustCompile(`frames in use (\d+) \(`)
)

// bootSample is one measured boot.
type bootSample struct {
	HostToReadyMs  float64 `json:"host_to_ready_ms"`
	EntryToReadyMs float64 `json:"entry_to_ready_ms"`
	KinitMs        float64 `json:"kinit_ms"`
	ReadyKiB       int     `json:"ready_frames_kib"`
	IdleKiB        int     `json:"idle_frames_kib"`
}

type benchResult struct {
	Date    string         `json:"date"`
	Accel   string         `json:"accel"`
	Image   string         `json:"image"`
	Samples []bootSample   `json:"samples"`
	KV      []kvResult     `json:"kv,omitempty"`
	Net     *netResult     `json:"net,omitempty"`
	Update  []updateSample `json:"update,omitempty"`
}

// benchSuites are the parts of `molt bench`, in the order they run.
var benchSuites = []string{"boot", "kv", "net", "update"}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "bench [-suites boot,kv,net,update] [-n boots] [-accel auto|tcg|kvm] [-kv-rounds N] [-update-conns 1,100,1000] [-update-items 10000,200000] [-o results.json] [-svg dir]", stderr)
	suites := fs.String("suites", strings.Join(benchSuites, ","), "comma-separated `suites` to run: boot (boot time, idle memory), kv (memcslap against molt and Linux+memcached), net (TCP round trips and throughput to a netns peer; needs root), update (self-update blackout vs a cold reboot; needs root)")
	updConns := fs.String("update-conns", "1,100,1000", "update suite: `counts` of idle echo connections carried, each with 10,000 kv items")
	updItems := fs.String("update-items", "10000,200000", "update suite: kv item `counts`, each with one connection (10,000 is covered by -update-conns)")
	n := fs.Int("n", 7, "number of `boots` to measure")
	accel := fs.String("accel", qemu.DefaultAccel, "QEMU accelerator: auto, tcg or kvm")
	kvRounds := fs.Int("kv-rounds", 3, "measured memcslap `rounds` per kv target and test")
	kvConc := fs.Int("kv-concurrency", 8, "memcslap client `threads`")
	kvExec := fs.Int("kv-execute", 5000, "memcslap requests per `thread`")
	kvCompare := fs.String("kv-compare", "", "also load molt booted with these extra kernel command line `words` (e.g. molt.novdso), as a third kv target")
	netBytes := fs.Int("net-bytes", 16<<20, "`bytes` each way per connection in the throughput test")
	out := fs.String("o", "build/bench/results.json", "write the measurements as JSON to `file`")
	svg := fs.String("svg", "", "also draw the charts as SVG files into `dir` (docs/perf for the docs)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 1 || *n > 1000 {
		return fmt.Errorf("%w: -n %d out of range 1..1000", errUsage, *n)
	}
	if *kvRounds < 1 || *kvRounds > 100 {
		return fmt.Errorf("%w: -kv-rounds %d out of range 1..100", errUsage, *kvRounds)
	}
	if *netBytes < 1 || *netBytes > 1<<30 {
		return fmt.Errorf("%w: -net-bytes %d out of range 1..1 GiB", errUsage, *netBytes)
	}
	updCfg := updateBenchConfig{Reboot: updateScenario{"reboot", 100, 10000}}
	var err error
	if updCfg.Conns, err = countList("-update-conns", *updConns, 1, 5000); err != nil {
		return err
	}
	if updCfg.Items, err = countList("-update-items", *updItems, 1, 200000); err != nil {
		return err
	}
	run := map[string]bool{}
	for _, name := range strings.Split(*suites, ",") {
		if !slices.Contains(benchSuites, name) {
			return fmt.Errorf("%w: -suites: unknown suite %q (have %s)", errUsage, name, strings.Join(benchSuites, ", "))
		}
		run[name] = true
	}
	const elf = "build/bench.elf"
	fmt.Fprintln(stderr, "bench: building ./cmd/kernel")
	if _, err := image.Build(ctx, image.BuildOptions{Dir: ".", Package: "./cmd/kernel", Output: elf, Version: "bench", Stderr: stderr}); err != nil {
		return err
	}
	res := benchResult{Date: time.Now().UTC().Format(time.RFC3339), Image: "./cmd/kernel", Accel: *accel}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	if run["boot"] {
		for i := 0; i < *n; i++ {
			s, acc, err := benchBoot(ctx, elf, *accel)
			if err != nil {
				return fmt.Errorf("boot %d: %w", i+1, err)
			}
			res.Accel = acc
			res.Samples = append(res.Samples, s)
			fmt.Fprintf(stderr, "bench: boot %d/%d: QEMU start to ready %.1f ms, entry to ready %.2f ms, frames %d KiB at ready, %d KiB idle\n",
				i+1, *n, s.HostToReadyMs, s.EntryToReadyMs, s.ReadyKiB, s.IdleKiB)
		}
		printBench(stdout, res)
	}
	if run["kv"] {
		var got string
		molt := moltTarget(elf, *accel, "", &got)
		// The Linux guest starts after molt and takes the accelerator
		// molt got, so both run under the same one.
		linux := kvTarget{Name: "linux-memcached", Start: func(ctx context.Context) (string, func() error, error) {
			return linuxTarget("build/linuxguest", got, logf, false).Start(ctx)
		}}
		for _, test := range []string{"set", "get"} {
			load := memcload.Options{Concurrency: *kvConc, ExecuteNumber: *kvExec, Test: test, Flush: true}
			targets := []kvTarget{molt, linux}
			if *kvCompare != "" {
				var ignored string
				targets = append(targets, moltTarget(elf, *accel, *kvCompare, &ignored))
			}
			rs, err := benchKV(ctx, targets, load, *kvRounds, stderr)
			if err != nil {
				return err
			}
			res.KV = append(res.KV, rs...)
			args, _ := load.Args("ADDR")
			printKV(stdout, rs, "memcslap "+strings.Join(args[1:], " "), *kvRounds)
		}
		if got != "" {
			res.Accel = got
		}
	}
	if run["net"] {
		nr, err := benchNet(ctx, elf, res.Accel, netBenchConfig{RTTCount: 2000, StreamBytes: *netBytes, StreamConns: 8}, logf)
		if err != nil {
			return err
		}
		res.Net = &nr
		printNet(stdout, nr)
	}
	if run["update"] {
		samples, err := benchUpdate(ctx, res.Accel, updCfg, logf)
		if err != nil {
			return fmt.Errorf("update suite: %w", err)
		}
		res.Update = samples
		if !run["boot"] && !run["kv"] && len(samples) > 0 {
			res.Accel = samples[0].accel
		}
		printUpdate(stdout, samples)
	}
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		fmt.Fprintf(stderr, "bench: results written to %s\n", *out)
	}
	if *svg != "" {
		if err := writeBenchSVGs(*svg, res); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		fmt.Fprintf(stderr, "bench: charts written to %s\n", *svg)
	}
	return nil
}

func printNet(w io.Writer, r netResult) {
	fmt.Fprintf(w, "net benchmark: molt on a TAP interface, Linux in a network namespace as the peer\n")
	fmt.Fprintf(w, "%-44s %10v\n", fmt.Sprintf("TCP round trip, 64 B, p50 (%d)", r.RTTCount), r.RTTP50.Round(time.Microsecond))
	fmt.Fprintf(w, "%-44s %10v\n", "TCP round trip, 64 B, p99", r.RTTP99.Round(time.Microsecond))
	fmt.Fprintf(w, "%-44s %10v\n", "TCP round trip, 64 B, max", r.RTTMax.Round(time.Microsecond))
	fmt.Fprintf(w, "%-44s %10.2f\n", "echo throughput, 1 connection (MB/s each way)", r.Stream1MBps)
	fmt.Fprintf(w, "%-44s %10.2f\n", fmt.Sprintf("echo throughput, %d connections (MB/s each way)", r.StreamConns), r.StreamNMBps)
}

// benchBoot boots once, waits for the ready line, lets the kernel idle for
// a second, asks the shell for `mem`, and powers off.
func benchBoot(ctx context.Context, elf, accel string) (bootSample, string, error) {
	var s bootSample
	inR, inW := io.Pipe()
	conR, conW := io.Pipe()
	start := time.Now()
	vm, err := qemu.Start(ctx, qemu.Kernel(elf), qemu.Accel(accel), qemu.Stdin(inR), qemu.Console(conW), qemu.Timeout(2*time.Minute))
	if err != nil {
		return s, "", err
	}
	var wg sync.WaitGroup
	var scanErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer inW.Close()
		sc := bufio.NewScanner(conR)
		ready := false
		for sc.Scan() {
			line := sc.Text()
			if m := readyRE.FindStringSubmatch(line); m != nil && !ready {
				ready = true
				s.HostToReadyMs = ms(time.Since(start))
				s.EntryToReadyMs, _ = strconv.ParseFloat(m[1], 64)
				s.KinitMs, _ = strconv.ParseFloat(m[2], 64)
				s.ReadyKiB, _ = strconv.Atoi(m[3])
				go func() {
					time.Sleep(time.Second)
					io.WriteString(inW, "mem\n")
				}()
			}
			if m := framesRE.FindStringSubmatch(line); m != nil && ready {
				frames, _ := strconv.Atoi(m[1])
				s.IdleKiB = frames * 4
				io.WriteString(inW, "poweroff\n")
			}
		}
		if !ready {
			scanErr = fmt.Errorf("the kernel never printed its ready line")
		}
		io.Copy(io.Discard, conR)
	}()
	r, err := vm.Wait()
	conW.Close()
	wg.Wait()
	if err != nil {
		return s, "", err
	}
	if scanErr != nil {
		return s, "", scanErr
	}
	if r.Code != 0 {
		return s, "", fmt.Errorf("kernel did not power off cleanly: %s", r.Describe())
	}
	if s.IdleKiB == 0 {
		return s, "", fmt.Errorf("no answer to the shell's mem command")
	}
	return s, r.Accel, nil
}

func printBench(w io.Writer, r benchResult) {
	col := func(f func(bootSample) float64) (min, med, max float64) {
		v := make([]float64, len(r.Samples))
		for i, s := range r.Samples {
			v[i] = f(s)
		}
		sort.Float64s(v)
		return v[0], v[len(v)/2], v[len(v)-1]
	}
	fmt.Fprintf(w, "boot benchmark: %d boots of %s under %s\n", len(r.Samples), r.Image, strings.ToUpper(r.Accel))
	fmt.Fprintf(w, "%-28s %10s %10s %10s\n", "measurement", "min", "median", "max")
	for _, row := range benchRows {
		lo, med, hi := col(row.f)
		fmt.Fprintf(w, "%-28s %10.1f %10.1f %10.1f\n", row.name+" ("+row.unit+")", lo, med, hi)
	}
}

// benchRows are the measurements of a boot sample, in report order; the
// chart draws the time rows (unit "ms").
var benchRows = []struct {
	name, unit string
	f          func(bootSample) float64
}{
	{"QEMU start to ready", "ms", func(s bootSample) float64 { return s.HostToReadyMs }},
	{"entry to ready", "ms", func(s bootSample) float64 { return s.EntryToReadyMs }},
	{"  of which kinit", "ms", func(s bootSample) float64 { return s.KinitMs }},
	{"frames at ready", "KiB", func(s bootSample) float64 { return float64(s.ReadyKiB) }},
	{"frames after 1 s idle", "KiB", func(s bootSample) float64 { return float64(s.IdleKiB) }},
}

// countList parses a comma-separated list of counts, each in lo..hi.
func countList(flag, s string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%w: %s: %q is not a count in %d..%d", errUsage, flag, f, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}
