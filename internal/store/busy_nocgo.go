//go:build !cgo

package store

// isBusy is false without cgo: the driver is a stub that fails every open the same way.
func isBusy(error) bool { return false }
