package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/qemu"
	"github.com/molt-os/molt/qemu/netns"
	"github.com/molt-os/molt/updater/push"
)

// Update benchmark: the self-update against a cold reboot, in one run and
// on the same setup (a TAP interface in a fresh network namespace, Linux
// as the client). Each scenario boots v1 with kv items and idle echo
// connections, keeps a kv client asking for one item back to back, and
// then either pushes v2 or reboots the machine (poweroff, boot the same
// image). It records the longest gap between two replies the client saw
// (the client-observed blackout), the kernel's own phase timings, and what
// was left afterwards: items in kv and connections still answering.

// updateScenario is one measured situation.
type updateScenario struct {
	Kind  string // "update" or "reboot"
	Conns int    // idle echo connections held open across it
	Items int    // kv items
}

func (s updateScenario) String() string {
	return fmt.Sprintf("%s, %d conns, %d items", s.Kind, s.Conns, s.Items)
}

// updatePhase is one kernel-measured phase of an update.
type updatePhase struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

// updateSample is what one scenario measured.
type updateSample struct {
	Kind  string `json:"kind"`
	Conns int    `json:"conns"`
	Items int    `json:"items"`
	// ClientGapMs is the longest interval between two replies to the kv
	// client's back-to-back gets, around the update or reboot: how long
	// the service was unavailable as a client saw it.
	ClientGapMs float64 `json:"client_gap_ms"`
	// KernelBlackoutMs is the kernel's own figure (quiesce to resume),
	// updates only.
	KernelBlackoutMs float64       `json:"kernel_blackout_ms,omitempty"`
	Phases           []updatePhase `json:"phases,omitempty"`
	// ItemsAfter and ConnsAlive are what survived: kv's curr_items and
	// the echo connections that still echo.
	ItemsAfter int `json:"items_after"`
	ConnsAlive int `json:"conns_alive"`

	accel string // the accelerator the guest got
}

// updateBenchConfig chooses the scenarios.
type updateBenchConfig struct {
	Conns  []int // connection counts, each with 10,000 items
	Items  []int // item counts beyond 10,000, each with one connection
	Reboot updateScenario
}

// scenarios lists the runs of cfg, updates first.
func (cfg updateBenchConfig) scenarios() []updateScenario {
	var out []updateScenario
	for _, c := range cfg.Conns {
		out = append(out, updateScenario{"update", c, 10000})
	}
	for _, n := range cfg.Items {
		if n != 10000 {
			out = append(out, updateScenario{"update", 1, n})
		}
	}
	return append(out, cfg.Reboot)
}

// benchUpdate builds two signed images (v1 and v2, trusting a key made for
// the run) and measures every scenario of cfg.
func benchUpdate(ctx context.Context, accel string, cfg updateBenchConfig, logf func(string, ...any)) ([]updateSample, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	var imgs [2]struct {
		elf, bundle string
		signed      []byte
	}
	for i, v := range []string{"bench-v1", "bench-v2"} {
		elf := fmt.Sprintf("build/bench/update-%s.elf", v)
		logf("bench: building ./cmd/kernel as %s", v)
		_, signed, err := buildSigned(ctx, image.BuildOptions{Dir: ".", Package: "./cmd/kernel", Output: elf, Version: v}, key)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", v, err)
		}
		imgs[i].elf, imgs[i].bundle, imgs[i].signed = elf, bundlePath(elf), signed
		if err := os.WriteFile(imgs[i].bundle, signed, 0o644); err != nil {
			return nil, err
		}
	}
	v2 := imgs[1].signed
	var out []updateSample
	for _, sc := range cfg.scenarios() {
		logf("bench: update suite: %s", sc)
		s, err := benchUpdateOne(ctx, accel, sc, imgs[0].elf, imgs[0].bundle, v2, logf)
		if err != nil {
			return out, fmt.Errorf("%s: %w", sc, err)
		}
		logf("bench: %s: client gap %.1f ms, kernel blackout %.1f ms, %d items and %d of %d connections after",
			sc, s.ClientGapMs, s.KernelBlackoutMs, s.ItemsAfter, s.ConnsAlive, sc.Conns)
		out = append(out, s)
	}
	return out, nil
}

// benchUpdateOne runs one scenario on a fresh namespace and guest.
func benchUpdateOne(ctx context.Context, accel string, sc updateScenario, elf, slot0 string, v2 []byte, logf func(string, ...any)) (updateSample, error) {
	s := updateSample{Kind: sc.Kind, Conns: sc.Conns, Items: sc.Items}
	ns, err := netns.New()
	if err != nil {
		return s, err
	}
	defer ns.Close()
	console := fmt.Sprintf("build/bench/update-%s-%d-%d-console.log", sc.Kind, sc.Conns, sc.Items)
	opts := []qemu.Option{qemu.TAP(ns.TAP, guestMAC), qemu.Loader(slot0, layout.ImageStoreBase), qemu.Timeout(20 * time.Minute),
		qemu.Append(fmt.Sprintf("ip=%s,gw=%s", ns.GuestIPv4, ns.HostIPv4.Addr()))}
	g, err := bootMolt(ctx, ns.StartVM, elf, accel, console, opts...)
	if err != nil {
		return s, err
	}
	s.accel, _ = g.VM.Accel()
	running := true
	defer func() {
		if running {
			g.VM.Kill()
			g.VM.Wait()
			g.log.Close()
		}
	}()
	kvAddr := netip.AddrPortFrom(ns.GuestIPv4.Addr(), guestKVPort).String()
	echoAddr := netip.AddrPortFrom(ns.GuestIPv4.Addr(), guestEchoPort).String()

	kv, err := ns.Dial(ctx, "tcp", kvAddr)
	if err != nil {
		return s, err
	}
	defer kv.Close()
	kvr := bufio.NewReader(kv)
	if err := benchSetItems(kv, kvr, sc.Items); err != nil {
		return s, fmt.Errorf("loading %d items: %w (console in %s)", sc.Items, err, console)
	}
	conns, err := benchDialAll(ctx, ns, echoAddr, sc.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return s, err
	}
	if alive := echoAlive(conns); alive != len(conns) {
		return s, fmt.Errorf("only %d of %d echo connections answer before the %s", alive, len(conns), sc.Kind)
	}

	// For the reboot the client gives up on a silent connection after
	// 1 s and reconnects, as a client with a short timeout does; for the
	// update it keeps its connection, which must carry on.
	reply := 2 * time.Minute
	if sc.Kind == "reboot" {
		reply = time.Second
	}
	probe := startKVProbe(ctx, ns, kvAddr, sc.Kind == "reboot", reply)
	time.Sleep(time.Second) // the probe's steady state, before the event
	switch sc.Kind {
	case "update":
		rep, err := benchPush(ctx, ns, v2)
		if err != nil {
			probe.stop()
			return s, fmt.Errorf("push: %w (console in %s)", err, console)
		}
		s.KernelBlackoutMs = ms(rep.Blackout)
		for _, p := range rep.Phases {
			s.Phases = append(s.Phases, updatePhase{p.Name, ms(p.Duration)})
		}
	case "reboot":
		running = false
		if err := g.stop(); err != nil {
			probe.stop()
			return s, err
		}
		if g, err = bootMolt(ctx, ns.StartVM, elf, accel, console+".2", opts...); err != nil {
			probe.stop()
			return s, err
		}
		running = true
	}
	// The probe must have had its answer again for a while.
	if err := probe.waitReplies(3, 2*time.Minute); err != nil {
		probe.stop()
		return s, fmt.Errorf("kv client after the %s: %w (console in %s)", sc.Kind, err, console)
	}
	gap, err := probe.stop()
	if err != nil {
		return s, fmt.Errorf("kv client: %w", err)
	}
	s.ClientGapMs = ms(gap)
	s.ConnsAlive = echoAlive(conns)
	n, err := benchCurrItems(ctx, ns, kvAddr)
	if err != nil {
		return s, err
	}
	s.ItemsAfter = n
	running = false
	return s, g.stop()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchSetItems stores n items with 16-byte values, pipelined.
func benchSetItems(c net.Conn, r *bufio.Reader, n int) error {
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	defer c.SetDeadline(time.Time{})
	const batch = 1000
	for base := 0; base < n; base += batch {
		w := bufio.NewWriterSize(c, 64<<10)
		end := min(base+batch, n)
		for i := base; i < end; i++ {
			fmt.Fprintf(w, "set k%d 0 0 16 noreply\r\nvalue-%010d\r\n", i, i)
		}
		// A final get makes the batch's end visible (noreply sets send
		// nothing back).
		fmt.Fprintf(w, "get k%d\r\n", end-1)
		if err := w.Flush(); err != nil {
			return err
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("after item %d: %w", end, err)
			}
			if line == "END\r\n" {
				break
			}
			if !strings.HasPrefix(line, "VALUE ") && !strings.HasPrefix(line, "value-") {
				return fmt.Errorf("after item %d: %q", end, line)
			}
		}
	}
	return nil
}

// benchDialAll opens n connections to addr from ns, 50 at a time.
func benchDialAll(ctx context.Context, ns *netns.NS, addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			conns[i], errs[i] = ns.Dial(dctx, "tcp", addr)
		}()
	}
	wg.Wait()
	var open []net.Conn
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return open, fmt.Errorf("dial %d echo connections: %w", n, err)
	}
	return open, nil
}

// echoAlive counts the connections that echo a short message, 50 at a
// time, each within 30 s.
func echoAlive(conns []net.Conn) int {
	var mu sync.Mutex
	alive := 0
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			msg := fmt.Sprintf("ping %06d", i)
			c.SetDeadline(time.Now().Add(30 * time.Second))
			defer c.SetDeadline(time.Time{})
			if _, err := io.WriteString(c, msg); err != nil {
				return
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
				return
			}
			mu.Lock()
			alive++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return alive
}

// benchPush sends bundle to the guest's update service and returns the
// new kernel's report.
func benchPush(ctx context.Context, ns *netns.NS, bundle []byte) (*push.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := ns.Dial(ctx, "tcp", netip.AddrPortFrom(ns.GuestIPv4.Addr(), push.DefaultPort).String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	return push.Push(ctx, c, bundle, push.Options{}, nil)
}

// benchCurrItems asks kv for curr_items on a new connection.
func benchCurrItems(ctx context.Context, ns *netns.NS, addr string) (int, error) {
	c, err := ns.Dial(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, "stats\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	n := -1
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("stats: %w", err)
		}
		if line == "END\r\n" {
			break
		}
		fmt.Sscanf(line, "STAT curr_items %d", &n)
	}
	if n < 0 {
		return 0, errors.New("stats: no curr_items")
	}
	return n, nil
}

// kvProbe asks kv for one item back to back and remembers the longest
// interval between two replies.
type kvProbe struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	last    time.Time
	gap     time.Duration
	replies int
	err     error
	reply   time.Duration // how long a reply may take
}

// startKVProbe starts the client. With reconnect, a failed connection is
// replaced (a reboot resets it); without, a failure ends the probe with
// an error (an update must not break it).
func startKVProbe(ctx context.Context, ns *netns.NS, addr string, reconnect bool, reply time.Duration) *kvProbe {
	p := &kvProbe{done: make(chan struct{}), reply: reply}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			err := p.session(ctx, ns, addr)
			select {
			case <-p.done:
				return
			default:
			}
			if !reconnect {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return p
}

// session is one connection's worth of gets.
func (p *kvProbe) session(ctx context.Context, ns *netns.NS, addr string) error {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	c, err := ns.Dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { <-p.done; c.SetDeadline(time.Now()) }()
	r := bufio.NewReader(c)
	for {
		c.SetDeadline(time.Now().Add(p.reply))
		if _, err := io.WriteString(c, "get k0\r\n"); err != nil {
			return err
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if line == "END\r\n" {
				break
			}
		}
		now := time.Now()
		p.mu.Lock()
		if !p.last.IsZero() && now.Sub(p.last) > p.gap {
			p.gap = now.Sub(p.last)
		}
		p.last = now
		p.replies++
		p.mu.Unlock()
		select {
		case <-p.done:
			return nil
		default:
		}
	}
}

// waitReplies waits until the probe has had n more replies.
func (p *kvProbe) waitReplies(n int, timeout time.Duration) error {
	p.mu.Lock()
	want := p.replies + n
	p.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		got, err := p.replies, p.err
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if got >= want {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no reply for %v", timeout)
}

// stop ends the probe and returns the longest gap between replies.
func (p *kvProbe) stop() (time.Duration, error) {
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.replies < 2 {
		return 0, fmt.Errorf("the kv client had %d replies", p.replies)
	}
	return p.gap, p.err
}

// printUpdate prints the update suite's table and the reboot ratio.
func printUpdate(w io.Writer, samples []updateSample) {
	fmt.Fprintf(w, "update benchmark: a kv client's longest gap between replies, push v1→v2 vs a cold reboot\n")
	fmt.Fprintf(w, "%-30s %12s %12s %12s %12s  %s\n", "scenario", "client gap", "kernel", "items after", "conns alive", "kernel phases (ms)")
	var reboot float64
	for _, s := range samples {
		if s.Kind == "reboot" {
			reboot = s.ClientGapMs
		}
	}
	for _, s := range samples {
		var ph []string
		for _, p := range s.Phases {
			if p.Name == "upload" || p.Name == "verify" {
				continue // before the blackout
			}
			ph = append(ph, fmt.Sprintf("%s %.1f", p.Name, p.Ms))
		}
		kernel := "-"
		if s.KernelBlackoutMs > 0 {
			kernel = fmt.Sprintf("%.1f ms", s.KernelBlackoutMs)
		}
		fmt.Fprintf(w, "%-30s %9.1f ms %12s %12d %7d/%-4d  %s\n", updateScenario{s.Kind, s.Conns, s.Items}, s.ClientGapMs, kernel, s.ItemsAfter, s.ConnsAlive, s.Conns, strings.Join(ph, ", "))
	}
	if reboot > 0 {
		for _, s := range samples {
			if s.Kind == "update" && s.ClientGapMs > 0 {
				fmt.Fprintf(w, "cold reboot gap / update gap, %s: %.1f\n", updateScenario{s.Kind, s.Conns, s.Items}, reboot/s.ClientGapMs)
			}
		}
	}
}

// writeUpdateSVG draws the client-observed gap of every scenario as a
// horizontal bar, with the kernel's blackout as a tick on the update bars.
func writeUpdateSVG(path string, r benchResult) error {
	if len(r.Update) == 0 {
		return nil
	}
	samples := append([]updateSample(nil), r.Update...)
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].Kind == "update" && samples[j].Kind != "update" })
	max := 0.0
	for _, s := range samples {
		max = maxf(max, s.ClientGapMs, s.KernelBlackoutMs)
	}
	step := niceStep(max / 5)
	axisMax := step * float64(int(max/step)+1)
	const left, width, rowH, top = 250.0, 440.0, 30.0, 40.0
	height := top + rowH*float64(len(samples)) + 60
	x := func(v float64) float64 { return left + v/axisMax*width }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", left+width+50, height)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">service gap seen by a kv client: self-update vs cold reboot, %s (%s)</text>`+"\n", strings.ToUpper(r.Accel), r.Date[:10])
	for i, s := range samples {
		y := top + rowH*float64(i)
		fill := "#1f77b4"
		if s.Kind == "reboot" {
			fill = "#d62728"
		}
		fmt.Fprintf(&b, `<text x="10" y="%.0f">%s</text>`+"\n", y+rowH/2+4, updateScenario{s.Kind, s.Conns, s.Items})
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.1f" height="%.0f" fill="%s"/>`+"\n", left, y+6, x(s.ClientGapMs)-left, rowH-12, fill)
		if s.KernelBlackoutMs > 0 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#000" stroke-width="2"/>`+"\n", x(s.KernelBlackoutMs), y+2, x(s.KernelBlackoutMs), y+rowH-2)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f">%.0f ms</text>`+"\n", x(s.ClientGapMs)+4, y+rowH/2+4, s.ClientGapMs)
	}
	axisY := top + rowH*float64(len(samples)) + 5
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#000"/>`+"\n", left, axisY, left+width, axisY)
	for v := 0.0; v <= axisMax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#000"/>`+"\n", x(v), axisY, x(v), axisY+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%g ms</text>`+"\n", x(v), axisY+18, v)
	}
	fmt.Fprintf(&b, `<text x="10" y="%.0f">bars: longest gap between replies seen by the client; black tick: the kernel's quiesce-to-resume blackout</text>`+"\n", axisY+40)
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func maxf(v ...float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		if x > m {
			m = x
		}
	}
	return m
}
