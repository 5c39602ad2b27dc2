//go:build unix

package engine

import "syscall"

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
