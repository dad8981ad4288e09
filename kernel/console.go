package kernel

import "github.com/molt-os/molt/drivers/uart"

// The kernel console is COM1, polled for output. Kernel messages start with
// "molt: " so that tools can tell them from a program's own output; in
// quiet mode (kernel command line word molt.quiet) only errors are printed.

var com1 = uart.UART{Base: uart.COM1Base, IRQ: uart.COM1IRQ}

//go:nosplit
//go:noinline
func putc(c byte) {
	if c == '\n' {
		com1.PutByte('\r')
	}
	com1.PutByte(c)
}

//go:nosplit
//go:noinline
func puts(s string) {
	for i := 0; i < len(s); i++ {
		putc(s[i])
	}
}

//go:nosplit
func putBytes(p uintptr, n uintptr) {
	for i := uintptr(0); i < n; i++ {
		putc(*u8(p + i))
	}
}

//go:nosplit
func puthex(v uint64) {
	puts("0x")
	puthexDigits(v, 16)
}

//go:nosplit
//go:noinline
func puthexDigits(v uint64, digits int) {
	for i := (digits - 1) * 4; i >= 0; i -= 4 {
		d := byte(v>>uint(i)) & 0xf
		if d < 10 {
			putc('0' + d)
		} else {
			putc('a' + d - 10)
		}
	}
}

//go:nosplit
//go:noinline
func putdec(v uint64) {
	// no buffer: trap-context frames must stay small and free of bounds
	// checks (a failed check would call the runtime's panic path)
	div := uint64(1)
	for v/div >= 10 {
		div *= 10
	}
	for ; div > 0; div /= 10 {
		putc(byte('0' + v/div%10))
	}
}

// logf-style helpers for trap context: klog prints the "molt: " prefix
// unless quiet; kerr always prints.

//go:nosplit
func klog(s string) {
	if !quiet {
		puts("molt: ")
		puts(s)
	}
}

//go:nosplit
func kerr(s string) {
	puts("molt: ")
	puts(s)
}
