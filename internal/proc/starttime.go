package proc

// A ForkClock tells when a child started from the clock read around its fork, so that whoever forks
// learns the child's start time (what StartTicks reads from /proc) without reading /proc for every
// child. Take one with BeforeFork just before the fork, and call its Start with the child's pid after
// the fork, before the child can have been reaped. A ForkClock is a plain value, used once, by one
// goroutine; its zero value is one whose Start always reads /proc.
//
// Crash recovery needs the start time to tell a recorded process group from a later process that
// reused its number (see KillStaleGroup). The time must be taken while the child is known to exist: the
// caller keeps it in its own records (the engine's started event, an attempt's record), so that nobody
// has to look it up later, when the child may be gone.
type ForkClock struct {
	before int64 // CLOCK_BOOTTIME in nanoseconds just before the fork; <= 0 = not read
}
