package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/push"
)

// cmdPush sends a signed image to a running kernel's update service and
// waits for the new kernel's report.
//
// Synopsis:
//
//	molt push IMAGE -to HOST[:PORT] [-key build/dev.key] [-quiesce d] [-timeout d]
//
// IMAGE is a signed bundle (molt build writes build/molt.img) or a
// post-linked ELF, which push signs with -key first. Flags may come before
// or after IMAGE, with one or two dashes (--to). The port defaults to
// push.DefaultPort. While uploading, a progress line (bytes, percent, rate)
// goes to stderr, at most four times a second on a terminal and once a
// second otherwise; the kernel's stages follow. The report goes to stdout.
// A refusal is printed with its reason and code, and push exits with
// status 1.
func cmdPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("push", "push IMAGE -to HOST[:PORT] [-key build/dev.key] [-quiesce d] [-timeout d]", stderr)
	to := fs.String("to", "", fmt.Sprintf("the kernel's update service, HOST[:PORT] (default port %d)", push.DefaultPort))
	keyFile := fs.String("key", defaultKey, "signing key, used when IMAGE is an ELF rather than a signed bundle")
	quiesce := fs.Duration("quiesce", 0, "quiesce deadline for the kernel's tasks (0: the kernel's default)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long (0: no limit)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		fs.Usage()
		return fmt.Errorf("%w: push takes one image, got %q", errUsage, pos)
	case *to == "":
		fs.Usage()
		return fmt.Errorf("%w: no -to address: where does the kernel's update service listen?", errUsage)
	case *quiesce < 0:
		fs.Usage()
		return fmt.Errorf("%w: negative -quiesce %v", errUsage, *quiesce)
	case *timeout < 0:
		fs.Usage()
		return fmt.Errorf("%w: negative -timeout %v", errUsage, *timeout)
	}
	addr, err := pushAddr(*to)
	if err != nil {
		fs.Usage()
		return fmt.Errorf("%w: -to %q: %v", errUsage, *to, err)
	}
	bundle, h, err := loadBundle(pos[0], *keyFile, flagGiven(fs, "key"), stderr)
	if err != nil {
		return err
	}
	v := h.Version
	if v == "" {
		v = "(no version)"
	}
	fmt.Fprintf(stderr, "pushing %s to %s: version %s, build %x, %d bytes, signed by key %s\n", pos[0], addr, v, h.BuildID[:6], len(bundle), h.KeyID)

	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer conn.Close()
	pl := newProgressLine(stderr)
	opts := push.Options{
		QuiesceDeadline: *quiesce,
		OnProgress: func(p push.Progress) {
			if p.Stage != push.StageReceiving { // the upload line covers it
				pl.note("kernel: " + p.Stage.String() + progressDetail(p))
			}
		},
		OnAccept: func() { pl.note("kernel: accepted the image, updating") },
	}
	rep, err := push.Push(ctx, conn, bundle, opts, pl.update)
	pl.finish()
	var refused *push.RefusedError
	if errors.As(err, &refused) {
		when := ""
		if refused.Accepted {
			when = " after accepting it (the update was aborted; the old kernel keeps running)"
		}
		return fmt.Errorf("%s refused the image%s: %s (%s)", addr, when, refused.Reason, refused.Code)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep)
	return nil
}

func progressDetail(p push.Progress) string {
	if p.Total == 0 {
		return ""
	}
	return fmt.Sprintf(" %d/%d", p.Done, p.Total)
}

// parseInterspersed parses flags that may come before and after the
// positional arguments (flag stops at the first non-flag), and returns the
// positional ones. After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// pushAddr adds the default port to an address without one.
func pushAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a host name, an IPv4 address, or an IPv6 address with
		// or without brackets.
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		if host == "" || strings.ContainsAny(host, "[]/ ") {
			return "", errors.New("want HOST or HOST:PORT")
		}
		return net.JoinHostPort(host, strconv.Itoa(push.DefaultPort)), nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q out of range", port)
	}
	if host == "" {
		return "", errors.New("no host")
	}
	return s, nil
}

// loadBundle reads IMAGE: a signed bundle is sent as it is; an ELF is signed
// with the key first.
func loadBundle(path, keyFile string, keyGiven bool, stderr io.Writer) ([]byte, *image.Header, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(b) >= 4 && string(b[:4]) == "\x7fELF" {
		key, err := loadKey(keyFile)
		if err != nil {
			if !keyGiven && errors.Is(err, os.ErrNotExist) {
				return nil, nil, fmt.Errorf("%s is an ELF and needs signing, but there is no key %s: molt build creates it (or molt keygen; or push the signed build/molt.img)", path, keyFile)
			}
			return nil, nil, fmt.Errorf("signing key: %w", err)
		}
		if b, err = image.Sign(b, key); err != nil {
			return nil, nil, fmt.Errorf("signing %s: %w", path, err)
		}
		fmt.Fprintf(stderr, "signed %s with %s\n", path, keyFile)
	}
	h, err := image.ReadHeader(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, h, nil
}

// progressLine prints the upload progress and the kernel's stages. On a
// terminal the upload line rewrites itself; elsewhere each update is a
// line. Either way, updates are rate-limited.
type progressLine struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time
	start    time.Time
	last     time.Time
	open     bool // a terminal line without its newline yet
	done     bool // the final upload line was printed
}

func newProgressLine(w io.Writer) *progressLine {
	p := &progressLine{w: w, tty: isTerminal(w), interval: time.Second, now: time.Now}
	if p.tty {
		p.interval = 250 * time.Millisecond
	}
	p.start = p.now()
	return p
}

// update is the push progress callback.
func (p *progressLine) update(sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	final := sent == total
	if p.done || (!final && !p.last.IsZero() && now.Sub(p.last) < p.interval) {
		return
	}
	p.last = now
	secs := now.Sub(p.start).Seconds()
	rate := ""
	if secs > 0 {
		rate = fmt.Sprintf(", %s/s", mibs(float64(sent)/secs))
	}
	line := fmt.Sprintf("uploading %s of %s (%d%%)%s", mibs(float64(sent)), mibs(float64(total)), 100*sent/max(total, 1), rate)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.open = true
		if final {
			fmt.Fprintln(p.w)
			p.open = false
		}
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.done = final
}

// note prints a line of its own.
func (p *progressLine) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
	fmt.Fprintln(p.w, s)
}

// finish ends an open terminal line.
func (p *progressLine) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

func mibs(n float64) string { return fmt.Sprintf("%.1f MiB", n/(1<<20)) }

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && f.Name() != os.DevNull
}
