package conformance

// Known lists the programs that the Rules do not skip but that cannot pass
// on molt by design, name -> reason. Each was run and its failure read (see
// docs/conformance.md); `molt conformance -noskip` runs them anyway, which
// is how to notice that one has started to pass.
var Known = map[string]string{
	// Go does not test pointers for nil before loads and stores at small
	// offsets: it lets the access fault and relies on the kernel to deliver
	// SIGSEGV, which the runtime turns into a recoverable panic. molt
	// delivers no signals, so the page fault at address 0 stops the kernel
	// with a fault report (exit code layout.ExitFault). Division by zero
	// is not in this group: on amd64 the compiler tests divisors
	// explicitly, so divide.go, zerodivide.go and recover2.go pass.
	"closure4.go":                    nilDeref + " (calls a nil func value)",
	"convert4.go":                    nilDeref + " (dereferences a nil *[]byte)",
	"defernil.go":                    nilDeref + " (a deferred nil func runs)",
	"devirtualization_nil_panics.go": nilDeref + " (method call through a nil pointer)",
	"method.go":                      nilDeref + " (method call through a nil embedded pointer)",
	"method5.go":                     nilDeref + " (method value of a nil pointer)",
	"nil.go":                         nilDeref + " (ranges over a nil array pointer)",
	"nilptr2.go":                     nilDeref + " (reads through nil pointers)",
	"recover3.go":                    nilDeref + " (recovers a nil-dereference runtime error)",

	// nilptr.go declares a 256 MiB array so that offsets into a nil
	// pointer to it reach far beyond page 0, then recovers from the nil
	// dereferences. The array lives in BSS, which must fit below
	// layout.ImageLimit (96 MiB): the post-link step refuses the image.
	"nilptr.go": "256 MiB BSS array exceeds the image limit (layout.ImageLimit, 96 MiB); also " + nilDeref,

	// molt's environment holds only what the kernel makes up (GODEBUG,
	// GOMAXPROCS) and KEY=VALUE words of the kernel command line; env.go
	// wants a non-empty $PATH, which is meaningless without a file system.
	"env.go": "wants $PATH set; molt's environment holds only GODEBUG, GOMAXPROCS and KEY=VALUE words of the kernel command line",
}

// nilDeref is the reason shared by the nil-dereference group.
const nilDeref = "recovers from a nil dereference: needs SIGSEGV delivery, molt stops on the page fault"
