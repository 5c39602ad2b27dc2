package engine

import (
	"errors"
	"fmt"
	"time"
)

// Code is the stable category of an engine error. The values are SCREAMING_SNAKE strings that callers may
// store, print and compare; they never change meaning.
type Code string

// Error codes. IsRetryable is true for CodeTimeout, CodeSpawnFailed, CodeIO and CodeConcurrencyLimit.
const (
	CodeValidation         Code = "VALIDATION"           // the request is invalid; nothing was started
	CodeNotFound           Code = "NOT_FOUND"            // no execution with that id (never existed or cleaned up)
	CodeTimeout            Code = "TIMEOUT"              // the execution hit its timeout
	CodeCancelled          Code = "CANCELLED"            // the execution was cancelled or killed
	CodeCommandFailed      Code = "COMMAND_FAILED"       // the process exited non-zero or died from a signal nobody sent it on purpose
	CodeSpawnFailed        Code = "SPAWN_FAILED"         // the process could not be started
	CodeIO                 Code = "IO"                   // a file the execution needs could not be opened or written
	CodeSerialization      Code = "SERIALIZATION"        // JSON could not be decoded or encoded
	CodeOutputSizeExceeded Code = "OUTPUT_SIZE_EXCEEDED" // a stream exceeded Config.OutputLimit under FailExecution
	CodeConcurrencyLimit   Code = "CONCURRENCY_LIMIT"    // the pending queue is full (Config.MaxPending)
	CodeInvalidConfig      Code = "INVALID_CONFIG"       // New was given an invalid Config
	CodeNotFinished        Code = "NOT_FINISHED"         // Result was asked for an execution that is not terminal yet
	CodeClosed             Code = "CLOSED"               // the Engine is closed
	CodeInternal           Code = "INTERNAL"             // a bug
)

// Retryable reports whether an error of this code may succeed when tried again unchanged.
func (c Code) Retryable() bool {
	switch c {
	case CodeTimeout, CodeSpawnFailed, CodeIO, CodeConcurrencyLimit:
		return true
	}
	return false
}

// Error is the error type of every failure the engine reports. Use errors.As to get it, errors.Is with the
// Err* sentinels to branch on its Code, and IsRetryable to decide whether to try again.
type Error struct {
	Code Code
	// ID is the execution the error is about, if any.
	ID string
	// Msg says what happened, in lower case without trailing punctuation.
	Msg string
	// ExitCode is set for CodeCommandFailed (-1 when a signal ended the process).
	ExitCode int
	// Signal is set for CodeCommandFailed when a signal ended the process.
	Signal int
	// Limit is set for CodeOutputSizeExceeded (the OutputLimit in bytes) and CodeConcurrencyLimit (MaxPending).
	Limit int64
	// Timeout is set for CodeTimeout.
	Timeout time.Duration
	// Err is the underlying cause, if any (a *ValidationError for CodeValidation).
	Err error
}

// Error formats the error as "engine: execution ID: message: cause".
func (e *Error) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = sentinelText[e.Code]
	}
	s := "engine: "
	if e.ID != "" {
		s += "execution " + e.ID + ": "
	}
	s += msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's code, so errors.Is(err, ErrNotFound) works for every
// NOT_FOUND error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel() && t.Code == e.Code
}

func (e *Error) sentinel() bool { return e.ID == "" && e.Msg == "" && e.Err == nil }

// IsRetryable reports whether the failure is transient (timeout, spawn failure, I/O, concurrency limit).
func (e *Error) IsRetryable() bool { return e.Code.Retryable() }

// Sentinels for errors.Is. Each matches every *Error with the same Code.
var (
	ErrValidation         = &Error{Code: CodeValidation}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrTimeout            = &Error{Code: CodeTimeout}
	ErrCancelled          = &Error{Code: CodeCancelled}
	ErrCommandFailed      = &Error{Code: CodeCommandFailed}
	ErrSpawnFailed        = &Error{Code: CodeSpawnFailed}
	ErrIO                 = &Error{Code: CodeIO}
	ErrSerialization      = &Error{Code: CodeSerialization}
	ErrOutputSizeExceeded = &Error{Code: CodeOutputSizeExceeded}
	ErrConcurrencyLimit   = &Error{Code: CodeConcurrencyLimit}
	ErrInvalidConfig      = &Error{Code: CodeInvalidConfig}
	ErrNotFinished        = &Error{Code: CodeNotFinished}
	ErrClosed             = &Error{Code: CodeClosed}
	ErrInternal           = &Error{Code: CodeInternal}
)

var sentinelText = map[Code]string{
	CodeValidation:         "invalid request",
	CodeNotFound:           "execution not found",
	CodeTimeout:            "timed out",
	CodeCancelled:          "cancelled",
	CodeCommandFailed:      "command failed",
	CodeSpawnFailed:        "process could not be started",
	CodeIO:                 "i/o error",
	CodeSerialization:      "serialization error",
	CodeOutputSizeExceeded: "output size exceeded",
	CodeConcurrencyLimit:   "concurrency limit reached",
	CodeInvalidConfig:      "invalid configuration",
	CodeNotFinished:        "execution not finished",
	CodeClosed:             "engine closed",
	CodeInternal:           "internal error",
}

// CodeOf returns the Code of the first *Error in err's chain, CodeInternal for another non-nil error, and ""
// for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsRetryable reports whether err is an engine error whose code is retryable. The engine never retries by
// itself; this is for callers that do.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.IsRetryable()
}

// ValidationKind says what is wrong with a request. The values are stable snake_case strings.
type ValidationKind string

// Validation kinds: what Execute, Start and Run find wrong with a request before any process starts.
const (
	InvalidCommand      ValidationKind = "invalid_command"       // a malformed command (NUL byte, unknown type, ...)
	ScriptNotFound      ValidationKind = "script_not_found"      // Script.Path does not exist
	ScriptNotExecutable ValidationKind = "script_not_executable" // not a regular file, or no exec bit, no #! line and no interpreter
	TimeoutTooLarge     ValidationKind = "timeout_too_large"     // Request.Timeout above Config.MaxTimeout
	InvalidWorkingDir   ValidationKind = "invalid_working_dir"   // Request.Dir exists but is not a directory
	WorkingDirNotFound  ValidationKind = "working_dir_not_found" // Request.Dir does not exist
	MissingField        ValidationKind = "missing_field"         // a required field is empty (AWSCLI.Service, ...)
	EmptyCommand        ValidationKind = "empty_command"         // Shell.Command or Exec.Program is empty, or no Command at all
	ProgramNotFound     ValidationKind = "program_not_found"     // the program, shell, interpreter or aws is not in PATH
	InvalidID           ValidationKind = "invalid_id"            // Request.ID is a duplicate or not usable as a file name
	InvalidEnv          ValidationKind = "invalid_env"           // an Env key is empty or contains '=' or NUL
	InvalidValue        ValidationKind = "invalid_value"         // another field has an impossible value (negative grace, ...)
)

// ValidationError details a CodeValidation error. errors.Is(err, &ValidationError{Kind: k}) matches any
// validation error of kind k.
type ValidationError struct {
	Kind ValidationKind
	// Field names the request field at fault ("command.path", "dir", "timeout", ...).
	Field string
	// Value is the offending value (a path, a program name), if any.
	Value string
	// Requested and Max are set for TimeoutTooLarge; NoTimeout as Requested means "no timeout".
	Requested, Max time.Duration
	// Msg explains, in lower case.
	Msg string
}

// Error says what is wrong, naming the field and the value at fault.
func (v *ValidationError) Error() string {
	switch {
	case v.Kind == TimeoutTooLarge:
		req := "no timeout"
		if v.Requested >= 0 {
			req = v.Requested.String()
		}
		return fmt.Sprintf("timeout exceeds maximum allowed: %s > %s", req, v.Max)
	case v.Value != "" && v.Msg != "":
		return fmt.Sprintf("%s %q: %s", v.Field, v.Value, v.Msg)
	case v.Msg != "":
		return v.Field + ": " + v.Msg
	default:
		return v.Field + ": " + string(v.Kind)
	}
}

// Is matches a target *ValidationError that sets only Kind.
func (v *ValidationError) Is(target error) bool {
	t, ok := target.(*ValidationError)
	return ok && t.Kind == v.Kind && t.Field == "" && t.Value == "" && t.Msg == ""
}

func invalid(kind ValidationKind, field, value, msg string) error {
	return &Error{Code: CodeValidation, Err: &ValidationError{Kind: kind, Field: field, Value: value, Msg: msg}}
}
