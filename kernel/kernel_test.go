package kernel

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/molt-os/molt/boot/layout"
)

// The boot stub cannot import Go constants; this keeps its #defines equal
// to boot/layout.
func TestEntryConstantsMatchLayout(t *testing.T) {
	checkDefines(t, "entry_amd64.s", map[string]uint64{
		"PML4": layout.BootPML4, "PDPT": layout.BootPDPT, "PD0": layout.BootPD,
		"PT0": layout.BootPT0, "GDTBASE": layout.BootGDT, "BOOTTLS": layout.BootTLS,
		"ENTRYTSC": entryTSCAddr, "EXCFX": layout.ExceptionFX,
		"BOOTSTACK": layout.SyscallStackTop, "KSTACK": layout.SyscallStackTop,
		"IDLESTACK": layout.IdleStackTop,
	})
}

// The purgatory's addresses, and the parameter and timestamp offsets its
// comments list, must match layout and jump.go.
func TestJumpConstantsMatch(t *testing.T) {
	checkDefines(t, "jump_amd64.s", map[string]uint64{
		"PML4": layout.BootPML4, "PURG64": layout.Purgatory64, "PURG32": layout.Purgatory32,
		"PARAMS": layout.PurgatoryParams, "PURGSTACK": layout.PurgatoryStack,
	})
	// Offsets the assembly uses as literals.
	for name, c := range map[string][2]uint64{
		"segment count": {parNSeg, 0x00}, "entry": {parEntry, 0x08}, "start info": {parStartInfo, 0x10},
		"timestamp page": {parTimes, 0x18}, "GDTR": {parGDTR, 0x20}, "IDTR": {parIDTR, 0x30},
		"segments": {parSegments, 0x80}, "purgatory stamp": {jtPurgatory, 0x28},
		"copied stamp": {jtCopied, 0x30}, "zeroed stamp": {jtZeroed, 0x38},
	} {
		if c[0] != c[1] {
			t.Errorf("%s offset is %#x in jump.go; jump_amd64.s uses %#x", name, c[0], c[1])
		}
	}
	if parSegments+MaxSegments*32 > layout.PageSize {
		t.Errorf("%d segments do not fit the parameter page", MaxSegments)
	}
	if layout.Purgatory32-layout.Purgatory64 < purgatoryMax || layout.PurgatoryParams-layout.Purgatory32 < purgatoryMax {
		t.Errorf("purgatory blobs of %#x bytes overlap", purgatoryMax)
	}
	if siCmdline+1025 > 4*layout.PageSize || siMemmap+32*24 > siCmdline || layout.JumpStartInfo+4*layout.PageSize > layout.JumpTimes {
		t.Error("the start info does not fit its pages")
	}
}

// checkDefines compares the #define lines of an assembly file with want.
func checkDefines(t *testing.T, file string, want map[string]uint64) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^#define\s+(\w+)\s+(0x[0-9a-fA-F]+)\s*$`)
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseUint(m[2], 0, 64)
		w, ok := want[m[1]]
		if !ok {
			t.Errorf("%s defines %s = %#x with no layout counterpart in this test", file, m[1], v)
			continue
		}
		seen[m[1]] = true
		if v != w {
			t.Errorf("%s %s = %#x; layout says %#x", file, m[1], v, w)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s lacks #define %s", file, name)
		}
	}
}

// runtimeSyscalls are the calls the Go 1.26 runtime and the packages molt
// images use issue on linux/amd64 (notes/baremetal-go.md §2). Each must
// have a deliberate answer in Syscalls.
var runtimeSyscalls = []int{
	0, 1, 3, 9, 10, 11, 13, 14, 24, 28, 35, 39, 56, 60, 72, 131, 157, 158,
	186, 202, 204, 228, 231, 233, 234, 257, 281, 290, 291, 302, 318,
}

func TestSyscallTableCoversRuntime(t *testing.T) {
	byNr := map[int]SyscallInfo{}
	for _, s := range Syscalls {
		if _, dup := byNr[s.Nr]; dup {
			t.Errorf("syscall %d (%s) listed twice", s.Nr, s.Name)
		}
		byNr[s.Nr] = s
		if s.Support == Refused && s.Errno == "" {
			t.Errorf("%s is refused without an errno", s.Name)
		}
		if s.Support != Supported && s.Note == "" {
			t.Errorf("%s is %s without a note saying why", s.Name, s.Support)
		}
	}
	for _, nr := range runtimeSyscalls {
		if _, ok := byNr[nr]; !ok {
			t.Errorf("runtime syscall %d has no entry in Syscalls", nr)
		}
	}
}

var update = flag.Bool("update", false, "rewrite docs/syscalls.md")

// docs/syscalls.md is generated from Syscalls so the two cannot drift.
func TestSyscallDoc(t *testing.T) {
	var b strings.Builder
	b.WriteString("# System calls molt answers\n\n")
	b.WriteString("Generated from `kernel/syscalls_table.go` by `go test ./kernel -run TestSyscallDoc -update`; do not edit.\n\n")
	b.WriteString("The Go runtime runs unmodified on molt and issues Linux system calls (`SYSCALL` at CPL0). ")
	b.WriteString("This is every call molt answers on purpose. Any other number returns `ENOSYS` and is printed on the console once (`molt: unsupported syscall N`).\n\n")
	b.WriteString("| nr | name | support | answer |\n|---:|---|---|---|\n")
	for _, s := range Syscalls {
		note := s.Note
		if s.Support == Refused {
			note = "`" + s.Errno + "`: " + note
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", s.Nr, s.Name, s.Support, strings.ReplaceAll(note, "|", "\\|"))
	}
	const path = "../docs/syscalls.md"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./kernel -run TestSyscallDoc -update)", err)
	}
	if string(got) != b.String() {
		t.Errorf("%s is stale; run go test ./kernel -run TestSyscallDoc -update", path)
	}
}

func TestVMReservations(t *testing.T) {
	vmInit()
	defer func() { vm.n = 0 }()
	const g = 1 << 30
	hint := uintptr(0xc000000000)
	if got := vmReserve(hint, 64<<20); got != hint {
		t.Fatalf("vmReserve(free hint) = %#x; want %#x", got, hint)
	}
	if got := vmReserve(hint, 4096); got == hint || got == 0 {
		t.Errorf("vmReserve(taken hint) = %#x; want another address", got)
	}
	if got := vmReserve(0x1000, 4096); got < layout.GoVirtBase {
		t.Errorf("vmReserve(low hint) = %#x; want >= 4 GiB", got)
	}
	// punch a hole in the middle of the first reservation: it splits
	n := vm.n
	if !vmUnreserve(hint+g/64, hint+g/32) {
		t.Fatal("vmUnreserve split failed")
	}
	if vm.n != n+1 {
		t.Errorf("after split vm.n = %d; want %d", vm.n, n+1)
	}
	if !vmOverlaps(hint, hint+4096) || vmOverlaps(hint+g/64, hint+g/32) {
		t.Errorf("split left wrong coverage")
	}
	if !vmCovered(hint+g/32, hint+g/32+4096) || vmCovered(hint, hint+g/32) {
		t.Errorf("vmCovered wrong after split")
	}
	// A range across two adjacent reservations is covered (the runtime
	// maps heap spans across arena boundaries); one with a gap is not.
	next := hint + 64<<20
	if got := vmReserve(next, 64<<20); got != next {
		t.Fatalf("vmReserve(adjacent) = %#x; want %#x", got, next)
	}
	if !vmCovered(next-8<<20, next+8<<20) {
		t.Error("vmCovered: a range across two adjacent reservations is not covered")
	}
	if vmCovered(hint+g/64-4096, hint+g/32+4096) || vmCovered(next+56<<20, next+72<<20) {
		t.Error("vmCovered: a range across a hole or past the end is covered")
	}
	// cut head and tail, then remove everything
	if !vmUnreserve(hint, hint+4096) || vmOverlaps(hint, hint+4096) {
		t.Errorf("head cut failed")
	}
	if !vmUnreserve(0, ^uintptr(0)) || vm.n != 0 {
		t.Errorf("vmUnreserve(everything) left %d reservations", vm.n)
	}
}

func TestCommandLineWords(t *testing.T) {
	var words []string
	s := "  molt.quiet FOO=bar  -- a b "
	for w, i := nextWord(s, 0); w != ""; w, i = nextWord(s, i) {
		words = append(words, w)
	}
	if got := strings.Join(words, ","); got != "molt.quiet,FOO=bar,--,a,b" {
		t.Errorf("words = %q", got)
	}
	for w, want := range map[string]bool{"FOO=bar": true, "foo=bar": false, "FOO": false, "X=": true, "=x": false} {
		if got := isEnvWord(w); got != want {
			t.Errorf("isEnvWord(%q) = %v; want %v", w, got, want)
		}
	}
}

func TestBuildIDUnstamped(t *testing.T) {
	if got := BuildID(); got != "unstamped" {
		t.Errorf("BuildID() of a host test binary = %q; want unstamped", got)
	}
	if Booted() {
		t.Error("Booted() = true on a host")
	}
}
