//go:build linux

package proc

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Why a clock and not /proc: reading /proc/<pid>/stat makes procfs instantiate the pid's directory,
// work that would then sit on the path of every launch. The kernel stamps a child with CLOCK_BOOTTIME
// while it clones it, and /proc/<pid>/stat's start time (field 22) is that stamp in clock ticks, rounded
// down. So when the clock read just before the fork and the one just after fall in the same tick, that
// tick is the child's start time. When they do not (the fork straddled a tick, which happens more
// often when many children start at once and forks wait for a CPU), /proc is read after all.

// nsPerTick is the length of a clock tick of /proc/<pid>/stat: USER_HZ is 100 on every Linux
// architecture Go supports. The first computed start time is checked against /proc (clockAgrees).
const nsPerTick = 1_000_000_000 / 100

// The outcomes of the check of clockAgrees.
const (
	clockUnchecked int32 = iota
	clockRight
	clockWrong // never trust the clock: read /proc for every child
)

// clockCheck is the outcome of the one check per program of a computed start time against /proc;
// clockCheckMu serialises the check itself, so that it happens once.
var (
	clockCheck   atomic.Int32
	clockCheckMu sync.Mutex
)

// bootNanos reads CLOCK_BOOTTIME in nanoseconds, or gives -1 when it cannot.
func bootNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return -1
	}
	return ts.Nano()
}

// BeforeFork reads the clock for a fork that is about to happen.
func BeforeFork() ForkClock { return ForkClock{before: bootNanos()} }

// Start returns when the child pid, forked after c was taken, started, in clock ticks since boot (as
// StartTicks gives it). ok is false when not even /proc knows the process (it was reaped, or /proc is
// not mounted). It must be called before the child can have been reaped: a number reaped may already
// belong to another process. Start is safe for concurrent use.
func (c ForkClock) Start(pid int) (ticks uint64, ok bool) {
	after := bootNanos()
	if c.before > 0 && after > 0 && c.before/nsPerTick == after/nsPerTick {
		if ticks := uint64(c.before / nsPerTick); clockAgrees(pid, ticks) {
			return ticks, true
		}
	}
	ticks, err := StartTicks(pid)
	if err != nil {
		return 0, false
	}
	return ticks, true
}

// clockAgrees says whether start times computed from the clock can be trusted: the first time it is
// called it compares ticks, computed for the live process pid, with /proc, and every later call gives
// the same answer. A kernel whose USER_HZ is not 100, or whose stamp is not CLOCK_BOOTTIME, then costs a
// /proc read per child rather than wrong start times (with which recovery would take a step's own
// group for a stranger's and leave it running).
func clockAgrees(pid int, ticks uint64) bool {
	switch clockCheck.Load() {
	case clockRight:
		return true
	case clockWrong:
		return false
	}
	clockCheckMu.Lock()
	defer clockCheckMu.Unlock()
	if clockCheck.Load() == clockUnchecked {
		outcome := clockWrong
		if t, err := StartTicks(pid); err == nil && t == ticks {
			outcome = clockRight
		}
		clockCheck.Store(outcome)
	}
	return clockCheck.Load() == clockRight
}
