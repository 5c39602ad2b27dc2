package proc

import "errors"

var (
	// ErrUnsupported is returned where this system does not expose the process facts needed (anything
	// but Linux). Callers must then leave processes alone.
	ErrUnsupported = errors.New("process inspection is not supported on this system")
	// ErrNoProcess means the process does not exist (it exited and was reaped).
	ErrNoProcess = errors.New("no such process")
	// ErrLocked means another open file description holds the lock: its owner is alive.
	ErrLocked = errors.New("locked by a live process")
)
