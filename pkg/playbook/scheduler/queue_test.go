package scheduler

import (
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

const queuePB = hdr + `params:
  env: {default: prod}
  bad: {default: "a b"}
steps:
  - {id: web, run: x, runs_on: "${{ params.env }}-web"}
  - {id: plain, run: x}
  - {id: broken, run: x, runs_on: "${{ params.bad }}"}
`

// TestRunsOn: a distributed run renders each step's runs_on into its launch's queue (the default
// queue when it has none) and fails at once a step whose runs_on names no valid queue; a local run
// leaves the queue empty and ignores runs_on, even one that would not render to a valid queue.
func TestRunsOn(t *testing.T) {
	h := newHarness(t, queuePB, Config{Distributed: true, MaxParallel: 3})
	h.begin()
	for id, want := range map[string]string{"web": "prod-web", "plain": "playbook"} {
		if l := h.launches[id]; l == nil || l.Queue != want {
			t.Errorf("%s: launch %+v, want queue %q", id, l, want)
		}
	}
	if l := h.launches["broken"]; l != nil {
		t.Errorf("broken started on queue %q", l.Queue)
	}
	h.succeed("web", "plain")
	if rec := h.records["broken"]; rec == nil || rec.Status != run.StatusFailed || !strings.Contains(rec.Error, `runs_on: task queue "a b" may hold only`) {
		t.Errorf("broken: %+v", rec)
	}

	h = newHarness(t, queuePB, Config{MaxParallel: 3})
	h.begin()
	for _, id := range []string{"web", "plain", "broken"} {
		if l := h.launches[id]; l == nil || l.Queue != "" {
			t.Errorf("local run, %s: launch %+v, want it started with no queue", id, l)
		}
	}
}

// TestStepRecordNamesItsWorker: in a distributed run, a step's record names the worker of its last
// attempt (the one whose output and exit code it keeps), not of an earlier one.
func TestStepRecordNamesItsWorker(t *testing.T) {
	h := newHarness(t, hdr+`steps:
  - {id: a, run: x, retry: {attempts: 2, delay: 1s}}
`, Config{Distributed: true})
	h.begin()
	for i, worker := range []string{"w1", "w2"} {
		res := &run.AttemptRecord{RunID: h.c.Record().ID, StepID: "a", Attempt: i + 1, Status: run.StatusFailed,
			ExitCode: 1, StartedAt: h.now, FinishedAt: h.now, Worker: worker}
		delete(h.inflight, "a")
		h.step(AttemptFinished{Step: "a", Attempt: i + 1, Result: res, Retryable: true})
		if i == 0 {
			h.due("a")
		}
	}
	if rec := h.records["a"]; rec == nil || rec.Attempts != 2 || rec.Worker != "w2" {
		t.Errorf("a recorded as %+v, want 2 attempts, worker w2", rec)
	}
}
