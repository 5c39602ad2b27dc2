package temporal

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"

	"github.com/playbookhq/playbook/pkg/run"
)

// Records writes, on the machine that submitted a run (or attaches to it), the records the run's
// workflow sends on its RecordQueue (RecordActivityName), in order, to a run.Recorder: that machine's
// database, as a local run's records are.
type Records struct {
	Recorder run.Recorder
	// Started reports whether the database already has the run: a batch written whose completion
	// was lost (its process died) comes again, and the run's start must not be written twice. Nil:
	// RunStarted is always written.
	Started func(ctx context.Context, runID string) (bool, error)
}

// Write applies one batch in order and returns the first error: the workflow then sends the batch
// again, so every write must be one that can be made twice (the store's are upserts, and the run's
// start is skipped when Started says it is there).
func (r *Records) Write(ctx context.Context, batch []Record) error {
	for _, rec := range batch {
		var err error
		switch {
		case rec.RunStarted != nil:
			var had bool
			if r.Started != nil {
				had, err = r.Started(ctx, rec.RunStarted.ID)
			}
			if err == nil && !had {
				err = r.Recorder.RunStarted(ctx, rec.RunStarted)
			}
		case rec.AttemptStarted != nil:
			err = r.Recorder.AttemptStarted(ctx, rec.AttemptStarted)
		case rec.AttemptFinished != nil:
			err = r.Recorder.AttemptFinished(ctx, rec.AttemptFinished)
		case rec.StepFinished != nil:
			err = r.Recorder.StepFinished(ctx, rec.StepFinished)
		case rec.RunFinished != nil:
			err = r.Recorder.RunFinished(ctx, rec.RunFinished)
		default:
			err = errors.New("an empty record")
		}
		if err != nil {
			return err
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx) // alive: a dead writer's batch goes to the next one soon
		}
	}
	return nil
}
