package kernel

import "github.com/molt-os/molt/boot/layout"

// The Go runtime starts at _rt0_amd64_linux on a stack laid out the way
// Linux's execve leaves it: argc, argv[], NULL, envp[], NULL, auxv pairs,
// AT_NULL, with the strings above. The kernel command line supplies
// environment variables (words KEY=VALUE with an upper-case first letter)
// and arguments (the words after "--").

// defaultGodebug turns off what molt cannot serve: asynchronous preemption
// (needs signal delivery), VMA naming (prctl) and the periodic GOMAXPROCS
// re-check. A GODEBUG from the command line is appended, so it can override
// these settings one by one.
const defaultGodebug = "GODEBUG=asyncpreemptoff=1,decoratemappings=0,updatemaxprocs=0"

const (
	maxArgs  = 16
	maxEnv   = 16
	atPagesz = 6
	atRandom = 25
	atNull   = 0
)

type stackBuilder struct {
	top uintptr // strings grow down from here
}

// push copies the concatenation of a, b and c, NUL-terminated, below the
// strings already pushed and returns its address.
//
//go:nosplit
func (sb *stackBuilder) push(a, b, c string) uintptr {
	sb.top -= uintptr(len(a) + len(b) + len(c) + 1)
	p := sb.top
	p = copyString(p, a)
	p = copyString(p, b)
	p = copyString(p, c)
	*u8(p) = 0
	return sb.top
}

//go:nosplit
func (sb *stackBuilder) push1(s string) uintptr { return sb.push(s, "", "") }

//go:nosplit
func copyString(p uintptr, s string) uintptr {
	for i := 0; i < len(s); i++ {
		*u8(p) = s[i]
		p++
	}
	return p
}

//go:nosplit
func isEnvWord(w string) bool {
	if len(w) < 2 || w[0] < 'A' || w[0] > 'Z' {
		return false
	}
	for i := 1; i < len(w); i++ {
		if w[i] == '=' {
			return true
		}
	}
	return false
}

// buildProcessStack lays out the initial stack and returns its address.
//
//go:nosplit
func buildProcessStack() uintptr {
	b := stackBuilder{top: layout.ProcessStackTop}
	var argv [maxArgs]uintptr
	var envp [maxEnv]uintptr
	argc, envc := 0, 0
	argv[argc] = b.push1("molt")
	argc++
	userGodebug := ""
	afterDashes := false
	cmdline := bootInfo.Cmdline()
	for w, i := nextWord(cmdline, 0); w != ""; w, i = nextWord(cmdline, i) {
		switch {
		case afterDashes:
			if argc < maxArgs {
				argv[argc] = b.push1(w)
				argc++
			}
		case w == "--":
			afterDashes = true
		case len(w) > 8 && w[:8] == "GODEBUG=":
			userGodebug = w[8:]
		case isEnvWord(w):
			if envc < maxEnv-2 {
				envp[envc] = b.push1(w)
				envc++
			}
		}
	}
	if userGodebug != "" {
		envp[envc] = b.push(defaultGodebug, ",", userGodebug)
	} else {
		envp[envc] = b.push1(defaultGodebug)
	}
	envc++
	envp[envc] = b.push1("GOMAXPROCS=1")
	envc++

	top := b.top &^ 15
	top -= 16
	rnd := top // AT_RANDOM: 16 bytes the runtime seeds from (and overwrites)
	*u64(rnd) = random64()
	*u64(rnd + 8) = random64()

	words := 1 + argc + 1 + envc + 1 + 4 + 2
	if vdsoOn {
		words += 2
	}
	sp := (top - uintptr(words)*8) &^ 15
	p := sp
	p = putWord(p, uint64(argc))
	for i := 0; i < argc; i++ {
		p = putWord(p, uint64(argv[i]))
	}
	p = putWord(p, 0)
	for i := 0; i < envc; i++ {
		p = putWord(p, uint64(envp[i]))
	}
	p = putWord(p, 0)
	p = putWord(p, atPagesz)
	p = putWord(p, pageSize)
	p = putWord(p, atRandom)
	p = putWord(p, uint64(rnd))
	if vdsoOn {
		p = putWord(p, atSysinfoEhdr)
		p = putWord(p, uint64(vdsoBase()))
	}
	p = putWord(p, atNull)
	putWord(p, 0)
	return sp
}

//go:nosplit
func putWord(p uintptr, v uint64) uintptr {
	*u64(p) = v
	return p + 8
}
