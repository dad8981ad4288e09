//go:build !molt_panic_restore

package service

// panicDuringRestore makes Boot panic after it armed the rollback: only
// in images built with the molt_panic_restore tag, which tests push to
// check that a new kernel failing during restore rolls back.
const panicDuringRestore = false
