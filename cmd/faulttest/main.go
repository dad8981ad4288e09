// Command faulttest is a kernel image that dies on a nil pointer
// dereference, so that `molt selftest` can check the kernel's fault report
// (registers, decoded instruction, Go function and file:line of RIP, stack
// walk; the fault_report check in tools/molt/selftest.go).
//
// molt does not deliver SIGSEGV, so in the VM the #PF is fatal and the
// kernel stops with layout.ExitFault. On a host the same program just
// panics with a nil pointer dereference.
package main

import (
	"fmt"
	"os"

	_ "github.com/molt-os/molt/kernel" // the boot stub and ring-0 layer
)

// target is a package variable so the compiler cannot see it is nil.
var target *int

func main() {
	fmt.Println("faulttest: about to dereference nil")
	n := faultHere(target)
	// Not reached: the fault ends the program.
	fmt.Println("faulttest: survived the dereference, result", n)
	os.Exit(1)
}

// faultHere loads through p. The compiler emits no nil check for a load at
// a small offset; it relies on the hardware fault, so the faulting
// instruction is this MOV. tools/molt/selftest.go finds the line below by
// its marker comment and expects it in the fault report.
//
// The call to faultNext gives faultHere a stack frame with a saved frame
// pointer, so that a frame-pointer walk from the fault reaches main.main.
// (From a frameless leaf function, such a walk would skip its caller: only
// an unwinder that reads the pcsp table, as Go's traceback does, or that
// also reports the return address at RSP finds it.)
//
//go:noinline
func faultHere(p *int) int {
	v := *p // fault_report: faulting line
	return faultNext(v)
}

//go:noinline
func faultNext(v int) int { return v + 1 }
