package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// rawTerminal puts the terminal on f into the mode QEMU itself uses for
// "-serial stdio": no echo, no line editing, no input translation (CR stays
// CR, no XON/XOFF), output processing and signal keys kept, so that Ctrl-C
// still stops molt and with it the VM. It returns a function that restores
// the previous mode. If f is not a terminal it does nothing.
//
// It runs stty(1) rather than issuing termios ioctls: a few lines, no
// unsafe, no dependency, and the same on every Unix.
func rawTerminal(f *os.File) (restore func(), err error) {
	nop := func() {}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nop, nil
	}
	saved, err := stty(f, "-g")
	if err != nil {
		// A character device that is not a terminal (/dev/null).
		return nop, nil
	}
	if _, err := stty(f, "-ignbrk", "-brkint", "-parmrk", "-istrip", "-inlcr", "-igncr", "-icrnl", "-ixon",
		"opost", "-echo", "-echonl", "-icanon", "-iexten", "isig", "min", "1", "time", "0"); err != nil {
		return nop, fmt.Errorf("setting the terminal to raw mode: %w", err)
	}
	return func() { stty(f, strings.TrimSpace(saved)) }, nil
}

func stty(f *os.File, args ...string) (string, error) {
	cmd := exec.Command("stty", args...)
	cmd.Stdin = f
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("stty %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
