package local

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/run"
)

// fakeEngine runs no process: each request's shell command says what happens to it.
//
//	"exit N"        ends with exit status N at once
//	"out K=V; ..."  writes K=V to $PLAYBOOK_OUTPUT, then exits 0 (any command not listed here exits 0)
//	"block"         runs until Cancel (ends cancelled) or KillAll (ends killed by SIGKILL); failed
//	                after 10 s if neither comes
//	"refuse"        is refused by Start and Execute with a non-retryable error
//
// Events go to the subscriber from a goroutine of the fake, in order per execution, as the engine's do.
type fakeEngine struct {
	mu      sync.Mutex
	h       engine.Handler
	reqs    []engine.Request
	starts  []string // "Start <step>" or "Execute <step>", in call order
	cancels []string // execution ids
	kills   int
	blocked map[string]chan engine.Status
	started chan string // the ids of blocking executions once started
	wg      sync.WaitGroup
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{blocked: map[string]chan engine.Status{}, started: make(chan string, 64)}
}

func (f *fakeEngine) Start(req engine.Request) (string, error)   { return f.run("Start", req) }
func (f *fakeEngine) Execute(req engine.Request) (string, error) { return f.run("Execute", req) }

func (f *fakeEngine) run(how string, req engine.Request) (string, error) {
	cmd := req.Command.(engine.Shell).Command
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	f.starts = append(f.starts, how+" "+req.Env["PLAYBOOK_STEP_ID"])
	if cmd == "refuse" {
		return "", errors.New("no such program")
	}
	var stop chan engine.Status
	if cmd == "block" {
		stop = make(chan engine.Status, 1)
		f.blocked[req.ID] = stop
	}
	h := f.h
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		now := time.Now()
		h.HandleEvent(engine.Event{Type: engine.EventStarted, ExecutionID: req.ID, Time: now, PID: 4242, Command: cmd})
		res := &engine.Result{ID: req.ID, Status: engine.StatusCompleted, PID: 4242, StartedAt: now}
		switch {
		case stop != nil:
			f.started <- req.ID
			select {
			case res.Status = <-stop:
			case <-time.After(10 * time.Second): // a guard, so that a broken stop fails the test instead of hanging it
				res.Status, res.Error = engine.StatusFailed, "never stopped"
			}
			res.ExitCode = -1
			if res.Status == engine.StatusCompleted {
				res.Signal = int(syscall.SIGKILL)
			}
		case strings.HasPrefix(cmd, "exit "):
			res.ExitCode = int(cmd[5] - '0')
		case strings.HasPrefix(cmd, "out "):
			os.WriteFile(req.Env["PLAYBOOK_OUTPUT"], []byte(strings.ReplaceAll(cmd[4:], "; ", "\n")+"\n"), 0o600)
		}
		res.FinishedAt = time.Now()
		typ := engine.EventCompleted
		if res.Status == engine.StatusCancelled {
			typ = engine.EventCancelled
		}
		h.HandleEvent(engine.Event{Type: typ, ExecutionID: req.ID, Time: res.FinishedAt, Result: res})
	}()
	return req.ID, nil
}

func (f *fakeEngine) Cancel(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels = append(f.cancels, id)
	if c := f.blocked[id]; c != nil {
		delete(f.blocked, id)
		c <- engine.StatusCancelled
		return nil
	}
	return errors.New("not running")
}

func (f *fakeEngine) KillAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills++
	for id, c := range f.blocked {
		delete(f.blocked, id)
		c <- engine.StatusCompleted // killed by SIGKILL
	}
}

func (f *fakeEngine) Cleanup() int { return 0 }
func (f *fakeEngine) OutputBytes(string) (int64, int64, error) {
	return 0, 0, errors.New("no output kept")
}
func (f *fakeEngine) Progress(string) (*engine.Progress, error) {
	return nil, errors.New("no output kept")
}

func (f *fakeEngine) Subscribe(h engine.Handler) func() {
	f.mu.Lock()
	f.h = h
	f.mu.Unlock()
	return func() {}
}

func (f *fakeEngine) Close() error { f.wg.Wait(); return nil }

// runFake runs src with a fake engine, closing it (and waiting for its goroutines) at the end.
func runFake(t *testing.T, ctx context.Context, src string, opts Options) (*Summary, *fakeEngine, *fakeRecorder) {
	t.Helper()
	f := newFakeEngine()
	rec := &fakeRecorder{}
	opts.Engine, opts.Recorder = f, rec
	sum, err := Run(ctx, load(t, src), opts)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return sum, f, rec
}

// TestDriverChain: the driver turns the core's starts into engine requests (the first of a chain
// forked on the run loop's goroutine, the others too since nothing else runs), hands outputs from one
// step to the next, and records every step in order, without a process.
func TestDriverChain(t *testing.T) {
	sum, f, rec := runFake(t, context.Background(), `version: 1
name: chain
steps:
  - id: a
    run: out version=1.2.3
  - id: b
    needs: [a]
    run: echo ${{ steps.a.outputs.version }}
  - id: c
    needs: [b]
    if: steps.a.outputs.version == "9"
    run: "true"
`, Options{})
	if sum.Run.Status != run.StatusSucceeded || sum.Run.ExitCode != 0 {
		t.Fatalf("run %s exit %d (%s)", sum.Run.Status, sum.Run.ExitCode, sum.Run.Error)
	}
	if got := strings.Join(f.starts, ", "); got != "Start a, Start b" {
		t.Errorf("engine calls %q, want Start a, Start b", got)
	}
	if cmd := f.reqs[1].Command.(engine.Shell).Command; cmd != "echo 1.2.3" {
		t.Errorf("b ran %q, want the output of a in it", cmd)
	}
	if f.reqs[0].Env["PLAYBOOK_STEP_ID"] != "a" || f.reqs[0].Env["PLAYBOOK_RUN_ID"] != sum.Run.ID || f.reqs[0].Env["PLAYBOOK_OUTPUT"] == "" {
		t.Errorf("a's env %v lacks the run's variables", f.reqs[0].Env)
	}
	want := "RunStarted a,b,c\nAttemptStarted a 1\nAttemptFinished a 1 succeeded\nStepFinished a succeeded \n" +
		"AttemptStarted b 1\nAttemptFinished b 1 succeeded\nStepFinished b succeeded \n" +
		"StepFinished c skipped condition_false\nRunFinished succeeded 0"
	if got := strings.Join(rec.calls, "\n"); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
}

// TestDriverRefusedStart: a step the engine refuses is an attempt that failed at once: its start
// and end are recorded, a non-retryable refusal is not retried, and its dependents are skipped.
func TestDriverRefusedStart(t *testing.T) {
	sum, f, rec := runFake(t, context.Background(), `version: 1
name: refused
steps:
  - id: a
    retry: {attempts: 3, delay: 1ms}
    run: refuse
  - id: b
    needs: [a]
    run: "true"
`, Options{})
	if sum.Run.Status != run.StatusFailed || sum.Run.ExitCode != 1 || sum.Steps[0].Error != "no such program" {
		t.Fatalf("run %s exit %d, a: %+v", sum.Run.Status, sum.Run.ExitCode, sum.Steps[0])
	}
	if len(f.starts) != 1 {
		t.Errorf("engine calls %v: a refusal that will not go away was retried", f.starts)
	}
	want := "RunStarted a,b\nAttemptStarted a 1\nAttemptFinished a 1 failed\nStepFinished a failed \n" +
		"StepFinished b skipped dependency_failed\nRunFinished failed 1"
	if got := strings.Join(rec.calls, "\n"); got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
}

// TestDriverCancel: the graceful stop reaches the running step through the engine's Cancel, a
// cancelled() step still starts, the rest is skipped, and a SIGTERM cause gives exit status 143.
func TestDriverCancel(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	f := newFakeEngine()
	go func() {
		<-f.started // the blocking step runs
		cancel(&run.Interrupt{Signal: syscall.SIGTERM})
	}()
	rec := &fakeRecorder{}
	sum, err := Run(ctx, load(t, `version: 1
name: cancel
steps:
  - id: long
    run: block
  - id: next
    needs: [long]
    run: "true"
  - id: cleanup
    needs: [long]
    if: cancelled()
    run: "true"
`), Options{Engine: f, Recorder: rec})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run.Status != run.StatusCancelled || sum.Run.ExitCode != 143 {
		t.Fatalf("run %s exit %d, want cancelled 143", sum.Run.Status, sum.Run.ExitCode)
	}
	if len(f.cancels) != 1 || f.kills != 0 {
		t.Errorf("Cancel calls %v, KillAll calls %d: want one Cancel", f.cancels, f.kills)
	}
	got := map[string]string{}
	for _, s := range sum.Steps {
		got[s.StepID] = string(s.Status) + " " + s.Reason
	}
	if got["long"] != "cancelled " || got["next"] != "skipped run_cancelled" || got["cleanup"] != "succeeded " {
		t.Errorf("steps %v", got)
	}
}

// TestDriverKill: the forced stop is one KillAll, and nothing starts after it, not even an always()
// step.
func TestDriverKill(t *testing.T) {
	kill := make(chan struct{})
	f := newFakeEngine()
	go func() {
		<-f.started
		close(kill)
	}()
	rec := &fakeRecorder{}
	sum, err := Run(context.Background(), load(t, `version: 1
name: kill
steps:
  - id: long
    run: block
  - id: always
    needs: [long]
    if: always()
    run: "true"
`), Options{Engine: f, Recorder: rec, Kill: kill})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if f.kills != 1 || len(f.starts) != 1 {
		t.Errorf("KillAll calls %d, starts %v: want one KillAll and no start after it", f.kills, f.starts)
	}
	if sum.Run.Status != run.StatusCancelled || sum.Run.ExitCode != 130 || sum.Steps[1].Reason != run.ReasonRunCancelled {
		t.Errorf("run %s exit %d, always: %s %s", sum.Run.Status, sum.Run.ExitCode, sum.Steps[1].Status, sum.Steps[1].Reason)
	}
}

// TestDriverRunTimeout: the run's timeout, a timer of the driver, stops the running step through
// Cancel, and the run ends timed_out with exit status 124.
func TestDriverRunTimeout(t *testing.T) {
	sum, f, _ := runFake(t, context.Background(), `version: 1
name: timeout
timeout: 20ms
steps:
  - id: long
    run: block
`, Options{})
	if sum.Run.Status != run.StatusTimedOut || sum.Run.ExitCode != 124 || len(f.cancels) != 1 {
		t.Errorf("run %s exit %d, Cancel calls %v", sum.Run.Status, sum.Run.ExitCode, f.cancels)
	}
	if s := sum.Steps[0]; s.Status != run.StatusCancelled || s.Reason != run.ReasonRunTimedOut {
		t.Errorf("long: %s %s, want cancelled run_timed_out", s.Status, s.Reason)
	}
}

// TestDriverStartShownBeforeItsRecordFails: a step's start is reported before it is recorded, so when
// that record fails, the stop it begins (run_cancelling) comes after the step_started of a step that
// did start, and nothing starts after it.
func TestDriverStartShownBeforeItsRecordFails(t *testing.T) {
	f := newFakeEngine()
	rec := &fakeRecorder{failOn: "AttemptStarted a 1"}
	var events []string
	obs := run.ObserverFunc(func(e run.Event) {
		if e.Type == run.EventStepStarted || e.Type == run.EventRunCancelling {
			events = append(events, string(e.Type)+" "+e.StepID)
		}
	})
	sum, err := Run(context.Background(), load(t, `version: 1
name: startfails
max_parallel: 1
steps:
  - id: a
    run: "true"
  - id: b
    run: "true"
`), Options{Engine: f, Recorder: rec, Observer: obs})
	f.Close()
	if !errors.Is(err, ErrRecord) || sum.Run.ExitCode != run.ExitStore {
		t.Fatalf("err %v, exit %d: want ErrRecord and exit 3", err, sum.Run.ExitCode)
	}
	if got := strings.Join(events, ", "); got != "step_started a, run_cancelling " {
		t.Errorf("events %q, want a's start, then the stop", got)
	}
	if s := sum.Steps[1]; s.Status != run.StatusSkipped || s.Reason != run.ReasonRecordError {
		t.Errorf("b: %s %s, want skipped record_error", s.Status, s.Reason)
	}
}
