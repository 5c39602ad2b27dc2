//go:build !linux

package engine

func forkClock() func(pid int) (uint64, bool) { return func(int) (uint64, bool) { return 0, false } }

func forgetStart(int) {}

// StartTicks is Linux-only: elsewhere it always reports false.
func StartTicks(pid int) (ticks uint64, ok bool) { return 0, false }
