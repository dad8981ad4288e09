// Command kernel is molt's default image: the kernel with its serial shell.
// Services (kv, echo, the update service) register here as they arrive.
//
// Build it with `make image` (tools/molt build); boot it with `make run`.
package main

import (
	"os"

	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/kernel/shell"
)

func main() {
	if !kernel.Booted() {
		os.Stderr.WriteString("this is a molt kernel image: build it with `make image` and boot it with `make run`\n")
		os.Exit(2)
	}
	shell.Run(os.Stdin, os.Stdout)
	kernel.Poweroff(0)
}
