//go:build !linux

package proc

// BeforeFork reads the clock for a fork that is about to happen. Only Linux gives start times: its
// ForkClock's Start always reports false elsewhere.
func BeforeFork() ForkClock { return ForkClock{} }

// Start is not available on this system: ok is always false.
func (c ForkClock) Start(pid int) (ticks uint64, ok bool) { return 0, false }
