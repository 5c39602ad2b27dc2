package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"syscall"
	"time"
)

// Status is the lifecycle state of an execution: pending → running → exactly one terminal state
// (completed, failed, cancelled, timed_out), or pending → cancelled/failed when it never started. A terminal
// state never changes. The values are stable snake_case strings.
type Status string

const (
	// StatusPending: registered, waiting for a slot (Config.MaxConcurrent).
	StatusPending Status = "pending"
	// StatusRunning: the process has been started.
	StatusRunning Status = "running"
	// StatusCompleted: the process exited (any exit code) or was killed by a signal the engine did not
	// send. Result.Success tells whether it exited 0.
	StatusCompleted Status = "completed"
	// StatusFailed: it could not start (spawn failure, log file error) or FailExecution stopped it.
	StatusFailed Status = "failed"
	// StatusCancelled: Cancel, Kill, KillAll, Close or Run's context stopped it, or it never started.
	StatusCancelled Status = "cancelled"
	// StatusTimedOut: its timeout expired and the stop ladder ended it.
	StatusTimedOut Status = "timed_out"
)

// Terminal reports whether s is a final state.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCancelled, StatusTimedOut:
		return true
	}
	return false
}

// Result is the outcome of an execution. Results returned by the engine are shared snapshots: treat them
// as read-only. Its JSON form (MarshalJSON) uses the snake_case names of the tags.
type Result struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Command is the display form of what ran (argv, shell-quoted), secrets masked.
	Command string `json:"command,omitempty"`
	// PID is the process id, which is also its process group id; 0 if it never started.
	PID int `json:"pid,omitempty"`
	// ExitCode is the process's exit status (exit 3 gives 3). It is -1 when a signal ended the process
	// (see Signal) or when it never started.
	ExitCode int `json:"exit_code"`
	// Signal is the number of the signal that ended the process (SIGTERM gives 15), 0 if it exited.
	Signal int `json:"signal,omitempty"`
	// Stdout and Stderr are the captured streams, raw bytes (invalid UTF-8 kept), masked. A stream longer
	// than Config.OutputLimit keeps its head and tail joined by "\n[... N bytes omitted ...]\n", so it is
	// at most OutputLimit plus the marker long.
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr"`
	// StdoutBytes and StderrBytes count every byte the process wrote to each stream (before masking).
	StdoutBytes int64 `json:"stdout_bytes"`
	StderrBytes int64 `json:"stderr_bytes"`
	// StdoutTruncated and StderrTruncated say whether the captured stream omits bytes.
	StdoutTruncated bool `json:"stdout_truncated,omitempty"`
	StderrTruncated bool `json:"stderr_truncated,omitempty"`
	// StdoutFile and StderrFile name the SpillToFile files holding the complete masked streams; "" when the
	// stream fit in OutputLimit (no file is created then) or another strategy is in use.
	StdoutFile string `json:"stdout_file,omitempty"`
	StderrFile string `json:"stderr_file,omitempty"`
	// StartedAt is when the process started (zero if it never did); FinishedAt when the execution became
	// terminal. Duration is the run time of the process (zero if it never started). Times are UTC.
	StartedAt  time.Time     `json:"started_at,omitzero"`
	FinishedAt time.Time     `json:"finished_at,omitzero"`
	Duration   time.Duration `json:"-"` // encoded as duration_ms
	// Error says why the execution did not succeed ("exit status 3", "timed out after 5s", ...); "" on
	// success. ErrorCode is its category.
	Error     string `json:"error,omitempty"`
	ErrorCode Code   `json:"error_code,omitempty"`
	// Warning reports a problem that did not change the status: a background process kept the pipes open
	// after the process group was gone (output may be incomplete), or a log file could not be written.
	Warning string `json:"warning,omitempty"`
}

// Success reports whether the process exited with status 0.
func (r *Result) Success() bool { return r.Status == StatusCompleted && r.ExitCode == 0 }

// Err returns nil on success, else an *Error with the result's ErrorCode (COMMAND_FAILED with ExitCode
// and Signal for a non-zero exit, TIMEOUT, CANCELLED, SPAWN_FAILED, IO, OUTPUT_SIZE_EXCEEDED), so callers
// can use errors.Is and IsRetryable on outcomes too.
func (r *Result) Err() error {
	if r.Success() {
		return nil
	}
	code := r.ErrorCode
	if code == "" {
		code = CodeInternal
	}
	return &Error{Code: code, ID: r.ID, Msg: r.Error, ExitCode: r.ExitCode, Signal: r.Signal}
}

// resultFields is Result without its methods, so that encoding it inside resultJSON does not recurse.
type resultFields Result

// resultJSON is Result as encoded. Its Stdout and Stderr, strings, are shallower than the embedded
// []byte fields, so encoding/json uses them in their place; every other field is encoded as Result
// declares it.
type resultJSON struct {
	resultFields
	Success    bool    `json:"success"`
	Stdout     string  `json:"stdout"`
	Stderr     string  `json:"stderr"`
	DurationMS float64 `json:"duration_ms"`
}

// textOf converts output bytes to a string that is valid UTF-8 (invalid sequences become U+FFFD), so
// JSON encoding never fails and never produces invalid documents.
func textOf(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }

// MarshalJSON encodes the result with snake_case fields. Stdout and Stderr become strings with invalid
// UTF-8 replaced by U+FFFD (the Result itself keeps the raw bytes); the duration is "duration_ms", a
// number of milliseconds with nanosecond precision.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{resultFields: resultFields(r), Success: r.Success(), Stdout: textOf(r.Stdout),
		Stderr: textOf(r.Stderr), DurationMS: float64(r.Duration) / 1e6})
}

// UnmarshalJSON decodes what MarshalJSON produced.
func (r *Result) UnmarshalJSON(data []byte) error {
	var w resultJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return &Error{Code: CodeSerialization, Msg: "decode result", Err: err}
	}
	*r = Result(w.resultFields)
	r.Stdout, r.Stderr = []byte(w.Stdout), []byte(w.Stderr)
	r.Duration = time.Duration(math.Round(w.DurationMS * 1e6))
	return nil
}

// Summary is one line of List.
type Summary struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Command is the masked display form.
	Command string `json:"command"`
	// SubmittedAt is when Execute accepted the request.
	SubmittedAt time.Time `json:"submitted_at"`
	// StartedAt is when the process started; zero while pending or if it never started.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Duration is the run time so far for a running execution, the final one for a finished execution.
	Duration time.Duration `json:"-"`
	Metadata Metadata      `json:"metadata,omitzero"`
}

// MarshalJSON encodes the summary with snake_case fields and the duration as "duration_ms", like Result.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary // without methods, so no recursion
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(s), float64(s.Duration) / 1e6})
}

// exitText says how a process ended, in one clause without brackets, so that callers can put it in
// theirs: "exit status 3", "killed by SIGTERM, signal 15".
func exitText(code, sig int) string {
	if sig != 0 {
		return fmt.Sprintf("killed by %s, signal %d", SignalName(syscall.Signal(sig)), sig)
	}
	return fmt.Sprintf("exit status %d", code)
}
