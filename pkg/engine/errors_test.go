package engine

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestErrorCodesAndRetryable(t *testing.T) {
	cases := []struct {
		sentinel  *Error
		code      string
		retryable bool
	}{
		{ErrValidation, "VALIDATION", false},
		{ErrNotFound, "NOT_FOUND", false},
		{ErrTimeout, "TIMEOUT", true},
		{ErrCancelled, "CANCELLED", false},
		{ErrCommandFailed, "COMMAND_FAILED", false},
		{ErrSpawnFailed, "SPAWN_FAILED", true},
		{ErrIO, "IO", true},
		{ErrSerialization, "SERIALIZATION", false},
		{ErrOutputSizeExceeded, "OUTPUT_SIZE_EXCEEDED", false},
		{ErrConcurrencyLimit, "CONCURRENCY_LIMIT", true},
		{ErrInvalidConfig, "INVALID_CONFIG", false},
		{ErrNotFinished, "NOT_FINISHED", false},
		{ErrClosed, "CLOSED", false},
		{ErrInternal, "INTERNAL", false},
	}
	for _, c := range cases {
		err := fmt.Errorf("context: %w", &Error{Code: c.sentinel.Code, ID: "x", Msg: "m", Err: io.EOF})
		if string(CodeOf(err)) != c.code || IsRetryable(err) != c.retryable || !errors.Is(err, c.sentinel) {
			t.Errorf("%s: code %s retryable %v is %v", c.code, CodeOf(err), IsRetryable(err), errors.Is(err, c.sentinel))
		}
		if !errors.Is(err, io.EOF) {
			t.Errorf("%s: cause not unwrapped", c.code)
		}
		for _, other := range cases {
			if other.sentinel != c.sentinel && errors.Is(err, other.sentinel) {
				t.Errorf("%s matches %s", c.code, other.code)
			}
		}
	}
	if CodeOf(nil) != "" || CodeOf(io.EOF) != CodeInternal || IsRetryable(io.EOF) {
		t.Error("CodeOf/IsRetryable on foreign errors")
	}
	if got := (&Error{Code: CodeNotFound, ID: "abc", Msg: "execution not found"}).Error(); got != "engine: execution abc: execution not found" {
		t.Errorf("message %q", got)
	}
}

func TestResultErr(t *testing.T) {
	cases := []struct {
		r    Result
		want *Error
	}{
		{Result{Status: StatusCompleted, ExitCode: 3, ErrorCode: CodeCommandFailed, Error: "exit status 3"}, ErrCommandFailed},
		{Result{Status: StatusTimedOut, ErrorCode: CodeTimeout}, ErrTimeout},
		{Result{Status: StatusCancelled, ErrorCode: CodeCancelled}, ErrCancelled},
		{Result{Status: StatusFailed, ErrorCode: CodeSpawnFailed}, ErrSpawnFailed},
	}
	for _, c := range cases {
		if err := c.r.Err(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v", c.r.Status, err)
		}
	}
	if (&Result{Status: StatusCompleted}).Err() != nil {
		t.Error("success has an error")
	}
}
