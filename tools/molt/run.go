package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/qemu"
)

// stdin is the console input of run and debug; a variable so that tests
// can replace it (nil: no input).
var stdin = os.Stdin

// cmdRun boots an image on QEMU microvm with the serial console on this
// terminal.
//
// Synopsis:
//
//	molt run [-m MiB] [-accel auto|kvm|tcg] [-append str] [-timeout d] [-raw] [image]
//
// The image (default build/molt.elf) must be post-linked (Verify). The
// QEMU command line and the accelerator go to stderr, the console to stdout;
// standard input goes to the serial port. Ctrl-C stops the VM. A program
// exit 0 or a poweroff is success; any other end (program exit N, CPU fault,
// kernel panic, timeout) is an error.
//
// Terminal: by default the terminal stays in line mode, because the
// kernel's console has no line discipline (the shell reads "\n"-terminated
// lines and does not echo), so the host terminal edits, echoes and sends
// lines. -raw switches a terminal to raw mode, for guests that do their own
// echo and editing. Input that is not a terminal is passed on as it is.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "run [-m MiB] [-accel auto|kvm|tcg] [-append str] [-timeout d] [-raw] [image]", stderr)
	mem := fs.Int("m", qemu.DefaultMemory, "guest RAM in MiB")
	accel := fs.String("accel", qemu.DefaultAccel, "accelerator: auto (KVM if a probe boot passes, else TCG), kvm or tcg; $MOLT_ACCEL replaces auto")
	cmdline := fs.String("append", "", "kernel command line")
	timeout := fs.Duration("timeout", 0, "stop the VM after this long (0: no limit)")
	raw := fs.Bool("raw", false, "put a terminal on stdin in raw mode (the guest echoes and edits lines)")
	if err := parseFlags(fs, args); err != nil {
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
	return boot(ctx, img, rep, *raw, stdout, stderr,
		qemu.Memory(*mem), qemu.Accel(*accel), qemu.Append(*cmdline), qemu.Timeout(*timeout))
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
