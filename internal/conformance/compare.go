package conformance

import (
	"bytes"
	"fmt"
	"strings"
)

// NormalizeConsole turns serial console output into what the program
// wrote: the kernel's console sends "\r" before every "\n" (kernel/console.go),
// so each "\r\n" goes back to "\n". A "\r\n" the program wrote itself
// arrives as "\r\r\n" and correctly comes back as "\r\n".
func NormalizeConsole(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// Diff is the first difference between two outputs, line by line. Lines
// keep their "\n", so a missing final newline is a difference too.
type Diff struct {
	Line      int    // 1-based
	Got, Want string // the differing lines
	// GotEnd and WantEnd say that the output ended before Line.
	GotEnd, WantEnd bool
}

// FirstDiff compares got with want. It returns ok=false and the first
// differing line if they are not equal.
func FirstDiff(got, want []byte) (d Diff, ok bool) {
	if bytes.Equal(got, want) {
		return Diff{}, true
	}
	g, w := splitLines(string(got)), splitLines(string(want))
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	d.Line = i + 1
	if i < len(g) {
		d.Got = g[i]
	} else {
		d.GotEnd = true
	}
	if i < len(w) {
		d.Want = w[i]
	} else {
		d.WantEnd = true
	}
	return d, false
}

func (d Diff) String() string {
	return fmt.Sprintf("line %d: got %s, want %s", d.Line, quoteLine(d.Got, d.GotEnd), quoteLine(d.Want, d.WantEnd))
}

// maxQuote bounds a line quoted in a one-line result.
const maxQuote = 160

func quoteLine(s string, end bool) string {
	if end {
		return "end of output"
	}
	if len(s) > maxQuote {
		return fmt.Sprintf("%q...", s[:maxQuote])
	}
	return fmt.Sprintf("%q", s)
}

// splitLines splits s after each "\n"; the last line may lack one.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Context returns the lines of got and want around d for a failure report:
// a few before it, and more of got after it (a panic's stack trace, say).
// Each line is prefixed with its source and number.
func Context(got, want []byte, d Diff, gotName, wantName string) string {
	var b strings.Builder
	show := func(name string, out []byte, before, after int) {
		lines := splitLines(string(out))
		from, to := max(d.Line-1-before, 0), min(d.Line+after, len(lines))
		if from >= to {
			fmt.Fprintf(&b, "\t%s: (no output at line %d; %d lines in all)\n", name, d.Line, len(lines))
			return
		}
		for i := from; i < to; i++ {
			mark := " "
			if i == d.Line-1 {
				mark = ">"
			}
			fmt.Fprintf(&b, "\t%s%s%4d| %s\n", name, mark, i+1, strings.TrimSuffix(lines[i], "\n"))
		}
		if to < len(lines) {
			fmt.Fprintf(&b, "\t%s  ... %d more lines\n", name, len(lines)-to)
		}
	}
	show(gotName, got, 3, 15)
	show(wantName, want, 3, 3)
	return b.String()
}

// kernelPrefix starts every line the kernel itself prints; with molt.quiet
// only errors are printed.
const kernelPrefix = "molt: "

// KernelLine returns the first line of out that the kernel printed, or "".
func KernelLine(out []byte) string {
	for _, l := range splitLines(string(out)) {
		if strings.HasPrefix(l, kernelPrefix) {
			return strings.TrimSuffix(l, "\n")
		}
	}
	return ""
}
