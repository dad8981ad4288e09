// Package memcload drives Debian's memcslap (package libmemcached-tools)
// against a memcached-compatible server and parses its summary, so that
// molt's kv service and Debian's memcached are measured by the same
// client, built by someone else, with the same flags.
//
// # What memcslap measures
//
// memcslap (libmemcached 1.1) generates ExecuteNumber random pairs (keys of
// 20-60 bytes, values of 50-5000 bytes), then starts Concurrency threads,
// each with its own connection, and times the phase in which every thread
// works through all the pairs one request at a time:
//
//   - "set": each thread sets every pair.
//   - "get": the pairs are first set once from the main thread (reported as
//     the load phase, not timed with the rest), then each thread gets
//     ExecuteNumber randomly chosen keys.
//
// It prints one line per phase, with times to the millisecond:
//
//	Time to set            8000 keys by    4 threads:     0.177 seconds.
//
// where the count is of requests that succeeded. It prints no latency
// figures; Result.MeanLatency is derived from the timed phase (each thread
// has one request outstanding, so latency = elapsed * threads / ops).
//
// memcslap exits with status 0 even when every request failed: it reports
// fatal errors ("Fatal error for key ...", for example CONNECTION FAILURE)
// on standard error and counts only successes. A get that misses is
// silent. Run therefore treats any standard error output, and any
// shortfall between the requests issued and the requests counted, as a
// failure of the run, and quotes memcslap's output in the error.
//
// Misses also come from evictions: the pairs average about 2.5 KB, so with
// memcached -m 64 an ExecuteNumber of 20000 (50 MB of values plus slab
// overhead) loses about a third of the keys before the get phase, while
// 15000 fits. Keep the working set inside the server's memory, or the two
// servers compared do different work.
package memcload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultBinary is the memcslap executable looked up in PATH.
const DefaultBinary = "memcslap"

// Options configure one memcslap run.
type Options struct {
	// Binary is the memcslap executable; default DefaultBinary.
	Binary string
	// Concurrency is the number of client threads (and connections);
	// default 1.
	Concurrency int
	// ExecuteNumber is the number of requests each thread issues; default
	// 10000 (memcslap's default).
	ExecuteNumber int
	// Test is "set" or "get" (default "set"). memcslap silently runs a
	// get test for a name it does not know, so others are refused here.
	Test string
	// BinaryProtocol selects the memcached binary protocol instead of
	// the text protocol.
	BinaryProtocol bool
	// Flush sends flush_all before the run, so that earlier runs' pairs
	// do not compete for the server's memory.
	Flush bool
	// Command, if not nil, makes the command that runs memcslap, for a
	// client that must run elsewhere than in this process's network
	// namespace (netns.NS.Command). Run sets its output and environment.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
}

func (o Options) withDefaults() (Options, error) {
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.ExecuteNumber == 0 {
		o.ExecuteNumber = 10000
	}
	if o.Test == "" {
		o.Test = "set"
	}
	switch {
	case o.Concurrency < 0 || o.Concurrency > 1024:
		return o, fmt.Errorf("concurrency %d out of range 1..1024", o.Concurrency)
	case o.ExecuteNumber < 0:
		return o, fmt.Errorf("negative execute number %d", o.ExecuteNumber)
	case o.Test != "set" && o.Test != "get":
		return o, fmt.Errorf("test %q: want set or get", o.Test)
	}
	return o, nil
}

// Args returns memcslap's arguments for a run against addr (host:port).
// Every setting is passed explicitly, so the output does not depend on
// memcslap's defaults or on MEMCACHED_SERVERS.
func (o Options) Args(addr string) ([]string, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	a := []string{
		"--servers=" + addr,
		"--concurrency=" + strconv.Itoa(o.Concurrency),
		"--execute-number=" + strconv.Itoa(o.ExecuteNumber),
		"--test=" + o.Test,
	}
	if o.BinaryProtocol {
		a = append(a, "--binary")
	}
	if o.Flush {
		a = append(a, "--flush")
	}
	return a, nil
}

// Result is memcslap's summary of one run.
type Result struct {
	Test        string
	Concurrency int
	// Issued is the number of requests of the timed phase:
	// Concurrency * ExecuteNumber.
	Issued int
	// Ops is the number of those that succeeded, as memcslap counted.
	Ops int
	// Failures is Issued - Ops: fatal errors and, for get, misses.
	Failures int
	// Elapsed is the timed phase (millisecond resolution).
	Elapsed time.Duration
	// OpsPerSec is Ops / Elapsed.
	OpsPerSec float64
	// MeanLatency is Elapsed * Concurrency / Ops: derived, not measured
	// per request by memcslap.
	MeanLatency time.Duration

	// Keys is the number of pairs generated (ExecuteNumber).
	Keys int
	// Loaded and LoadTime are the get test's initial set of the pairs
	// from one thread (zero for set).
	Loaded   int
	LoadTime time.Duration
	// Total is memcslap's whole run, pair generation included.
	Total time.Duration

	// Output is memcslap's standard output.
	Output string `json:"-"`
}

// String summarises r on one line.
func (r Result) String() string {
	return fmt.Sprintf("%s: %d ops by %d threads in %v: %.0f ops/s, mean latency %v, %d failures",
		r.Test, r.Ops, r.Concurrency, r.Elapsed, r.OpsPerSec, r.MeanLatency, r.Failures)
}

// ErrFailed marks a run in which memcslap reported errors, counted fewer
// successful requests than it issued, or exited with a failure status.
var ErrFailed = errors.New("memcslap run failed")

// Run runs memcslap against addr (host:port) and parses its summary. It
// stops memcslap when ctx is done. The error wraps ErrFailed, with
// memcslap's output quoted, if memcslap reports any error or failed
// request; the parsed Result is returned with it when there is one.
func Run(ctx context.Context, addr string, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, fmt.Errorf("memcload: %w", err)
	}
	args, _ := o.Args(addr)
	if _, err := exec.LookPath(o.Binary); err != nil {
		return Result{}, fmt.Errorf("memcload: %v (install the package libmemcached-tools)", err)
	}
	var stdout, stderr bytes.Buffer
	command := o.Command
	if command == nil {
		command = exec.CommandContext
	}
	cmd := command(ctx, o.Binary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no MEMCACHED_SERVERS from the caller
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	cmdline := o.Binary + " " + strings.Join(args, " ")
	quote := func() string { return quoteOutput(stdout.String(), stderr.String()) }
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("memcload: %s: stopped after %v: %w%s", cmdline, time.Since(start).Round(time.Millisecond), ctx.Err(), quote())
	}
	if runErr != nil {
		return Result{}, fmt.Errorf("memcload: %s: %w: %v%s", cmdline, ErrFailed, runErr, quote())
	}
	r, perr := Parse(stdout.String())
	if perr != nil {
		return Result{}, fmt.Errorf("memcload: %s: %w%s", cmdline, perr, quote())
	}
	if err := r.check(o); err != nil {
		return r, fmt.Errorf("memcload: %s: %w: %v%s", cmdline, ErrFailed, err, quote())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return r, fmt.Errorf("memcload: %s: %w: errors on standard error%s", cmdline, ErrFailed, quote())
	}
	return r, nil
}

// check compares a parsed result with the options it ran with and fills
// in the figures that depend on them.
func (r *Result) check(o Options) error {
	r.Issued = o.Concurrency * o.ExecuteNumber
	r.Failures = r.Issued - r.Ops
	switch {
	case r.Test != o.Test:
		return fmt.Errorf("memcslap ran test %q, want %q", r.Test, o.Test)
	case r.Concurrency != o.Concurrency:
		return fmt.Errorf("memcslap ran %d threads, want %d", r.Concurrency, o.Concurrency)
	case o.Test == "get" && r.Loaded != o.ExecuteNumber:
		return fmt.Errorf("memcslap loaded %d of %d keys before the get test", r.Loaded, o.ExecuteNumber)
	case r.Failures != 0:
		return fmt.Errorf("%d of %d requests failed", r.Failures, r.Issued)
	}
	return nil
}

var (
	generateRE = regexp.MustCompile(`(?m)^Time to generate\s+(\d+) test keys:\s+([0-9.]+) seconds\.$`)
	loadRE     = regexp.MustCompile(`(?m)^Time to set\s+(\d+) keys:\s+([0-9.]+) seconds\.$`)
	testRE     = regexp.MustCompile(`(?m)^Time to (\S+)\s+(\d+) keys by\s+(\d+) threads:\s+([0-9.]+) seconds\.$`)
	totalRE    = regexp.MustCompile(`(?m)^Time total:\s+([0-9.]+) seconds\.$`)
)

// Parse reads memcslap's standard output. It needs the timed-phase line
// and the total; the others are optional. It does not judge the figures
// (Run does, knowing what was asked for), except that a timed phase too
// short for memcslap's millisecond clock is an error: no rate can be
// derived from it.
func Parse(out string) (Result, error) {
	r := Result{Output: out}
	m := testRE.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New(`no "Time to <test> N keys by N threads" line in memcslap's output`)
	}
	r.Test = m[1]
	r.Ops, _ = strconv.Atoi(m[2])
	r.Concurrency, _ = strconv.Atoi(m[3])
	var err error
	if r.Elapsed, err = seconds(m[4]); err != nil {
		return r, err
	}
	m = totalRE.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New(`no "Time total" line in memcslap's output`)
	}
	if r.Total, err = seconds(m[1]); err != nil {
		return r, err
	}
	if m = generateRE.FindStringSubmatch(out); m != nil {
		r.Keys, _ = strconv.Atoi(m[1])
	}
	if m = loadRE.FindStringSubmatch(out); m != nil {
		r.Loaded, _ = strconv.Atoi(m[1])
		if r.LoadTime, err = seconds(m[2]); err != nil {
			return r, err
		}
	}
	if r.Ops > 0 {
		if r.Elapsed == 0 {
			return r, fmt.Errorf("%d ops took 0.000 s by memcslap's clock: too short to time; raise the execute number", r.Ops)
		}
		r.OpsPerSec = float64(r.Ops) / r.Elapsed.Seconds()
		r.MeanLatency = r.Elapsed * time.Duration(r.Concurrency) / time.Duration(r.Ops)
	}
	return r, nil
}

// seconds parses memcslap's "%.3f" seconds.
func seconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad time %q in memcslap's output: %v", s, err)
	}
	return time.Duration(f*1e3+0.5) * time.Millisecond, nil
}

// quoteOutput formats memcslap's output for an error message, keeping the
// last few KiB of each stream.
func quoteOutput(stdout, stderr string) string {
	const max = 4 << 10
	trim := func(s string) string {
		s = strings.TrimSpace(s)
		if len(s) > max {
			s = "..." + s[len(s)-max:]
		}
		return s
	}
	var b strings.Builder
	if s := trim(stdout); s != "" {
		b.WriteString("\nmemcslap stdout:\n" + s)
	}
	if s := trim(stderr); s != "" {
		b.WriteString("\nmemcslap stderr:\n" + s)
	}
	return b.String()
}
