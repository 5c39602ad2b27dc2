// Package proc holds the few operating-system facts about processes that crash recovery needs: when a
// process started (to tell a pid from a later process that reused its number), which processes are in a
// process group, how to kill a group, and an advisory file lock that says whether the process holding it
// is still alive.
//
// A process's start time can also be taken by whoever forks it from the clock read around the fork
// (ForkClock), which spares a /proc read per child.
//
// The process facts come from /proc and exist on Linux only. On other systems those functions return
// ErrUnsupported, and callers must then leave processes alone rather than guess. The file lock (flock)
// works on every Unix.
package proc
