package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"

	"github.com/molt-os/molt/internal/conformance"
)

// cmdConformance runs the Go distribution's own test programs
// ($GOROOT/test: chan/, ken/ and the top level, "// run" only) on molt and
// on the host, and compares their output; see internal/conformance and
// docs/conformance.md.
func cmdConformance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("conformance", "conformance [-run regexp] [-j n] [-timeout d] [-keep] [-v] [-noskip] [-accel mode] [-goroot dir]", stderr)
	run := fs.String("run", "", "run only programs whose name (e.g. chan/select3.go) matches `regexp`")
	jobs := fs.Int("j", runtime.NumCPU(), "programs to build and run at once")
	timeout := fs.Duration("timeout", conformance.DefaultTimeout, "time limit of each program's VM boot (and of its host run)")
	keep := fs.Bool("keep", false, "keep the temporary build module and print its path")
	verbose := fs.Bool("v", false, "show the output around the first difference of each failure")
	accel := fs.String("accel", "auto", "QEMU accelerator: auto, tcg or kvm")
	noskip := fs.Bool("noskip", false, "also run the programs of the explicit skip list (conformance.Known)")
	goroot := fs.String("goroot", "", "Go distribution to take test/ from (default: go env GOROOT)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	o := conformance.Options{
		GOROOT: *goroot, Jobs: *jobs, Timeout: *timeout, Accel: *accel,
		Keep: *keep, Verbose: *verbose, Stdout: stdout,
	}
	if *noskip {
		o.Known = map[string]string{}
	}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			return fmt.Errorf("%w: -run: %v", errUsage, err)
		}
		o.Run = re
	}
	if *jobs < 1 {
		return fmt.Errorf("%w: -j %d: want at least 1", errUsage, *jobs)
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: -timeout %v: want a positive duration", errUsage, *timeout)
	}
	if o.GOROOT == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("conformance: go env GOROOT: %w", err)
		}
		o.GOROOT = strings.TrimSpace(string(out))
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if o.RepoRoot, err = conformance.FindRepoRoot(wd); err != nil {
		return fmt.Errorf("conformance: %w (run molt inside the molt module)", err)
	}
	_, err = conformance.Run(ctx, o)
	return err
}
