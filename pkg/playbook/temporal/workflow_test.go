package temporal

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/playbookhq/playbook/pkg/run"
)

// logRecorder is the submitter's database of these tests: it logs each record in order.
type logRecorder struct {
	mu  sync.Mutex
	log []string
}

func (l *logRecorder) add(s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, s)
	return nil
}
func (l *logRecorder) RunStarted(_ context.Context, r *run.Record) error {
	return l.add("RunStarted " + strings.Join(r.StepIDs, ","))
}
func (l *logRecorder) AttemptStarted(_ context.Context, a *run.AttemptStart) error {
	return l.add(fmt.Sprintf("AttemptStarted %s %d %s", a.StepID, a.Attempt, a.Command))
}
func (l *logRecorder) AttemptFinished(_ context.Context, a *run.AttemptRecord) error {
	return l.add(fmt.Sprintf("AttemptFinished %s %d %s", a.StepID, a.Attempt, a.Status))
}
func (l *logRecorder) StepFinished(_ context.Context, s *run.StepRecord) error {
	return l.add(fmt.Sprintf("StepFinished %s %s %s", s.StepID, s.Status, s.Reason))
}
func (l *logRecorder) RunFinished(_ context.Context, r *run.Record) error {
	return l.add(fmt.Sprintf("RunFinished %s %d", r.Status, r.ExitCode))
}

// fakeSteps is the step activity of these tests: no process, the step's shell command says what
// happens ("exit N", "out K=V", "block" until cancelled, anything else succeeds).
type fakeSteps struct {
	mu   sync.Mutex
	reqs []StepRequest
}

func (f *fakeSteps) run(ctx context.Context, req StepRequest) (*StepResult, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	att := run.AttemptRecord{RunID: req.RunID, StepID: req.StepID, Attempt: req.Attempt, Status: run.StatusSucceeded}
	res := &StepResult{Retryable: true}
	cmd := req.Launch.Run
	switch {
	case cmd == "block":
		for ctx.Err() == nil {
			activity.RecordHeartbeat(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		att.Status, att.ExitCode, att.Error = run.StatusCancelled, -1, "cancelled"
	case strings.HasPrefix(cmd, "exit "):
		att.Status, att.ExitCode = run.StatusFailed, int(cmd[5]-'0')
	case strings.HasPrefix(cmd, "out "):
		k, v, _ := strings.Cut(cmd[4:], "=")
		res.Outputs = map[string]string{k: v}
	}
	res.Attempt = att
	return res, nil
}

func (f *fakeSteps) requests() []StepRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]StepRequest(nil), f.reqs...)
}

// runWorkflow runs the workflow on the SDK's test environment (no server) with src as the playbook.
func runWorkflow(t *testing.T, src string, params map[string]string, setup func(env *testsuite.TestWorkflowEnvironment)) (*RunOutput, *fakeSteps) {
	out, f, _ := runWorkflowRecorded(t, src, params, setup)
	return out, f
}

func runWorkflowRecorded(t *testing.T, src string, params map[string]string, setup func(env *testsuite.TestWorkflowEnvironment)) (*RunOutput, *fakeSteps, *logRecorder) {
	t.Helper()
	env, f, rec := newWorkflowEnv(setup)
	env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "r1", File: "/srv/pb.yaml", Source: []byte(src), Params: params})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var out RunOutput
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	return &out, f, rec
}

// newWorkflowEnv is a test environment with the workflow, fake steps and the records' activity
// registered; setup, when set, changes it before anything runs.
func newWorkflowEnv(setup func(env *testsuite.TestWorkflowEnvironment)) (*testsuite.TestWorkflowEnvironment, *fakeSteps, *logRecorder) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	f := &fakeSteps{}
	env.RegisterWorkflowWithOptions(Run, workflowOptions())
	env.RegisterActivityWithOptions(f.run, activity.RegisterOptions{Name: StepActivityName})
	rec := &logRecorder{}
	env.RegisterActivityWithOptions((&Records{Recorder: rec}).Write, activity.RegisterOptions{Name: RecordActivityName})
	if setup != nil {
		setup(env)
	}
	return env, f, rec
}

func statuses(out *RunOutput) map[string]string {
	m := map[string]string{}
	for _, s := range out.Steps {
		m[s.StepID] = string(s.Status) + "/" + s.Reason
	}
	return m
}

// TestWorkflowRunsTheCore: the workflow runs each step as an activity on the queue its runs_on
// names, hands outputs from one step to the next, and ends with the core's record of the run.
func TestWorkflowRunsTheCore(t *testing.T) {
	out, f := runWorkflow(t, `version: 1
name: two
params:
  env: {default: prod}
runs_on: "${{ params.env }}-web"
steps:
  - {id: build, run: out version=1.2.3, runs_on: builders}
  - {id: deploy, needs: build, run: "deploy ${{ steps.build.outputs.version }}"}
  - {id: skipped, needs: deploy, if: "steps.build.outputs.version == '9'", run: x}
`, nil, nil)
	if out.Run.Status != run.StatusSucceeded || out.Run.ExitCode != 0 {
		t.Fatalf("run %s exit %d: %s", out.Run.Status, out.Run.ExitCode, out.Run.Error)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Launch.Queue != "builders" || reqs[1].Launch.Queue != "prod-web" {
		t.Fatalf("requests %+v: want build on builders, deploy on prod-web", reqs)
	}
	if reqs[1].Launch.Run != "deploy 1.2.3" {
		t.Errorf("deploy ran %q, want build's output in it", reqs[1].Launch.Run)
	}
	want := map[string]string{"build": "succeeded/", "deploy": "succeeded/", "skipped": "skipped/condition_false"}
	for id, st := range statuses(out) {
		if want[id] != st {
			t.Errorf("%s: %s, want %s", id, st, want[id])
		}
	}
}

// TestWorkflowRetries: a failed attempt is retried by the step's own policy after its delay (a
// workflow timer), each attempt a new activity.
func TestWorkflowRetries(t *testing.T) {
	out, f := runWorkflow(t, `version: 1
name: retry
steps:
  - {id: flaky, run: exit 3, retry: {attempts: 3, delay: 1m}}
`, nil, nil)
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if s := out.Steps[0]; s.Status != run.StatusFailed || s.Attempts != 3 || s.ExitCode != 3 || out.Run.ExitCode != 1 {
		t.Errorf("flaky %s after %d attempts (exit %d), run exit %d", s.Status, s.Attempts, s.ExitCode, out.Run.ExitCode)
	}
}

// TestWorkflowCancel: cancelling the workflow is the graceful stop: the running step's activity is
// cancelled, a cancelled() step still runs, the rest is skipped, and the run ends cancelled (130).
func TestWorkflowCancel(t *testing.T) {
	out, f := runWorkflow(t, `version: 1
name: cancel
steps:
  - {id: long, run: block}
  - {id: next, needs: long, run: x}
  - {id: cleanup, needs: long, if: cancelled(), run: cleanup}
`, nil, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(env.CancelWorkflow, 200*time.Millisecond)
	})
	if out.Run.Status != run.StatusCancelled || out.Run.ExitCode != 130 {
		t.Fatalf("run %s exit %d", out.Run.Status, out.Run.ExitCode)
	}
	want := map[string]string{"long": "cancelled/", "next": "skipped/run_cancelled", "cleanup": "succeeded/"}
	for id, st := range statuses(out) {
		if want[id] != st {
			t.Errorf("%s: %s, want %s", id, st, want[id])
		}
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[1].Launch.Run != "cleanup" {
		t.Errorf("requests %+v, want long then cleanup", reqs)
	}
}

// TestWorkflowRecords: the workflow sends the run's records to the submitter's queue, in order, and
// ends only once the last one (the run's end) is written.
func TestWorkflowRecords(t *testing.T) {
	out, _, rec := runWorkflowRecorded(t, `version: 1
name: rec
steps:
  - {id: a, run: out v=1}
  - {id: b, needs: a, run: exit 2, retry: {attempts: 2}}
  - {id: c, needs: b, run: x}
`, nil, nil)
	// b is sent the moment a's end releases it, before a's end is written (the core starts first,
	// records after), so its start comes first here; the database ends up the same.
	want := []string{"RunStarted a,b,c",
		"AttemptStarted a 1 out v=1", "AttemptStarted b 1 exit 2", "AttemptFinished a 1 succeeded", "StepFinished a succeeded ",
		"AttemptFinished b 1 failed",
		"AttemptStarted b 2 exit 2", "AttemptFinished b 2 failed", "StepFinished b failed ",
		"StepFinished c skipped dependency_failed", "RunFinished failed 1"}
	if got := strings.Join(rec.log, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if out.Run.ExitCode != 1 {
		t.Errorf("run exit %d", out.Run.ExitCode)
	}
}

// TestWorkflowInterruptedBySIGTERM: the submitter says which signal stopped it before it cancels the
// workflow, and the run ends as a local run stopped by that signal does: exit 143, its error naming
// SIGTERM.
func TestWorkflowInterruptedBySIGTERM(t *testing.T) {
	out, _ := runWorkflow(t, `version: 1
name: sigterm
steps:
  - {id: long, run: block}
`, nil, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(InterruptSignal, 15)
			env.CancelWorkflow()
		}, 200*time.Millisecond)
	})
	if out.Run.Status != run.StatusCancelled || out.Run.ExitCode != 143 || !strings.Contains(out.Run.Error, "SIGTERM") {
		t.Fatalf("run %s exit %d (%s), want cancelled by SIGTERM, exit 143", out.Run.Status, out.Run.ExitCode, out.Run.Error)
	}
}

// TestRecordBatchesCoalesce: records that come within the record window of the last batch wait for
// the window's end (or the run's end) and go as one batch, in order; without a window each batch goes
// as soon as the previous one is back.
func TestRecordBatchesCoalesce(t *testing.T) {
	src := "version: 1\nname: chain\nsteps:\n"
	for i := 0; i < 10; i++ {
		src += fmt.Sprintf("  - {id: s%d, run: x%s}\n", i, map[bool]string{true: "", false: fmt.Sprintf(", needs: s%d", i-1)}[i == 0])
	}
	batches := func(window time.Duration) (int, []string) {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(Run, workflowOptions())
		env.RegisterActivityWithOptions((&fakeSteps{}).run, activity.RegisterOptions{Name: StepActivityName})
		rec := &logRecorder{}
		records := &Records{Recorder: rec}
		n := 0
		env.RegisterActivityWithOptions(func(ctx context.Context, batch []Record) error {
			n++
			return records.Write(ctx, batch)
		}, activity.RegisterOptions{Name: RecordActivityName})
		env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "r1", File: "/srv/pb.yaml", Source: []byte(src), RecordWindow: window})
		if err := env.GetWorkflowError(); err != nil || !env.IsWorkflowCompleted() {
			t.Fatalf("workflow: %v", err)
		}
		return n, rec.log
	}
	nWindow, logWindow := batches(time.Hour)
	nEach, logEach := batches(-1)
	t.Logf("%d batches with a window, %d without", nWindow, nEach)
	if nWindow > 3 || nEach <= nWindow {
		t.Errorf("%d batches with a window, %d without: want at most 3 with one, and more without", nWindow, nEach)
	}
	if strings.Join(logWindow, "\n") != strings.Join(logEach, "\n") || len(logWindow) != 1+3*10+1 {
		t.Errorf("records with a window:\n%s\nwithout:\n%s", strings.Join(logWindow, "\n"), strings.Join(logEach, "\n"))
	}
}

// TestKilledQuery: the workflow answers KilledQuery false until the run is killed, true from then on
// (a step's worker asks it while the step stops, to kill it at once).
func TestKilledQuery(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Run, workflowOptions())
	env.RegisterActivityWithOptions((&fakeSteps{}).run, activity.RegisterOptions{Name: StepActivityName})
	env.RegisterActivityWithOptions((&Records{Recorder: &logRecorder{}}).Write, activity.RegisterOptions{Name: RecordActivityName})
	ask := func() bool {
		v, err := env.QueryWorkflow(KilledQuery)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		var k bool
		if err := v.Get(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	var before bool
	env.RegisterDelayedCallback(func() { before = ask(); env.SignalWorkflow(KillSignal, nil) }, 100*time.Millisecond)
	env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "r1", File: "/srv/pb.yaml",
		Source: []byte("version: 1\nname: kill\nsteps:\n  - {id: long, run: block}\n")})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if after := ask(); before || !after {
		t.Errorf("killed: %v before the kill, %v after: want false, then true", before, after)
	}
}

// stall makes the workflow's first stretch of work take d of wall-clock time, as a busy machine
// does to a large playbook's parse.
type stall struct {
	interceptor.WorkerInterceptorBase
	d time.Duration
}

func (s *stall) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &stallInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, d: s.d}
}

type stallInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	d time.Duration
}

func (s *stallInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	time.Sleep(s.d) // the stall itself: the CPU time a busy machine did not give
	return s.Next.ExecuteWorkflow(ctx, in)
}

// TestSlowWorkflowCodeIsNotADeadlock: with the options a worker runs the workflow with, workflow code
// that takes longer than the SDK's default 1 s between two waits completes; with the default, the
// SDK fails the task as a deadlock, and on a busy machine every retry of it.
func TestSlowWorkflowCodeIsNotADeadlock(t *testing.T) {
	const src = "version: 1\nname: slow\nsteps:\n  - {id: a, run: \"true\"}\n"
	for _, c := range []struct {
		name     string
		opts     worker.Options
		deadlock bool
	}{
		{"the SDK's default", worker.Options{}, true},
		{"the worker's", worker.Options{DeadlockDetectionTimeout: DeadlockDetectionTimeout}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Interceptors = []interceptor.WorkerInterceptor{&stall{d: 1500 * time.Millisecond}}
			env, _, _ := newWorkflowEnv(func(env *testsuite.TestWorkflowEnvironment) { env.SetWorkerOptions(c.opts) })
			env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "r1", File: "/srv/pb.yaml", Source: []byte(src)})
			err := env.GetWorkflowError()
			if c.deadlock {
				if err == nil || !strings.Contains(err.Error(), "deadlock") {
					t.Fatalf("workflow error %v: want the SDK's deadlock (the stall does not stall)", err)
				}
				return
			}
			if !env.IsWorkflowCompleted() || err != nil {
				t.Fatalf("completed %v, error %v", env.IsWorkflowCompleted(), err)
			}
			var out RunOutput
			if err := env.GetWorkflowResult(&out); err != nil || out.Run.Status != run.StatusSucceeded {
				t.Fatalf("run %s (%v)", out.Run.Status, err)
			}
		})
	}
}
