// Package imagetest builds tiny, real kernel images for tests of the
// post-link step and the QEMU launcher.
//
// A tiny kernel is a Go module with molt's module path
// (github.com/molt-os/molt), so its entry and build-ID symbols have exactly
// the names in package layout, and Build links it with image.Build like a
// real kernel. It never starts the Go runtime: its 32-bit PVH entry, written
// only with instructions that encode the same in 32-bit and 64-bit mode,
// optionally runs SSE code, prints a banner on COM1, optionally echoes COM1
// input, and then writes its exit code to QEMU's isa-debug-exit port. That
// is enough to test the launcher end to end (console, stdin, exit codes, the
// accelerator probe) without depending on the kernel under development.
package imagetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molt-os/molt/boot/image"
	"github.com/molt-os/molt/boot/layout"
)

// Kernel describes a tiny kernel.
type Kernel struct {
	// Banner is printed on COM1 right after entry.
	Banner string
	// SSE enables SSE (CR4.OSFXSR) and executes XORPS before anything else,
	// as a probe boot must: accelerators that cannot run SSE guest code
	// fail here.
	SSE bool
	// Echo, when not zero, makes the kernel copy COM1 input back to COM1
	// until it has echoed this byte.
	Echo byte
	// Exit is the code written to isa-debug-exit (QEMU exits with 2*Exit+1).
	Exit int
	// Version is stamped with -X, as by molt build -version.
	Version string
	// PlainEntry leaves pvhEntry undeclared in Go, so the linker emits no
	// ABI wrapper and the entry symbol keeps its plain name.
	PlainEntry bool
}

// Build writes the module for k into a temporary directory, builds and
// post-links it with image.Build, and returns the image path. It fails the
// test on error.
func Build(t testing.TB, k Kernel) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteModule(dir, k); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "molt.elf")
	ctx := t.Context()
	if _, err := BuildModule(ctx, dir, out, k.Version); err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildModule builds the module written by WriteModule in dir to out.
func BuildModule(ctx context.Context, dir, out, version string) (*image.Report, error) {
	return image.Build(ctx, image.BuildOptions{
		Dir:     dir,
		Package: "./cmd/kernel",
		Output:  out,
		Version: version,
		// The module stands alone: ignore any go.work of the caller and
		// never download a toolchain in a test.
		Env: []string{"GOWORK=off", "GOTOOLCHAIN=local"},
	})
}

// WriteModule writes the source of k as a Go module into dir.
func WriteModule(dir string, k Kernel) error {
	if k.Exit < 0 || k.Exit > 0x7f {
		return fmt.Errorf("imagetest: exit code %d does not fit the isa-debug-exit byte this kernel writes", k.Exit)
	}
	decl := "\n// pvhEntry is the 32-bit PVH entry (entry_amd64.s).\nfunc pvhEntry()\n"
	if k.PlainEntry {
		decl = ""
	}
	files := map[string]string{
		"go.mod":               "module github.com/molt-os/molt\n\ngo 1.26\n",
		"kernel/kernel.go":     fmt.Sprintf(kernelGo, decl),
		"kernel/entry_amd64.s": entryAsm(k),
		"cmd/kernel/main.go":   mainGo,
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

const kernelGo = `// Package kernel is a test stand-in for molt's kernel package: it has the
// symbols the post-link step looks for and nothing else.
package kernel

var version = "dev"

// buildID starts non-zero so that it lives in a data section with file bytes.
var buildID = [32]byte{'m', 'o', 'l', 't', '-', 'b', 'u', 'i', 'l', 'd', '-', 'i', 'd'}
%s
// Version and BuildID keep the variables reachable for the linker.
func Version() string   { return version }
func BuildID() [32]byte { return buildID }
`

const mainGo = `package main

import "github.com/molt-os/molt/kernel"

func main() {
	id := kernel.BuildID()
	println(kernel.Version(), id[0])
}
`

// entryAsm returns the assembly of the entry. Every instruction is chosen
// to decode identically in 32-bit protected mode: no REX prefixes, no
// RIP-relative operands, only EAX..EDX.
func entryAsm(k Kernel) string {
	var b strings.Builder
	b.WriteString("#include \"textflag.h\"\n\n")
	b.WriteString("// Entered by QEMU's PVH loader in 32-bit protected mode, paging off.\n")
	b.WriteString("TEXT ·pvhEntry(SB),NOSPLIT|NOFRAME,$0\n")
	b.WriteString("\tCLI\n")
	if k.SSE {
		b.WriteString("\t// CR4.OSFXSR|OSXMMEXCPT, then one SSE instruction.\n")
		b.WriteString("\tMOVQ\tCR4, AX\n\tORL\t$0x600, AX\n\tMOVQ\tAX, CR4\n\tXORPS\tX0, X0\n")
	}
	if k.Banner != "" {
		b.WriteString("\tMOVL\t$0x3f8, DX\n")
		for i := 0; i < len(k.Banner); i++ {
			fmt.Fprintf(&b, "\tMOVB\t$0x%02x, AL\n\tOUTB\n", k.Banner[i])
		}
	}
	if k.Echo != 0 {
		// Poll the line status register for data ready, read the byte,
		// write it back.
		fmt.Fprintf(&b, `echo:
	MOVL	$0x3fd, DX
	INB
	TESTB	$1, AL
	JZ	echo
	MOVL	$0x3f8, DX
	INB
	OUTB
	CMPB	AL, $0x%02x
	JNE	echo
`, k.Echo)
	}
	fmt.Fprintf(&b, "\tMOVL\t$0x%x, DX\n\tMOVL\t$0x%x, AX\n\tOUTB\n", layout.DebugExitPort, k.Exit)
	b.WriteString("halt:\n\tHLT\n\tJMP\thalt\n")
	b.WriteString("\t// Never reached; keeps the Go runtime linked in, as in a real kernel.\n")
	b.WriteString("\tJMP\t_rt0_amd64_linux(SB)\n")
	return b.String()
}
