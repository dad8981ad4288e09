package main

import (
	"context"
	"fmt"
	"io"

	"github.com/molt-os/molt/qemu"
)

// cmdDebug boots an image with QEMU's gdbstub and the CPU stopped.
//
// Synopsis:
//
//	molt debug [-m MiB] [-append str] [-gdb host:port] [-raw] [image]
//
// Like run, but always under TCG (KVM guest debugging is limited and, in
// some sandboxes, KVM cannot run the kernel at all), with "-gdb tcp:ADDR
// -S". It first prints how to attach gdb.
func cmdDebug(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("debug", "debug [-m MiB] [-append str] [-gdb host:port] [-raw] [image]", stderr)
	mem := fs.Int("m", qemu.DefaultMemory, "guest RAM in MiB")
	cmdline := fs.String("append", "", "kernel command line")
	addr := fs.String("gdb", "127.0.0.1:1234", "address of QEMU's gdbstub")
	raw := fs.Bool("raw", false, "put a terminal on stdin in raw mode (see molt run)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	img, err := imageArg(fs, *mem)
	if err != nil {
		return err
	}
	rep, err := checkImage(img)
	if err != nil {
		return err
	}
	fmt.Fprint(stderr, gdbHint(img, *addr, rep.Entry, rep.EntrySym))
	return boot(ctx, img, rep, *raw, stdout, stderr,
		qemu.Memory(*mem), qemu.Accel("tcg"), qemu.Append(*cmdline), qemu.GDB(*addr))
}

// gdbHint tells how to attach. What it says about gdb was checked with gdb
// 13 against QEMU 7.2: the CPU stops at the reset vector in the firmware,
// QEMU's stub reports i386:x86-64 and gdb refuses "set architecture i386"
// on that target.
func gdbHint(img, addr string, entry uint64, entrySym string) string {
	return fmt.Sprintf(`QEMU is waiting for a debugger on %[2]s, the CPU stopped at the firmware's
reset vector. In another terminal:

    gdb %[1]s -ex 'target remote %[2]s'

then, to stop at the kernel's PVH entry (%[4]s):

    (gdb) hbreak *%#[3]x
    (gdb) continue

The entry runs in 32-bit protected mode with paging off until the stub has
switched to long mode. gdb debugs the image as i386:x86-64 (QEMU reports that
architecture and gdb refuses 'set architecture i386' on it), so until then it
decodes instructions as 64-bit code: x/i and stepi show wrongly whatever
encodes differently in 32-bit mode (0x40-0x4f are INC/DEC there, not REX
prefixes), and registers keep their 64-bit names ($rip, $rax).

`, img, addr, entry, entrySym)
}
