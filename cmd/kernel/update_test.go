package main

// Self-update tests: the default image replaces itself in QEMU while Linux
// peers in a test-made network namespace keep their sessions (DESIGN §6).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/internal/memcload"
	"github.com/molt-os/molt/internal/moltvm"
	"github.com/molt-os/molt/internal/streamcheck"
	"github.com/molt-os/molt/internal/testtool"
	"github.com/molt-os/molt/qemu"
	"github.com/molt-os/molt/qemu/netns"
	updimage "github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/push"
)

// testKey signs and is trusted by every image these tests build. It is
// derived from a fixed seed so that repeated builds are identical and Go's
// build cache serves them.
var testKey = ed25519.NewKeyFromSeed(func() []byte { s := sha256.Sum256([]byte("molt cmd/kernel test key")); return s[:] }())

// kvSchema1 makes an image whose kv task writes (and reads) state schema
// v1 only: the "old" image of a migration.
const kvSchema1 = "kv_schema1"

// updatable is a signed image: its ELF (to boot) and bundle (to push).
type updatable struct{ elf, bundle string }

func signedImage(t *testing.T, version string, tags ...string) updatable {
	t.Helper()
	e, b := qemu.BuildSignedT(t, "../..", "./cmd/kernel", version, testKey, tags...)
	return updatable{e, b}
}

// updateGuest boots img on a TAP in a fresh namespace, with its own
// bundle in image store slot 0 (as a launcher that allows rollback does).
func updateGuest(t *testing.T, img updatable) (*guest, *netns.NS) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("MOLT_REQUIRE_TOOLS") == "1" {
			t.Fatal("needs root: creates a network namespace and a TAP interface (MOLT_REQUIRE_TOOLS=1)")
		}
		t.Skip("needs root: creates a network namespace and a TAP interface")
	}
	ns := netns.NewT(t)
	opts := []qemu.Option{
		qemu.Kernel(img.elf), qemu.Accel("tcg"), qemu.Timeout(15 * time.Minute), qemu.Logf(t.Logf),
		qemu.TAP(ns.TAP, tapMAC), qemu.Append(fmt.Sprintf("ip=%s,gw=%s", ns.GuestIPv4, ns.HostIPv4.Addr())),
		qemu.Loader(img.bundle, layout.ImageStoreBase),
	}
	g, err := moltvm.Boot(t.Context(), ns.StartVM, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &guest{g}, ns
}

// pushImage sends bundle to the guest's update service from inside the
// namespace and returns the new kernel's report.
func pushImage(t *testing.T, ns *netns.NS, bundle string, quiesce time.Duration) (*push.Report, error) {
	t.Helper()
	return pushImageWith(t, ns, bundle, push.Options{QuiesceDeadline: quiesce})
}

// pushImageWith is pushImage with the client's options.
func pushImageWith(t *testing.T, ns *netns.NS, bundle string, opts push.Options) (*push.Report, error) {
	t.Helper()
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c, err := ns.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), push.DefaultPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	return push.Push(ctx, c, b, opts, nil)
}

// kvItem is what the test stored and expects back.
type kvItem struct {
	value []byte
	cas   uint64
}

// kvClient is a minimal memcached text-protocol client for checks.
type kvClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialKV(t *testing.T, ns *netns.NS) *kvClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := ns.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), kvPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &kvClient{c: c, r: bufio.NewReaderSize(c, 1<<16)}
}

// setMany stores n items k0..k(n-1), pipelined in batches.
func (k *kvClient) setMany(n int) error {
	k.c.SetDeadline(time.Now().Add(2 * time.Minute))
	const batch = 500
	for base := 0; base < n; base += batch {
		w := bufio.NewWriter(k.c)
		end := min(base+batch, n)
		for i := base; i < end; i++ {
			v := itemValue(i)
			fmt.Fprintf(w, "set k%d %d 0 %d\r\n%s\r\n", i, i%65536, len(v), v)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for i := base; i < end; i++ {
			line, err := k.r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("set k%d: %w", i, err)
			}
			if line != "STORED\r\n" {
				return fmt.Errorf("set k%d: %q", i, line)
			}
		}
	}
	return nil
}

func itemValue(i int) []byte {
	return []byte(fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%97)))
}

// getsAll fetches k0..k(n-1) with gets and returns what came back.
func (k *kvClient) getsAll(n int) (map[string]kvItem, error) { return k.getsPrefix("k", n) }

// getsPrefix fetches prefix0..prefix(n-1) with gets and returns what came
// back (absent keys are misses, not errors).
func (k *kvClient) getsPrefix(prefix string, n int) (map[string]kvItem, error) {
	k.c.SetDeadline(time.Now().Add(2 * time.Minute))
	out := make(map[string]kvItem, n)
	const batch = 200
	for base := 0; base < n; base += batch {
		var b strings.Builder
		b.WriteString("gets")
		for i := base; i < min(base+batch, n); i++ {
			fmt.Fprintf(&b, " %s%d", prefix, i)
		}
		b.WriteString("\r\n")
		if _, err := io.WriteString(k.c, b.String()); err != nil {
			return nil, err
		}
		for {
			line, err := k.r.ReadString('\n')
			if err != nil {
				return nil, err
			}
			if line == "END\r\n" {
				break
			}
			f := strings.Fields(line)
			if len(f) != 5 || f[0] != "VALUE" {
				return nil, fmt.Errorf("gets: %q", line)
			}
			size, _ := strconv.Atoi(f[3])
			cas, _ := strconv.ParseUint(f[4], 10, 64)
			data := make([]byte, size+2)
			if _, err := io.ReadFull(k.r, data); err != nil {
				return nil, err
			}
			out[f[1]] = kvItem{value: data[:size], cas: cas}
		}
	}
	return out, nil
}

// stats reads kv's general statistics (memcached's `stats`).
func (k *kvClient) stats() (map[string]uint64, error) {
	k.c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(k.c, "stats\r\n"); err != nil {
		return nil, err
	}
	out := make(map[string]uint64)
	for {
		line, err := k.r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		if line == "END\r\n" {
			return out, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("stats: %q", line)
		}
		if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			out[f[1]] = v
		}
	}
}

// hitRate is get_hits / (get_hits + get_misses) of a stats reading.
func hitRate(st map[string]uint64) float64 {
	return float64(st["get_hits"]) / float64(st["get_hits"]+st["get_misses"])
}

// memcslapRun is one run of a memcslapLoop.
type memcslapRun struct {
	start, end time.Time
	err        error
}

// updateLoad is the memcslap run of the update tests: the get test, 4
// connections, 200 new pairs loaded, then 4 × 200 gets, all hits. Each
// run loads new pairs (about 0.5 MB), which is why loops of it are
// bounded: the kv state must fit the handoff region.
func updateLoad(ns *netns.NS, bin string) memcload.Options {
	return memcload.Options{Binary: bin, Concurrency: 4, ExecuteNumber: 200, Test: "get", Command: ns.Command}
}

// memcslapLoop runs updateLoad against addr from the namespace, back to
// back, until stop is closed or maxRuns have run, and delivers every run.
func memcslapLoop(ctx context.Context, ns *netns.NS, bin, addr string, maxRuns int, stop <-chan struct{}) <-chan []memcslapRun {
	out := make(chan []memcslapRun, 1)
	go func() {
		var runs []memcslapRun
		defer func() { out <- runs }()
		for len(runs) < maxRuns {
			select {
			case <-stop:
				return
			default:
			}
			r := memcslapRun{start: time.Now()}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			_, r.err = memcload.Run(rctx, addr, updateLoad(ns, bin))
			cancel()
			r.end = time.Now()
			runs = append(runs, r)
		}
	}()
	return out
}

// TestUpdate is the self-update's main claim: boot v1 (kv state schema
// v1), load it with live sessions, push v2 (another version, kv schema
// v2, so the kv state is migrated), and check that nothing was lost:
// every echo stream (100 connections, both directions, checksummed) is
// intact and none was reset, memcslap runs through the update without an
// error, every kv item is there with its value and CAS, kv's hit and miss
// counters continue exactly (the same gets give the same hit rate after
// as before), the UDP socket still answers, and v2 reports itself.
func TestUpdate(t *testing.T) {
	memcslap := testtool.Find(t, "libmemcached-tools", "memcslap", "memslap")
	v1 := signedImage(t, "v1", kvSchema1)
	v2 := signedImage(t, "v2")
	g, ns := updateGuest(t, v1)
	defer g.poweroff(t)
	kvAddr := fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), kvPort)

	const items, absent = 10000, 1000
	kv := dialKV(t, ns)
	if err := kv.setMany(items); err != nil {
		t.Fatal(err)
	}
	// A first memcslap run shows the client works before anything moves.
	if _, err := memcload.Run(t.Context(), kvAddr, updateLoad(ns, memcslap)); err != nil {
		t.Fatalf("memcslap before the update: %v", err)
	}
	// The workload whose hit rate is compared: every item (hits) and
	// keys that were never set (misses).
	workload := func(when string) (map[string]kvItem, float64) {
		t.Helper()
		s0, err := kv.stats()
		if err != nil {
			t.Fatal(err)
		}
		got, err := kv.getsAll(items)
		if err != nil || len(got) != items {
			t.Fatalf("%s: %d items, %v", when, len(got), err)
		}
		if miss, err := kv.getsPrefix("absent", absent); err != nil || len(miss) != 0 {
			t.Fatalf("%s: %d never-set keys found, %v", when, len(miss), err)
		}
		s1, err := kv.stats()
		if err != nil {
			t.Fatal(err)
		}
		hits, misses := s1["get_hits"]-s0["get_hits"], s1["get_misses"]-s0["get_misses"]
		if hits != items || misses != absent {
			t.Errorf("%s: kv counted %d hits and %d misses for %d hits and %d misses", when, hits, misses, items, absent)
		}
		return got, float64(hits) / float64(hits+misses)
	}
	before, rateBefore := workload("before the update")
	statsBefore, err := kv.stats()
	if err != nil {
		t.Fatal(err)
	}

	udp, err := ns.Dial(t.Context(), "udp", fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), echoPort))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if err := streamcheck.Datagrams(udp, 20, 2*time.Second); err != nil {
		t.Fatalf("UDP before the update: %v", err)
	}

	// 100 paced echo streams (about 20 KiB/s each way per connection)
	// that run from before the push until after the report: the update
	// happens with data in flight in both directions on every one.
	const conns = 100
	cs := dialAll(t, ns, fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), echoPort), conns)
	streams := make([]*streamcheck.Stream, conns)
	for i, c := range cs {
		c.SetDeadline(time.Now().Add(10 * time.Minute))
		if streams[i], err = streamcheck.NewStream(c, uint64(i), 2048, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	// memcslap runs back to back from the end of the upload until the
	// report; one run must be in progress when the old kernel begins to
	// quiesce (the last progress message that arrives before the
	// blackout: the later ones are written while the network is frozen
	// and come from the new kernel's stack).
	stopLoad := make(chan struct{})
	var load <-chan []memcslapRun
	var quiescing time.Time
	var stages []push.Stage
	rep, err := pushImageWith(t, ns, v2.bundle, push.Options{OnProgress: func(p push.Progress) {
		if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
			stages = append(stages, p.Stage)
		}
		switch {
		case p.Stage == push.StageVerifying && load == nil:
			load = memcslapLoop(t.Context(), ns, memcslap, kvAddr, 10, stopLoad)
		case p.Stage == push.StageQuiescing && quiescing.IsZero():
			quiescing = time.Now()
		}
	}})
	close(stopLoad)
	var runs []memcslapRun
	if load != nil {
		runs = <-load
	}
	if err != nil {
		t.Fatalf("push v2: %v", err)
	}
	t.Logf("report:\n%s", rep)
	// Every stage is reported, the old kernel's last words (saving,
	// jumping: written while its network was frozen) through the new
	// kernel's stack.
	if want := []push.Stage{push.StageReceiving, push.StageVerifying, push.StageQuiescing, push.StageSaving, push.StageJumping}; !slices.Equal(stages, want) {
		t.Errorf("progress stages %v, want %v", stages, want)
	}
	spanned := false
	for i, r := range runs {
		t.Logf("memcslap run %d of %d: from %v to %v after quiescing began: %v", i+1, len(runs), r.start.Sub(quiescing), r.end.Sub(quiescing), r.err)
		if r.err != nil {
			t.Errorf("memcslap run %d failed: %v", i+1, r.err)
		}
		spanned = spanned || (r.start.Before(quiescing) && r.end.After(quiescing))
	}
	if !spanned {
		t.Errorf("no memcslap run was in progress when quiescing began (%d runs)", len(runs))
	}
	if rep.Version != "v2" || rep.PrevVersion != "v1" || rep.Generation != 1 {
		t.Errorf("report says version %q from %q, generation %d; want v2 from v1, 1", rep.Version, rep.PrevVersion, rep.Generation)
	}
	if rep.Restored.Tasks != 2 || rep.Restored.Items < items {
		t.Errorf("report: %d tasks and %d items restored, want 2 (kv, echo) and at least %d", rep.Restored.Tasks, rep.Restored.Items, items)
	}
	if !strings.Contains(strings.Join(rep.Lines, "\n"), "task kv: restored from schema v1") {
		t.Errorf("kv was not restored from schema v1 (migrated):\n%s", strings.Join(rep.Lines, "\n"))
	}

	// Every stream must carry on after the update: wait until each has
	// echoed more than it had written when the report came.
	mark := make([]int64, conns)
	for i, st := range streams {
		mark[i] = st.Written()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for i, st := range streams {
		for st.Echoed() <= mark[i] && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if st.Echoed() <= mark[i] {
			t.Errorf("echo stream %d stalled after the update: %d bytes echoed, %d written at the report", i, st.Echoed(), mark[i])
		}
	}
	for _, st := range streams {
		st.Stop()
	}
	for i, st := range streams {
		if err := st.Wait(); err != nil {
			t.Errorf("echo stream %d: %v", i, err)
		}
	}
	// 100 echo connections, the kv connection and the push connection
	// crossed over (plus the listeners and the UDP socket).
	if rep.Restored.Connections < conns+2 {
		t.Errorf("report: %d sockets carried over, want at least %d", rep.Restored.Connections, conns+2)
	}
	// kv's counters went on from where they were: the only gets since
	// the reading before the update are memcslap's, all hits.
	statsAfter, err := kv.stats()
	if err != nil {
		t.Fatalf("after the update, on the same kv connection: %v", err)
	}
	o := updateLoad(ns, memcslap)
	loadGets := uint64(len(runs) * o.Concurrency * o.ExecuteNumber)
	if statsAfter["get_hits"] != statsBefore["get_hits"]+loadGets || statsAfter["get_misses"] != statsBefore["get_misses"] {
		t.Errorf("kv counters: %d hits, %d misses after the update; want %d+%d (memcslap) and %d", statsAfter["get_hits"], statsAfter["get_misses"], statsBefore["get_hits"], loadGets, statsBefore["get_misses"])
	}
	for _, name := range []string{"cmd_set", "total_items", "total_connections", "bytes_read", "bytes_written", "uptime"} {
		if statsAfter[name] < statsBefore[name] {
			t.Errorf("kv stat %s went from %d to %d across the update", name, statsBefore[name], statsAfter[name])
		}
	}
	after, rateAfter := workload("after the update, on the same kv connection")
	t.Logf("hit rate of the same gets: %.4f before, %.4f after the update", rateBefore, rateAfter)
	if rateAfter != rateBefore {
		t.Errorf("hit rate %.4f after the update, %.4f before", rateAfter, rateBefore)
	}
	for k, b := range before {
		a, ok := after[k]
		if ok && (string(a.value) != string(b.value) || a.cas != b.cas) {
			t.Errorf("item %s: value %q cas %d after; %q cas %d before", k, a.value, a.cas, b.value, b.cas)
			break
		}
	}
	if err := streamcheck.Datagrams(udp, 20, 2*time.Second); err != nil {
		t.Errorf("UDP after the update (same client socket): %v", err)
	}
	g.shell(t, "services", "echo :7007")
}

// TestUpdateRefusals pushes images the kernel must refuse, each with its
// reason, and checks that the kernel kept serving (same kv connection,
// same items) and did not jump.
func TestUpdateRefusals(t *testing.T) {
	v1 := signedImage(t, "v1")
	g, ns := updateGuest(t, v1)
	defer g.poweroff(t)
	kv := dialKV(t, ns)
	if err := kv.setMany(50); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(v1.bundle)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	elfBytes, err := os.ReadFile(v1.elf)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := updimage.Sign(elfBytes, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 1
	hdr, err := updimage.ReadHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	// crafted returns the bundle with its ELF changed by f and signed
	// again with the trusted key: the signature is good, the image is not.
	crafted := func(name string, f func(e *elf.File, b []byte)) string {
		b := append([]byte(nil), good...)
		e := b[hdr.ELFOffset : hdr.ELFOffset+hdr.ELFLen]
		ef, err := elf.NewFile(bytes.NewReader(e))
		if err != nil {
			t.Fatal(err)
		}
		f(ef, e)
		n := len(b) - ed25519.SignatureSize
		copy(b[n:], ed25519.Sign(testKey, b[:n]))
		return write(name, b)
	}
	le := binary.LittleEndian
	wrongArch := crafted("arm64.img", func(_ *elf.File, e []byte) { le.PutUint16(e[18:], uint16(elf.EM_AARCH64)) })
	// Grow the last PT_LOAD's BSS into the handoff region.
	overlap := crafted("overlap.img", func(ef *elf.File, e []byte) {
		last := -1
		for i, p := range ef.Progs {
			if p.Type == elf.PT_LOAD {
				last = i
			}
		}
		ph := e[le.Uint64(e[0x20:])+uint64(last)*uint64(le.Uint16(e[0x36:])):]
		le.PutUint64(ph[0x28:], layout.HandoffBase+0x1000-ef.Progs[last].Vaddr) // p_memsz
	})
	// Turn the PT_GNU_STACK header into a one-page PT_LOAD (BSS only) in
	// the boot area, at the purgatory's pages; the real segments, their
	// symbols and the entry point stay as they are.
	bootArea := crafted("boot-area.img", func(ef *elf.File, e []byte) {
		for i, p := range ef.Progs {
			if p.Type == elf.PT_GNU_STACK {
				ph := e[le.Uint64(e[0x20:])+uint64(i)*uint64(le.Uint16(e[0x36:])):]
				le.PutUint32(ph[0x00:], uint32(elf.PT_LOAD))
				le.PutUint64(ph[0x10:], 0x8000) // p_vaddr
				le.PutUint64(ph[0x18:], 0x8000) // p_paddr
				le.PutUint64(ph[0x28:], 0x1000) // p_memsz
				le.PutUint64(ph[0x30:], 0x1000) // p_align
				return
			}
		}
		t.Fatal("no PT_GNU_STACK header to turn into a segment")
	})
	// Grow the first PT_LOAD (text) over the next one.
	selfOverlap := crafted("self-overlap.img", func(ef *elf.File, e []byte) {
		var loads []int
		for i, p := range ef.Progs {
			if p.Type == elf.PT_LOAD {
				loads = append(loads, i)
			}
		}
		first, second := ef.Progs[loads[0]], ef.Progs[loads[1]]
		ph := e[le.Uint64(e[0x20:])+uint64(loads[0])*uint64(le.Uint16(e[0x36:])):]
		le.PutUint64(ph[0x28:], second.Vaddr+0x1000-first.Vaddr) // p_memsz
	})
	// Declare a handoff format this kernel does not write.
	format := crafted("format.img", func(ef *elf.File, e []byte) {
		syms, err := ef.Symbols()
		if err != nil {
			t.Fatal(err)
		}
		for _, sym := range syms {
			if sym.Name != layout.HandoffFormatsSymbol {
				continue
			}
			for _, p := range ef.Progs {
				if p.Type == elf.PT_LOAD && sym.Value >= p.Vaddr && sym.Value+sym.Size <= p.Vaddr+p.Filesz {
					off := p.Off + sym.Value - p.Vaddr
					clear(e[off : off+sym.Size])
					le.PutUint32(e[off:], 99)
					return
				}
			}
		}
		t.Fatal("no handoff formats symbol with file bytes")
	})
	huge := make([]byte, layout.ImageSlotSize+1)
	copy(huge, good)
	for _, c := range []struct {
		name, file string
		code       push.Code
	}{
		{"bad signature", write("flipped.img", flipped), push.CodeBadSignature},
		{"unknown key", write("foreign.img", foreign), push.CodeUnknownKey},
		{"not a bundle", v1.elf, push.CodeBadImage},
		{"wrong architecture", wrongArch, push.CodeWrongArch},
		{"segment in the boot area", bootArea, push.CodeBadLayout},
		{"segment over the handoff region", overlap, push.CodeBadLayout},
		{"segments over each other", selfOverlap, push.CodeBadLayout},
		{"handoff format", format, push.CodeHandoff},
		{"too big for a slot", write("huge.img", huge), push.CodeTooBig},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := pushImage(t, ns, c.file, 0)
			var r *push.RefusedError
			if !errors.As(err, &r) || r.Code != c.code {
				t.Fatalf("push: %v; want a refusal with code %s", err, c.code)
			}
			t.Logf("refused: %s", r.Reason)
			got, err := kv.getsAll(50)
			if err != nil || len(got) != 50 {
				t.Fatalf("after the refusal: %d items, %v", len(got), err)
			}
		})
	}
	if strings.Contains(g.Console.String(), "warm boot") {
		t.Error("the kernel jumped although every push was refused")
	}
}

// TestUpdateQuiesceAbort: a kv client in the middle of a long multi-get
// line keeps kv from reaching its safe point; with a 100 ms quiesce
// deadline the update is aborted, the client is told why, the old kernel
// keeps serving (the stuck request completes, the items are there) and a
// later push without the obstacle goes through.
func TestUpdateQuiesceAbort(t *testing.T) {
	v1 := signedImage(t, "v1")
	v2 := signedImage(t, "v2")
	g, ns := updateGuest(t, v1)
	defer g.poweroff(t)
	kv := dialKV(t, ns)
	if err := kv.setMany(10); err != nil {
		t.Fatal(err)
	}
	busy := dialKV(t, ns)
	busy.c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(busy.c, "get k1 "+strings.Repeat("x ", 5000)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	_, err := pushImage(t, ns, v2.bundle, 100*time.Millisecond)
	var r *push.RefusedError
	if !errors.As(err, &r) || r.Code != push.CodeQuiesceTimeout || !r.Accepted {
		t.Fatalf("push: %v; want a quiesce-timeout refusal after acceptance", err)
	}
	if !strings.Contains(r.Reason, `task "kv": quiesce: deadline 100ms exceeded`) {
		t.Errorf("the reason does not name kv's deadline: %s", r.Reason)
	}
	t.Logf("refused: %s", r.Reason)
	if _, err := io.WriteString(busy.c, "\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := busy.r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VALUE k1 ") {
		t.Fatalf("the stuck get after the abort: %q, %v", line, err)
	}
	if got, err := kv.getsAll(10); err != nil || len(got) != 10 {
		t.Fatalf("after the abort: %d items, %v", len(got), err)
	}
	busy.c.Close()
	rep, err := pushImage(t, ns, v2.bundle, 0)
	if err != nil {
		t.Fatalf("the second push: %v", err)
	}
	if rep.Version != "v2" {
		t.Errorf("report: version %q, want v2", rep.Version)
	}
	if got, err := kv.getsAll(10); err != nil || len(got) != 10 {
		t.Fatalf("after the update: %d items, %v", len(got), err)
	}
}

// framesInUse runs the shell's services command and returns the frames
// in use it printed.
func framesInUse(t *testing.T, g *guest) int {
	t.Helper()
	before := len(g.Console.String())
	g.shell(t, "services", "frames in use")
	// The console copy may trail the line the shell check saw.
	var out string
	i := -1
	for deadline := time.Now().Add(10 * time.Second); i < 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out = g.Console.String()[before:]
		if i = strings.LastIndex(out, "frames in use "); i >= 0 && !strings.Contains(out[i:], "\n") {
			i = -1 // the line is not complete yet
		}
	}
	if i < 0 {
		t.Fatalf("no frame count in %q", out)
	}
	f := strings.Fields(out[i+len("frames in use "):])
	n, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatalf("frame count %q: %v", f[0], err)
	}
	return n
}

// TestUpdateChain: 20 updates in a row, v1 → v2 → v1 → ..., where v1's kv
// reads only state schema v1: each v2 kernel must save kv in v1 for the
// next one (the pushed image's task manifest says so). After every hop
// all items are there with their CAS, the kv and echo connections opened
// before the first hop still work, and the guest's memory does not grow
// from one round to the next.
func TestUpdateChain(t *testing.T) {
	imgs := []updatable{signedImage(t, "v1", kvSchema1), signedImage(t, "v2")}
	g, ns := updateGuest(t, imgs[0])
	defer g.poweroff(t)
	const items = 2000
	kv := dialKV(t, ns)
	if err := kv.setMany(items); err != nil {
		t.Fatal(err)
	}
	want, err := kv.getsAll(items)
	if err != nil {
		t.Fatal(err)
	}
	echoConn := dialAll(t, ns, fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), echoPort), 1)[0]
	echoConn.SetDeadline(time.Now().Add(15 * time.Minute))
	ping := func(hop int) {
		msg := fmt.Sprintf("hop %d\n", hop)
		if _, err := io.WriteString(echoConn, msg); err != nil {
			t.Fatalf("hop %d: echo write: %v", hop, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(echoConn, got); err != nil || string(got) != msg {
			t.Fatalf("hop %d: echo %q, %v", hop, got, err)
		}
	}
	ping(0)
	var frames []int
	for hop := 1; hop <= 20; hop++ {
		next := imgs[hop%2]
		rep, err := pushImage(t, ns, next.bundle, 0)
		if err != nil {
			t.Fatalf("hop %d: %v", hop, err)
		}
		wantVersion := []string{"v1", "v2"}[hop%2]
		if rep.Version != wantVersion || rep.Generation != uint64(hop) || rep.Restored.Tasks != 2 {
			t.Fatalf("hop %d: report %s (generation %d, %d tasks restored); want %s, generation %d, 2 tasks\n%s",
				hop, rep.Version, rep.Generation, rep.Restored.Tasks, wantVersion, hop, rep)
		}
		got, err := kv.getsAll(items)
		if err != nil || len(got) != items {
			t.Fatalf("hop %d: %d of %d items, %v", hop, len(got), items, err)
		}
		for k, w := range want {
			if a := got[k]; string(a.value) != string(w.value) || a.cas != w.cas {
				t.Fatalf("hop %d: item %s is %q cas %d; want %q cas %d", hop, k, a.value, a.cas, w.value, w.cas)
			}
		}
		ping(hop)
		t.Logf("hop %d: %s, blackout %v", hop, rep.Version, rep.Blackout)
		if hop%4 == 0 {
			frames = append(frames, framesInUse(t, g))
		}
	}
	// Frames in use after hops 4, 8, ..., 20: a leak across updates
	// (memory the new kernel never frees) would grow them steadily.
	t.Logf("frames in use: %v", frames)
	if first, last := frames[0], frames[len(frames)-1]; last > first+first/4 {
		t.Errorf("frames in use grew from %d to %d over 16 updates", first, last)
	}
}

// TestUpdateRollback pushes an image built to panic during restore: the
// new kernel arms its rollback, panics, and the machine must come back on
// v1 (from its image store slot) with the state v1 handed over: the same
// items, the same connections, and the push client gets v1's report
// saying what happened.
func TestUpdateRollback(t *testing.T) {
	v1 := signedImage(t, "v1")
	bad := signedImage(t, "v2-panics", "molt_panic_restore")
	g, ns := updateGuest(t, v1)
	defer g.poweroff(t)
	kv := dialKV(t, ns)
	if err := kv.setMany(500); err != nil {
		t.Fatal(err)
	}
	want, err := kv.getsAll(500)
	if err != nil {
		t.Fatal(err)
	}
	echoConn := dialAll(t, ns, fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), echoPort), 1)[0]
	echoConn.SetDeadline(time.Now().Add(5 * time.Minute))
	rep, err := pushImage(t, ns, bad.bundle, 0)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	t.Logf("report:\n%s", rep)
	lines := strings.Join(rep.Lines, "\n")
	if rep.Version != "v1" || !strings.Contains(lines, "rolled back: v2-panics stopped with code 2 before it committed") {
		t.Errorf("report from %q, lines:\n%s\nwant v1 saying it rolled back from v2-panics", rep.Version, lines)
	}
	for _, w := range []string{"panic: service: deliberate panic during restore", "rolling back to the previous image", "molt: rolled back: v2-panics"} {
		if !strings.Contains(g.Console.String(), w) {
			t.Errorf("console lacks %q", w)
		}
	}
	got, err := kv.getsAll(500)
	if err != nil || len(got) != 500 {
		t.Fatalf("after the rollback: %d items, %v", len(got), err)
	}
	for k, w := range want {
		if a := got[k]; string(a.value) != string(w.value) || a.cas != w.cas {
			t.Fatalf("item %s changed across the rollback", k)
		}
	}
	if _, err := io.WriteString(echoConn, "still here\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("still here\n"))
	if _, err := io.ReadFull(echoConn, buf); err != nil || string(buf) != "still here\n" {
		t.Fatalf("echo after the rollback: %q, %v", buf, err)
	}
	// A good update afterwards still works.
	v2 := signedImage(t, "v2")
	if rep, err := pushImage(t, ns, v2.bundle, 0); err != nil || rep.Version != "v2" {
		t.Fatalf("update after the rollback: %v, %v", rep, err)
	}
}

// TestUpdateHealthRollback: a new kernel that runs but fails its health
// check at the end of the health window (an image built with
// molt_fail_health) hands its current state back to the previous image:
// what clients did on the new kernel during the window (items stored, a
// connection opened) is there on the old one, kv's state is written in the
// schema the old image reads (v1), and no connection is reset.
func TestUpdateHealthRollback(t *testing.T) {
	v1 := signedImage(t, "v1", kvSchema1)
	bad := signedImage(t, "v2-unhealthy", "molt_fail_health")
	g, ns := updateGuest(t, v1)
	defer g.poweroff(t)
	kv := dialKV(t, ns)
	if err := kv.setMany(300); err != nil {
		t.Fatal(err)
	}
	rep, err := pushImage(t, ns, bad.bundle, 0)
	if err != nil || rep.Version != "v2-unhealthy" {
		t.Fatalf("push: report %v, %v; want one from v2-unhealthy", rep, err)
	}
	// On the new kernel, inside its health window: more items, a new
	// connection.
	if _, err := io.WriteString(kv.c, "set during-window 0 0 5\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := kv.r.ReadString('\n'); err != nil || line != "STORED\r\n" {
		t.Fatalf("set on the new kernel: %q, %v", line, err)
	}
	echoConn := dialAll(t, ns, fmt.Sprintf("%s:%d", ns.GuestIPv4.Addr(), echoPort), 1)[0]
	echoConn.SetDeadline(time.Now().Add(5 * time.Minute))
	echoOnce := func(when string) {
		t.Helper()
		msg := "echo " + when + "\n"
		if _, err := io.WriteString(echoConn, msg); err != nil {
			t.Fatalf("echo %s: %v", when, err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(echoConn, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %s: %q, %v", when, buf, err)
		}
	}
	echoOnce("on the new kernel")

	const back = "molt: rolled back: v2-unhealthy failed its health check before it committed"
	for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(g.Console.String(), back); {
		if time.Now().After(deadline) {
			t.Fatalf("no rollback within 3 minutes; console lacks %q", back)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range []string{"failed its health check after 2s: deliberate health check failure", "restored: task kv restored (schema v1"} {
		if !strings.Contains(g.Console.String(), w) {
			t.Errorf("console lacks %q", w)
		}
	}
	got, err := kv.getsAll(300)
	if err != nil || len(got) != 300 {
		t.Fatalf("after the rollback, same kv connection: %d of 300 items, %v", len(got), err)
	}
	if _, err := io.WriteString(kv.c, "get during-window\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := kv.r.ReadString('\n'); err != nil || line != "VALUE during-window 0 5\r\n" {
		t.Fatalf("the item stored on the new kernel, after the rollback: %q, %v", line, err)
	}
	echoOnce("after the rollback")
	g.shell(t, "services", "echo :7007")
}
