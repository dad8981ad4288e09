// Command molt builds, boots and tests molt kernel images.
//
// Synopsis:
//
//	molt <command> [flags] [args]
//
// Commands:
//
//	build        build a kernel image (go build + post-link step) and sign it
//	keygen       write a new ed25519 image signing key
//	push         send a signed image to a running kernel's update service
//	run          boot an image on QEMU microvm with the console on this terminal
//	debug        boot an image with QEMU's gdb stub and wait for a debugger
//	selftest     build the in-VM test images, boot them and report N passed, N failed
//	conformance  run the Go distribution's test programs on molt and compare output
//	bench        measure boot, kv against Linux+memcached, and TCP to a netns peer
//
// Run `molt <command> -help` for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
)

// command is one subcommand of molt.
type command struct {
	synopsis string
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"build":       {"build a kernel image (go build + post-link step) and sign it", cmdBuild},
	"run":         {"boot an image on QEMU microvm with the console on this terminal", cmdRun},
	"debug":       {"boot an image with QEMU's gdb stub and wait for a debugger", cmdDebug},
	"selftest":    {"build the in-VM test images, boot them and report N passed, N failed", cmdSelftest},
	"conformance": {"run the Go distribution's test programs on molt and compare output", cmdConformance},
	"bench":       {"measure boot, kv against Linux+memcached, and TCP to a netns peer", cmdBench},
	"keygen":      {"write a new ed25519 image signing key (FILE and FILE.pub)", cmdKeygen},
	"push":        {"send a signed image to a running kernel and print the update report", cmdPush},
}

// errUsage marks an error caused by the command line; main exits with 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "molt:", err)
		}
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", errUsage)
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: molt <command> [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprintln(w, "\nRun 'molt <command> -help' for the flags of a command.")
}

// newFlags returns a FlagSet for a subcommand that reports parse errors as
// usage errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("molt "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: molt %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and wraps failures in errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
