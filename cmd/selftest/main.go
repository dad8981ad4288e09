// Command selftest is the kernel image of molt's in-VM self-test suite.
//
// Synopsis:
//
//	molt selftest [-run regexp]          (builds and boots this image)
//	go run ./cmd/selftest                (the same checks on a host)
//
// It runs the checks of internal/selftest whose names match the regular
// expression in the environment variable MOLT_SELFTEST_RUN (all when it is
// unset; molt passes kernel command line KEY=VALUE words as environment),
// prints one result line per check and then "N passed, N failed", and
// exits 0 only if no check failed. The kernel passes the exit status to
// QEMU's isa-debug-exit device, so the host sees the verdict too.
//
// On a host the kernel package is inert: VM-only checks are skipped.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/molt-os/molt/internal/selftest"
	"github.com/molt-os/molt/kernel"
)

func main() {
	os.Exit(run(os.Stdout, os.Getenv("MOLT_SELFTEST_RUN")))
}

func run(w io.Writer, filter string) int {
	fmt.Fprintf(w, "selftest: molt %s (build %s), booted=%v, GOMAXPROCS=%d, filter %q\n",
		kernel.Version(), kernel.BuildID(), kernel.Booted(), runtime.GOMAXPROCS(0), filter)
	if _, failed := selftest.RunAll(w, selftest.All(), filter); failed > 0 {
		return 1
	}
	return 0
}
