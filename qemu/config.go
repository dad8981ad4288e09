package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/molt-os/molt/boot/layout"
)

// Defaults.
const (
	DefaultBinary = "qemu-system-x86_64"
	DefaultMemory = 512 // MiB
	DefaultAccel  = "auto"
	DefaultCPU    = "max"

	// ProbeTimeout bounds an accelerator probe boot.
	ProbeTimeout = 5 * time.Second
)

// Sentinel errors.
var (
	// ErrNotFound: the QEMU executable is missing.
	ErrNotFound = errors.New("qemu not found")
	// ErrTimeout: the Timeout option expired and QEMU was killed.
	ErrTimeout = errors.New("qemu timed out")
	// ErrKilled: Kill stopped QEMU.
	ErrKilled = errors.New("qemu killed")
	// ErrQEMU: QEMU itself failed (bad option, missing file, KVM error)
	// rather than the kernel exiting.
	ErrQEMU = errors.New("qemu failed")
	// ErrExited: Expect gave up because QEMU exited.
	ErrExited = errors.New("qemu exited")
)

// Config is what the options build. Use the options; the zero value of a
// field means its default.
type Config struct {
	Binary  string    // QEMU executable; default $MOLT_QEMU, else DefaultBinary
	Kernel  string    // image for -kernel (required)
	Memory  int       // guest RAM in MiB; default DefaultMemory
	Accel   string    // "auto" (default), "kvm" or "tcg"
	CPU     string    // -cpu model; default DefaultCPU, or what the KVM probe chose
	Append  string    // kernel command line
	Console io.Writer // serial output; default discard
	Stdin   io.Reader // serial input; default none (QEMU reads /dev/null)
	Stderr  io.Writer // QEMU's own messages; default discard
	GDB     string    // gdbstub address (host:port); also starts the CPU stopped
	Devices []string  // -device specs, in order
	Extra   []string  // arguments appended verbatim, last
	Timeout time.Duration
	Logf    func(format string, args ...any)

	// Hooks for tests of this package.
	kvmCheck     func(dev string) error // default checkKVM
	probeTimeout time.Duration          // default ProbeTimeout
	onStderr     func(line string, v *VM)
}

// Option sets a field of Config.
type Option func(*Config)

// Kernel sets the image to boot.
func Kernel(path string) Option { return func(c *Config) { c.Kernel = path } }

// Memory sets guest RAM in MiB. It must be at least layout.MinRAM.
func Memory(mib int) Option { return func(c *Config) { c.Memory = mib } }

// Accel selects the accelerator: "auto", "kvm" or "tcg".
func Accel(mode string) Option { return func(c *Config) { c.Accel = mode } }

// CPU sets the -cpu model instead of "max" (and turns off the KVM probe's
// fallback to "host").
func CPU(model string) Option { return func(c *Config) { c.CPU = model } }

// Append adds words to the kernel command line; repeated calls accumulate.
func Append(cmdline string) Option {
	return func(c *Config) { c.Append = joinWords(c.Append, cmdline) }
}

// Console sends serial output to w. Writes come from one goroutine at a
// time.
func Console(w io.Writer) Option { return func(c *Config) { c.Console = w } }

// Stdin feeds r to the serial port. A goroutine copies r to QEMU; it stops
// at the end of r, or at its first read after QEMU has exited.
func Stdin(r io.Reader) Option { return func(c *Config) { c.Stdin = r } }

// Stderr sends QEMU's own messages to w.
func Stderr(w io.Writer) Option { return func(c *Config) { c.Stderr = w } }

// GDB starts QEMU's gdbstub on addr (host:port, for example
// "127.0.0.1:1234") with the CPU stopped until a debugger continues it.
func GDB(addr string) Option { return func(c *Config) { c.GDB = addr } }

// Device adds "-device spec", for example "virtio-net-device,netdev=n0".
func Device(spec string) Option {
	return func(c *Config) { c.Devices = append(c.Devices, spec) }
}

// Loader places the raw bytes of file at guest physical address addr
// before the kernel starts (QEMU's generic loader device): how a launcher
// puts an image into an image store slot (layout.ImageStoreBase), or a
// test puts bytes into the handoff region.
func Loader(file string, addr uint64) Option {
	return Device(fmt.Sprintf("loader,file=%s,addr=%#x,force-raw=on", file, addr))
}

// Extra appends arguments verbatim after all others (for example
// "-netdev", "user,id=n0").
func Extra(args ...string) Option {
	return func(c *Config) { c.Extra = append(c.Extra, args...) }
}

// Timeout kills QEMU d after Start; zero means no limit.
func Timeout(d time.Duration) Option { return func(c *Config) { c.Timeout = d } }

// Binary sets the QEMU executable.
func Binary(path string) Option { return func(c *Config) { c.Binary = path } }

// Logf receives each console line with a timestamp relative to Start, QEMU's
// messages, and the accelerator decision. Pass t.Logf in tests.
func Logf(f func(format string, args ...any)) Option { return func(c *Config) { c.Logf = f } }

// newConfig applies opts over the defaults and validates the result. It
// does not touch the file system.
func newConfig(opts []Option) (*Config, error) {
	c := &Config{}
	for _, o := range opts {
		o(c)
	}
	if c.Binary == "" {
		c.Binary = defaultBinary()
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.Accel == "" {
		c.Accel = DefaultAccel
	}
	if c.Console == nil {
		c.Console = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	if c.kvmCheck == nil {
		c.kvmCheck = checkKVM
	}
	if c.probeTimeout == 0 {
		c.probeTimeout = ProbeTimeout
	}
	if c.Kernel == "" {
		return nil, errors.New("no kernel image given")
	}
	if minMiB := layout.MinRAM >> 20; c.Memory < minMiB {
		return nil, fmt.Errorf("memory %d MiB is below the %d MiB molt needs", c.Memory, minMiB)
	}
	if err := validAccel(c.Accel); err != nil {
		return nil, err
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("negative timeout %v", c.Timeout)
	}
	return c, nil
}

func validAccel(mode string) error {
	switch mode {
	case "auto", "kvm", "tcg":
		return nil
	}
	return fmt.Errorf("accelerator %q: want auto, kvm or tcg", mode)
}

func defaultBinary() string {
	if b := os.Getenv("MOLT_QEMU"); b != "" {
		return b
	}
	return DefaultBinary
}

// args returns QEMU's arguments (without the binary) for the given
// accelerator and CPU model.
func (c *Config) args(accel, cpu string) []string {
	a := []string{
		// acpi=off: without ACPI, microvm uses one IOAPIC, puts virtio-mmio
		// interrupts on its pins 5-12 and appends virtio_mmio.device=
		// words to the kernel command line, which is how molt finds
		// its devices (and the firmware is the faster qboot).
		"-M", "microvm,acpi=off,pit=on,pic=off,rtc=on",
		"-cpu", cpu,
		"-m", strconv.Itoa(c.Memory),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-serial", "stdio", "-monitor", "none",
		"-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=2", layout.DebugExitPort),
		"-global", "virtio-mmio.force-legacy=false",
	}
	for _, d := range c.Devices {
		a = append(a, "-device", d)
	}
	a = append(a, "-kernel", c.Kernel)
	if c.Append != "" {
		a = append(a, "-append", c.Append)
	}
	a = append(a, "-accel", accel)
	if c.GDB != "" {
		a = append(a, "-gdb", "tcp:"+c.GDB, "-S")
	}
	return append(a, c.Extra...)
}

// Available reports whether the QEMU executable ($MOLT_QEMU, else
// qemu-system-x86_64) can be found.
func Available() error { return lookBinary(defaultBinary()) }

func lookBinary(bin string) error {
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("%w: %s: %v (install the package qemu-system-x86, e.g. apt-get install qemu-system-x86, or set MOLT_QEMU)", ErrNotFound, bin, err)
	}
	return nil
}

// CommandLine quotes args for a POSIX shell.
func commandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=+,.:/@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func joinWords(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}
