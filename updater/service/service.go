// Package service is molt's update service: the part of a kernel that
// receives a new image, verifies it, quiesces the tasks, saves everything
// into the handoff region and jumps (the old side), and that, in the next
// kernel, restores the network and the tasks from the region, resumes
// them and answers the update's client (the new side). DESIGN §6 and
// docs/update-protocol.md §6 describe the sequence.
//
// The service reaches the kernel only through a Machine (image store
// slots, the handoff region, the jump) and the network only through a
// Network (connection tables, NIC and IP configuration), so that the whole
// sequence except the CPU's jump runs in host tests: a host Machine
// "jumps" by handing the region's bytes to a second Service.
package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/molt-os/molt/kernel"
	"github.com/molt-os/molt/updater/handoff"
	"github.com/molt-os/molt/updater/image"
	"github.com/molt-os/molt/updater/task"
)

// Machine is what the service needs from the kernel under it.
type Machine interface {
	// Slot returns image store slot i's memory and physical address.
	Slot(i int) (mem []byte, phys uintptr, err error)
	// Slots is the number of image store slots.
	Slots() int
	// Region returns the handoff region.
	Region() ([]byte, error)
	// Inherited reports whether this kernel was started by a jump, and
	// how many bytes of the region the previous kernel wrote.
	Inherited() (n int, ok bool)
	// CheckJump says whether Jump would accept img staged in slot, without
	// changing anything.
	CheckJump(img *image.Image, slot int) error
	// Jump enters img (staged in slot) with handoffLen bytes of the
	// region. It returns only with an error, nothing changed.
	Jump(img *image.Image, slot, handoffLen int) error
	// ArmRollback makes the kernel jump to img (in slot) with handoffLen
	// bytes of the region if it stops before DisarmRollback;
	// RolledBack reports whether this kernel was entered that way, and
	// the code the newer kernel stopped with.
	ArmRollback(img *image.Image, slot, handoffLen int) error
	DisarmRollback()
	RolledBack() (code int, ok bool)
	// Clock reads the clocks at one instant; monotonic time continues
	// across jumps.
	Clock() kernel.ClockReading
	// PreviousJump returns the timings of the jump that started this
	// kernel, if one did.
	PreviousJump() (kernel.JumpReport, bool)
	// BuildID and Version identify the running image.
	BuildID() [32]byte
	Version() string
}

// Network is what the service needs from the network stack.
type Network interface {
	// Register adds the network's section types to reg.
	Register(reg *handoff.Registry) error
	// Configure brings the network up from scratch: a cold boot, or a warm
	// boot whose network state could not be used.
	Configure(ctx context.Context) error
	// Freeze stops the stack: no frame is taken in or sent, no timer
	// fires, until Thaw or the jump.
	Freeze() error
	// Thaw undoes Freeze when the update is aborted.
	Thaw() error
	// Save writes the network's sections (NIC and IP configuration,
	// connection tables) into enc. The stack is frozen.
	Save(enc *handoff.Encoder) (Counts, error)
	// Detach resets the NIC before the jump: no frame leaves and no DMA
	// happens after it returns.
	Detach() error
	// Restore rebuilds the NIC configuration and connection tables from a
	// handoff's sections in the new kernel, with the NIC still gated.
	Restore(ctx context.Context, decoded []handoff.Decoded) (Counts, error)
	// GoLive opens the NIC's gate: restored connections start exchanging
	// segments with their peers. An error means data the old kernel had
	// accepted could not be sent on.
	GoLive() error
	// Conn returns the live TCP connection with the given socket ID, and
	// SocketID the ID of a connection; Listener and ListenerID the same
	// for listeners.
	Conn(id uint32) (net.Conn, bool)
	SocketID(c net.Conn) (uint32, bool)
	Listener(id uint32) (net.Listener, bool)
	ListenerID(l net.Listener) (uint32, bool)
	// Listen opens a TCP listener on port.
	Listen(port int) (net.Listener, error)
}

// Counts are named totals for reports ("tcp", "udp", "bytes-queued", ...).
type Counts map[string]int

// Config configures a Service.
type Config struct {
	Machine Machine
	Network Network
	Tasks   *task.Table
	// Trusted are the keys an image must be signed with.
	Trusted []ed25519.PublicKey
	// QuiesceTimeout is the default quiesce deadline (0: task's default,
	// DefaultQuiesceTimeout).
	QuiesceTimeout time.Duration
	// HealthWindow is how long a new kernel runs before it commits the
	// update (invalidates the region); 0 means DefaultHealthWindow.
	HealthWindow time.Duration
	// Health, if not nil, says at the end of the health window whether
	// this kernel is fit to commit: an error makes it hand its current
	// state back to the previous image instead (a rollback done as an
	// update, so nothing that happened during the window is lost).
	Health func() error
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// DefaultHealthWindow is how long a new kernel waits before it commits.
const DefaultHealthWindow = 2 * time.Second

// Service is the update service of one kernel.
type Service struct {
	cfg Config
	reg *handoff.Registry

	// stagingLock is held while a bundle is received into the target
	// slot and through the update: one image in flight at a time.
	stagingLock sync.Mutex

	// mu serializes updates and guards the fields below.
	mu         sync.Mutex
	generation uint64 // of the handoff that started this kernel; 0 after a cold boot
	history    handoff.History
	slot       int // the slot this kernel's image is in; -1 if unknown
	prevSlot   int // the slot holding the previous image; -1 if none
	booted     *BootReport
	committed  bool
	listener   net.Listener // the push listener, once Listen ran
	listenID   uint32       // the listener the previous kernel carried over, 0 if none
}

// New checks cfg and builds the service's section registry.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Machine == nil:
		return nil, errors.New("service: no Machine")
	case cfg.Network == nil:
		return nil, errors.New("service: no Network")
	case cfg.Tasks == nil:
		return nil, errors.New("service: no task table")
	case cfg.Machine.Slots() < 2:
		return nil, fmt.Errorf("service: %d image store slots; an update needs 2", cfg.Machine.Slots())
	}
	if cfg.HealthWindow == 0 {
		cfg.HealthWindow = DefaultHealthWindow
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	reg := handoff.Builtin()
	if err := reg.Register(PendingSection); err != nil {
		return nil, err
	}
	if err := task.RegisterSections(reg); err != nil {
		return nil, err
	}
	if err := cfg.Network.Register(reg); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, reg: reg, slot: -1, prevSlot: -1}, nil
}

// Registry returns the section types the service reads and writes.
func (s *Service) Registry() *handoff.Registry { return s.reg }

func (s *Service) logf(format string, args ...any) { s.cfg.Logf(format, args...) }
