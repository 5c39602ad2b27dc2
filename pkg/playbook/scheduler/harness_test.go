package scheduler

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// The core's tests play scripts of events against a Core with a fake clock and check the commands it
// returns. No process starts: a step "runs" between its StartAttempt and the AttemptFinished the
// script reports.

// t0 is the fake clock's start; the harness moves it only when a retry's delay is waited out.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// loadPlaybook parses a playbook from YAML text (no file is read: the tests use no script: steps).
func loadPlaybook(t testing.TB, src string) *playbook.Playbook {
	t.Helper()
	pb, err := playbook.Parse("/nonexistent/test/pb.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse playbook: %v\n%s", err, src)
	}
	return pb
}

// timer is a RetryLater the script has not yet answered with RetryDue.
type timer struct {
	attempt int
	due     time.Time
}

// harness drives one Core and keeps what its commands said.
type harness struct {
	t   testing.TB
	pb  *playbook.Playbook
	c   *Core
	now time.Time

	log      []string // every command, canonical form (canon), in order
	batch    int      // number of Step calls so far
	starts   []StepAttempt
	launches map[string]*Launch // step -> the launch of its latest attempt
	inflight map[string]int     // step -> attempt started and not reported finished
	timers   map[string]timer
	delays   map[string][]time.Duration // step -> delays of its RetryLaters
	records  map[string]*run.StepRecord
	recBatch map[string]int // step -> the batch of its RecordStep
	attempts []*run.AttemptRecord
	stops    [][]StepAttempt
	stopping []*Stopping
	kills    int
	done     *run.Record
	doneN    int

	// check, when set, is called after every Step with the batch's commands (the property tests).
	check func(h *harness, ev Event, cmds []Command)
}

func newHarness(t testing.TB, src string, cfg Config) *harness {
	t.Helper()
	return newHarnessPB(t, loadPlaybook(t, src), cfg)
}

func newHarnessPB(t testing.TB, pb *playbook.Playbook, cfg Config) *harness {
	t.Helper()
	c, err := New(pb, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, pb: pb, c: c, now: t0, launches: map[string]*Launch{}, inflight: map[string]int{},
		timers: map[string]timer{}, delays: map[string][]time.Duration{}, records: map[string]*run.StepRecord{},
		recBatch: map[string]int{}}
}

// canon is a command's canonical text: what the determinism property compares.
func canon(cmd Command) string {
	switch c := cmd.(type) {
	case *StartAttempt:
		l := c.Launch
		keys := make([]string, 0, len(l.Env))
		for k := range l.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		env := make([]string, len(keys))
		for i, k := range keys {
			env[i] = k + "=" + l.Env[k]
		}
		return fmt.Sprintf("start %s#%d run=%q argv=%q display=%q dir=%q env=%q timeout=%s queue=%q", c.Step.ID, c.Attempt,
			l.Run, l.Argv, l.Display, l.Dir, env, l.Timeout, l.Queue)
	case *AttemptUnstarted:
		return fmt.Sprintf("unstarted %s#%d %q %s", c.Attempt.StepID, c.Attempt.Attempt, c.Command, c.Attempt.Error)
	case *RetryLater:
		return fmt.Sprintf("retry %s#%d in %s (%s %d)", c.Step, c.Attempt, c.Delay, c.Failed.Status, c.Failed.ExitCode)
	case *StopSteps:
		return fmt.Sprintf("stop %v", c.Steps)
	case *KillAll:
		return "killall"
	case *Stopping:
		return fmt.Sprintf("stopping %q record=%v", c.Reason, c.RecordFailed)
	case *RecordAttempt:
		a := c.Attempt
		return fmt.Sprintf("attempt %s#%d %s %d %q", a.StepID, a.Attempt, a.Status, a.ExitCode, a.Error)
	case *RecordStep:
		r := c.Record
		keys := make([]string, 0, len(r.Outputs))
		for k := range r.Outputs {
			keys = append(keys, k+"="+r.Outputs[k])
		}
		sort.Strings(keys)
		return fmt.Sprintf("step %s %s/%s exit=%d attempts=%d coe=%v err=%q cmd=%q out=%q fp=%s retry=%s/%s reused=%s start=%s end=%s",
			r.StepID, r.Status, r.Reason, r.ExitCode, r.Attempts, r.ContinueOnError, r.Error, r.Command, keys,
			r.Fingerprint, r.RetryReason, r.RetryDetail, r.ReusedFrom, r.StartedAt.Format(time.RFC3339Nano),
			r.FinishedAt.Format(time.RFC3339Nano))
	case *RunDone:
		r := c.Record
		return fmt.Sprintf("done %s exit=%d err=%q end=%s", r.Status, r.ExitCode, r.Error, r.FinishedAt.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("unknown %T", cmd)
}

// step applies one event and books its commands. It returns a copy of them.
func (h *harness) step(ev Event) []Command {
	h.t.Helper()
	wasDone := h.done != nil
	cmds := slices.Clone(h.c.Step(h.now, ev))
	h.batch++
	if wasDone && len(cmds) > 0 {
		h.t.Errorf("after RunDone, %T gave commands: %v", ev, cmds)
	}
	for _, cmd := range cmds {
		h.log = append(h.log, canon(cmd))
		if h.done != nil {
			h.t.Errorf("command after RunDone: %s", canon(cmd))
		}
		switch c := cmd.(type) {
		case *StartAttempt:
			sa := StepAttempt{Step: c.Step.ID, Attempt: c.Attempt}
			if _, ok := h.inflight[sa.Step]; ok {
				h.t.Errorf("start of %v while attempt %d is in flight", sa, h.inflight[sa.Step])
			}
			h.starts = append(h.starts, sa)
			h.inflight[sa.Step] = sa.Attempt
			h.launches[sa.Step] = c.Launch
		case *AttemptUnstarted:
			h.starts = append(h.starts, StepAttempt{Step: c.Attempt.StepID, Attempt: c.Attempt.Attempt})
		case *RetryLater:
			h.timers[c.Step] = timer{attempt: c.Attempt, due: h.now.Add(c.Delay)}
			h.delays[c.Step] = append(h.delays[c.Step], c.Delay)
		case *StopSteps:
			h.stops = append(h.stops, c.Steps)
		case *KillAll:
			h.kills++
		case *Stopping:
			h.stopping = append(h.stopping, c)
		case *RecordAttempt:
			h.attempts = append(h.attempts, c.Attempt)
		case *RecordStep:
			id := c.Record.StepID
			if h.records[id] != nil {
				h.t.Errorf("second RecordStep for %s: %s", id, canon(c))
			}
			h.records[id] = c.Record
			h.recBatch[id] = h.batch
			delete(h.timers, id)
		case *RunDone:
			h.doneN++
			h.done = c.Record
		}
	}
	if h.check != nil {
		h.check(h, ev, cmds)
	}
	return cmds
}

func (h *harness) begin() []Command { return h.step(Begin{}) }

// finish reports the attempt of step in flight as ended with status and exit code (and outputs).
func (h *harness) finish(id string, status run.Status, exit int, outputs map[string]string) []Command {
	h.t.Helper()
	return h.finishR(id, status, exit, outputs, true)
}

func (h *harness) finishR(id string, status run.Status, exit int, outputs map[string]string, retryable bool) []Command {
	h.t.Helper()
	att, ok := h.inflight[id]
	if !ok {
		h.t.Fatalf("finish %s: no attempt in flight (in flight: %v; log:\n%s)", id, h.running(), h.dump())
	}
	delete(h.inflight, id)
	sig := 0
	if status == run.StatusCancelled || status == run.StatusTimedOut {
		sig = 15
		exit = -1
	}
	res := &run.AttemptRecord{RunID: h.c.Record().ID, StepID: id, Attempt: att, Status: status, ExitCode: exit,
		Signal: sig, StartedAt: h.now, FinishedAt: h.now}
	return h.step(AttemptFinished{Step: id, Attempt: att, Result: res, Outputs: outputs, Retryable: retryable})
}

func (h *harness) succeed(ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		h.finish(id, run.StatusSucceeded, 0, nil)
	}
}

func (h *harness) fail(id string, exit int) []Command {
	h.t.Helper()
	return h.finish(id, run.StatusFailed, exit, nil)
}

// due waits out step's retry delay on the fake clock and reports RetryDue.
func (h *harness) due(id string) []Command {
	h.t.Helper()
	tm, ok := h.timers[id]
	if !ok {
		h.t.Fatalf("due %s: no retry pending (log:\n%s)", id, h.dump())
	}
	delete(h.timers, id)
	if tm.due.After(h.now) {
		h.now = tm.due
	}
	return h.step(RetryDue{Step: id, Attempt: tm.attempt})
}

// running lists the steps in flight, sorted.
func (h *harness) running() []string {
	out := make([]string, 0, len(h.inflight))
	for id := range h.inflight {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// startedIDs lists the StartAttempts so far as "id#attempt".
func (h *harness) startedIDs() []string {
	out := make([]string, len(h.starts))
	for i, s := range h.starts {
		out[i] = fmt.Sprintf("%s#%d", s.Step, s.Attempt)
	}
	return out
}

// status is a step's recorded outcome, "status" or "status/reason"; "" before its RecordStep.
func (h *harness) status(id string) string {
	r := h.records[id]
	if r == nil {
		return ""
	}
	if r.Reason == "" {
		return string(r.Status)
	}
	return string(r.Status) + "/" + r.Reason
}

// drain plays the run to its end: attempts in flight finish (oldest first) as outcome says, retries
// are waited out (earliest first). outcome nil: everything succeeds.
func (h *harness) drain(outcome func(id string, attempt int) (run.Status, int)) {
	h.t.Helper()
	for n := 0; h.done == nil; n++ {
		if n > 100000 {
			h.t.Fatalf("drain: no end")
		}
		if id := h.oldestInflight(); id != "" {
			st, code := run.StatusSucceeded, 0
			if outcome != nil {
				st, code = outcome(id, h.inflight[id])
			}
			h.finish(id, st, code, nil)
			continue
		}
		if id := h.earliestTimer(); id != "" {
			h.due(id)
			continue
		}
		h.t.Fatalf("drain: the run stalls: nothing in flight, no retry pending, no RunDone\n%s", h.dump())
	}
}

func (h *harness) oldestInflight() string {
	for _, s := range h.starts {
		if a, ok := h.inflight[s.Step]; ok && a == s.Attempt {
			return s.Step
		}
	}
	return ""
}

func (h *harness) earliestTimer() string {
	best := ""
	for id, tm := range h.timers {
		if best == "" || tm.due.Before(h.timers[best].due) || (tm.due.Equal(h.timers[best].due) && id < best) {
			best = id
		}
	}
	return best
}

func (h *harness) dump() string { return strings.Join(h.log, "\n") }
