package run

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit statuses of the playbook command, part of the public contract (README, "Exit status"). Those of
// a run follow from its outcome through ExitStatus; ExitUsage and ExitStore also end commands that ran
// nothing.
const (
	ExitSucceeded = 0   // the run succeeded (or the command did what it was asked)
	ExitFailed    = 1   // the run failed (or an unexpected error)
	ExitUsage     = 2   // bad usage, invalid playbook or params: nothing ran
	ExitStore     = 3   // the database could not be opened or written
	ExitTimedOut  = 124 // the run's timeout expired, as timeout(1) reports it
	// ExitGroupBusy: the run did not start because another run holds its concurrency group and the
	// playbook says not to wait (EX_TEMPFAIL of sysexits.h: try again later). Nothing ran or was recorded.
	ExitGroupBusy = 75

	// A run a signal stopped exits 128 plus the signal's number, as a shell reports a process killed by
	// it (SignalExit). These are the signals the runner handles.
	ExitHangup      = 128 + int(syscall.SIGHUP)  // 129: the terminal or SSH session went away
	ExitInterrupted = 128 + int(syscall.SIGINT)  // 130: Ctrl-C
	ExitQuit        = 128 + int(syscall.SIGQUIT) // 131: the forced stop
	ExitTerminated  = 128 + int(syscall.SIGTERM) // 143: a service manager stopping the runner
)

// SignalExit is the exit status of a run that signal stopped: 128 plus its number. A zero signal (a
// cancellation that no signal caused) gives ExitInterrupted.
func SignalExit(signal syscall.Signal) int {
	if signal <= 0 {
		return ExitInterrupted
	}
	return 128 + int(signal)
}

// ExitStatus is the one table from a run's outcome to the exit status of the process that ran it:
//
//	succeeded              -> ExitSucceeded
//	timed_out              -> ExitTimedOut
//	cancelled              -> SignalExit(signal): 128 plus the number of the signal that stopped it
//	anything else (failed) -> ExitFailed
//
// A run that could not be recorded in full exits ExitStore instead, whatever its steps did
// (Record.Unrecorded).
func ExitStatus(status Status, signal syscall.Signal) int {
	switch status {
	case StatusSucceeded:
		return ExitSucceeded
	case StatusTimedOut:
		return ExitTimedOut
	case StatusCancelled:
		return SignalExit(signal)
	}
	return ExitFailed
}

// Interrupt is the cause a runner gives when a signal stops the run (context.WithCancelCause): the
// run ends cancelled and exits SignalExit(Signal). The zero Kill is the graceful stop (the first
// Ctrl-C: running steps get their stop signal, always() and cancelled() steps still run); Kill true
// is the forced stop (every running process group gets SIGKILL, nothing else starts).
type Interrupt struct {
	Signal syscall.Signal
	Kill   bool
}

// ExitCode is SignalExit(i.Signal).
func (i *Interrupt) ExitCode() int { return SignalExit(i.Signal) }

func (i *Interrupt) Error() string { return "interrupted by " + signalName(i.Signal) }

// signalName is the signal's name as the kernel's headers spell it ("SIGTERM"), or its number when it
// has none: engine.SignalName, which this leaf package cannot import.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return strconv.Itoa(int(sig))
}
