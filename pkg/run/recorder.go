package run

import (
	"context"
	"time"
)

// Recorder receives what happens during a run, in order, from one goroutine at a time. internal/store
// implements it with SQLite. A returned error means the record could not be written: the runner
// reports it and the run ends with exit status 3 (ExitStore).
type Recorder interface {
	RunStarted(ctx context.Context, r *Record) error
	AttemptStarted(ctx context.Context, a *AttemptStart) error
	AttemptFinished(ctx context.Context, a *AttemptRecord) error
	StepFinished(ctx context.Context, s *StepRecord) error
	RunFinished(ctx context.Context, r *Record) error
}

// FailureReporter is implemented by a Recorder whose writes are made after its calls return (the
// store queues them for a background writer). Failed returns the first write that failed, or nil; the
// runner asks before it starts each step, so that once recording has failed no step starts but
// always()/cancelled() ones, even when no Recorder call has returned the error yet. It must be cheap.
// RunFinished's error should report every earlier failure, and name what was not written.
type FailureReporter interface {
	Failed() error
}

// Staller is implemented by a Recorder whose queued writes may wait for a lock another process holds.
// Stalled reports whether a write has waited long enough (about a second) that the run should start
// nothing new until it is made: were the wait to end in failure, a step started meanwhile would have
// run without a record. The runner asks before each start, and while it holds steps back it asks
// again every 50 ms or so until Stalled is false (the write was made) or Failed reports the failure (the
// run stops). It must be cheap.
type Staller interface {
	Stalled() bool
}

// ProgressRecorder is implemented by a Recorder that keeps a running run's progress, so that a runner
// that dies (kill -9) leaves its steps' output so far and the time it was last alive. The runner
// calls RunProgress about once a second while the run goes on, on the goroutine of the
// other Recorder calls and in order with them. Its error is not the run's: a progress record that
// could not be written is replaced by the next one, and by the final records.
type ProgressRecorder interface {
	RunProgress(ctx context.Context, p *Progress) error
}

// Progress is a running run's progress.
type Progress struct {
	RunID string
	// Time is when the runner was last known to be alive: now.
	Time time.Time
	// Steps are the running steps whose output changed since the previous RunProgress, or whose attempt
	// started since (a retry, whose output so far replaces the previous attempt's). Often empty.
	Steps []StepProgress
}

// StepProgress is the output so far of the running attempt of a step, bounded and masked as the final
// record's (head and tail with a marker past the output limit).
type StepProgress struct {
	StepID  string
	Attempt int
	Stdout  Output
	Stderr  Output
}
