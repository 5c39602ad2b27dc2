package temporal

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/playbookhq/playbook/pkg/run"
)

// Records writes, on the machine that submitted a run (or attaches to it), the records the run's
// workflow sends on its RecordQueue (RecordActivityName), in order, to a run.Recorder: that machine's
// database, as a local run's records are. It also turns them into the run's progress events for an
// Observer (the live view, --output json), which therefore shows what is recorded, as it is recorded.
type Records struct {
	Recorder run.Recorder
	// State reports the run's status in the database, "" when it is not there. A batch that was
	// written but whose completion was lost (its writer died) comes again: the run's start is then not
	// written twice, nor its end over a run that has ended. Nil: every record is written.
	State func(ctx context.Context, runID string) (run.Status, error)
	// Observer, when set, receives each record's events once it is written (or, for those that record
	// nothing, when it arrives). A batch that comes again shows again.
	Observer run.Observer
}

// Write applies one batch in order and returns the first error: the workflow then sends the batch
// again, so every write must be one that can be made twice (the store's are upserts; the run's start
// and end are skipped when State says they are there).
func (r *Records) Write(ctx context.Context, batch []Record) error {
	for _, rec := range batch {
		if err := r.write(ctx, rec); err != nil {
			return err
		}
		if r.Observer != nil {
			r.observe(rec)
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx) // alive: a dead writer's batch goes to the next one soon
		}
	}
	return nil
}

func (r *Records) write(ctx context.Context, rec Record) error {
	switch {
	case rec.RunStarted != nil:
		if st, err := r.state(ctx, rec.RunStarted.ID); err != nil || st != "" {
			return err
		}
		return r.Recorder.RunStarted(ctx, rec.RunStarted)
	case rec.AttemptStarted != nil:
		return r.Recorder.AttemptStarted(ctx, rec.AttemptStarted)
	case rec.AttemptFinished != nil:
		return r.Recorder.AttemptFinished(ctx, rec.AttemptFinished)
	case rec.StepFinished != nil:
		return r.Recorder.StepFinished(ctx, rec.StepFinished)
	case rec.RunFinished != nil:
		st, err := r.state(ctx, rec.RunFinished.ID)
		if err != nil || st != "" && st != run.StatusRunning && st != run.StatusDetached {
			return err // already ended: this is the batch again
		}
		return r.Recorder.RunFinished(ctx, rec.RunFinished)
	case rec.Retrying != nil, rec.Cancelling != nil:
		return nil // for the view only
	}
	return errors.New("an empty record")
}

func (r *Records) state(ctx context.Context, runID string) (run.Status, error) {
	if r.State == nil {
		return "", nil
	}
	return r.State(ctx, runID)
}

// observe gives the Observer the event of a record, stamped with when it happened where known.
func (r *Records) observe(rec Record) {
	switch {
	case rec.RunStarted != nil:
		r.Observer.Observe(run.Event{Type: run.EventRunStarted, Time: rec.RunStarted.StartedAt, Run: rec.RunStarted})
	case rec.AttemptStarted != nil:
		a := rec.AttemptStarted
		r.Observer.Observe(run.Event{Type: run.EventStepStarted, Time: a.StartedAt, StepID: a.StepID, Attempt: a.Attempt,
			Command: a.Command})
	case rec.Retrying != nil:
		f := rec.Retrying.Failed
		r.Observer.Observe(run.Event{Type: run.EventStepRetrying, Time: f.FinishedAt, StepID: f.StepID, Attempt: f.Attempt,
			Failed: &f, Delay: rec.Retrying.Delay})
	case rec.StepFinished != nil:
		s := rec.StepFinished
		r.Observer.Observe(run.Event{Type: run.EventStepFinished, Time: s.FinishedAt, StepID: s.StepID, Step: s})
	case rec.Cancelling != nil:
		r.Observer.Observe(run.Event{Type: run.EventRunCancelling, Time: rec.Cancelling.At, Reason: rec.Cancelling.Reason})
	case rec.RunFinished != nil:
		r.Observer.Observe(run.Event{Type: run.EventRunFinished, Time: rec.RunFinished.FinishedAt, Run: rec.RunFinished})
	}
}

// Retrying says that an attempt failed and its step runs again after Delay. Failed is the attempt
// without its output (the AttemptFinished record before it has that).
type Retrying struct {
	Failed run.AttemptRecord
	Delay  time.Duration
}

// Cancelling says the run is stopping, and why (the workflow was cancelled, its timeout expired, the
// kill signal came).
type Cancelling struct {
	Reason string
	At     time.Time
}
