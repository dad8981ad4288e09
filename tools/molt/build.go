package main

import (
	"context"
	"fmt"
	"io"

	"github.com/molt-os/molt/boot/image"
)

// Defaults shared by build, run and debug.
const (
	defaultImage   = "build/molt.elf"
	defaultPackage = "./cmd/kernel"
)

// cmdBuild links a kernel image and post-links it.
//
// Synopsis:
//
//	molt build [-o build/molt.elf] [-version v] [pkg]
//
// pkg (default ./cmd/kernel) is resolved in the current directory. The
// summary of the image (entry, size, headroom, build ID) goes to stdout,
// go build's messages to stderr.
func cmdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", "build [-o build/molt.elf] [-version v] [pkg]", stderr)
	out := fs.String("o", defaultImage, "image file to write")
	version := fs.String("version", "", "release version stamped into the image")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pkg := defaultPackage
	switch fs.NArg() {
	case 0:
	case 1:
		pkg = fs.Arg(0)
	default:
		fs.Usage()
		return fmt.Errorf("%w: build takes at most one package, got %q", errUsage, fs.Args())
	}
	r, err := image.Build(ctx, image.BuildOptions{
		Package: pkg,
		Output:  *out,
		Version: *version,
		Stdout:  stderr, // go build prints nothing on success; keep stdout for the report
		Stderr:  stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n%s", *out, r)
	return nil
}
