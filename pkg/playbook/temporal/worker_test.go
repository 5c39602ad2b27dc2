package temporal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook/local"
	"github.com/playbookhq/playbook/pkg/playbook/scheduler"
	"github.com/playbookhq/playbook/pkg/run"
)

// runStep runs one attempt through the step activity on the SDK's activity test environment, with a
// real engine and real processes.
func runStep(t *testing.T, w *Steps, req StepRequest) *StepResult {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(w.Run)
	val, err := env.ExecuteActivity(w.Run, req)
	if err != nil {
		t.Fatal(err)
	}
	var res StepResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	return &res
}

func newSteps(t *testing.T) *Steps {
	t.Helper()
	eng, err := engine.New(engine.Config{MaxConcurrent: 2, DefaultTimeout: engine.NoTimeout, MaxTimeout: engine.NoTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return &Steps{Engine: eng, Dir: t.TempDir(), TempDir: t.TempDir()}
}

// TestWorkerRunsAStep: a worker runs the attempt in a folder relative to its own, with the run's
// environment on top of its own, returns the outputs the step wrote and its output masked.
func TestWorkerRunsAStep(t *testing.T) {
	w := newSteps(t)
	os.Mkdir(filepath.Join(w.Dir, "app"), 0o755)
	res := runStep(t, w, StepRequest{RunID: "r1", StepID: "a", Attempt: 1, Secrets: []string{"hunter2"},
		Launch: scheduler.Launch{Run: `pwd; echo "token hunter2"; echo "v=$V" >> "$PLAYBOOK_OUTPUT"`, Dir: "app",
			Env: map[string]string{"V": "1.2.3"}}})
	if res.Attempt.Status != run.StatusSucceeded || res.Outputs["v"] != "1.2.3" {
		t.Fatalf("attempt %+v, outputs %v", res.Attempt, res.Outputs)
	}
	out := string(res.Attempt.Stdout.Data)
	if !strings.Contains(out, filepath.Join(w.Dir, "app")) || !strings.Contains(out, "token ***") || strings.Contains(out, "hunter2") {
		t.Errorf("stdout %q: want the worker's app folder and the secret masked", out)
	}
}

// TestWorkerRunsTheScriptItWasSent: a script step runs the content that came with the run, though
// its path (the submitter's) does not exist on the worker.
func TestWorkerRunsTheScriptItWasSent(t *testing.T) {
	w := newSteps(t)
	res := runStep(t, w, StepRequest{RunID: "r1", StepID: "s", Attempt: 1, Script: []byte("echo from the run; exit 4\n"),
		Launch: scheduler.Launch{Script: "/submitter/only/deploy.sh", Interpreter: "sh"}})
	if res.Attempt.Status != run.StatusFailed || res.Attempt.ExitCode != 4 || strings.TrimSpace(string(res.Attempt.Stdout.Data)) != "from the run" {
		t.Errorf("attempt %+v", res.Attempt)
	}
	left, _ := os.ReadDir(w.TempDir)
	if len(left) != 0 {
		t.Errorf("the attempt left %d files in the worker's temporary folder", len(left))
	}
}

// TestKilledRunKillsAStoppingStep: a cancelled step that ignores its stop signal gets its grace, unless
// its run is being killed (the second Ctrl-C): the worker, asking the workflow while the step stops,
// then sends SIGKILL at once.
func TestKilledRunKillsAStoppingStep(t *testing.T) {
	w := newSteps(t)
	asked := make(chan string, 16)
	w.Killed = func(wid string) bool {
		asked <- wid
		return len(asked) > 1 // no at the first question, yes at the next: the kill comes while it stops
	}
	er := local.EngineRequest(&scheduler.Launch{Run: `trap "" TERM; echo ready; sleep 60`, StopGrace: time.Hour}, nil)
	er.Dir = w.Dir
	id, err := w.Engine.Start(er)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if out, _, _ := w.Engine.OutputBytes(id); out > 0 {
			break // the trap is set
		}
		if time.Now().After(deadline) {
			t.Fatal("the step never started")
		}
	}
	ended := make(chan struct{})
	stopped := make(chan struct{})
	go func() { w.stop("playbook-r1", id, ended); close(stopped) }()
	res, err := w.Engine.Wait(context.Background(), id)
	close(ended)
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	if res.Signal != int(syscall.SIGKILL) || res.Status != engine.StatusCancelled {
		t.Errorf("the step ended %s by signal %d, want cancelled by SIGKILL (its grace is an hour)", res.Status, res.Signal)
	}
	if wid := <-asked; wid != "playbook-r1" {
		t.Errorf("the worker asked workflow %q", wid)
	}
}
