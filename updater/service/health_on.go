//go:build molt_fail_health

package service

// failHealth: see health_off.go.
const failHealth = true
