package scheduler

import (
	"time"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// Event is what a driver tells a Core (Core.Step): one of Begin, AttemptStarted, AttemptFinished,
// RetryDue, Cancel, Kill, Timeout, RecordFailed and Hold.
type Event interface{ isEvent() }

// Begin starts the run: the steps without needs become ready. It is the first event, except that a
// run cancelled before it began gets Cancel first (then only always() and cancelled() steps start).
type Begin struct{}

// AttemptStarted says the process of an attempt (a StartAttempt) has started, at At. The first
// attempt's At becomes the step's start (the Core had taken the time of StartAttempt). Optional.
type AttemptStarted struct {
	Step    string
	Attempt int
	At      time.Time
}

// AttemptFinished says an attempt of a StartAttempt ended, however it ended: its process exited, was
// killed or timed out, or it could not start at all. Result is its record (Status succeeded, failed,
// timed_out or cancelled; the driver classifies and masks). Outputs are what the step wrote to
// $PLAYBOOK_OUTPUT (the real values, nil when none; read only for a succeeded attempt). Retryable
// false keeps the step's retry policy from trying again (an attempt that could not start for a
// reason that will not go away, or whose outputs could not be read).
type AttemptFinished struct {
	Step      string
	Attempt   int
	Result    *run.AttemptRecord
	Outputs   map[string]string
	Retryable bool
}

// RetryDue says the delay of a RetryLater has elapsed: the step's next attempt becomes ready (retries
// go before first attempts). One for a step that gave up meanwhile (the run stopped) is ignored.
type RetryDue struct {
	Step    string
	Attempt int // RetryLater.Attempt: the attempt that failed
}

// Cancel is the graceful stop (the first Ctrl-C): nothing new starts but always() and cancelled()
// steps, running steps get their stop signal (StopSteps), steps waiting to retry give up, and the run
// ends cancelled. Cause says why; a *run.Interrupt gives the exit status (128 plus its signal's
// number), and one with Kill is the forced stop (as Kill). A second Cancel changes nothing.
type Cancel struct{ Cause error }

// Kill is the forced stop (the second Ctrl-C): every running step's process group gets SIGKILL
// (KillAll) and nothing else starts, not even always() steps. Cause is why, when the run was not
// already stopping.
type Kill struct{ Cause error }

// Timeout says the run's timeout (Playbook.Timeout) expired: a graceful stop whose run ends timed_out
// with exit status 124.
type Timeout struct{}

// RecordFailed says a record of the run could not be written. The run starts no step but those whose
// if calls always() (skipped ones get reason record_error), running steps finish, and it exits with status 3 (a run that
// succeeded becomes failed: its record is incomplete). After RunDone it only changes the run's record.
type RecordFailed struct{ Err error }

// Hold{On: true} keeps the Core from starting anything (the driver's records are stalled) until
// Hold{On: false}; everything else goes on.
type Hold struct{ On bool }

func (Begin) isEvent()           {}
func (AttemptStarted) isEvent()  {}
func (AttemptFinished) isEvent() {}
func (RetryDue) isEvent()        {}
func (Cancel) isEvent()          {}
func (Kill) isEvent()            {}
func (Timeout) isEvent()         {}
func (RecordFailed) isEvent()    {}
func (Hold) isEvent()            {}

// Command is what a Core asks of its driver: one of *StartAttempt, *AttemptUnstarted, *RetryLater,
// *StopSteps, *KillAll, *Stopping, *RecordAttempt, *RecordStep and *RunDone.
type Command interface{ isCommand() }

// StartAttempt: start attempt Attempt (1-based) of Step with the rendered Launch, then report
// AttemptStarted (optional) and, however it ends, AttemptFinished. The step counts against
// max_parallel until then.
type StartAttempt struct {
	Step    *playbook.Step
	Attempt int
	Launch  *Launch
}

// AttemptUnstarted: an attempt failed before anything could start (its command or env could not be
// rendered). Record its start (Command, no process) and report the step started, as for a process
// that started; its RecordAttempt follows.
type AttemptUnstarted struct {
	Attempt *run.AttemptRecord
	Command string
}

// RetryLater: Failed (attempt Attempt of Step) will be tried again; after Delay, report RetryDue.
type RetryLater struct {
	Step    string
	Attempt int
	Delay   time.Duration
	Failed  *run.AttemptRecord
}

// StopSteps: give each running attempt its step's stop signal, then SIGKILL after its stop grace. Each
// still reports AttemptFinished (status cancelled, usually).
type StopSteps struct{ Steps []StepAttempt }

// StepAttempt names one attempt of one step.
type StepAttempt struct {
	Step    string
	Attempt int
}

// KillAll: SIGKILL to every running attempt's process group at once.
type KillAll struct{}

// Stopping: the run is stopping, for Reason (masked). RecordFailed is set when recording failed; a
// driver that starts processes asynchronously reports the stop once every start already under way
// has reported, so that no step is seen starting after it.
type Stopping struct {
	Reason       string
	RecordFailed bool
}

// RecordAttempt: record this finished attempt.
type RecordAttempt struct{ Attempt *run.AttemptRecord }

// RecordStep: record this step's final state (every step gets exactly one).
type RecordStep struct{ Record *run.StepRecord }

// RunDone: every step has finished; Record is the run's (status, exit status, error, finish time).
// Record it; should that fail, report RecordFailed and read Core.Record again.
type RunDone struct{ Record *run.Record }

func (*StartAttempt) isCommand()     {}
func (*AttemptUnstarted) isCommand() {}
func (*RetryLater) isCommand()       {}
func (*StopSteps) isCommand()        {}
func (*KillAll) isCommand()          {}
func (*Stopping) isCommand()         {}
func (*RecordAttempt) isCommand()    {}
func (*RecordStep) isCommand()       {}
func (*RunDone) isCommand()          {}
