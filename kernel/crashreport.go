package kernel

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// crashReport is stage 2 of the fault report (see crash.go). It runs as
// ordinary Go code on the faulting goroutine's stack, entered through
// crashTrampoline with the trap-context findings in crash. It never
// returns: it stops the machine with ExitFault.
func crashReport() {
	var b strings.Builder
	f := &crash.frame
	if crash.textOK {
		inst, err := x86asm.Decode(crash.text[:], 64)
		if err != nil {
			fmt.Fprintf(&b, "molt:   instruction: undecodable (%v)\n", err)
		} else {
			fmt.Fprintf(&b, "molt:   instruction: %s   [%s]\n",
				x86asm.GoSyntax(inst, f.RIP, symbolize), x86asm.IntelSyntax(inst, f.RIP, symbolize))
		}
	}
	fn := runtime.FuncForPC(uintptr(f.RIP))
	if fn != nil {
		file, line := fn.FileLine(uintptr(f.RIP))
		fmt.Fprintf(&b, "molt:   in %s at %s:%d\n", fn.Name(), file, line)
	} else {
		fmt.Fprintf(&b, "molt:   in unknown code at %#x\n", f.RIP)
	}
	b.WriteString("molt:   stack walk (frame pointers, innermost first):\n")
	for i := 0; i < crash.npcs; i++ {
		pc := uintptr(crash.pcs[i])
		lookup := pc
		if i > 0 {
			lookup-- // a return address points after the call
		}
		if fn := runtime.FuncForPC(lookup); fn != nil {
			file, line := fn.FileLine(lookup)
			fmt.Fprintf(&b, "molt:     %#x %s\n               %s:%d\n", pc, fn.Name(), file, line)
		} else {
			fmt.Fprintf(&b, "molt:     %#x ?\n", pc)
		}
	}
	os.Stdout.WriteString(b.String())
	stop(exitFault)
}

// symbolize names addresses in decoded instructions.
func symbolize(addr uint64) (string, uint64) {
	fn := runtime.FuncForPC(uintptr(addr))
	if fn == nil {
		return "", 0
	}
	return fn.Name(), uint64(fn.Entry())
}
