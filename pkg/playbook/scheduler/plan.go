package scheduler

import (
	"time"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// PlannedStep is one step of a dry run.
type PlannedStep struct {
	Step  *playbook.Step
	Level int // parallel level: steps of one level can run at the same time
	// Runs is what the dry run expects on the path where every step that runs succeeds. Decided is
	// false when the step's if reads step results or run.status, so only the real run can tell.
	Runs    bool
	Decided bool
	// Why explains the decision: the condition and its value, or the reason it would be skipped.
	Why string
}

// Plan is the dry run of a playbook with the given params and the steps the user skips (Config.Skip): every step in topological order with its
// parallel level and what the Core decides for it on the path where every step that runs succeeds
// (at once, writing no outputs). Nothing runs, and the decisions are the real run's: the same Core
// makes them. A step whose if reads what only a real run knows (a step's outputs or exit code,
// run.status) is assumed to run, and says so.
//
// Errors and explanations are masked like the real run's: a secret param's value never shows in them.
func Plan(pb *playbook.Playbook, params playbook.Params, skip map[string]string) ([]PlannedStep, error) {
	c, err := New(pb, Config{Params: params, RunID: "dry-run", MaxParallel: len(pb.Steps) + 1, Skip: skip, dry: true})
	if err != nil {
		return nil, err
	}
	var at time.Time // the dry run has no clock: every event happens at the zero time
	pending := c.Step(at, Begin{})
	for len(pending) > 0 {
		var next []Event
		for _, cmd := range pending {
			if s, ok := cmd.(*StartAttempt); ok {
				next = append(next, AttemptFinished{Step: s.Step.ID, Attempt: s.Attempt, Retryable: false,
					Result: &run.AttemptRecord{StepID: s.Step.ID, Attempt: s.Attempt, Status: run.StatusSucceeded}})
			}
		}
		pending = nil
		for _, ev := range next {
			pending = append(pending, c.Step(at, ev)...)
		}
	}
	level := map[string]int{}
	for i, l := range pb.Levels {
		for _, s := range l {
			level[s.ID] = i
		}
	}
	out := make([]PlannedStep, 0, len(pb.Order))
	for _, st := range pb.Order {
		s := c.byID[st.ID]
		ps := PlannedStep{Step: st, Level: level[st.ID], Decided: true, Why: s.why}
		if s.record != nil {
			ps.Runs = s.record.Status == run.StatusSucceeded && s.record.Attempts > 0
			if ps.Why == "" && !ps.Runs {
				ps.Why = "skipped: " + s.record.Reason
			}
		}
		ps.Decided = !s.undecided
		out = append(out, ps)
	}
	return out, nil
}
