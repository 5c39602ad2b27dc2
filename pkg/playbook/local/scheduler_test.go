package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// load parses a playbook written for a test, in its own folder.
func load(t *testing.T, src string) *playbook.Playbook {
	t.Helper()
	pb, err := playbook.Parse(filepath.Join(t.TempDir(), "test.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

// fakeRecorder logs the calls a run makes and can fail one of them.
type fakeRecorder struct {
	mu     sync.Mutex
	calls  []string
	params string
	failOn string // "AttemptFinished a" fails that call
}

func (f *fakeRecorder) log(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if call == f.failOn {
		return errors.New("disk full")
	}
	return nil
}

func (f *fakeRecorder) RunStarted(_ context.Context, r *run.Record) error {
	f.params = r.Params
	return f.log("RunStarted " + strings.Join(r.StepIDs, ","))
}
func (f *fakeRecorder) AttemptStarted(_ context.Context, a *run.AttemptStart) error {
	return f.log(fmt.Sprintf("AttemptStarted %s %d", a.StepID, a.Attempt))
}
func (f *fakeRecorder) AttemptFinished(_ context.Context, a *run.AttemptRecord) error {
	return f.log(fmt.Sprintf("AttemptFinished %s %d %s", a.StepID, a.Attempt, a.Status))
}
func (f *fakeRecorder) StepFinished(_ context.Context, s *run.StepRecord) error {
	return f.log(fmt.Sprintf("StepFinished %s %s %s", s.StepID, s.Status, s.Reason))
}
func (f *fakeRecorder) RunFinished(_ context.Context, r *run.Record) error {
	return f.log(fmt.Sprintf("RunFinished %s %d", r.Status, r.ExitCode))
}

// TestRecorderSequence: the Recorder sees the run start first and finish last, every attempt start
// before its end, and every step exactly once at the end, skipped ones included; params are masked.
func TestRecorderSequence(t *testing.T) {
	pb := load(t, `version: 1
name: seq
max_parallel: 1
params:
  token: {secret: true, default: hunter2}
  who: {default: ops}
steps:
  - id: a
    run: "true"
  - id: b
    needs: [a]
    retry: {attempts: 2, delay: 1ms}
    run: exit 3
  - id: c
    needs: [b]
    run: "true"
`)
	rec := &fakeRecorder{}
	sum, err := Run(context.Background(), pb, Options{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"RunStarted a,b,c",
		"AttemptStarted a 1", "AttemptFinished a 1 succeeded", "StepFinished a succeeded ",
		"AttemptStarted b 1", "AttemptFinished b 1 failed",
		"AttemptStarted b 2", "AttemptFinished b 2 failed", "StepFinished b failed ",
		"StepFinished c skipped dependency_failed",
		"RunFinished failed 1",
	}
	if got := strings.Join(rec.calls, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if rec.params != `{"token":"***","who":"ops"}` {
		t.Errorf("recorded params %s: the secret must be masked", rec.params)
	}
	if sum.Run.Status != run.StatusFailed || sum.Run.ExitCode != 1 || len(sum.Steps) != 3 {
		t.Errorf("summary %+v", sum.Run)
	}
}

// deadlineRecorder checks the context of every write: live, with a deadline about recordTimeout away.
type deadlineRecorder struct {
	fakeRecorder
	t *testing.T
}

func (d *deadlineRecorder) check(ctx context.Context, call string) error {
	left, ok := time.Duration(0), false
	if dl, has := ctx.Deadline(); has {
		left, ok = time.Until(dl), true
	}
	// A write may get as little as a second less than recordTimeout (recordContext shares a context
	// for a second); half of it is slack for a loaded machine and still tells it from a short deadline.
	if !ok || left > recordTimeout || left < recordTimeout/2 || ctx.Err() != nil {
		d.t.Errorf("%s: deadline in %v (set %v), err %v; want a live context with about %v left", call, left, ok, ctx.Err(), recordTimeout)
	}
	return d.log(call)
}

func (d *deadlineRecorder) RunStarted(ctx context.Context, r *run.Record) error {
	return d.check(ctx, "RunStarted")
}
func (d *deadlineRecorder) AttemptStarted(ctx context.Context, a *run.AttemptStart) error {
	return d.check(ctx, "AttemptStarted "+a.StepID)
}
func (d *deadlineRecorder) AttemptFinished(ctx context.Context, a *run.AttemptRecord) error {
	return d.check(ctx, "AttemptFinished "+a.StepID)
}
func (d *deadlineRecorder) StepFinished(ctx context.Context, s *run.StepRecord) error {
	return d.check(ctx, "StepFinished "+s.StepID)
}
func (d *deadlineRecorder) RunFinished(ctx context.Context, r *run.Record) error {
	return d.check(ctx, "RunFinished "+string(r.Status))
}

// TestRecordContext: every write gets a context of its own bound (a stuck database cannot hold the run
// forever) that the run's cancellation does not reach (a cancelled run's final states are written).
func TestRecordContext(t *testing.T) {
	pb := load(t, `version: 1
name: ctx
steps:
  - id: a
    run: "true"
  - id: b
    needs: [a]
    if: always()
    run: "true"
  - id: c
    needs: [b]
    run: "true"
`)
	rec := &deadlineRecorder{t: t}
	if _, err := Run(context.Background(), pb, Options{Recorder: rec}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sum, err := Run(ctx, pb, Options{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run.Status != run.StatusCancelled {
		t.Errorf("run %s, want cancelled", sum.Run.Status)
	}
	want := "RunStarted AttemptStarted a AttemptFinished a StepFinished a AttemptStarted b AttemptFinished b " +
		"StepFinished b AttemptStarted c AttemptFinished c StepFinished c RunFinished succeeded " +
		"RunStarted StepFinished a AttemptStarted b AttemptFinished b StepFinished b StepFinished c RunFinished cancelled"
	if got := strings.Join(rec.calls, " "); got != want {
		t.Errorf("calls\n%s\nwant\n%s", got, want)
	}
}

// flushObserver counts events and flushes, and closes shown at the first Flush after the line "hello".
type flushObserver struct {
	mu      sync.Mutex
	events  int
	flushes int
	hello   bool
	shown   chan struct{}
}

func (o *flushObserver) Observe(e run.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events++
	if e.Type == run.EventStepOutput && string(e.Line) == "hello" {
		o.hello = true
	}
}

func (o *flushObserver) Flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushes++
	if o.hello && o.shown != nil {
		close(o.shown)
		o.shown = nil
	}
}

// TestFlushWhileStepRuns: what the observer buffered is flushed while a step still runs (the step waits
// for the test to see the flush of its first line), and an idle run does not flush again and again.
func TestFlushWhileStepRuns(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	pb := load(t, fmt.Sprintf(`version: 1
name: flush
steps:
  - id: a
    run: "echo hello; while [ ! -e %s ]; do sleep 0.01; done; sleep 0.3; echo bye"
`, gate))
	obs := &flushObserver{shown: make(chan struct{})}
	shown, ended, opened := obs.shown, make(chan struct{}), make(chan struct{})
	go func() {
		defer close(opened)
		select {
		case <-shown:
		case <-ended: // the step failed before it waited
			return
		case <-time.After(30 * time.Second):
			t.Error("the line was not flushed while the step ran")
		}
		os.WriteFile(gate, nil, 0o600)
	}()
	sum, err := Run(context.Background(), pb, Options{Observer: obs})
	close(ended)
	<-opened
	if err != nil || sum.Run.Status != run.StatusSucceeded {
		t.Fatalf("run: %+v, %v", sum, err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// At most one flush per event (and the first): a flush with nothing new, every 10 ms of the 0.3 s
	// wait, would show here.
	if obs.flushes > obs.events+1 {
		t.Errorf("%d flushes for %d events", obs.flushes, obs.events)
	}
}

// TestOutputsAmongStepsWithout: outputs reach later steps and the record when steps that write none
// come between or run beside, when the file is moved into place, and a failed attempt's outputs are
// not its retry's.
func TestOutputsAmongStepsWithout(t *testing.T) {
	dir := t.TempDir()
	pb := load(t, fmt.Sprintf(`version: 1
name: outputs
max_parallel: 2
steps:
  - id: a
    run: echo x=1 >> "$PLAYBOOK_OUTPUT"
  - id: side
    run: "true"
  - id: b
    needs: [a]
    run: "true"
  - id: c
    needs: [b, side]
    run: echo "y=${{ steps.a.outputs.x }}2" >> "$PLAYBOOK_OUTPUT"
  - id: flaky
    needs: [c]
    retry: {attempts: 2, delay: 1ms}
    run: |
      if [ -e %[1]s/tried ]; then echo w=second >> "$PLAYBOOK_OUTPUT"; exit 0; fi
      touch %[1]s/tried; echo w=first >> "$PLAYBOOK_OUTPUT"; exit 1
  - id: d
    needs: [flaky]
    run: printf 'z=3\n' > "$PLAYBOOK_OUTPUT.part" && mv "$PLAYBOOK_OUTPUT.part" "$PLAYBOOK_OUTPUT"
  - id: e
    needs: [d]
    run: test "${{ steps.c.outputs.y }}${{ steps.d.outputs.z }}${{ steps.flaky.outputs.w }}" = 123second
`, dir))
	sum, err := Run(context.Background(), pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, st := range sum.Steps {
		got[st.StepID] = fmt.Sprint(st.Status, " ", st.Outputs)
	}
	want := map[string]string{"a": "succeeded map[x:1]", "side": "succeeded map[]", "b": "succeeded map[]",
		"c": "succeeded map[y:12]", "flaky": "succeeded map[w:second]", "d": "succeeded map[z:3]", "e": "succeeded map[]"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("step %s: %s, want %s", id, got[id], w)
		}
	}
}

// TestOutputsAfterFolderReplaced: a step that removes the runner's outputs folder and makes a new one
// at its path does not cost later steps their outputs.
func TestOutputsAfterFolderReplaced(t *testing.T) {
	pb := load(t, `version: 1
name: replaced
steps:
  - id: x
    run: d=$(dirname "$PLAYBOOK_OUTPUT"); rm -rf "$d" && mkdir -m 700 "$d"
  - id: y
    needs: [x]
    run: echo q=1 >> "$PLAYBOOK_OUTPUT"
  - id: z
    needs: [y]
    run: test "${{ steps.y.outputs.q }}" = 1
`)
	sum, err := Run(context.Background(), pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run.Status != run.StatusSucceeded {
		for _, st := range sum.Steps {
			t.Logf("%s: %s %v %s", st.StepID, st.Status, st.Outputs, st.Error)
		}
		t.Fatalf("run %s, want succeeded", sum.Run.Status)
	}
}

// TestRecordFailureStopsNewSteps: once a write fails, no new step starts but always() ones (a step
// already launched when the failure surfaces goes on: recording happens after the next steps start),
// the run still finishes (and is recorded as far as possible), and Run reports ErrRecord with exit
// status 3.
func TestRecordFailureStopsNewSteps(t *testing.T) {
	pb := load(t, `version: 1
name: rec
max_parallel: 1
steps:
  - id: a
    run: "true"
  - id: b
    needs: [a]
    run: "true"
  - id: c
    needs: [b]
    run: "true"
  - id: cleanup
    needs: [c]
    if: always()
    run: "true"
`)
	rec := &fakeRecorder{failOn: "AttemptFinished a 1 succeeded"}
	sum, err := Run(context.Background(), pb, Options{Recorder: rec})
	if !errors.Is(err, ErrRecord) {
		t.Fatalf("err = %v, want ErrRecord", err)
	}
	if sum == nil || sum.Run.ExitCode != 3 || sum.Run.Status != run.StatusFailed || sum.RecordErr == nil {
		t.Fatalf("summary %+v", sum)
	}
	got := strings.Join(rec.calls, "\n")
	for _, want := range []string{"StepFinished c skipped record_error", "StepFinished cleanup succeeded", "RunFinished failed 3"} {
		if !strings.Contains(got, want) {
			t.Errorf("calls lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "AttemptStarted c 1") {
		t.Errorf("c started after recording failed:\n%s", got)
	}
}

// TestRunStartedFailureRunsNothing: a run that cannot be recorded does not start.
func TestRunStartedFailureRunsNothing(t *testing.T) {
	pb := load(t, "version: 1\nname: x\nsteps:\n  - id: a\n    run: touch ran\n")
	rec := &fakeRecorder{failOn: "RunStarted a"}
	sum, err := Run(context.Background(), pb, Options{Recorder: rec})
	if !errors.Is(err, ErrRecord) || sum != nil {
		t.Fatalf("Run = %v, %v; want no summary and ErrRecord", sum, err)
	}
	if len(rec.calls) != 1 {
		t.Errorf("calls after a failed RunStarted: %v", rec.calls)
	}
}

// TestConditionErrorFailsStep: an if that cannot be evaluated (here: over its memory budget) fails the
// step with reason condition_error instead of crashing the runner.
func TestConditionErrorFailsStep(t *testing.T) {
	pb := load(t, `version: 1
name: cond
steps:
  - id: a
    if: len(1..10000000) > 0
    run: "true"
`)
	sum, err := Run(context.Background(), pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := sum.Steps[0]
	if s.Status != run.StatusFailed || s.Reason != run.ReasonConditionError || !strings.Contains(s.Error, "if len(1..10000000) > 0") {
		t.Errorf("step %+v, want failed with condition_error", s)
	}
	if sum.Run.Status != run.StatusFailed || sum.Run.ExitCode != 1 {
		t.Errorf("run %s/%d, want failed/1", sum.Run.Status, sum.Run.ExitCode)
	}
}

// TestObserverOrder: run_started first, run_finished last, and each step's started event before its
// output and its finished event.
func TestObserverOrder(t *testing.T) {
	pb := load(t, `version: 1
name: obs
steps:
  - id: a
    run: echo one; echo two
  - id: b
    run: echo three
`)
	var events []run.Event
	_, err := Run(context.Background(), pb, Options{Observer: run.ObserverFunc(func(e run.Event) { events = append(events, e) })})
	if err != nil {
		t.Fatal(err)
	}
	if events[0].Type != run.EventRunStarted || events[len(events)-1].Type != run.EventRunFinished {
		t.Fatalf("first %s, last %s", events[0].Type, events[len(events)-1].Type)
	}
	seen := map[string]run.EventType{}
	lines := map[string][]string{}
	for _, e := range events[1 : len(events)-1] {
		last := seen[e.StepID]
		switch e.Type {
		case run.EventStepStarted:
			if last != "" {
				t.Errorf("%s started after %s", e.StepID, last)
			}
		case run.EventStepOutput:
			if last != run.EventStepStarted && last != run.EventStepOutput {
				t.Errorf("%s output after %s", e.StepID, last)
			}
			lines[e.StepID] = append(lines[e.StepID], string(e.Line))
		case run.EventStepFinished:
			if last != run.EventStepStarted && last != run.EventStepOutput {
				t.Errorf("%s finished after %s", e.StepID, last)
			}
		}
		seen[e.StepID] = e.Type
	}
	if strings.Join(lines["a"], ",") != "one,two" || strings.Join(lines["b"], ",") != "three" {
		t.Errorf("lines %v", lines)
	}
}

// A number param has one text form: $PLAYBOOK_PARAM_* and ${{ params.x }} give the same digits (not
// 1e+06 in one and 1000000 in the other), and a secret number is masked wherever it appears, in the
// form the command really holds.
func TestNumberParamOneTextForm(t *testing.T) {
	pb := load(t, `version: 1
name: numbers
params:
  size: {type: number, default: 1000000}
  pin: {type: number, secret: true, default: 2000000}
steps:
  - id: show
    run: echo "env=$PLAYBOOK_PARAM_SIZE expr=${{ params.size }}"; echo "pin ${{ params.pin }}"
`)
	var lines []string
	sum, err := Run(context.Background(), pb, Options{Observer: run.ObserverFunc(func(e run.Event) {
		if e.Type == run.EventStepOutput {
			lines = append(lines, string(e.Line))
		}
	})})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"env=1000000 expr=1000000", "pin ***"}; strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("output %q, want %q", lines, want)
	}
	if cmd := sum.Steps[0].Command; strings.Contains(cmd, "2000000") || !strings.Contains(cmd, "***") {
		t.Errorf("recorded command %q: the secret number must be masked", cmd)
	}
}

// queuedFailRecorder is a Recorder whose writes are made after its calls return, like the store's:
// the write of the call named failAfter fails once its call has returned, so that only Failed tells.
type queuedFailRecorder struct {
	fakeRecorder
	failAfter string
	failed    error
}

func (q *queuedFailRecorder) AttemptStarted(ctx context.Context, a *run.AttemptStart) error {
	err := q.fakeRecorder.AttemptStarted(ctx, a)
	q.mu.Lock()
	if q.failed == nil && "AttemptStarted "+a.StepID == q.failAfter {
		q.failed = errors.New("record start of step " + a.StepID + ": database is locked")
	}
	q.mu.Unlock()
	return err
}

func (q *queuedFailRecorder) Failed() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failed
}

// TestNothingStartsAfterAQueuedWriteFailed: the write of a's start fails after AttemptStarted returned
// (a queued write) while a runs. The next step must not start, even though no Recorder call has
// returned the error: the scheduler asks Failed before each start. b and c are skipped for
// record_error; a is still recorded whole; the run exits 3. Before, every step of the chain started.
func TestNothingStartsAfterAQueuedWriteFailed(t *testing.T) {
	pb := load(t, `version: 1
name: chain
steps:
  - id: a
    run: "true"
  - id: b
    needs: [a]
    run: "true"
  - id: c
    needs: [b]
    run: "true"
`)
	rec := &queuedFailRecorder{failAfter: "AttemptStarted a"}
	var obs eventLog
	sum, err := Run(context.Background(), pb, Options{Recorder: rec, Observer: &obs})
	if !errors.Is(err, ErrRecord) {
		t.Fatalf("Run error %v, want ErrRecord", err)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "AttemptStarted b") || strings.HasPrefix(c, "AttemptStarted c") {
			t.Errorf("%s: a step started after a write had failed (calls: %q)", c, rec.calls)
		}
	}
	if !strings.Contains(strings.Join(rec.calls, "\n"), "StepFinished a succeeded") {
		t.Errorf("a's end was not recorded: %q", rec.calls)
	}
	for _, s := range sum.Steps[1:] {
		if s.Status != run.StatusSkipped || s.Reason != run.ReasonRecordError {
			t.Errorf("step %s: %s %s, want skipped record_error", s.StepID, s.Status, s.Reason)
		}
	}
	if sum.Run.ExitCode != 3 || sum.Run.Status == run.StatusSucceeded {
		t.Errorf("run %s exit %d, want not succeeded, exit 3", sum.Run.Status, sum.Run.ExitCode)
	}
	if !obs.has(run.EventRunCancelling) {
		t.Error("no run_cancelling event")
	}
}

// stallRecorder is a Recorder whose writes stall (another process holds the lock) from the moment a's
// start is recorded until the scheduler has asked Stalled holdPolls times since; then they go through.
type stallRecorder struct {
	fakeRecorder
	stalled   bool
	asked     int
	heldCalls []string // the calls made when the stall ended
}

const holdPolls = 5

func (r *stallRecorder) AttemptStarted(ctx context.Context, a *run.AttemptStart) error {
	err := r.fakeRecorder.AttemptStarted(ctx, a)
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.StepID == "a" {
		r.stalled = true
	}
	return err
}

func (r *stallRecorder) Stalled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stalled {
		return false
	}
	if r.asked++; r.asked < holdPolls {
		return true
	}
	r.stalled = false
	r.heldCalls = append([]string(nil), r.calls...)
	return false
}

// TestNothingStartsWhileWritesStall: while the Recorder's writes wait for another process's lock
// (Stalled), no step starts, however long the wait; once they go through, the run goes on and ends
// well. The scheduler must keep asking while it holds steps back (else the run would hang).
func TestNothingStartsWhileWritesStall(t *testing.T) {
	pb := load(t, `version: 1
name: chain
max_parallel: 2
steps:
  - id: a
    run: "true"
  - id: b
    needs: [a]
    run: "true"
  - id: c
    run: "true"
`)
	rec := &stallRecorder{}
	sum, err := Run(context.Background(), pb, Options{Recorder: rec})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rec.asked < holdPolls {
		t.Fatalf("Stalled asked %d times, want the scheduler to hold steps through %d polls", rec.asked, holdPolls)
	}
	for _, c := range rec.heldCalls {
		if strings.HasPrefix(c, "AttemptStarted b") {
			t.Errorf("b started while the writes stalled (calls then: %q)", rec.heldCalls)
		}
	}
	if sum.Run.Status != run.StatusSucceeded {
		t.Errorf("run %s, want succeeded once the writes went through", sum.Run.Status)
	}
	for _, s := range sum.Steps {
		if s.Status != run.StatusSucceeded {
			t.Errorf("step %s: %s, want succeeded", s.StepID, s.Status)
		}
	}
}

// TestFailedRunFinishedIsNotSuccess: every step succeeded but the run's end could not be recorded:
// exit status 3, and the summary (what the CLI prints) must not say succeeded.
func TestFailedRunFinishedIsNotSuccess(t *testing.T) {
	pb := load(t, `version: 1
name: one
steps:
  - id: a
    run: "true"
`)
	rec := &fakeRecorder{failOn: "RunFinished succeeded 0"}
	sum, err := Run(context.Background(), pb, Options{Recorder: rec})
	if !errors.Is(err, ErrRecord) {
		t.Fatalf("Run error %v, want ErrRecord", err)
	}
	if sum.Run.ExitCode != 3 || sum.Run.Status == run.StatusSucceeded || !strings.Contains(sum.Run.Error, "could not be recorded") {
		t.Errorf("summary: %s exit %d (%s), want not succeeded, exit 3, and why", sum.Run.Status, sum.Run.ExitCode, sum.Run.Error)
	}
}

// eventLog is an Observer that keeps the event types.
type eventLog struct {
	mu    sync.Mutex
	types []run.EventType
}

func (l *eventLog) Observe(e run.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.types = append(l.types, e.Type)
}

func (l *eventLog) has(t run.EventType) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.types {
		if x == t {
			return true
		}
	}
	return false
}
