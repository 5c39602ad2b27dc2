package run

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
	StatusInterrupted Status = "interrupted" // the runner died; set by crash recovery, never by a runner
	// StatusDetached is a run on Temporal whose submitting process died while its workflow goes on:
	// crash recovery sets it instead of interrupted and kills nothing, and the records that follow
	// (`playbook attach`) complete the run. Runs only.
	StatusDetached Status = "detached"
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
	ReasonSkippedByUser     = "skipped_by_user"    // the command line left it out (--only, --skip)
)

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
