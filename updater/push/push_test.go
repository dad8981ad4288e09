package push

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/image/imagetest"
)

var (
	testKey  = imagetest.Key(7)
	otherKey = imagetest.Key(9)
)

func signedTiny(t *testing.T, key ed25519.PrivateKey) []byte {
	t.Helper()
	e := imagetest.TinyKernel(t, "v2.0-test")
	b, err := image.Sign(e, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleReport() *Report {
	return &Report{
		Version: "v2.0-test", BuildID: [32]byte{1, 2, 3}, PrevVersion: "v1.0", PrevBuildID: [32]byte{9},
		Generation: 3, Blackout: 42 * time.Millisecond,
		Phases:   []Phase{{"quiesce", time.Millisecond}, {"save", 2 * time.Millisecond}, {"jump", 30 * time.Millisecond}, {"restore", 9 * time.Millisecond}},
		Restored: Restored{Tasks: 3, Connections: 12, Items: 1000},
		Lines:    []string{"kv: 1000 items restored", "echo: fresh start"},
	}
}

// server is a test update service built from the package's server-side
// functions, as the kernel's is: it reads the request into a slot, verifies
// the bundle, accepts, and then does what after says (by default: report).
type server struct {
	slot    int                       // slot size; 0: 16 MiB
	trusted []ed25519.PublicKey       // nil: testKey's
	verify  func([]byte) error        // nil: image.Verify
	early   func(conn net.Conn) bool  // before the request: true ends the conversation
	after   func(conn net.Conn) error // after Accept; nil: send sampleReport
	got     chan *Request
}

func (s *server) serve(conn net.Conn) error {
	if s.early != nil && s.early(conn) {
		return Hangup(conn, 64<<20, 2*time.Second)
	}
	size := s.slot
	if size == 0 {
		size = 16 << 20
	}
	slot := make([]byte, size)
	req, err := ReadRequestInto(conn, slot, func(n, total int64) {
		WriteProgress(conn, Progress{Stage: StageReceiving, Done: uint64(n), Total: uint64(total)})
	})
	if err != nil {
		Refuse(conn, CodeOf(err), err.Error())
		Hangup(conn, 64<<20, 2*time.Second)
		return err
	}
	if s.got != nil {
		s.got <- req
	}
	WriteProgress(conn, Progress{Stage: StageVerifying})
	verify := s.verify
	if verify == nil {
		trusted := s.trusted
		if trusted == nil {
			trusted = []ed25519.PublicKey{testKey.Public().(ed25519.PublicKey)}
		}
		verify = func(b []byte) error { _, err := image.Verify(b, trusted, image.DefaultLimits()); return err }
	}
	if err := verify(req.Bundle); err != nil {
		Refuse(conn, CodeOf(err), err.Error())
		return Hangup(conn, 64<<20, 2*time.Second)
	}
	if err := Accept(conn); err != nil {
		return err
	}
	if s.after != nil {
		err = s.after(conn)
	} else {
		WriteProgress(conn, Progress{Stage: StageQuiescing, Done: 3, Total: 3})
		WriteProgress(conn, Progress{Stage: StageJumping})
		err = WriteReport(conn, sampleReport())
	}
	conn.Close()
	return err
}

// transport makes a connected pair: client side, server side.
type transport func(t *testing.T) (net.Conn, net.Conn)

func pipe(t *testing.T) (net.Conn, net.Conn) { return net.Pipe() }

func tcp(t *testing.T) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	return c, s
}

var transports = map[string]transport{"pipe": pipe, "tcp": tcp}

// run pushes bundle to s over tr and returns the outcome, the server's
// error, and what the callbacks saw.
type outcome struct {
	rep       *Report
	err       error
	serverErr error
	sent      []int64
	progress  []Progress
	accepted  bool
}

func run(t *testing.T, tr transport, s *server, bundle []byte, opts Options, ctx context.Context) outcome {
	t.Helper()
	c, sc := tr(t)
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- s.serve(sc) }()
	var o outcome
	var mu sync.Mutex
	opts.OnProgress = func(p Progress) { mu.Lock(); o.progress = append(o.progress, p); mu.Unlock() }
	opts.OnAccept = func() { o.accepted = true }
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
	}
	o.rep, o.err = Push(ctx, c, bundle, opts, func(sent, total int64) {
		if total != int64(len(bundle)) {
			t.Errorf("progress total %d, want %d", total, len(bundle))
		}
		o.sent = append(o.sent, sent)
	})
	c.Close()
	sc.Close()
	o.serverErr = <-done
	return o
}

// checkGoroutines fails if more goroutines run than before, after a grace
// period for ones that are exiting.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Errorf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
}

func TestPushSuccess(t *testing.T) {
	bundle := signedTiny(t, testKey)
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			s := &server{got: make(chan *Request, 1)}
			o := run(t, tr, s, bundle, Options{QuiesceDeadline: 1500*time.Microsecond + 1}, nil)
			if o.err != nil || o.serverErr != nil {
				t.Fatalf("Push: %v; server: %v", o.err, o.serverErr)
			}
			if !reflect.DeepEqual(o.rep, withFormat(sampleReport())) {
				t.Errorf("report %+v", o.rep)
			}
			req := <-s.got
			if req.QuiesceDeadline != 2*time.Millisecond || req.Version != ProtocolVersion || !bytes.Equal(req.Bundle, bundle) {
				t.Errorf("request: deadline %v, version %d, %d bytes", req.QuiesceDeadline, req.Version, len(req.Bundle))
			}
			if !o.accepted || len(o.sent) == 0 || o.sent[len(o.sent)-1] != int64(len(bundle)) {
				t.Errorf("accepted %v, sent %v", o.accepted, o.sent)
			}
			for i := 1; i < len(o.sent); i++ {
				if o.sent[i] <= o.sent[i-1] {
					t.Errorf("progress went backwards: %v", o.sent)
				}
			}
			last := Progress{}
			recv := 0
			for _, p := range o.progress {
				if p.Stage == StageReceiving {
					recv++
					last = p
				}
			}
			if recv < 2 || last.Done != uint64(len(bundle)) || last.Total != uint64(len(bundle)) {
				t.Errorf("%d receiving progress messages, last %+v", recv, last)
			}
			if o.progress[len(o.progress)-1].Stage != StageJumping {
				t.Errorf("progress %v", o.progress)
			}
			checkGoroutines(t, before)
		})
	}
}

func withFormat(r *Report) *Report { r.Format = ReportVersion; return r }

func TestRefusals(t *testing.T) {
	bundle := signedTiny(t, testKey)
	tampered := bytes.Clone(bundle)
	tampered[len(tampered)/2] ^= 1
	big := bytes.Repeat([]byte{0xa5}, 8<<20)
	tests := []struct {
		name     string
		s        *server
		bundle   []byte
		code     Code
		reason   string
		accepted bool
	}{
		{"bad signature", &server{}, tampered, CodeBadSignature, "does not verify", false},
		{"unknown key", &server{}, signedTiny(t, otherKey), CodeUnknownKey, "signed by key", false},
		{"garbage", &server{}, []byte("hello"), CodeBadImage, "bad magic", false},
		{"too big, refused before the upload ends", &server{slot: 1 << 20}, big, CodeTooBig, "at most 1048576", false},
		{"too big for staging", &server{verify: func([]byte) error { return fmt.Errorf("wrapped: %w", image.ErrTooBig) }}, bundle, CodeTooBig, "wrapped", false},
		{"handoff", &server{verify: func([]byte) error { return fmt.Errorf("x: %w", image.ErrHandoff) }}, bundle, CodeHandoff, "x: ", false},
		{"busy, before reading", &server{early: func(c net.Conn) bool { Refuse(c, CodeBusy, "an update is in progress"); return true }}, big, CodeBusy, "in progress", false},
		{"quiesce timeout after accept", &server{after: func(c net.Conn) error {
			WriteProgress(c, Progress{Stage: StageQuiescing, Done: 1, Total: 2})
			return Refuse(c, CodeQuiesceTimeout, "task kv did not quiesce in 2ms")
		}}, bundle, CodeQuiesceTimeout, "task kv", true},
	}
	for _, tt := range tests {
		for name, tr := range transports {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				before := runtime.NumGoroutine()
				o := run(t, tr, tt.s, tt.bundle, Options{}, nil)
				var r *RefusedError
				if !errors.As(o.err, &r) {
					t.Fatalf("Push = %v, %v; want a refusal", o.rep, o.err)
				}
				if r.Code != tt.code || !strings.Contains(r.Reason, tt.reason) || r.Accepted != tt.accepted || o.accepted != tt.accepted {
					t.Errorf("refusal %+v (accepted %v); want code %v, reason with %q", r, o.accepted, tt.code, tt.reason)
				}
				if !strings.Contains(r.Error(), tt.code.String()) {
					t.Errorf("message %q lacks the code", r.Error())
				}
				checkGoroutines(t, before)
			})
		}
	}
}

func TestCodeOf(t *testing.T) {
	want := map[error]Code{
		image.ErrFormat: CodeBadImage, image.ErrFormatVersion: CodeBadImage, image.ErrUnknownKey: CodeUnknownKey,
		image.ErrSignature: CodeBadSignature, image.ErrArch: CodeWrongArch, image.ErrAddress: CodeBadLayout,
		image.ErrReservedRegion: CodeBadLayout, image.ErrSegmentOverlap: CodeBadLayout, image.ErrEntry: CodeBadEntry,
		image.ErrTooBig: CodeTooBig, image.ErrHandoff: CodeHandoff,
		ErrProtocol: CodeProtocol, ErrTruncated: CodeProtocol, ErrVersion: CodeVersion, ErrTooBig: CodeTooBig,
		errors.New("disk on fire"): CodeInternal,
	}
	for _, s := range image.Sentinels {
		if _, ok := want[s]; !ok {
			t.Errorf("image sentinel %v has no code", s)
		}
	}
	for err, c := range want {
		if got := CodeOf(fmt.Errorf("ctx: %w", err)); got != c {
			t.Errorf("CodeOf(%v) = %v, want %v", err, got, c)
		}
	}
	if Code(99).String() != "code-99" || CodeHandoff.String() != "handoff-incompatible" || Stage(42).String() != "stage-42" {
		t.Error("names")
	}
}

// TestBrokenServers: the connection ends, or the server talks nonsense, at
// every point of the conversation.
func TestBrokenServers(t *testing.T) {
	bundle := bytes.Repeat([]byte{1}, 300<<10)
	accept := func(f func(c net.Conn) error) *server {
		return &server{verify: func([]byte) error { return nil }, after: f}
	}
	tests := []struct {
		name string
		s    *server
		want error
		msg  string
	}{
		{"closed at once", &server{early: func(c net.Conn) bool { c.Close(); return true }}, ErrTruncated, "without an answer"},
		{"not a molt server", &server{early: func(c net.Conn) bool { c.Write([]byte("VERSION memcached 1.6\r\n")); return true }}, ErrProtocol, "not a molt update service"},
		{"closed after accept", accept(func(c net.Conn) error { return nil }), ErrLost, "outcome is unknown"},
		{"half a report", accept(func(c net.Conn) error {
			var b bytes.Buffer
			WriteReport(&b, sampleReport())
			_, err := c.Write(b.Bytes()[:b.Len()/2])
			return err
		}), ErrLost, "inside the"},
		{"accepted twice", accept(func(c net.Conn) error { return Accept(c) }), ErrProtocol, "twice"},
		{"oversized frame", accept(func(c net.Conn) error { _, err := c.Write([]byte{'M', 'R', 9, 0, 0, 0, 2, 0}); return err }), ErrProtocol, "at most 65536"},
		{"bad report", accept(func(c net.Conn) error { return writeFrame(c, TypeReport, make([]byte, 10)) }), ErrProtocol, "report"},
		{"report first", &server{early: func(c net.Conn) bool { WriteReport(c, sampleReport()); return true }}, ErrProtocol, "before the server accepted"},
	}
	for _, tt := range tests {
		for name, tr := range transports {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				before := runtime.NumGoroutine()
				o := run(t, tr, tt.s, bundle, Options{}, nil)
				if o.rep != nil || !errors.Is(o.err, tt.want) || !strings.Contains(o.err.Error(), tt.msg) {
					t.Fatalf("Push = %v, %v; want %v with %q", o.rep, o.err, tt.want, tt.msg)
				}
				checkGoroutines(t, before)
			})
		}
	}
	// Unknown frame types are skipped.
	t.Run("unknown frame", func(t *testing.T) {
		o := run(t, pipe, accept(func(c net.Conn) error {
			writeFrame(c, 77, []byte("from the future"))
			return WriteReport(c, sampleReport())
		}), bundle, Options{}, nil)
		if o.err != nil {
			t.Fatal(o.err)
		}
	})
}

// TestDeadlines: a server that stops reading, or never answers, cannot
// hold Push beyond its context, and Push leaves no goroutine behind.
func TestDeadlines(t *testing.T) {
	bundle := bytes.Repeat([]byte{1}, 8<<20)
	tests := []struct {
		name string
		s    *server
		msg  string
	}{
		{"server does not read", &server{early: func(c net.Conn) bool { time.Sleep(time.Second); return true }}, "before the server accepted the image: nothing changed"},
		{"server never answers", &server{verify: func([]byte) error { time.Sleep(time.Second); return nil }}, "before the server accepted"},
		{"no report", &server{verify: func([]byte) error { return nil }, after: func(c net.Conn) error { time.Sleep(time.Second); return nil }}, "after the server accepted the update: the outcome is unknown"},
	}
	for _, tt := range tests {
		for name, tr := range transports {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				before := runtime.NumGoroutine()
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				o := run(t, tr, tt.s, bundle, Options{}, ctx)
				if !errors.Is(o.err, context.DeadlineExceeded) || !strings.Contains(o.err.Error(), tt.msg) {
					t.Fatalf("Push = %v; want a deadline error with %q", o.err, tt.msg)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("Push took %v", d)
				}
				checkGoroutines(t, before)
			})
		}
	}
}

func TestOptions(t *testing.T) {
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	if _, err := Push(t.Context(), c, nil, Options{}, nil); err == nil || !strings.Contains(err.Error(), "empty image") {
		t.Errorf("empty: %v", err)
	}
	if _, err := Push(t.Context(), c, []byte{1}, Options{QuiesceDeadline: -1}, nil); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative deadline: %v", err)
	}
	if _, err := Push(t.Context(), c, []byte{1}, Options{QuiesceDeadline: 2000 * time.Hour}, nil); err == nil || !strings.Contains(err.Error(), "above") {
		t.Errorf("huge deadline: %v", err)
	}
}

func request(version, flags uint16, ms uint32, n uint64, body []byte) []byte {
	b, _ := appendRequestHeader(nil, time.Duration(ms)*time.Millisecond, int(n))
	b[8], b[9] = byte(version), byte(version>>8)
	b[10], b[11] = byte(flags), byte(flags>>8)
	return append(b, body...)
}

func TestReadRequest(t *testing.T) {
	ok := request(ProtocolVersion, 0, 250, 5, []byte("hello"))
	req, err := ReadRequest(bytes.NewReader(ok), 5)
	if err != nil || string(req.Bundle) != "hello" || req.QuiesceDeadline != 250*time.Millisecond {
		t.Fatalf("ReadRequest = %+v, %v", req, err)
	}
	tests := []struct {
		name string
		in   []byte
		max  int64
		want error
		msg  string
	}{
		{"nothing", nil, 10, ErrTruncated, "ended before the request header"},
		{"half a header", ok[:10], 10, ErrTruncated, "inside the request header"},
		{"bad magic", append([]byte("GET / HT"), ok[8:]...), 10, ErrProtocol, `"GET / HT"`},
		{"newer protocol", request(2, 0, 0, 5, []byte("hello")), 10, ErrVersion, "the client speaks protocol 2, this server 1"},
		{"flags", request(1, 4, 0, 5, []byte("hello")), 10, ErrProtocol, "flags 0x4"},
		{"empty image", request(1, 0, 0, 0, nil), 10, ErrProtocol, "empty image"},
		{"too big", ok, 4, ErrTooBig, "the image is 5 bytes, this server takes at most 4"},
		{"truncated image", ok[:len(ok)-1], 10, ErrTruncated, "4 of 5 bytes received"},
		{"huge claim", request(1, 0, 0, 1<<40, []byte("abc")), 1 << 41, ErrTruncated, "3 of 1099511627776"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ReadRequest(bytes.NewReader(tt.in), tt.max)
			if req != nil || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("ReadRequest = %v, %v; want %v with %q", req, err, tt.want, tt.msg)
			}
		})
	}
	// Into a buffer: the bundle is a prefix of it, the buffer bounds it.
	buf := make([]byte, 8)
	if req, err := ReadRequestInto(bytes.NewReader(ok), buf, nil); err != nil || &req.Bundle[0] != &buf[0] || len(req.Bundle) != 5 {
		t.Errorf("ReadRequestInto = %v, %v", req, err)
	}
	if _, err := ReadRequestInto(bytes.NewReader(ok), buf[:4], nil); !errors.Is(err, ErrTooBig) {
		t.Errorf("ReadRequestInto a small buffer: %v", err)
	}
	// A read error is passed on.
	if _, err := ReadRequest(io.MultiReader(bytes.NewReader(ok[:26]), errReader{}), 10); !errors.Is(err, errBroken) {
		t.Errorf("read error: %v", err)
	}
}

var errBroken = errors.New("broken")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

func TestReport(t *testing.T) {
	r := sampleReport()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := got.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(&got, withFormat(sampleReport())) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	s := got.String()
	for _, want := range []string{"updated to v2.0-test (build 010203000000) from v1.0", "blackout  42ms", "quiesce 1ms, save 2ms", "3 tasks, 12 connections, 1000 items", "  kv: 1000 items restored"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q; want %q", s, want)
		}
	}
	// A newer version with appended fields: read, the rest ignored.
	newer := append(bytes.Clone(b), "new field"...)
	newer[0] = 2
	if err := got.UnmarshalBinary(newer); err != nil || got.Format != 2 || got.Version != r.Version || !strings.Contains(got.String(), "report version 2") {
		t.Errorf("newer report: %+v, %v", got, err)
	}
	if err := got.UnmarshalBinary(append(bytes.Clone(b), 0)); !errors.Is(err, ErrProtocol) {
		t.Errorf("trailing byte in a v1 report: %v", err)
	}
	// Lines are sanitized, not refused.
	r.Lines = []string{"bell\a and \xff", strings.Repeat("x", 2000)}
	b, err = r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got.UnmarshalBinary(b)
	if got.Lines[0] != "bell? and ?" || len(got.Lines[1]) != MaxLine {
		t.Errorf("lines %q", got.Lines)
	}
	for name, f := range map[string]func(r *Report){
		"negative blackout": func(r *Report) { r.Blackout = -1 },
		"version space":     func(r *Report) { r.Version = "v 1" },
		"long version":      func(r *Report) { r.Version = strings.Repeat("v", 129) },
		"empty phase name":  func(r *Report) { r.Phases = []Phase{{"", 1}} },
		"negative phase":    func(r *Report) { r.Phases = []Phase{{"x", -1}} },
		"too many lines":    func(r *Report) { r.Lines = make([]string, MaxLines+1) },
		"too many phases":   func(r *Report) { r.Phases = make([]Phase, MaxPhases+1) },
		"too long":          func(r *Report) { r.Lines = make([]string, MaxLines); fillLines(r.Lines) },
	} {
		r := sampleReport()
		f(r)
		if _, err := r.MarshalBinary(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func fillLines(l []string) {
	for i := range l {
		l[i] = strings.Repeat("y", MaxLine)
	}
}

func TestRefuseSanitizes(t *testing.T) {
	var b bytes.Buffer
	Refuse(&b, CodeBadImage, "line one\nline two\x1b[31m"+strings.Repeat("é", 600))
	r, err := ReadReply(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Refusal.Reason, "line one?line two?[31m") || len(r.Refusal.Reason) > MaxReason {
		t.Errorf("reason %q (%d bytes)", r.Refusal.Reason, len(r.Refusal.Reason))
	}
}
