package local

import (
	"fmt"

	"github.com/playbookhq/playbook/internal/mask"
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

// Plan is the dry run of a playbook with the given params: every step in topological order with its
// parallel level and what its if says on the path where every step that runs succeeds. Nothing runs.
//
// Errors and explanations are masked like the real run's: a secret param's value never shows in them.
func Plan(pb *playbook.Playbook, params playbook.Params) ([]PlannedStep, error) {
	masker := mask.New(SecretValues(pb, params))
	state := playbook.State{
		Run:    playbook.RunState{ID: "dry-run", Name: pb.Name, Status: string(run.StatusSucceeded)},
		Params: params,
		Env:    map[string]string{},
		Steps:  map[string]playbook.StepState{},
	}
	for _, ev := range pb.Env {
		v, err := ev.Value.Render(&state)
		if err != nil {
			return nil, fmt.Errorf("env %s: %s", ev.Name, masker.String(err.Error()))
		}
		state.Env[ev.Name] = v
	}
	level := map[string]int{}
	for i, l := range pb.Levels {
		for _, s := range l {
			level[s.ID] = i
		}
	}
	runs := map[string]bool{}
	var out []PlannedStep
	for _, st := range pb.Order {
		ps := PlannedStep{Step: st, Level: level[st.ID], Decided: true}
		funcs := playbook.StatusFuncs{Success: true}
		for _, n := range st.Needs {
			if !runs[n] {
				funcs.Success = false
			}
		}
		cond := st.If
		callsStatus := cond.CallsStatus()
		switch {
		case !funcs.Success && !callsStatus:
			ps.Runs, ps.Why = false, "skipped: a step it needs is skipped"
		case !cond.Static():
			ps.Runs, ps.Decided, ps.Why = true, false, fmt.Sprintf("if %s: decided at run time", cond.Source())
		default:
			ok, err := cond.Eval(&state, funcs)
			switch {
			case err != nil:
				ps.Runs, ps.Why = false, fmt.Sprintf("if %s: error: %s", cond.Source(), masker.String(err.Error()))
			case ok:
				ps.Runs = true
				if cond.Source() != "success()" {
					ps.Why = fmt.Sprintf("if %s: true", cond.Source())
				}
			default:
				ps.Why = fmt.Sprintf("if %s: false", cond.Source())
				if cond.Calls("failure") {
					ps.Why += " (it runs when a dependency fails)"
				}
			}
		}
		runs[st.ID] = ps.Runs
		out = append(out, ps)
	}
	return out, nil
}
