//go:build linux

package engine

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/playbookhq/playbook/internal/proc"
)

// The start time of a child, as /proc/<pid>/stat gives it (field 22: clock ticks since boot), is what
// crash recovery needs to tell a step's process group from a later process that reused its number.
// Reading /proc/<pid>/stat costs tens of microseconds per step (procfs instantiates the pid's
// directory), so the engine takes the time from the fork itself: the kernel stamps the child with
// CLOCK_BOOTTIME during clone, so when the clock read just before the fork and the one just after fall
// in the same tick, that tick is the child's start time. Otherwise (the fork straddled a tick: 3% of
// a chain's forks here, but a quarter to a half when many steps start at once and forks wait for a
// CPU) the engine reads /proc right after the fork, while the child cannot have been reaped, and
// carries the time in the started event (Event.StartTicks), so that nobody has to look it up later,
// when the child may be gone.

// nsPerTick is the length of a clock tick of /proc/<pid>/stat: USER_HZ is 100 on every Linux
// architecture Go supports. The first fork of the program checks it against /proc (checkTicks).
const nsPerTick = 1_000_000_000 / 100

var starts = struct {
	sync.Mutex
	m       map[int]uint64
	checked bool
	broken  bool // the check failed: never answer
}{m: map[int]uint64{}}

func bootNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return -1
	}
	return ts.Nano()
}

// forkClock brackets a fork: call it before, and call the returned function with the child's pid after,
// before the child can have been reaped. It returns the child's start time, or false when not even
// /proc has it.
func forkClock() func(pid int) (uint64, bool) { return clockFrom(bootNanos()) }

// clockFrom is forkClock with the clock read before the fork given.
func clockFrom(before int64) func(pid int) (uint64, bool) {
	return func(pid int) (uint64, bool) {
		after := bootNanos()
		ticks, known := uint64(before/nsPerTick), before >= 0 && after >= 0 && before/nsPerTick == after/nsPerTick
		starts.Lock()
		if known && !starts.checked {
			starts.checked = true
			starts.broken = !checkTicks(pid, ticks)
		}
		broken := starts.broken
		starts.Unlock()
		if !known || broken {
			// Outside the lock: other forks and reaps need it meanwhile. The child cannot be reaped
			// before this returns (its monitor starts after), so /proc has it.
			t, err := proc.StartTicks(pid)
			if err != nil {
				return 0, false
			}
			ticks = t
		}
		starts.Lock()
		starts.m[pid] = ticks
		starts.Unlock()
		return ticks, true
	}
}

// checkTicks compares the computed start time of a live child with /proc, once per program.
func checkTicks(pid int, ticks uint64) bool {
	t, err := proc.StartTicks(pid)
	return err == nil && t == ticks
}

// forgetStart drops pid before it is reaped, after which its number may be reused.
func forgetStart(pid int) {
	starts.Lock()
	delete(starts.m, pid)
	starts.Unlock()
}

// StartTicks returns when process pid started, in clock ticks since boot (field 22 of
// /proc/<pid>/stat), when pid is a child that an Engine of this program started and has not reaped
// yet (the started event carries the same value, which a caller can keep past the reap). ok is false
// otherwise: read /proc then.
func StartTicks(pid int) (ticks uint64, ok bool) {
	starts.Lock()
	ticks, ok = starts.m[pid]
	starts.Unlock()
	return ticks, ok
}
