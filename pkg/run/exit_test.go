package run

import (
	"errors"
	"syscall"
	"testing"
)

// TestExitStatus: the table from a run's outcome to its exit status, signals by their numbers.
func TestExitStatus(t *testing.T) {
	for _, c := range []struct {
		status Status
		signal syscall.Signal
		want   int
	}{
		{StatusSucceeded, 0, 0},
		{StatusFailed, 0, 1},
		{StatusTimedOut, 0, 124},
		{StatusCancelled, 0, 130},
		{StatusCancelled, syscall.SIGHUP, 129},
		{StatusCancelled, syscall.SIGINT, 130},
		{StatusCancelled, syscall.SIGQUIT, 131},
		{StatusCancelled, syscall.SIGTERM, 143},
		{StatusCancelled, syscall.SIGUSR1, 128 + int(syscall.SIGUSR1)},
	} {
		if got := ExitStatus(c.status, c.signal); got != c.want {
			t.Errorf("ExitStatus(%s, %d) = %d, want %d", c.status, c.signal, got, c.want)
		}
	}
	if (&Interrupt{Signal: syscall.SIGTERM}).ExitCode() != ExitTerminated || ExitTerminated != 143 {
		t.Errorf("SIGTERM's exit status is not 143")
	}
	if got := (&Interrupt{Signal: syscall.SIGTERM}).Error(); got != "interrupted by SIGTERM" {
		t.Errorf("Interrupt.Error() = %q", got)
	}
}

// TestUnrecorded: a run that could not be recorded exits 3; if its steps all succeeded it has failed,
// otherwise it keeps its status and error.
func TestUnrecorded(t *testing.T) {
	r := &Record{Status: StatusSucceeded, ExitCode: 0}
	r.Unrecorded(errors.New("disk full"))
	if r.Status != StatusFailed || r.ExitCode != ExitStore || r.Error != "the run could not be recorded: disk full" {
		t.Errorf("succeeded run: %+v", r)
	}
	r = &Record{Status: StatusCancelled, ExitCode: 130, Error: "interrupted by SIGINT"}
	r.Unrecorded(errors.New("disk full"))
	if r.Status != StatusCancelled || r.ExitCode != ExitStore || r.Error != "interrupted by SIGINT" {
		t.Errorf("cancelled run: %+v", r)
	}
}
