package push

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/metrics"
	"sort"
	"strings"
	"testing"
	"time"
)

// FuzzReadRequest checks that ReadRequest never panics, allocates in
// proportion to the input and not to the length it claims, fails only with
// errors that wrap a sentinel, and that an accepted request re-encodes to
// the bytes it was read from.
//
//	go test -run '^$' -fuzz FuzzReadRequest ./updater/push
func FuzzReadRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocs()
		req, err := ReadRequest(bytes.NewReader(data), 1<<30)
		if grew, limit := heapAllocs()-before, uint64(1<<20+4*len(data)); grew > limit {
			t.Fatalf("reading %d bytes allocated %d (limit %d)", len(data), grew, limit)
		}
		if err != nil {
			if req != nil || !wrapsOne(err, ErrProtocol, ErrVersion, ErrTooBig, ErrTruncated) {
				t.Fatalf("ReadRequest = %v, %v", req, err)
			}
			return
		}
		b, err := appendRequestHeader(nil, req.QuiesceDeadline, len(req.Bundle))
		if err != nil {
			t.Fatal(err)
		}
		if b = append(b, req.Bundle...); !bytes.Equal(b, data[:len(b)]) {
			t.Fatal("an accepted request re-encodes differently")
		}
	})
}

// FuzzReadReply checks that ReadReply never panics, allocates boundedly,
// fails only with sentinel errors, and that every reply it decodes
// re-encodes to a frame that decodes to the same value.
//
//	go test -run '^$' -fuzz FuzzReadReply ./updater/push
func FuzzReadReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			before := heapAllocs()
			rep, err := ReadReply(r)
			if grew, limit := heapAllocs()-before, uint64(1<<20+8*len(data)); grew > limit {
				t.Fatalf("reading %d bytes allocated %d (limit %d)", len(data), grew, limit)
			}
			if err != nil {
				if rep != nil || !wrapsOne(err, ErrProtocol, ErrTruncated) {
					t.Fatalf("ReadReply = %v, %v", rep, err)
				}
				return
			}
			var b bytes.Buffer
			switch rep.Type {
			case TypeProgress:
				err = WriteProgress(&b, rep.Progress)
			case TypeRefused:
				err = Refuse(&b, rep.Refusal.Code, rep.Refusal.Reason)
			case TypeAccepted:
				err = Accept(&b)
			case TypeReport:
				err = WriteReport(&b, rep.Report)
				rep.Report.Format = ReportVersion // what the re-encoding says
			default:
				err = writeFrame(&b, rep.Type, rep.Body)
			}
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", rep, err)
			}
			again, err := ReadReply(&b)
			if err != nil || !reflect.DeepEqual(again, rep) {
				t.Fatalf("re-encoded reply decodes to %+v, %v; want %+v", again, err, rep)
			}
		}
	})
}

func wrapsOne(err error, sentinels ...error) bool {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n == 1 && strings.HasPrefix(err.Error(), "push: ")
}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz from the seeds")

func frame(f func(b *bytes.Buffer)) []byte {
	var b bytes.Buffer
	f(&b)
	return b.Bytes()
}

func requestSeeds() map[string][]byte {
	ok := request(ProtocolVersion, 0, 250, 5, []byte("hello"))
	return map[string][]byte{
		"valid":          ok,
		"valid-deadline": request(ProtocolVersion, 0, 1<<31, 3, []byte("abc")),
		"truncated":      ok[:len(ok)-2],
		"header-only":    ok[:RequestHeaderSize],
		"newer":          request(2, 0, 0, 5, []byte("hello")),
		"flags":          request(1, 1, 0, 5, []byte("hello")),
		"empty":          request(1, 0, 0, 0, nil),
		"huge-claim":     request(1, 0, 0, 1<<40, []byte("abc")),
		"bad-magic":      append([]byte("MOLTPULL"), ok[8:]...),
	}
}

func replySeeds() map[string][]byte {
	rep := frame(func(b *bytes.Buffer) { WriteReport(b, sampleReport()) })
	newer := bytes.Clone(rep)
	newer[FrameHeaderSize] = 2
	conversation := frame(func(b *bytes.Buffer) {
		WriteProgress(b, Progress{Stage: StageReceiving, Done: 1, Total: 2})
		Accept(b)
		WriteProgress(b, Progress{Stage: StageJumping})
		WriteReport(b, sampleReport())
	})
	return map[string][]byte{
		"conversation":  conversation,
		"refusal":       frame(func(b *bytes.Buffer) { Refuse(b, CodeBadSignature, "bad signature") }),
		"report":        rep,
		"report-newer":  newer,
		"report-cut":    rep[:len(rep)-3],
		"unknown-type":  frame(func(b *bytes.Buffer) { writeFrame(b, 99, []byte("future")) }),
		"oversized":     {'M', 'R', 1, 0, 0, 0, 1, 0},
		"bad-magic":     {'X', 'R', 1, 0, 0, 0, 0, 0},
		"progress-size": frame(func(b *bytes.Buffer) { writeFrame(b, TypeProgress, make([]byte, 3)) }),
		"accept-body":   frame(func(b *bytes.Buffer) { writeFrame(b, TypeAccepted, []byte{0}) }),
		"report-phases": frame(func(b *bytes.Buffer) {
			r := sampleReport()
			r.Phases = append(r.Phases, Phase{"x", time.Hour})
			r.Lines = nil
			WriteReport(b, r)
		}),
	}
}

// TestFuzzCorpus checks that testdata/fuzz holds the current seeds, or
// rewrites it with -update-corpus.
func TestFuzzCorpus(t *testing.T) {
	for target, seeds := range map[string]map[string][]byte{"FuzzReadRequest": requestSeeds(), "FuzzReadReply": replySeeds()} {
		dir := filepath.Join("testdata", "fuzz", target)
		names := make([]string, 0, len(seeds))
		for n := range seeds {
			names = append(names, n)
		}
		sort.Strings(names)
		if *updateCorpus {
			os.RemoveAll(dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range names {
			want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", seeds[n])
			p := filepath.Join(dir, n)
			if *updateCorpus {
				if err := os.WriteFile(p, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
				t.Errorf("seed %s/%s is missing or stale (%v): go test ./updater/push -run TestFuzzCorpus -update-corpus", target, n, err)
			}
		}
	}
}
