package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
	"github.com/molt-os/molt/qemu"
)

// The two images `molt selftest` builds and boots. The paths are relative
// to the module root, where molt is run.
const (
	selftestPkg   = "./cmd/selftest"
	selftestELF   = "build/selftest.elf"
	faulttestPkg  = "./cmd/faulttest"
	faulttestELF  = "build/faulttest.elf"
	faulttestSrc  = "cmd/faulttest/main.go"
	faultLineMark = "// fault_report: faulting line"
	faultCheck    = "fault_report" // the name the fault image counts under
)

// summaryRE matches the last line internal/selftest.RunAll prints. The
// serial console may end lines with \r\n.
var summaryRE = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed\r?$`)

// faultMarker is the line cmd/faulttest prints just before it faults; the
// fault patterns are searched for only in the console after it.
const faultMarker = "faulttest: about to dereference nil"

// faultPatterns is what the kernel's fault report must contain. The report
// format belongs to the kernel (lines starting "molt: fault:"), so the
// patterns are deliberately loose; adjust them here if the format changes.
// "LINE" is replaced by the line of faultLineMark in faulttestSrc.
var faultPatterns = []struct{ what, re string }{
	{"register dump (RIP)", `(?i)\bRIP\b`},
	{"register dump (CR2)", `(?i)\bCR2\b`},
	{"decoded faulting instruction (a MOV)", `(?i)\bmov`},
	{"Go function of RIP", `\bmain\.faultHere\b`},
	{"file:line of RIP", `cmd/faulttest/main\.go:LINE\b`},
	{"stack walk reaching main.main", `\bmain\.main\b`},
}

// cmdSelftest builds cmd/selftest and cmd/faulttest as kernel images, boots
// each on QEMU with the console on stdout, and sums the in-VM results with
// the fault_report check into one final "N passed, N failed" line.
//
// The selftest image's own summary line gives its counts; a missing summary
// (crash, hang), a QEMU timeout, or a nonzero exit with no failed check each
// add a failure. The fault image passes as fault_report if the kernel stops
// with layout.ExitFault and its report matches every faultPatterns entry.
// -run also selects fault_report, by name, like any other check.
func cmdSelftest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("selftest", "selftest [-run regexp] [-timeout d] [-accel auto|tcg|kvm] [-m MiB]", stderr)
	run := fs.String("run", "", "run only the checks whose names match `regexp` (passed to the image as MOLT_SELFTEST_RUN)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on the whole run after this `duration`, builds included")
	accel := fs.String("accel", qemu.DefaultAccel, "QEMU accelerator: auto, tcg or kvm (auto uses KVM only if a probe boot passes)")
	mem := fs.Int("m", qemu.DefaultMemory, "guest RAM in `MiB`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	filter, err := compileRun(*run)
	if err != nil {
		return err
	}
	if *mem < layout.MinRAM>>20 {
		return fmt.Errorf("%w: -m %d is below the %d MiB molt needs", errUsage, *mem, layout.MinRAM>>20)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	wantFault := filter == nil || filter.MatchString(faultCheck)
	faultLine := 0
	if wantFault {
		if faultLine, err = findFaultLine(faulttestSrc); err != nil {
			return err
		}
	}
	if err := buildImage(ctx, selftestPkg, selftestELF, stderr); err != nil {
		return err
	}
	if wantFault {
		if err := buildImage(ctx, faulttestPkg, faulttestELF, stderr); err != nil {
			return err
		}
	}

	boot := func(elf, cmdline string) (string, qemu.Result, error) {
		var console bytes.Buffer
		opts := []qemu.Option{
			qemu.Kernel(elf), qemu.Memory(*mem), qemu.Accel(*accel),
			qemu.Console(io.MultiWriter(stdout, &console)), qemu.Stderr(stderr),
			qemu.Timeout(remaining(ctx)),
		}
		if cmdline != "" {
			opts = append(opts, qemu.Append(cmdline))
		}
		fmt.Fprintf(stderr, "molt selftest: booting %s\n", elf)
		res, err := qemu.Run(ctx, opts...)
		// A timeout is a verdict on the kernel; anything else that stopped
		// QEMU (missing binary, QEMU error) means there is no verdict.
		if err != nil && ctx.Err() == nil && !res.TimedOut {
			return "", res, fmt.Errorf("boot %s: %w", elf, err)
		}
		fmt.Fprintf(stderr, "molt selftest: %s: %s (%s, %v)\n", elf, res.Describe(), res.Accel, res.Elapsed.Round(time.Millisecond))
		return console.String(), res, nil
	}

	var total verdict
	cmdline := ""
	if *run != "" {
		cmdline = "MOLT_SELFTEST_RUN=" + *run
	}
	console, res, err := boot(selftestELF, cmdline)
	if err != nil {
		return err
	}
	total.add(judgeSelftest(console, res.Code, res.TimedOut))

	if wantFault {
		if ctx.Err() != nil {
			return fmt.Errorf("selftest: %w before booting %s", ctx.Err(), faulttestELF)
		}
		console, res, err := boot(faulttestELF, "")
		if err != nil {
			return err
		}
		total.add(judgeFault(console, res.Code, res.TimedOut, faultLine))
	}

	total.report(stdout)
	if ctx.Err() != nil {
		return fmt.Errorf("selftest: %w (-timeout %v)", ctx.Err(), *timeout)
	}
	if total.failed > 0 {
		return fmt.Errorf("selftest: %d failed", total.failed)
	}
	return nil
}

// compileRun checks the -run value: a regexp, and one word on the kernel
// command line, which is split at white space.
func compileRun(run string) (*regexp.Regexp, error) {
	if run == "" {
		return nil, nil
	}
	if strings.ContainsAny(run, " \t\n\r\"'") {
		return nil, fmt.Errorf("%w: -run %q: white space and quotes cannot be passed on the kernel command line", errUsage, run)
	}
	re, err := regexp.Compile(run)
	if err != nil {
		return nil, fmt.Errorf("%w: -run: %v", errUsage, err)
	}
	return re, nil
}

func buildImage(ctx context.Context, pkg, out string, log io.Writer) error {
	fmt.Fprintf(log, "molt selftest: building %s -> %s\n", pkg, out)
	_, err := image.Build(ctx, image.BuildOptions{Dir: ".", Package: pkg, Output: out, Stdout: log, Stderr: log})
	return err
}

// remaining returns the time left before ctx's deadline.
func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 0
}

// findFaultLine returns the 1-based line of faultLineMark in path.
func findFaultLine(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("selftest: find the faulting line (run molt from the module root): %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), faultLineMark) {
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("selftest: read %s: %w", path, err)
	}
	return 0, fmt.Errorf("selftest: %s has no line marked %q", path, faultLineMark)
}

// verdict is the outcome of one image, or the sum of several: counts plus
// host-side result lines to print.
type verdict struct {
	passed, failed int
	lines          []string
}

func (v *verdict) add(o verdict) {
	v.passed += o.passed
	v.failed += o.failed
	v.lines = append(v.lines, o.lines...)
}

// report prints the result lines, then the summary, which is the last line
// of output.
func (v *verdict) report(w io.Writer) {
	fmt.Fprintln(w)
	for _, l := range v.lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", v.passed, v.failed)
}

// judgeSelftest reads the in-VM summary from the selftest image's console.
// A missing summary, a timeout, or a nonzero exit code with no failed check
// each count as one more failure, so a crashed image can never pass.
func judgeSelftest(console string, code int, timedOut bool) verdict {
	var v verdict
	m := summaryRE.FindAllStringSubmatch(console, -1)
	if len(m) == 0 {
		v.failed++
		v.lines = append(v.lines, fmt.Sprintf("--- FAIL: selftest image: no \"N passed, N failed\" line (exit code %d, timed out %v)", code, timedOut))
		return v
	}
	last := m[len(m)-1]
	v.passed, _ = strconv.Atoi(last[1])
	v.failed, _ = strconv.Atoi(last[2])
	v.lines = append(v.lines, fmt.Sprintf("selftest image: %d passed, %d failed, exit code %d", v.passed, v.failed, code))
	switch {
	case timedOut:
		v.failed++
		v.lines = append(v.lines, "--- FAIL: selftest image: QEMU timed out after the summary line")
	case v.failed == 0 && code != 0:
		v.failed++
		v.lines = append(v.lines, fmt.Sprintf("--- FAIL: selftest image: exit code %d with no failed check; want 0", code))
	}
	return v
}

// judgeFault counts the fault image as the single check fault_report.
func judgeFault(console string, code int, timedOut bool, line int) verdict {
	var problems []string
	if code != layout.ExitFault || timedOut {
		problems = append(problems, fmt.Sprintf("exit code %d (timed out %v); want %d (layout.ExitFault)", code, timedOut, layout.ExitFault))
	}
	_, report, found := strings.Cut(console, faultMarker)
	if !found {
		problems = append(problems, fmt.Sprintf("marker line %q missing", faultMarker))
	}
	for _, p := range faultPatterns {
		re := regexp.MustCompile(strings.ReplaceAll(p.re, "LINE", strconv.Itoa(line)))
		if found && !re.MatchString(report) {
			problems = append(problems, fmt.Sprintf("no %s after the marker (want /%s/)", p.what, re))
		}
	}
	if len(problems) == 0 {
		return verdict{passed: 1, lines: []string{"--- PASS: " + faultCheck}}
	}
	v := verdict{failed: 1, lines: []string{"--- FAIL: " + faultCheck}}
	for _, p := range problems {
		v.lines = append(v.lines, "    "+p)
	}
	return v
}
