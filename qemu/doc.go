// Package qemu launches molt kernel images on QEMU's microvm machine and
// reports how they ended. It serves `molt run`, `molt debug`, the in-VM test
// runners and the benchmarks; tests use StartT, which ties a VM to a
// testing.T the way u-root's vmtest does.
//
// # Command line
//
// A VM is configured with functional options (Kernel, Memory, Accel, ...).
// The command line is fixed apart from what the options add, so that
// VM.CommandLine reproduces a run exactly:
//
//	qemu-system-x86_64 -M microvm,acpi=off,pit=on,pic=off,rtc=on -cpu max -m 512
//	    -nodefaults -no-user-config -nographic -no-reboot
//	    -serial stdio -monitor none
//	    -device isa-debug-exit,iobase=0x501,iosize=2
//	    -global virtio-mmio.force-legacy=false
//	    [-device ...]... -kernel build/molt.elf [-append ...] -accel tcg
//	    [-gdb tcp:ADDR -S] [extra...]
//
// Why these flags (checked with QEMU 7.2 on Debian 12):
//
//   - microvm with the i8254 PIT and the RTC but no i8259 PIC: molt takes
//     interrupts through the LAPIC and IOAPIC only. microvm appends
//     "virtio_mmio.device=..." words for attached virtio devices to the
//     kernel command line (auto-kernel-cmdline), which tells the kernel
//     where they are.
//   - -nodefaults plus -serial stdio -monitor none: COM1 is the only
//     character device and it is not multiplexed with the monitor. Without
//     this, -nographic puts the monitor on stdio too and QEMU eats the
//     Ctrl-A escape sequences ("Ctrl-A x" terminates QEMU) instead of
//     passing the bytes to the guest.
//   - -no-reboot: a triple fault or a guest reset ends QEMU instead of
//     rebooting the kernel forever.
//   - isa-debug-exit at layout.DebugExitPort: the kernel's exit code (see
//     Result).
//   - virtio-mmio.force-legacy=false: microvm's virtio-mmio transports
//     default to the legacy (version 1) register layout; molt's drivers
//     speak VIRTIO 1.x. The flag is harmless while no device is attached.
//     Devices are added with the Device option.
//
// QEMU's standard output carries the serial console; it is copied to the
// Console writer, to Logf line by line with a timestamp, and to a buffer
// that VM.Expect searches. QEMU's own messages (standard error) go to the
// Stderr writer and Logf, and the last few KiB are quoted in errors.
//
// # Accelerator
//
// Accel("tcg") and Accel("kvm") are taken as given. Accel("auto"), the
// default, uses KVM only when /dev/kvm answers KVM_GET_API_VERSION and a
// probe boot passes: the same kernel is booted with -accel kvm and the word
// "molt.probe" appended to its command line, and must exit with
// layout.ExitProbe, which the kernel does right after entering 64-bit mode
// and running SSE code. The probe gives up after 5 s, and at once when QEMU
// reports a KVM internal error (KVM-PVM, for example, cannot emulate SSE:
// QEMU then stops the guest and would hang). If QEMU refuses "-cpu max"
// under KVM, the probe tries "-cpu host". Otherwise auto falls back to TCG.
// The outcome is cached for the life of the process, per QEMU binary.
//
// # Environment
//
//	MOLT_QEMU   QEMU executable (default qemu-system-x86_64 from PATH);
//	            the Binary option overrides it.
//	MOLT_ACCEL  tcg, kvm or auto: replaces Accel("auto") (the default), so
//	            a user can force TCG or KVM without changing code; an
//	            explicit Accel("tcg") or Accel("kvm") wins.
//
// # Processes
//
// QEMU runs in its own process group, which is killed with SIGKILL on
// timeout, context cancellation or Kill, and (on Linux) when the launching
// process dies. On Linux, whatever QEMU leaves in its group when it exits is
// killed too, before QEMU is reaped. Wait reaps QEMU and returns only after
// all console output has been delivered.
//
// The parent-death signal belongs to the thread that forked QEMU, not to
// the process: if that thread ends, QEMU is killed. The Go runtime ends a
// thread only when a goroutine exits while locked to it
// (runtime.LockOSThread without UnlockOSThread), so a program that starts
// VMs must not let locked goroutines exit; qemu/netns, which switches
// threads into network namespaces, always unlocks them. The package builds on Unix systems
// only; KVM and the exit sweep are Linux-only.
package qemu
