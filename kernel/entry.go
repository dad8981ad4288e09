package kernel

// Symbols defined in entry_amd64.s.

func pvhEntry()
func entry64()
func syscallEntry()
func idleLoop()
func crashTrampoline()
func irqSpurious()

var (
	excStubs          [32]uintptr // exception entry points, vectors 0-31
	irqStubs          [40]uintptr // interrupt entry points, vectors 32-71
	syscallEntryPC    uintptr
	irqSpuriousPC     uintptr
	idleLoopPC        uintptr
	crashTrampolinePC uintptr
	goexitPC          uintptr // runtime.goexit
	imageEnd          uintptr // runtime.end: end of BSS
	textStart         uintptr // runtime.text
	textEnd           uintptr // runtime.etext

	// Scratch words the entry stubs write (single CPU, interrupts off).
	syscallUserSP uintptr
	trapVector    uint64
	trapError     uint64
	irqVector     uint64
)
