package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molt-os/molt/updater/handoff"
)

// fakeTask records the calls it gets and lets a test decide how each
// behaves.
type fakeTask struct {
	mu      sync.Mutex
	calls   []string
	state   string // what Save writes (prefixed "v<version>:")
	version uint32 // the version Save writes
	running bool

	quiesceDelay time.Duration // time to reach the safe point
	quiesceErr   error         // returned at once
	stuck        bool          // never reaches the safe point; returns when ctx ends
	hang         chan struct{} // ignores ctx: returns when closed
	restoreErr   error
	startErr     error
	older        bool // implements SaveVersion
	sockets      []SocketID

	restoredFrom uint32
	restored     string
	started      []SocketID
}

func (f *fakeTask) log(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeTask) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeTask) isRunning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

func (f *fakeTask) Start(s []SocketID) error {
	f.log(fmt.Sprintf("start%v", s))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return f.startErr
	}
	f.started, f.running = s, true
	return nil
}

func (f *fakeTask) Quiesce(ctx context.Context) error {
	f.log("quiesce")
	switch {
	case f.hang != nil:
		<-f.hang
	case f.stuck:
		<-ctx.Done()
		return fmt.Errorf("fake: 1 request in flight: %w", ctx.Err())
	case f.quiesceErr != nil:
		return f.quiesceErr
	default:
		select {
		case <-time.After(f.quiesceDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.running = false
	f.mu.Unlock()
	return nil
}

func (f *fakeTask) Save(w io.Writer) error {
	f.log("save")
	_, err := fmt.Fprintf(w, "v%d:%s", f.version, f.state)
	return err
}

func (f *fakeTask) Restore(r io.Reader, from uint32) error {
	f.log(fmt.Sprintf("restore v%d", from))
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if f.restoreErr != nil {
		return f.restoreErr
	}
	f.restoredFrom, f.restored = from, string(b)
	return nil
}

func (f *fakeTask) Resume() error {
	f.log("resume")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running = true
	return nil
}

func (f *fakeTask) Sockets() []SocketID { return f.sockets }

// olderTask is a fakeTask that can also write older versions.
type olderTask struct{ *fakeTask }

func (o olderTask) SaveVersion(w io.Writer, v uint32) error {
	o.log(fmt.Sprintf("save v%d", v))
	if v < 1 {
		return errors.New("cannot")
	}
	_, err := fmt.Fprintf(w, "v%d:%s", v, o.state)
	return err
}

func mustRegister(t *testing.T, tab *Table, spec Spec, tk Task) {
	t.Helper()
	if err := tab.Register(spec, tk); err != nil {
		t.Fatal(err)
	}
}

func registry(t testing.TB) *handoff.Registry {
	t.Helper()
	reg := handoff.Builtin()
	if err := RegisterSections(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// handOff runs the old side (QuiesceAll, Save) on old and returns the
// decoded sections as the new kernel would see them.
func handOff(t *testing.T, old *Table, targets Targets) ([]handoff.Decoded, *SaveReport) {
	t.Helper()
	if _, err := old.QuiesceAll(context.Background(), time.Second); err != nil {
		t.Fatalf("QuiesceAll: %v", err)
	}
	reg := registry(t)
	enc, err := reg.NewEncoder(make([]byte, 1<<20), handoff.Header{Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := old.Save(enc, targets)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	region, err := enc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	r, err := handoff.Decode(region)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := reg.DecodeAll(r)
	if err != nil {
		t.Fatalf("DecodeAll: %v", err)
	}
	return ds, rep
}

func wantErrContains(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil; want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}
