//go:build unix

package engine

import (
	"errors"
	"syscall"
)

// exit is how a group leader ended: its wait status, when it could be read.
type exit struct {
	ws syscall.WaitStatus
	ok bool
}

// errOutputCut: a process outside the group kept the pipes open past the wait delay, so reading stopped
// before the end of the output.
var errOutputCut = errors.New("output cut")

// sysProcAttr puts the child in a process group of its own (its pid becomes the group id), so that a stop
// signal reaches everything it started, and so that a terminal's Ctrl-C, which goes to the foreground
// group, reaches the child only through the engine: exactly once, as the configured stop signal.
func sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(a)
	return a
}

// signalGroup sends sig to every process of the group pgid. A group that is already gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pgid, sig); err != nil && err != syscall.ESRCH {
		return err
	}
	return nil
}
