package temporal

import (
	"context"
	"errors"
)

import "github.com/playbookhq/playbook/pkg/run"

// Records writes, on the machine that submitted a run (or attaches to it), the records the run's
// workflow sends on its RecordQueue (RecordActivityName), in order, to a run.Recorder: that machine's
// database, as a local run's records are.
type Records struct{ Recorder run.Recorder }

// Write applies one batch in order and returns the first error: the workflow then sends the batch
// again, so every write must be one that can be made twice.
func (r *Records) Write(ctx context.Context, batch []Record) error {
	for _, rec := range batch {
		var err error
		switch {
		case rec.RunStarted != nil:
			err = r.Recorder.RunStarted(ctx, rec.RunStarted)
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
	}
	return nil
}
