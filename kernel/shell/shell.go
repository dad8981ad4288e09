// Package shell is molt's serial console shell: a few commands to look at a
// running kernel.
//
// Synopsis (at the "molt>" prompt):
//
//	help       list commands
//	ps         threads (Go runtime Ms) and goroutines
//	mem        physical memory and Go heap statistics
//	uptime     time since the kernel's entry point
//	version    release version and build ID
//	poweroff   stop the machine (QEMU exits)
package shell

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/molt-os/molt/kernel"
)

type command struct {
	help string
	run  func(w io.Writer, args []string) bool // false: leave the shell
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"help":     {"list commands", help},
		"ps":       {"threads and goroutines", ps},
		"mem":      {"physical memory and Go heap statistics", mem},
		"uptime":   {"time since the kernel's entry point", uptime},
		"version":  {"release version and build ID", version},
		"poweroff": {"stop the machine", func(io.Writer, []string) bool { return false }},
	}
}

// Register adds a command (for the services an image runs, such as the
// network's "net"). It must be called before Run; a name that is taken
// panics, since that is a wiring mistake in the image.
func Register(name, help string, run func(w io.Writer, args []string)) {
	if _, dup := commands[name]; dup {
		panic("shell: command " + name + " registered twice")
	}
	commands[name] = command{help, func(w io.Writer, args []string) bool { run(w, args); return true }}
}

// Run reads commands from r until poweroff or end of input.
func Run(r io.Reader, w io.Writer) {
	in := bufio.NewScanner(r)
	fmt.Fprint(w, "molt> ")
	for in.Scan() {
		line := strings.TrimSpace(strings.TrimRight(in.Text(), "\r"))
		if line != "" && !Exec(w, line) {
			return
		}
		fmt.Fprint(w, "molt> ")
	}
}

// Exec runs one command line and reports whether the shell should go on.
func Exec(w io.Writer, line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return true
	}
	c, ok := commands[f[0]]
	if !ok {
		fmt.Fprintf(w, "unknown command %q; try help\n", f[0])
		return true
	}
	return c.run(w, f[1:])
}

func help(w io.Writer, _ []string) bool {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].help)
	}
	return true
}

func ps(w io.Writer, _ []string) bool {
	fmt.Fprintf(w, "%5s  %-9s %12s %9s\n", "TID", "STATE", "CPU", "SWITCHES")
	for _, t := range kernel.Threads() {
		fmt.Fprintf(w, "%5d  %-9s %12s %9d\n", t.TID, t.State, time.Duration(t.CPU).Round(time.Microsecond), t.Switches)
	}
	fmt.Fprintf(w, "goroutines: %d\n", runtime.NumGoroutine())
	return true
}

func mem(w io.Writer, _ []string) bool {
	m := kernel.ReadMemStats()
	var g runtime.MemStats
	runtime.ReadMemStats(&g)
	fmt.Fprintf(w, "RAM %d MiB, image %.1f MiB, frame pool %d MiB\n", m.RAMBytes>>20, float64(m.ImageBytes)/(1<<20), m.FramePool>>20)
	fmt.Fprintf(w, "frames in use %d (%.1f MiB), demand faults %d, pages returned %d\n",
		m.FramesInUse, float64(m.FramesInUse*4096)/(1<<20), m.PageFaults, m.DontneedPages)
	fmt.Fprintf(w, "Go heap: alloc %.1f MiB, sys %.1f MiB, released %.1f MiB, GCs %d\n",
		float64(g.HeapAlloc)/(1<<20), float64(g.Sys)/(1<<20), float64(g.HeapReleased)/(1<<20), g.NumGC)
	return true
}

func uptime(w io.Writer, _ []string) bool {
	fmt.Fprintf(w, "up %s\n", kernel.Uptime().Round(time.Millisecond))
	return true
}

func version(w io.Writer, _ []string) bool {
	fmt.Fprintf(w, "molt %s build %s\n", kernel.Version(), kernel.BuildID())
	return true
}
