// Package proc holds the few operating-system facts about processes that crash recovery needs: when a
// process started (to tell a pid from a later process that reused its number), which processes are in a
// process group, how to kill a group, and an advisory file lock that says whether the process holding it
// is still alive.
//
// The process facts come from /proc and exist on Linux only. On other systems those functions return
// ErrUnsupported, and callers must then leave processes alone rather than guess. The file lock (flock)
// works on every Unix.
package proc
