package cli

import (
	"errors"
	"fmt"

	"github.com/playbookhq/playbook/pkg/run"
)

// ExitError carries the exit status a command wants. Err, when not nil, is printed to stderr by Main;
// a nil Err means the command already told the user what happened.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// UsageError marks bad command-line usage; Main prints it with a pointer to --help and exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// storeError wraps a database failure so that it exits with run.ExitStore.
func storeError(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: run.ExitStore, Err: err}
}

// exitCode is the one place where an error becomes an exit status.
func exitCode(err error) int {
	if err == nil {
		return run.ExitSucceeded
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return run.ExitUsage
	}
	return run.ExitFailed
}
