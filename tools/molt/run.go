package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/qemu"
	"github.com/molt-os/molt/updater/push"
)

// stdin is the console input of run and debug; a variable so that tests
// can replace it (nil: no input).
var stdin = os.Stdin

// cmdRun boots an image on QEMU microvm with the serial console on this
// terminal.
//
// Synopsis:
//
//	molt run [-m MiB] [-accel auto|kvm|tcg] [-append str] [-timeout d] [-raw]
//	         [-net user|none] [-kv-port N] [-echo-port N] [-update-port N] [image]
//
// The image (default build/molt.elf) must be post-linked (Verify). The
// QEMU command line and the accelerator go to stderr, the console to stdout;
// standard input goes to the serial port. Ctrl-C stops the VM. A program
// exit 0 or a poweroff is success; any other end (program exit N, CPU fault,
// kernel panic, timeout) is an error.
//
// Network: with -net user (the default) the guest gets a virtio-net card on
// QEMU's user networking (DHCP gives it 10.0.2.15) and the host forwards
// 127.0.0.1:KV-PORT to the kv service (guest port 11211) and
// 127.0.0.1:ECHO-PORT, TCP and UDP, to echo (guest port 7007), and
// 127.0.0.1:UPDATE-PORT to the update service (guest port 7100: `molt
// push build/molt.img --to 127.0.0.1`); a port of 0 leaves that forward
// out. The forwards are printed before the boot.
//
// Self-update: when the image's signed bundle lies next to it (molt.img
// beside molt.elf, as molt build writes it), it is placed in image store
// slot 0, so that the kernel knows the image it runs and a later update
// can keep it for rollback.
//
// Terminal: by default the terminal stays in line mode, because the
// kernel's console has no line discipline (the shell reads "\n"-terminated
// lines and does not echo), so the host terminal edits, echoes and sends
// lines. -raw switches a terminal to raw mode, for guests that do their own
// echo and editing. Input that is not a terminal is passed on as it is.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "run [-m MiB] [-accel auto|kvm|tcg] [-append str] [-timeout d] [-raw] [-net user|none] [-kv-port N] [-echo-port N] [-update-port N] [image]", stderr)
	mem := fs.Int("m", qemu.DefaultMemory, "guest RAM in MiB")
	accel := fs.String("accel", qemu.DefaultAccel, "accelerator: auto (KVM if a probe boot passes, else TCG), kvm or tcg; $MOLT_ACCEL replaces auto")
	cmdline := fs.String("append", "", "kernel command line")
	timeout := fs.Duration("timeout", 0, "stop the VM after this long (0: no limit)")
	raw := fs.Bool("raw", false, "put a terminal on stdin in raw mode (the guest echoes and edits lines)")
	netMode := fs.String("net", "user", "network: user (QEMU user networking with host forwards) or none")
	kvPort := fs.Int("kv-port", guestKVPort, "host port on 127.0.0.1 forwarded to the kv service (0: none)")
	echoPort := fs.Int("echo-port", guestEchoPort, "host port on 127.0.0.1 forwarded to the echo service, TCP and UDP (0: none)")
	updatePort := fs.Int("update-port", push.DefaultPort, "host port on 127.0.0.1 forwarded to the update service (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	netOpts, err := userNet(*netMode, *kvPort, *echoPort, *updatePort, stderr)
	if err != nil {
		fs.Usage()
		return err
	}
	switch *accel {
	case "auto", "kvm", "tcg":
	default:
		fs.Usage()
		return fmt.Errorf("%w: -accel %q: want auto, kvm or tcg", errUsage, *accel)
	}
	if *timeout < 0 {
		fs.Usage()
		return fmt.Errorf("%w: negative -timeout %v", errUsage, *timeout)
	}
	img, err := imageArg(fs, *mem)
	if err != nil {
		return err
	}
	rep, err := checkImage(img)
	if err != nil {
		return err
	}
	if b := bundlePath(img); b != img {
		if _, err := os.Stat(b); err == nil {
			netOpts = append(netOpts, qemu.Loader(b, layout.ImageStoreBase))
			fmt.Fprintf(stderr, "molt: image store slot 0: %s\n", b)
		}
	}
	return boot(ctx, img, rep, *raw, stdout, stderr, append(netOpts,
		qemu.Memory(*mem), qemu.Accel(*accel), qemu.Append(*cmdline), qemu.Timeout(*timeout))...)
}

// The default image's service ports (cmd/kernel).
const (
	guestKVPort   = 11211
	guestEchoPort = 7007
	// guestMAC is the MAC run gives the guest's card (QEMU's default one,
	// stated so that it is the same on every run).
	guestMAC = "52:54:00:12:34:56"
)

// userNet returns the QEMU options for -net and prints the forwards.
func userNet(mode string, kvPort, echoPort, updatePort int, stderr io.Writer) ([]qemu.Option, error) {
	switch mode {
	case "none":
		return nil, nil
	case "user":
	default:
		return nil, fmt.Errorf("%w: -net %q: want user or none", errUsage, mode)
	}
	var fwds []qemu.Forward
	for _, p := range []struct {
		name, protos string
		host, guest  int
	}{{"kv", "tcp", kvPort, guestKVPort}, {"echo", "tcp udp", echoPort, guestEchoPort}, {"update", "tcp", updatePort, push.DefaultPort}} {
		if p.host < 0 || p.host > 65535 {
			return nil, fmt.Errorf("%w: -%s-port %d out of range 0..65535", errUsage, p.name, p.host)
		}
		if p.host == 0 {
			continue
		}
		for _, proto := range strings.Fields(p.protos) {
			fwds = append(fwds, qemu.Forward{Proto: proto, HostPort: p.host, GuestPort: p.guest})
		}
		fmt.Fprintf(stderr, "molt: %s: %s 127.0.0.1:%d -> guest :%d\n", p.name, strings.ReplaceAll(p.protos, " ", "+"), p.host, p.guest)
	}
	return []qemu.Option{qemu.UserNet(guestMAC, fwds...)}, nil
}

// imageArg returns the image argument of run or debug and checks -m.
func imageArg(fs *flag.FlagSet, mem int) (string, error) {
	if minMiB := layout.MinRAM >> 20; mem < minMiB {
		fs.Usage()
		return "", fmt.Errorf("%w: -m %d: molt needs at least %d MiB", errUsage, mem, minMiB)
	}
	switch fs.NArg() {
	case 0:
		return defaultImage, nil
	case 1:
		return fs.Arg(0), nil
	}
	fs.Usage()
	return "", fmt.Errorf("%w: at most one image, got %q", errUsage, fs.Args())
}

// checkImage verifies that img is a post-linked kernel image, with advice
// for the usual mistakes.
func checkImage(img string) (*image.Report, error) {
	r, err := image.Verify(img)
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("image %s not found: build it with `make image` (or `molt build -o %s`)", img, img)
	case errors.Is(err, image.ErrNotPatched):
		return nil, fmt.Errorf("%w\n(was the image linked without `molt build`, or changed since? rebuild it with `make image`)", err)
	}
	return nil, err
}

// boot runs the VM for run and debug and turns its end into an error.
func boot(ctx context.Context, img string, rep *image.Report, raw bool, stdout, stderr io.Writer, opts ...qemu.Option) error {
	if err := qemu.Available(); err != nil {
		return err
	}
	opts = append([]qemu.Option{qemu.Kernel(img), qemu.Console(stdout), qemu.Stderr(stderr)}, opts...)
	if stdin != nil {
		if raw {
			restore, err := rawTerminal(stdin)
			if err != nil {
				return err
			}
			defer restore()
		}
		opts = append(opts, qemu.Stdin(stdin))
	}
	fmt.Fprintf(stderr, "molt: booting %s (build ID %x, %.1f MiB)\n", img, rep.BuildID[:6], float64(rep.ImageEnd-rep.ImageStart)/(1<<20))
	v, err := qemu.Start(ctx, opts...)
	if err != nil {
		return err
	}
	accel, why := v.Accel()
	// A raw terminal keeps output processing, so "\n" is still a newline.
	fmt.Fprintf(stderr, "molt: accel %s (%s)\nmolt: %s\n", accel, why, v.CommandLine())
	r, err := v.Wait()
	if err != nil {
		return fmt.Errorf("%s: %w", img, err)
	}
	fmt.Fprintf(stderr, "\nmolt: %s after %v\n", r.Describe(), r.Elapsed.Round(time.Millisecond))
	if !r.OK() {
		return fmt.Errorf("%s: %s", img, r.Describe())
	}
	return nil
}
