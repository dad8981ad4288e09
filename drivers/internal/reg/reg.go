// Package reg is the only place where molt's drivers touch device registers:
// x86 port I/O and 32-bit memory-mapped I/O.
//
// Every function is //go:nosplit and allocation-free because drivers call
// them from trap context (interrupt and syscall handlers run on kernel stacks
// where a stack-growth check would fail). None of the helpers is atomic with
// respect to interrupts: a read-modify-write (Set, Clear) must run with
// interrupts disabled or on a register no interrupt handler writes.
package reg

// In8 reads a byte from an I/O port.
func In8(port uint16) uint8

// Out8 writes a byte to an I/O port.
func Out8(port uint16, val uint8)

// In32 reads a 32-bit word from an I/O port.
func In32(port uint16) uint32

// Out32 writes a 32-bit word to an I/O port.
func Out32(port uint16, val uint32)

// Read32 reads a 32-bit memory-mapped register at the physical (identity
// mapped) address addr. It is written in assembly so the access is exactly
// one 32-bit load that the compiler cannot merge or elide.
func Read32(addr uintptr) uint32

// Write32 writes a 32-bit memory-mapped register with one 32-bit store.
func Write32(addr uintptr, val uint32)

// Set sets bits in a 32-bit register (not atomic; see the package doc).
//
//go:nosplit
func Set(addr uintptr, bits uint32) { Write32(addr, Read32(addr)|bits) }

// Clear clears bits in a 32-bit register (not atomic; see the package doc).
//
//go:nosplit
func Clear(addr uintptr, bits uint32) { Write32(addr, Read32(addr)&^bits) }
