// Package conformance runs the Go distribution's own test programs on molt:
// the engine of `molt conformance` (`make conformance`).
//
// # What is run
//
// The candidates are the files of $GOROOT/test, test/chan and test/ken
// whose first line is exactly "// run": single-file programs that Go's test
// driver (cmd/internal/testdir) builds and runs, and that pass when they
// exit 0 and print what the .out file next to them holds, or nothing when
// there is none. Rules skips the ones that need what molt does not provide
// by design (files, network, subprocesses, signals, cgo, other targets),
// judged from the source; Known skips, by name, the ones that were run,
// failed, and were traced to such a limitation.
//
// # How
//
// Each program is copied, unmodified and under its own file name, into
// prog/<name> of one temporary module (never into the repository), next to
// KernelFile, which blank-imports the kernel. The module requires molt and
// replaces it with the working tree. From that directory:
//
//  1. go build makes the host reference binary (linux/amd64, CGO_ENABLED=0;
//     the kernel package is inert on a host), which runs with standard
//     output and error on one pipe. It must exit 0 with the expected output.
//  2. image.Build makes the kernel image, and qemu.Run boots it with
//     "molt.quiet" (the console then carries only the program's output and
//     the kernel's error lines, which start "molt: "), 512 MiB and the
//     chosen accelerator.
//  3. The console output, with the console's "\r\n" turned back into "\n",
//     must equal the expected output, and the program must exit 0.
//
// The expected output is the .out file or nothing, exactly as Go's driver
// wants; because the host run must match it first, the molt output is in
// effect compared with the host output too.
//
// Programs are built and run Options.Jobs at a time. A program's host run
// and its boot each have Options.Timeout; builds are bounded only by the
// caller's context.
package conformance
