package main

import (
	"strings"
	"testing"

	"github.com/molt-os/molt/boot/layout"
)

func TestJudgeSelftest(t *testing.T) {
	for _, tc := range []struct {
		name           string
		console        string
		code           int
		timedOut       bool
		passed, failed int
	}{
		{"all pass", "boot\r\n=== RUN   a\r\n--- PASS: a (0.01s)\r\n9 passed, 0 failed\r\n", 0, false, 9, 0},
		{"in-VM failures", "7 passed, 2 failed\n", 1, false, 7, 2},
		{"last summary wins", "1 passed, 0 failed\n8 passed, 1 failed\n", 1, false, 8, 1},
		{"crash before summary", "=== RUN   gc_churn\nmolt: fault: #PF\n", layout.ExitFault, false, 0, 1},
		{"hang before summary", "=== RUN   timers\n", 0, true, 0, 1},
		{"bad exit after clean summary", "9 passed, 0 failed\n", layout.ExitKernelPanic, false, 9, 1},
		{"timeout after summary", "9 passed, 0 failed\n", 0, true, 9, 1},
		{"summary not alone on its line", "x 9 passed, 0 failed\n", 0, false, 0, 1},
	} {
		v := judgeSelftest(tc.console, tc.code, tc.timedOut)
		if v.passed != tc.passed || v.failed != tc.failed {
			t.Errorf("%s: judgeSelftest = %d passed, %d failed; want %d, %d (lines %q)",
				tc.name, v.passed, v.failed, tc.passed, tc.failed, v.lines)
		}
	}
}

// goodFault is a fault report in the shape the kernel is expected to print.
const goodFault = `boot ok
faulttest: about to dereference nil
molt: fault: #PF page fault, error code 0x0 (read, not present), CR2 0x0
molt:   RIP 0x49e42e  RSP 0xc000046f28  RFLAGS 0x10246
molt:   insn: MOVQ 0(AX), AX
molt:   at main.faultHere /work/main/cmd/faulttest/main.go:40
molt:   stack:
molt:     main.main /work/main/cmd/faulttest/main.go:21
molt:     runtime.main /usr/local/go/src/runtime/proc.go:285
`

func TestJudgeFault(t *testing.T) {
	if v := judgeFault(goodFault, layout.ExitFault, false, 40); v.passed != 1 || v.failed != 0 {
		t.Fatalf("judgeFault(good report) = %+v; want a pass", v)
	}
	for _, tc := range []struct {
		name, console string
		code          int
		line          int
		wantProblem   string
	}{
		{"wrong exit code", goodFault, 0, 40, "exit code 0"},
		{"wrong line", goodFault, layout.ExitFault, 41, "file:line"},
		{"no marker", strings.Replace(goodFault, "faulttest:", "x:", 1), layout.ExitFault, 40, "marker"},
		{"no CR2", strings.Replace(goodFault, "CR2", "cr3", 1), layout.ExitFault, 40, "CR2"},
		{"no insn", strings.Replace(goodFault, "MOVQ", "ADDQ", 1), layout.ExitFault, 40, "MOV"},
		{"no function", strings.Replace(goodFault, "main.faultHere", "?", 1), layout.ExitFault, 40, "Go function"},
		{"no stack walk", strings.Replace(goodFault, "main.main", "?", 1), layout.ExitFault, 40, "main.main"},
		// Patterns before the marker do not count.
		{"report before marker", "RIP CR2 mov main.faultHere cmd/faulttest/main.go:40 main.main\n" + faultMarker + "\n",
			layout.ExitFault, 40, "RIP"},
	} {
		v := judgeFault(tc.console, tc.code, false, tc.line)
		if v.passed != 0 || v.failed != 1 {
			t.Errorf("%s: judgeFault = %d passed, %d failed; want 0, 1", tc.name, v.passed, v.failed)
		}
		if got := strings.Join(v.lines, "\n"); !strings.Contains(got, tc.wantProblem) {
			t.Errorf("%s: judgeFault lines %q do not mention %q", tc.name, got, tc.wantProblem)
		}
	}
}

func TestFindFaultLine(t *testing.T) {
	// Tests run in tools/molt; the image source is two levels up.
	n, err := findFaultLine("../../" + faulttestSrc)
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("findFaultLine = %d; the marker should be well past the package doc", n)
	}
}

func TestCompileRun(t *testing.T) {
	for _, bad := range []string{"a b", "(", `x"y`} {
		if _, err := compileRun(bad); err == nil {
			t.Errorf("compileRun(%q) succeeded; want a usage error", bad)
		}
	}
	if re, err := compileRun("^(timers|gc_churn)$"); err != nil || !re.MatchString("timers") || re.MatchString("sync") {
		t.Errorf("compileRun of a good regexp = %v, %v", re, err)
	}
	if re, err := compileRun(""); re != nil || err != nil {
		t.Errorf(`compileRun("") = %v, %v; want nil, nil`, re, err)
	}
}
