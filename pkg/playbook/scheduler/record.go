package scheduler

import (
	"context"
	"time"
)

// Status is the state of a run or of a step. The values are the lower-case words of the public contract
// and are stored as they are in the database.
type Status string

const (
	StatusPending     Status = "pending"     // step: not started yet
	StatusRunning     Status = "running"     // run or step in progress
	StatusSucceeded   Status = "succeeded"   // exit 0 (or, for a run, nothing failed)
	StatusFailed      Status = "failed"      // non-zero exit, could not start, or a condition error
	StatusTimedOut    Status = "timed_out"   // the step's or the run's timeout expired
	StatusCancelled   Status = "cancelled"   // stopped by a signal to the runner
	StatusSkipped     Status = "skipped"     // step: never started; Reason says why
	StatusInterrupted Status = "interrupted" // the runner died; set by crash recovery, never by the scheduler
)

// Reasons a step was skipped (StepRecord.Reason). Stable words, stored in the database.
const (
	ReasonConditionFalse    = "condition_false"    // its if evaluated to false
	ReasonDependencyFailed  = "dependency_failed"  // success() was false because a dependency failed, timed out or was cancelled
	ReasonDependencySkipped = "dependency_skipped" // success() was false because a dependency was skipped
	ReasonFailFast          = "fail_fast"          // a step failed and fail_fast stopped new starts
	ReasonRunCancelled      = "run_cancelled"      // the run was cancelled before it started
	ReasonRunTimedOut       = "run_timed_out"      // the run's timeout expired before it started (or, status cancelled, while it ran)
	ReasonRecordError       = "record_error"       // recording the run failed, so no new step started
	ReasonConditionError    = "condition_error"    // (status failed) its if could not be evaluated
	ReasonReused            = "reused"             // (status succeeded) taken from an earlier run by retry
)

// Recorder receives what happens during a run, in order, from one goroutine at a time. internal/store
// implements it with SQLite. A returned error means the record could not be written: the scheduler
// reports it and the run ends with ErrRecord (exit status 3).
type Recorder interface {
	RunStarted(ctx context.Context, r *RunRecord) error
	AttemptStarted(ctx context.Context, a *AttemptStart) error
	AttemptFinished(ctx context.Context, a *AttemptRecord) error
	StepFinished(ctx context.Context, s *StepRecord) error
	RunFinished(ctx context.Context, r *RunRecord) error
}

// FailureReporter is implemented by a Recorder whose writes are made after its calls return (the
// store queues them for a background writer). Failed returns the first write that failed, or nil; the
// scheduler asks before it starts each step, so that once recording has failed no step starts but
// always()/cancelled() ones, even when no Recorder call has returned the error yet. It must be cheap.
// RunFinished's error should report every earlier failure, and name what was not written.
type FailureReporter interface {
	Failed() error
}

// Staller is implemented by a Recorder whose queued writes may wait for a lock another process holds.
// Stalled reports whether a write has waited long enough (about a second) that the run should start
// nothing new until it is made: were the wait to end in failure, a step started meanwhile would have
// run without a record. The scheduler asks before each start, and while it holds steps back it asks
// again every holdPoll until Stalled is false (the write was made) or Failed reports the failure (the
// run stops). It must be cheap.
type Staller interface {
	Stalled() bool
}

// RunRecord describes a run. RunStarted gets it with Status running and no FinishedAt; RunFinished gets
// it again complete.
type RunRecord struct {
	ID         string
	Playbook   string   // the playbook's name
	File       string   // absolute path
	FileSHA256 string   // hex
	Params     string   // JSON object of the resolved params, secrets masked as "***"
	StepIDs    []string // every step, in file order (the store creates a pending row for each)
	Status     Status
	ExitCode   int // the runner's exit status (0, 1, 3, 124, 129, 130, 131, 143); meaningful once finished
	StartedAt  time.Time
	FinishedAt time.Time
	User       string
	Host       string
	Error      string // why the run did not succeed, for humans
	RetryOf    string // the run this one retries, or ""
	// TempDir is the run's private temporary folder (its steps' $PLAYBOOK_OUTPUT files), removed when
	// the run ends. It is recorded so that crash recovery can remove it when the runner dies first.
	TempDir string
}

// AttemptStart is one attempt of a step whose process has started.
type AttemptStart struct {
	RunID     string
	StepID    string
	Attempt   int // 1-based
	StartedAt time.Time
	Command   string // as run, secrets masked
	PID       int    // also the process group id; 0 if the process never started
	PIDStart  uint64 // when PID started, in clock ticks since boot (engine.Event.StartTicks); 0 = unknown
}

// Output is a bounded copy of one stream: the head and the tail with a marker when Truncated.
type Output struct {
	Data      []byte
	Bytes     int64 // total produced
	Truncated bool
}

// AttemptRecord is one finished attempt.
type AttemptRecord struct {
	RunID      string
	StepID     string
	Attempt    int
	Status     Status // succeeded, failed, timed_out or cancelled
	ExitCode   int    // -1 = none (killed by a signal, or never started)
	Signal     int    // the signal that ended the process, 0 = none
	StartedAt  time.Time
	FinishedAt time.Time
	Stdout     Output
	Stderr     Output
	Error      string
}

// StepRecord is a step's final state; every step of a run gets exactly one.
type StepRecord struct {
	RunID           string
	StepID          string
	Name            string
	Status          Status
	Reason          string // one of the Reason constants, or ""
	Error           string
	ExitCode        int // of the last attempt; -1 = none
	Signal          int
	Attempts        int       // 0 for a skipped step
	StartedAt       time.Time // zero for a skipped step
	FinishedAt      time.Time
	Command         string // as run (last attempt), secrets masked
	Stdout          Output // last attempt
	Stderr          Output
	Outputs         map[string]string // from $PLAYBOOK_OUTPUT, secrets masked
	ContinueOnError bool              // failed, but counted as succeeded
	ReusedFrom      string            // retry: the run the result was taken from
	// Fingerprint is the keyed SHA-256 (hex) of what the step ran (Options.FingerprintKey): its
	// rendered command, script content, env, dir and params. "" when it never rendered its command
	// (skipped, or recorded before fingerprints existed). A retry reuses a step only on an equal one.
	Fingerprint string
	// RetryReason says, in a retry run, why a step that ran or was reused did so (a RetryReason
	// constant); "" outside retries and for steps that were skipped. RetryDetail completes it: the
	// step's status in the retried run (RetryNotSucceeded), the need that ran again
	// (RetryNeedNotReused) or the dependent that ran (RetryUndone).
	RetryReason string
	RetryDetail string
}

// Why a step of a retry run was reused or ran again (StepRecord.RetryReason). Stable words, stored in
// the database.
const (
	RetryReused        = "reused"          // succeeded in the retried run, same fingerprint, needs reused
	RetryNotSucceeded  = "not_succeeded"   // it did not succeed in the retried run (RetryDetail: its status)
	RetryNewStep       = "new_step"        // the retried run has no such step
	RetryNeedNotReused = "need_not_reused" // a step it needs ran again (RetryDetail: that step)
	RetryUndone        = "undone"          // a dependent that may undo it ran (RetryDetail: that step)
	RetryOutputsMasked = "outputs_masked"  // its recorded outputs hold "***" where a secret was
	RetryNoFingerprint = "no_fingerprint"  // the retried run recorded no fingerprint for it
	RetryChanged       = "inputs_changed"  // its fingerprint differs: what it would run changed
)
