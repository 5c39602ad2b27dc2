package run

import "time"

// Record describes a run. RunStarted gets it with Status running and no FinishedAt; RunFinished gets
// it again complete.
type Record struct {
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
	// WorkflowID and WorkflowRunID name the Temporal workflow that runs a distributed run (its first
	// run id, should it continue as new); "" for a local run. Crash recovery never kills anything for
	// a run that has them: the run goes on without its submitter (StatusDetached).
	WorkflowID    string
	WorkflowRunID string
	// ConcurrencyGroup is the run's concurrency group (the playbook's concurrency key, rendered); ""
	// for none. The Recorder refuses to start a run whose group another running run holds.
	ConcurrencyGroup string
}

// Unrecorded marks the record of a run that could not be recorded in full, err saying what failed:
// it exits ExitStore whatever its steps did, and a run whose steps all succeeded has failed (its
// record is incomplete), with err as its Error. A run that failed, timed out or was cancelled keeps
// its status and error.
func (r *Record) Unrecorded(err error) {
	r.ExitCode = ExitStore
	if r.Status == StatusSucceeded {
		r.Status = StatusFailed
		r.Error = "the run could not be recorded: " + err.Error()
	}
}

// AttemptStart is one attempt of a step whose process has started.
type AttemptStart struct {
	RunID     string
	StepID    string
	Attempt   int // 1-based
	StartedAt time.Time
	Command   string // as run, secrets masked
	PID       int    // also the process group id; 0 if the process never started
	PIDStart  uint64 // when PID started, in clock ticks since boot (from the fork, else /proc/<pid>/stat); 0 = unknown
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
	Worker     string // the worker that ran it in a distributed run; "" for a local run
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
	Worker      string // the worker that ran the last attempt in a distributed run; "" otherwise
}

// TempDirPrefix begins the name of every run's temporary folder (Record.TempDir): TempDirPrefix, the
// run id, "-" and a random suffix. Crash recovery removes a dead run's folder only when its name says
// it is that run's.
const TempDirPrefix = "playbook-run-"
