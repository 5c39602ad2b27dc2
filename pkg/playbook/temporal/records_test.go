package temporal

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestRecordsBatchAgain: a batch whose completion was lost (its writer died after writing it) comes
// again; the run's start and end are then not written twice, the other writes are made again (they
// are upserts), and a view that follows sees each record's event.
func TestRecordsBatchAgain(t *testing.T) {
	rec := &logRecorder{}
	status := run.Status("")
	var events []string
	r := &Records{
		Recorder: stateRecorder{rec, &status},
		State:    func(context.Context, string) (run.Status, error) { return status, nil },
		Observer: run.ObserverFunc(func(e run.Event) {
			s := string(e.Type) + " " + e.StepID
			if e.Type == run.EventStepRetrying {
				s += " " + e.Delay.String() + " " + string(e.Failed.Status)
			}
			events = append(events, strings.Join(strings.Fields(s+" "+e.Reason), " "))
		}),
	}
	t1 := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	batch := []Record{
		{RunStarted: &run.Record{ID: "r", StepIDs: []string{"a"}, StartedAt: t1}},
		{AttemptStarted: &run.AttemptStart{RunID: "r", StepID: "a", Attempt: 1}},
		{AttemptFinished: &run.AttemptRecord{RunID: "r", StepID: "a", Attempt: 1, Status: run.StatusFailed}},
		{Retrying: &Retrying{Failed: run.AttemptRecord{RunID: "r", StepID: "a", Attempt: 1, Status: run.StatusFailed}, Delay: time.Second}},
		{Cancelling: &Cancelling{Reason: "the workflow was cancelled"}},
		{StepFinished: &run.StepRecord{RunID: "r", StepID: "a", Status: run.StatusCancelled}},
		{RunFinished: &run.Record{ID: "r", Status: run.StatusCancelled, ExitCode: 130}},
	}
	for i := 0; i < 2; i++ {
		if err := r.Write(context.Background(), batch); err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	got := strings.Join(rec.log, "\n")
	if strings.Count(got, "RunStarted") != 1 || strings.Count(got, "RunFinished") != 1 || strings.Count(got, "StepFinished") != 2 {
		t.Errorf("written twice:\n%s", got)
	}
	want := []string{"run_started", "step_started a", "step_retrying a 1s failed", "run_cancelling the workflow was cancelled",
		"step_finished a", "run_finished"}
	if g := strings.Join(events[:len(want)], "|"); g != strings.Join(want, "|") {
		t.Errorf("events:\n%s\nwant\n%s", g, strings.Join(want, "|"))
	}
	if len(events) != 2*len(want) {
		t.Errorf("%d events for two batches of %d", len(events), len(want))
	}
}

// stateRecorder is a logRecorder that keeps the run's status, as the database does.
type stateRecorder struct {
	*logRecorder
	status *run.Status
}

func (s stateRecorder) RunStarted(ctx context.Context, r *run.Record) error {
	*s.status = run.StatusRunning
	return s.logRecorder.RunStarted(ctx, r)
}

func (s stateRecorder) RunFinished(ctx context.Context, r *run.Record) error {
	*s.status = r.Status
	return s.logRecorder.RunFinished(ctx, r)
}
