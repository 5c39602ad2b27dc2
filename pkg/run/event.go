package run

import "time"

// EventType names what an Event reports. The values are stable: `playbook run --output json` prints them.
type EventType string

const (
	EventRunStarted    EventType = "run_started"    // Run
	EventStepStarted   EventType = "step_started"   // StepID, Attempt, PID, Command, Unstarted
	EventStepOutput    EventType = "step_output"    // StepID, Attempt, Stream, Line, Partial, Omitted, Dropped
	EventStepRetrying  EventType = "step_retrying"  // StepID, Attempt (the one that failed), Delay, Failed, Dropped
	EventStepFinished  EventType = "step_finished"  // StepID, Step, Dropped
	EventRunCancelling EventType = "run_cancelling" // Reason: why the run is stopping (signal, timeout, record error, kill)
	EventRunFinished   EventType = "run_finished"   // Run
)

// Event is one thing that happened during a run, for progress displays. Events come in order from the
// runner's goroutine; an Observer that blocks delays the runner (but never a step's process: the
// engine buffers output and drops lines a slow observer cannot take, reporting the count in Dropped).
type Event struct {
	Type    EventType
	Time    time.Time
	Run     *Record // run_started, run_finished
	StepID  string
	Attempt int
	PID     int
	Command string
	// Unstarted marks the step_started of an attempt that never had a process (its program does not
	// exist, its dir is missing, ...): its step_finished or step_retrying follows at once. Every
	// attempt has its step_started, so that a consumer can pair the events of an attempt.
	Unstarted bool
	Stream    string // "stdout" or "stderr"
	Line      []byte // one line without its newline, secrets masked (a chunk of a longer line when Partial)
	Partial   bool
	Omitted   int64 // the end of an over-long line, in bytes, not shown live (it is recorded and logged)
	Dropped   int   // lines of this step the observer missed before this event because it fell behind
	Step      *StepRecord
	Failed    *AttemptRecord // step_retrying: the attempt that failed
	Delay     time.Duration  // step_retrying: the wait before the next attempt
	Reason    string         // run_cancelling
}

// Observer receives the events of a run.
type Observer interface {
	Observe(Event)
}

// Flusher is an Observer that buffers what it shows: while the run goes on, the runner calls Flush
// when it is about to wait for something to happen, at most every 10 ms and only after new
// events, so a burst of events costs one write and nothing shown lags behind by more than 10 ms. Run
// does not flush the last events (run finished): the Flusher's owner does, once Run returns.
type Flusher interface {
	Flush()
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }
