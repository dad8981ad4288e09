package memcload

import (
	"context"
	"errors"
	"github.com/molt-os/molt/internal/testtool"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The files in testdata are memcslap 1.1 (libmemcached-tools 1.1.4-1,
// Debian 12) standard output, captured against memcached 1.6.18 started
// with -l 127.0.0.1 -p <random> -m 64 -t 1 -U 0:
//
//	set-c4-e2000.txt              --concurrency=4 --execute-number=2000 --test=set
//	get-c4-e2000.txt              --concurrency=4 --execute-number=2000 --test=get
//	get-flush-binary-c2-e500.txt  --concurrency=2 --execute-number=500 --test=get --flush --binary
//	get-evicted-c8-e20000.txt     --concurrency=8 --execute-number=20000 --test=get (64 MiB is too small)
//	set-refused.txt               --concurrency=2 --execute-number=100 --test=set, server stopped
//	set-refused.stderr            its standard error

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Result
	}{
		{"set-c4-e2000.txt", Result{Test: "set", Concurrency: 4, Ops: 8000, Elapsed: 152 * time.Millisecond,
			Keys: 2000, Total: 155 * time.Millisecond}},
		{"get-c4-e2000.txt", Result{Test: "get", Concurrency: 4, Ops: 8000, Elapsed: 127 * time.Millisecond,
			Keys: 2000, Loaded: 2000, LoadTime: 158 * time.Millisecond, Total: 289 * time.Millisecond}},
		{"get-flush-binary-c2-e500.txt", Result{Test: "get", Concurrency: 2, Ops: 1000, Elapsed: 34 * time.Millisecond,
			Keys: 500, Loaded: 500, LoadTime: 37 * time.Millisecond, Total: 73 * time.Millisecond}},
		{"get-evicted-c8-e20000.txt", Result{Test: "get", Concurrency: 8, Ops: 154677, Elapsed: 2597 * time.Millisecond,
			Keys: 20000, Loaded: 20000, LoadTime: 1027 * time.Millisecond, Total: 3667 * time.Millisecond}},
		{"set-refused.txt", Result{Test: "set", Concurrency: 2, Ops: 0, Elapsed: 0,
			Keys: 100, Total: time.Millisecond}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out := readTestdata(t, tc.file)
			got, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Output != out {
				t.Errorf("Output not kept")
			}
			got.Output = ""
			if tc.want.Ops > 0 {
				tc.want.OpsPerSec = float64(tc.want.Ops) / tc.want.Elapsed.Seconds()
				tc.want.MeanLatency = tc.want.Elapsed * time.Duration(tc.want.Concurrency) / time.Duration(tc.want.Ops)
			}
			if got != tc.want {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseDerived(t *testing.T) {
	r, err := Parse(readTestdata(t, "set-c4-e2000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// 8000 ops in 0.152 s; 4 threads with one request each in flight.
	if r.OpsPerSec < 52631 || r.OpsPerSec > 52632 {
		t.Errorf("OpsPerSec = %v; want 52631.6", r.OpsPerSec)
	}
	if r.MeanLatency != 76*time.Microsecond {
		t.Errorf("MeanLatency = %v; want 76µs", r.MeanLatency)
	}
}

func TestParseRejects(t *testing.T) {
	for name, out := range map[string]string{
		"empty":     "",
		"help":      "memslap v1.1 (libmemcached v1.1.4)\n\n\tGenerate load against a cluster of memcached servers.\n",
		"no total":  "Time to set            8000 keys by    4 threads:     0.177 seconds.\n",
		"zero time": "Time to set            8000 keys by    4 threads:     0.000 seconds.\nTime total:       0.001 seconds.\n",
	} {
		if r, err := Parse(out); err == nil {
			t.Errorf("%s: Parse succeeded: %+v", name, r)
		}
	}
}

func TestCheck(t *testing.T) {
	r, err := Parse(readTestdata(t, "get-evicted-c8-e20000.txt"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.check(Options{Test: "get", Concurrency: 8, ExecuteNumber: 20000})
	if err == nil || !strings.Contains(err.Error(), "5323 of 160000 requests failed") {
		t.Errorf("check of a run with misses: %v", err)
	}
	if r.Failures != 5323 || r.Issued != 160000 {
		t.Errorf("Failures, Issued = %d, %d; want 5323, 160000", r.Failures, r.Issued)
	}
	r, _ = Parse(readTestdata(t, "set-c4-e2000.txt"))
	if err := r.check(Options{Test: "set", Concurrency: 4, ExecuteNumber: 2000}); err != nil {
		t.Errorf("check of a clean run: %v", err)
	}
	if err := r.check(Options{Test: "set", Concurrency: 8, ExecuteNumber: 1000}); err == nil {
		t.Errorf("check accepted a thread count memcslap did not run")
	}
}

func TestOptions(t *testing.T) {
	args, err := Options{Concurrency: 4, ExecuteNumber: 2000, Test: "get", Flush: true}.Args("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	want := "--servers=127.0.0.1:1 --concurrency=4 --execute-number=2000 --test=get --flush"
	if got := strings.Join(args, " "); got != want {
		t.Errorf("Args = %s; want %s", got, want)
	}
	for _, o := range []Options{{Test: "mget"}, {Test: "foo"}, {Concurrency: -1}, {ExecuteNumber: -5}} {
		if _, err := o.Args("x:1"); err == nil {
			t.Errorf("Args(%+v) accepted", o)
		}
	}
}

func needTools(t *testing.T) {
	t.Helper()
	testtool.Find(t, "libmemcached-tools", "memcslap")
	testtool.Find(t, "memcached", "memcached")
}

// TestRunHost loads a real memcached on the host and checks the figures
// against what was asked for.
func TestRunHost(t *testing.T) {
	needTools(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := StartServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	t.Logf("memcached %s on %s", s.Version, s.Addr)
	for _, test := range []string{"set", "get"} {
		r, err := Run(ctx, s.Addr, Options{Concurrency: 4, ExecuteNumber: 2000, Test: test})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v", r)
		if r.Ops != 8000 || r.Failures != 0 || r.Test != test || r.OpsPerSec <= 0 || r.MeanLatency <= 0 {
			t.Errorf("%s: implausible result %+v", test, r)
		}
		if test == "get" && r.Loaded != 2000 {
			t.Errorf("get: loaded %d keys; want 2000", r.Loaded)
		}
	}
}

// TestRunRefused runs memcslap against a port nobody listens on: memcslap
// exits 0 there, and Run must still fail and quote what memcslap said.
func TestRunRefused(t *testing.T) {
	needTools(t)
	s, err := StartServer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = Run(t.Context(), addr, Options{Concurrency: 2, ExecuteNumber: 100})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("Run against a closed port: %v; want ErrFailed", err)
	}
	for _, want := range []string{"200 of 200 requests failed", "CONNECTION FAILURE", "Time to set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

// TestRunContext stops a run whose server never answers: memcslap would
// wait for its 5 s I/O timeout per request.
func TestRunContext(t *testing.T) {
	needTools(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // read requests, answer none
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Run(ctx, l.Addr().String(), Options{Concurrency: 2, ExecuteNumber: 100})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run: %v; want a deadline error", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Run returned %v after it started; want soon after its 500 ms deadline", d)
	}
}

// TestServerStopDetectsCrash: Stop must report a server that died under
// the benchmark instead of calling it a clean stop.
func TestServerStopDetectsCrash(t *testing.T) {
	needTools(t)
	s, err := StartServer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Kill()
	<-s.done
	if err := s.Stop(); err == nil {
		t.Errorf("Stop after memcached died: no error")
	}
	if _, err := Ping(t.Context(), s.Addr); err == nil {
		t.Errorf("Ping of a dead server succeeded")
	}
}

// TestMeasureLatency times gets against a real memcached on the host.
func TestMeasureLatency(t *testing.T) {
	needTools(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := StartServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	l, err := MeasureLatency(ctx, s.Addr, 500)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(l)
	if l.N != 500 || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
		t.Errorf("MeasureLatency = %+v; want 500 ordered, positive percentiles", l)
	}
	if _, err := MeasureLatency(ctx, s.Addr, 0); err == nil {
		t.Error("MeasureLatency(0 gets) succeeded")
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go func() { // a server that answers nonsense
		c, err := l2.Accept()
		if err == nil {
			c.Write([]byte("ERROR\r\n"))
			c.Close()
		}
	}()
	if _, err := MeasureLatency(ctx, l2.Addr().String(), 10); err == nil {
		t.Error("MeasureLatency against a server that answers ERROR succeeded")
	}
}
