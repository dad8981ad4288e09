//go:build molt_panic_restore

package service

// panicDuringRestore: see panic_off.go. This image panics in every warm
// boot that is not itself a rollback.
const panicDuringRestore = true
