//go:build !molt_fail_health

package service

// failHealth makes every health check fail: only in images built with the
// molt_fail_health tag, which tests push to check that a new kernel that
// runs but is unfit rolls back with its current state.
const failHealth = false
