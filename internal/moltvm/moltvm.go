// Package moltvm drives a booted default image (cmd/kernel) from the host:
// it starts it with a console input, waits until its services listen, runs
// shell commands on its console and powers it off through the shell,
// checking that it ended cleanly. The kernel tests and `molt bench` use it.
package moltvm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/molt-os/molt/internal/syncbuf"
	"github.com/molt-os/molt/qemu"
)

// Ready is what the default image prints once its services listen.
const Ready = "molt: services ready on"

// ReadyTimeout bounds the wait for Ready.
const ReadyTimeout = 2 * time.Minute

// Guest is a booted default image.
type Guest struct {
	VM *qemu.VM
	// Console holds everything the guest printed.
	Console *syncbuf.Buffer
	stdin   *io.PipeWriter
}

// Starter starts QEMU: qemu.Start, or a namespace's StartVM.
type Starter func(ctx context.Context, opts ...qemu.Option) (*qemu.VM, error)

// Boot starts the image with opts through start, with its console in
// Guest.Console and also in console when that is not nil, and waits for
// Ready. If the services never come up, QEMU is killed and the error says
// how to reproduce the run.
func Boot(ctx context.Context, start Starter, console io.Writer, opts ...qemu.Option) (*Guest, error) {
	inR, inW := io.Pipe()
	g := &Guest{Console: &syncbuf.Buffer{}, stdin: inW}
	var con io.Writer = g.Console
	if console != nil {
		con = io.MultiWriter(g.Console, console)
	}
	vm, err := start(ctx, append([]qemu.Option{qemu.Stdin(inR), qemu.Console(con)}, opts...)...)
	if err != nil {
		inW.Close()
		return nil, err
	}
	g.VM = vm
	rctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	if err := vm.Expect(rctx, Ready); err != nil {
		vm.Kill()
		vm.Wait()
		inW.Close()
		return nil, fmt.Errorf("molt never reported its services ready: %w; reproduce with: %s", err, vm.CommandLine())
	}
	return g, nil
}

// Shell runs a shell command until the console shows want after it. The
// command is repeated every 2 s until timeout, since what it reports (say,
// the connections a service has accepted) may still be catching up with
// what the peer sees.
func (g *Guest) Shell(ctx context.Context, cmd, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		fmt.Fprintln(g.stdin, cmd)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := g.VM.Expect(wctx, want)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("shell %q: no %q on the console within %v: %w", cmd, want, timeout, err)
		}
	}
}

// Poweroff stops the guest through its shell; any other end (a crash
// during the run, a hang) is an error.
func (g *Guest) Poweroff() error {
	defer g.stdin.Close()
	fmt.Fprintln(g.stdin, "poweroff")
	done := make(chan struct{})
	var r qemu.Result
	var err error
	go func() { r, err = g.VM.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		g.VM.Kill()
		<-done
		return errors.New("molt did not power off within a minute")
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("molt ended with %s", r.Describe())
	}
	return nil
}
