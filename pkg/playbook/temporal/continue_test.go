package temporal

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/playbookhq/playbook/pkg/run"
)

// flipSteps is fakeSteps where a step whose command is "flip" fails its first attempt and succeeds
// the next.
type flipSteps struct {
	fakeSteps
	mu      sync.Mutex
	flipped map[string]bool
}

func (f *flipSteps) run(ctx context.Context, req StepRequest) (*StepResult, error) {
	if req.Launch.Run != "flip" {
		return f.fakeSteps.run(ctx, req)
	}
	f.mu.Lock()
	first := !f.flipped[req.StepID]
	f.flipped[req.StepID] = true
	f.mu.Unlock()
	cmd := "ok"
	if first {
		cmd = "exit 4"
	}
	req.Launch.Run = cmd
	return f.fakeSteps.run(ctx, req)
}

// chain is a run of the workflow through every workflow run it continues as new into, each in an
// environment of its own (as Temporal runs each on its own history).
type chain struct {
	out       RunOutput
	runs      int
	rec       *logRecorder
	steps     *flipSteps
	carried   []*carried // what each workflow run handed the next
	lastError error
}

// runChain runs src with the workflow continuing as new after continueAfter activities (0: never);
// setup prepares the environment of workflow run i (from 1).
func runChain(t *testing.T, src string, continueAfter int, setup func(env *testsuite.TestWorkflowEnvironment, i int)) *chain {
	t.Helper()
	c := &chain{rec: &logRecorder{}, steps: &flipSteps{flipped: map[string]bool{}}}
	in := RunInput{RunID: "r1", File: "/srv/pb.yaml", Source: []byte(src), ContinueAfter: continueAfter}
	var start time.Time
	for c.runs = 1; c.runs < 100; c.runs++ {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		if !start.IsZero() {
			env.SetStartTime(start)
		}
		env.RegisterWorkflowWithOptions(Run, workflowOptions())
		env.RegisterActivityWithOptions(c.steps.run, activity.RegisterOptions{Name: StepActivityName})
		env.RegisterActivityWithOptions((&Records{Recorder: c.rec}).Write, activity.RegisterOptions{Name: RecordActivityName})
		if setup != nil {
			setup(env, c.runs)
		}
		env.ExecuteWorkflow(WorkflowName, in)
		if !env.IsWorkflowCompleted() {
			t.Fatalf("workflow run %d did not complete", c.runs)
		}
		err := env.GetWorkflowError()
		var next *workflow.ContinueAsNewError
		if errors.As(err, &next) {
			in = RunInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(next.Input, &in); err != nil {
				t.Fatal(err)
			}
			cs, err := decodeCarried(in.Carried)
			if err != nil {
				t.Fatal(err)
			}
			c.carried = append(c.carried, cs)
			start = env.Now()
			continue
		}
		if err != nil {
			t.Fatalf("workflow run %d: %v", c.runs, err)
		}
		if err := env.GetWorkflowResult(&c.out); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Fatal("the workflow continued as new 100 times")
	return nil
}

// sortedLog is the records, sorted: their order between steps depends on when the workflow holds
// new starts.
func (c *chain) sortedLog() string {
	l := append([]string(nil), c.rec.log...)
	sort.Strings(l)
	return strings.Join(l, "\n")
}

const continuePlaybook = `version: 1
name: cont
steps:
  - {id: a, run: out v=1.2.3}
  - {id: b, needs: a, run: "deploy ${{ steps.a.outputs.v }}"}
  - {id: flaky, needs: a, run: flip, retry: {attempts: 2, delay: 1m}}
  - {id: c1, run: x}
  - {id: c2, run: x}
  - {id: c3, needs: [c1, c2], run: x}
  - {id: d, needs: [b, flaky, c3], run: "echo ${{ steps.a.outputs.v }}"}
  - {id: e, needs: d, if: "steps.a.outputs.v == '9'", run: x}
`

// TestContinueAsNew: a run that continues as new every few activities records every step once,
// as a run that never does: outputs flow across workflow runs, a retry waiting for its delay is
// carried over, and the run's record keeps its start.
func TestContinueAsNew(t *testing.T) {
	once := runChain(t, continuePlaybook, 0, nil)
	if once.runs != 1 {
		t.Fatalf("without a threshold the workflow continued as new %d times", once.runs-1)
	}
	many := runChain(t, continuePlaybook, 3, nil)
	if many.runs < 4 {
		t.Fatalf("the workflow ran %d workflow runs, want it to continue as new every 3 activities", many.runs)
	}
	if got, want := many.sortedLog(), once.sortedLog(); got != want {
		t.Errorf("records across %d workflow runs:\n%s\nwithout continuing:\n%s", many.runs, got, want)
	}
	if strings.Count(many.sortedLog(), "RunStarted") != 1 || strings.Count(many.sortedLog(), "StepFinished") != 8 {
		t.Errorf("records:\n%s", many.sortedLog())
	}
	if got, want := fmt.Sprint(statuses(&many.out)), fmt.Sprint(statuses(&once.out)); got != want || many.out.Run.Status != run.StatusSucceeded {
		t.Errorf("run %s, steps %s; without continuing %s", many.out.Run.Status, got, want)
	}
	for _, r := range many.steps.requests() {
		if (r.StepID == "b" && r.Launch.Run != "deploy 1.2.3") || (r.StepID == "d" && r.Launch.Run != "echo 1.2.3") {
			t.Errorf("%s ran %q: an output was lost across workflow runs", r.StepID, r.Launch.Run)
		}
	}
	retried := false
	for _, c := range many.carried {
		for _, r := range c.Retries {
			retried = retried || (r.Step == "flaky" && r.Attempt == 1)
		}
		if !c.StartedAt.Equal(many.carried[0].StartedAt) || c.WorkflowRunID == "" {
			t.Errorf("the run's start went from %s to %s", many.carried[0].StartedAt, c.StartedAt)
		}
	}
	t.Logf("%d workflow runs", many.runs)
	if !retried {
		t.Errorf("no workflow run handed on flaky's retry: the test does not test it")
	}
	if many.out.Run.StartedAt != once.out.Run.StartedAt && !many.out.Run.StartedAt.Equal(many.carried[0].StartedAt) {
		t.Errorf("the run's record starts at %s, want %s", many.out.Run.StartedAt, many.carried[0].StartedAt)
	}
	if s := many.out.Steps[2]; s.StepID != "flaky" || s.Attempts != 2 || s.Status != run.StatusSucceeded {
		t.Errorf("flaky: %+v", s)
	}
}

// TestCancelAcrossContinueAsNew: a cancellation that comes while a workflow run waits for its
// running step to end before it continues as new is not lost: the step is stopped, the next
// workflow run runs the cancelled() step, and the run ends cancelled (130).
func TestCancelAcrossContinueAsNew(t *testing.T) {
	c := runChain(t, `version: 1
name: cancel
steps:
  - {id: a, run: x}
  - {id: long, needs: a, run: block}
  - {id: next, needs: long, run: x}
  - {id: cleanup, needs: long, if: cancelled(), run: cleanup}
`, 2, func(env *testsuite.TestWorkflowEnvironment, i int) {
		if i == 2 { // a ran in the first; long runs in the second, which is draining
			env.RegisterDelayedCallback(env.CancelWorkflow, 200*time.Millisecond)
		}
	})
	if c.runs < 3 {
		t.Fatalf("%d workflow runs: the cancellation did not come while one drained", c.runs)
	}
	t.Logf("%d workflow runs", c.runs)
	if c.out.Run.Status != run.StatusCancelled || c.out.Run.ExitCode != 130 {
		t.Fatalf("run %s exit %d", c.out.Run.Status, c.out.Run.ExitCode)
	}
	want := map[string]string{"a": "succeeded/", "long": "cancelled/", "next": "skipped/run_cancelled", "cleanup": "succeeded/"}
	for id, st := range statuses(&c.out) {
		if want[id] != st {
			t.Errorf("%s: %s, want %s", id, st, want[id])
		}
	}
}

// TestCarriedStateOf5000Steps: what a run of 5,000 finished steps hands on when it continues as new
// fits in a payload with the playbook.
func TestCarriedStateOf5000Steps(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &carried{StartedAt: start, WorkflowRunID: "0b8c3f47-5c7e-4a59-9b59-7b9d0f0e6a11"}
	var src strings.Builder
	src.WriteString("version: 1\nname: wide\nsteps:\n")
	for i := 0; i < 5000; i++ {
		id := fmt.Sprintf("step-%04d", i)
		fmt.Fprintf(&src, "  - {id: %s, run: \"true\"}\n", id)
		at := start.Add(time.Duration(i) * 37 * time.Millisecond)
		c.Events = append(c.Events, loggedEvent{At: at, Kind: "finished", Step: id, Attempt: 1, Retryable: true,
			Result: &run.AttemptRecord{RunID: "20260102-030405-abcdef", StepID: id, Attempt: 1, Status: run.StatusSucceeded,
				StartedAt: at.Add(-5 * time.Millisecond), FinishedAt: at, Worker: "worker-1.example.com",
				Stdout: run.Output{Bytes: 12}}, Outputs: map[string]string{"id": fmt.Sprintf("i-%08x", i*7919)}})
	}
	data, err := encodeCarried(c)
	if err != nil {
		t.Fatal(err)
	}
	in := RunInput{RunID: "20260102-030405-abcdef", File: "/srv/wide.yaml", Source: []byte(src.String()), Carried: data}
	n := encodedSize(t, in)
	t.Logf("5,000 steps: the log takes %d bytes compressed; the next run's input %d bytes encrypted (playbook %d)", len(data), n, src.Len())
	if n > PayloadBudget {
		t.Errorf("the next run's input takes %d bytes", n)
	}
	back, err := decodeCarried(data)
	if err != nil || len(back.Events) != 5000 || back.Events[4999].Outputs["id"] != c.Events[4999].Outputs["id"] {
		t.Fatalf("decoded %d events (%v)", len(back.Events), err)
	}
}

// TestTimeoutAcrossContinueAsNew: the run's timeout still expires in a later workflow run, counted
// from the run's start.
func TestTimeoutAcrossContinueAsNew(t *testing.T) {
	c := runChain(t, `version: 1
name: timeout
timeout: 2s
steps:
  - {id: a, run: x}
  - {id: long, needs: a, run: block}
  - {id: cleanup, needs: long, if: always(), run: cleanup}
`, 2, nil)
	if c.runs < 3 || c.out.Run.Status != run.StatusTimedOut || c.out.Run.ExitCode != 124 {
		t.Fatalf("%d workflow runs; run %s exit %d", c.runs, c.out.Run.Status, c.out.Run.ExitCode)
	}
	if st := statuses(&c.out); st["long"] != "cancelled/run_timed_out" || st["cleanup"] != "succeeded/" {
		t.Errorf("steps %v", st)
	}
	if due := c.carried[0].TimeoutDue; !due.Equal(c.carried[0].StartedAt.Add(2 * time.Second)) {
		t.Errorf("the timeout was handed on as due at %s, the run started at %s", due, c.carried[0].StartedAt)
	}
}

// TestKillWhileDraining: the kill signal that comes while a workflow run of a continued run drains
// is not lost: the running step is stopped and nothing else starts, not even always().
func TestKillWhileDraining(t *testing.T) {
	c := runChain(t, `version: 1
name: kill
steps:
  - {id: a, run: x}
  - {id: long, needs: a, run: block}
  - {id: cleanup, needs: long, if: always(), run: cleanup}
`, 2, func(env *testsuite.TestWorkflowEnvironment, i int) {
		if i == 2 {
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(KillSignal, nil) }, 200*time.Millisecond)
		}
	})
	// The kill leaves nothing to start: the run ends in the workflow run that drained.
	if c.runs != 2 || c.out.Run.Status != run.StatusCancelled || c.out.Run.ExitCode != 130 {
		t.Fatalf("%d workflow runs; run %s exit %d", c.runs, c.out.Run.Status, c.out.Run.ExitCode)
	}
	if st := statuses(&c.out); st["long"] != "cancelled/" || st["cleanup"] != "skipped/run_cancelled" {
		t.Errorf("steps %v", st)
	}
	for _, r := range c.steps.requests() {
		if r.StepID == "cleanup" {
			t.Errorf("cleanup ran after the kill")
		}
	}
}
