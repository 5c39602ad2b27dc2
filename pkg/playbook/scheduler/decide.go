package scheduler

import (
	"fmt"
	"strings"
	"time"

	"github.com/playbookhq/playbook/internal/mask"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// decision is what decide says of a ready step: start it, or record it with status and reason.
type decision struct {
	start  bool
	status run.Status
	reason string
	err    string // masked; condition_error
	why    string // for Plan: what decided it, in words ("" in a real run but for literal ones)
	// undecided: Plan started the step without evaluating its if (it reads what only a real run knows).
	undecided bool
}

// decide applies the step's if and the run's stop rules (README, "How the steps run").
func (c *Core) decide(s *step) decision {
	cond := s.st.If
	for _, n := range s.needs {
		if n.failed() || n.failedUpstream {
			s.failedUpstream = true
		}
	}
	if why, ok := c.cfg.Skip[s.st.ID]; ok {
		// Before any other rule: whatever else holds, the user said this step does not run.
		return decision{status: run.StatusSkipped, reason: run.ReasonSkippedByUser, why: c.explain("%s", why)}
	}
	if c.killed {
		return decision{status: run.StatusSkipped, reason: c.stopReason()}
	}
	if c.cancelled || c.timedOut || c.stopping {
		// A stopping run starts only the steps written for it: always(), and cancelled() when the run
		// is cancelled or timed out (a run that could not be recorded is neither: cancelled() is false).
		cancelled := cond.Calls("cancelled") && (c.cancelled || c.timedOut)
		if !cond.Calls("always") && !cancelled {
			return decision{status: run.StatusSkipped, reason: c.stopReason()}
		}
	}
	funcs := playbook.StatusFuncs{Success: true, Cancelled: c.cancelled || c.timedOut, Failure: s.failedUpstream}
	// Which way did the needs go? A skipped need makes the step skipped "dependency_skipped" unless a
	// need also failed.
	depReason := run.ReasonDependencySkipped
	for _, n := range s.needs {
		if !n.ok() {
			funcs.Success = false
			if n.record == nil || n.record.Status != run.StatusSkipped {
				depReason = run.ReasonDependencyFailed
			}
		}
	}
	callsStatus := cond.CallsStatus()
	onlySuccess := !cond.Calls("failure") && !cond.Calls("always") && !cond.Calls("cancelled")
	// The condition needs success() (implicitly when it calls no status function), which is false:
	// a skip then says which way a dependency went rather than "condition false". An explicit
	// `success() || ...` may still hold, so it is evaluated, before fail_fast is applied.
	depSkip := onlySuccess && !funcs.Success
	if depSkip && !callsStatus {
		return decision{status: run.StatusSkipped, reason: depReason, why: "skipped: a step it needs is skipped"}
	}
	failFast := c.failFast && !cond.Calls("always") && !cond.Calls("failure")
	if failFast && !depSkip {
		return decision{status: run.StatusSkipped, reason: run.ReasonFailFast}
	}
	if c.cfg.dry && !cond.Static() {
		// What it reads (a step's outputs or exit code, run.status) is only known in a real run.
		return decision{start: true, undecided: true, why: fmt.Sprintf("if %s: decided at run time", cond.Source())}
	}
	ok, err := cond.Eval(&c.state, funcs)
	switch {
	case err != nil:
		msg := c.masker.String(err.Error()) // the error names the if
		return decision{status: run.StatusFailed, reason: run.ReasonConditionError, err: msg,
			why: c.explain("if %s: error: %s", cond.Source(), msg)}
	case !ok:
		why := c.explain("if %s: false", cond.Source())
		if why != "" && cond.Calls("failure") {
			why += " (it runs when a dependency fails)"
		}
		if depSkip {
			return decision{status: run.StatusSkipped, reason: depReason, why: why}
		}
		return decision{status: run.StatusSkipped, reason: run.ReasonConditionFalse, why: why}
	case failFast:
		return decision{status: run.StatusSkipped, reason: run.ReasonFailFast}
	}
	d := decision{start: true}
	if cond.Source() != "success()" {
		d.why = c.explain("if %s: true", cond.Source())
	}
	return d
}

// explain is a decision in words, for Plan; a real run does not format what nobody reads.
func (c *Core) explain(format string, args ...any) string {
	if !c.cfg.dry {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

// stopReason is the skip reason of a step that a stopping run does not start.
func (c *Core) stopReason() string {
	switch {
	case c.timedOut:
		return run.ReasonRunTimedOut
	case c.stopping && !c.cancelled:
		return run.ReasonRecordError
	}
	return run.ReasonRunCancelled
}

// shouldRetry applies the step's retry policy (README, "Retries") to a failed attempt.
func (c *Core) shouldRetry(s *step, att *run.AttemptRecord, retryable bool) bool {
	p := s.st.Retry
	if !retryable || s.attempt >= p.Attempts || c.stoppedAny() {
		return false
	}
	switch att.Status {
	case run.StatusFailed:
		if len(p.OnExitCodes) == 0 {
			return true
		}
		for _, code := range p.OnExitCodes {
			if att.ExitCode == code && att.Signal == 0 {
				return true
			}
		}
		return false
	case run.StatusTimedOut:
		return len(p.OnExitCodes) == 0
	}
	return false
}

// retryDelay is the wait after the given (failed) attempt: delay × backoff^(attempt-1), capped by
// max_delay.
func retryDelay(p playbook.Retry, attempt int) time.Duration {
	f := float64(p.Delay)
	if p.Backoff > 1 {
		for i := 1; i < attempt; i++ {
			f *= p.Backoff
			if p.MaxDelay > 0 && f >= float64(p.MaxDelay) {
				break
			}
		}
	}
	if p.MaxDelay > 0 && f > float64(p.MaxDelay) {
		f = float64(p.MaxDelay)
	}
	if f > float64(1<<62) {
		f = float64(1 << 62)
	}
	return time.Duration(f)
}

// findUndone marks, in a retry, each step that succeeded in the retried run but may have been undone
// there: a step after it (transitively) whose if calls failure(), always() or cancelled() ran. Such a
// step is how a playbook releases a lock or rolls back a deploy, so the success no longer stands.
func (c *Core) findUndone() {
	undoer := func(d *step) bool {
		prev := c.cfg.Reuse[d.st.ID]
		if prev == nil || prev.Attempts == 0 || prev.ReusedFrom != "" {
			return false // it did not run in that run
		}
		cond := d.st.If
		return cond.Calls("failure") || cond.Calls("always") || cond.Calls("cancelled")
	}
	seen := make([]bool, len(c.steps))
	var stack []*step
	for _, s := range c.steps {
		if prev := c.cfg.Reuse[s.st.ID]; prev == nil || prev.Status != run.StatusSucceeded {
			continue
		}
		clear(seen)
		stack = append(stack[:0], s.dependents...)
		var first *step
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[d.index] {
				continue
			}
			seen[d.index] = true
			if undoer(d) && (first == nil || d.index < first.index) {
				first = d
			}
			stack = append(stack, d.dependents...)
		}
		if first != nil {
			s.undoneBy = first.st.ID
		}
	}
}

// outputsMasked reports whether recorded outputs had a secret masked out of them (finishStep).
func outputsMasked(outputs map[string]string) bool {
	for k, v := range outputs {
		if k == mask.Replacement || strings.Contains(v, mask.Replacement) {
			return true
		}
	}
	return false
}

// retryVerdict decides, in a retry, whether a step that is to run is taken over from the retried run
// instead: it returns that run's record when so, and notes why either way.
func (c *Core) retryVerdict(s *step, l *Launch) *run.StepRecord {
	prev := c.cfg.Reuse[s.st.ID]
	s.retryDetail = ""
	switch {
	case prev == nil:
		s.retryReason = run.RetryNewStep
	case prev.Status != run.StatusSucceeded:
		s.retryReason, s.retryDetail = run.RetryNotSucceeded, string(prev.Status)
	case s.undoneBy != "":
		s.retryReason, s.retryDetail = run.RetryUndone, s.undoneBy
	case outputsMasked(prev.Outputs):
		// The record keeps "***" where a secret was: reused, the step would hand that to later steps.
		s.retryReason = run.RetryOutputsMasked
	default:
		for _, n := range s.needs {
			if n.record == nil || n.record.Reason != run.ReasonReused {
				s.retryReason, s.retryDetail = run.RetryNeedNotReused, n.st.ID
				return nil
			}
		}
		switch {
		case prev.Fingerprint == "":
			s.retryReason = run.RetryNoFingerprint
		case l.err != nil || s.fingerprint != prev.Fingerprint:
			s.retryReason = run.RetryChanged
		default:
			s.retryReason = run.RetryReused
			return prev
		}
	}
	return nil
}

// reuse takes a step's result from the run being retried.
func (c *Core) reuse(s *step, prev *run.StepRecord) {
	rec := &run.StepRecord{
		RunID:      c.rec.ID,
		StepID:     s.st.ID,
		Name:       s.st.Name,
		Status:     run.StatusSucceeded,
		Reason:     run.ReasonReused,
		ExitCode:   prev.ExitCode,
		Attempts:   prev.Attempts,
		StartedAt:  c.now,
		FinishedAt: c.now,
		Command:    prev.Command,
		Outputs:    prev.Outputs,
		ReusedFrom: c.cfg.RetryOf,

		Fingerprint: s.fingerprint,
		RetryReason: s.retryReason,
	}
	if prev.ReusedFrom != "" {
		rec.ReusedFrom = prev.ReusedFrom
	}
	c.complete(s, rec)
}
