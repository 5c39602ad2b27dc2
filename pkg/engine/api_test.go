package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Execute returns while the execution runs: the helper sleeps for an hour, so an Execute that waited
// for it would not return (the 30 s limit only turns that hang into a failure).
func TestExecuteReturnsAtOnce(t *testing.T) {
	e := newEngine(t, Config{})
	ids := make(chan string, 1)
	go func() {
		id, err := e.Execute(helperReq("sleep"))
		if err != nil {
			t.Errorf("Execute: %v", err)
		}
		ids <- id
	}()
	var id string
	select {
	case id = <-ids:
	case <-time.After(30 * time.Second):
		t.Fatal("Execute did not return while its execution ran")
	}
	if st, _ := e.Status(id); st.Terminal() {
		t.Errorf("status %s right after Execute", st)
	}
	e.Kill(id)
}

func TestNotFound(t *testing.T) {
	e := newEngine(t, Config{})
	ctx := context.Background()
	_, err1 := e.Status("nope")
	_, err2 := e.Result("nope")
	_, err3 := e.Wait(ctx, "nope")
	err4 := e.Cancel("nope")
	err5 := e.Kill("nope")
	for i, err := range []error{err1, err2, err3, err4, err5} {
		if !errors.Is(err, ErrNotFound) || CodeOf(err) != CodeNotFound || IsRetryable(err) {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

func TestResultBeforeCompletion(t *testing.T) {
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	id := mustExecute(t, e, helperReq("sleep"))
	rec.waitLine(t, id, "ready")
	_, err := e.Result(id)
	if !errors.Is(err, ErrNotFinished) || CodeOf(err) != CodeNotFinished {
		t.Fatalf("Result while running: %v", err)
	}
	if st, _ := e.Status(id); st != StatusRunning {
		t.Fatalf("status %s", st)
	}
	e.Cancel(id)
	r := mustWait(t, e, id)
	if got, err := e.Result(id); err != nil || got != r {
		t.Fatalf("Result after Wait: %v %v", got, err)
	}
}

func TestWaitBoundedByContext(t *testing.T) {
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	id := mustExecute(t, e, helperReq("sleep"))
	rec.waitLine(t, id, "ready")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Wait(ctx, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v", err)
	}
	if st, _ := e.Status(id); st != StatusRunning {
		t.Fatalf("Wait's context must not touch the execution; status %s", st)
	}
	e.Cancel(id)
}

func TestRunCancelsOnContext(t *testing.T) {
	e := newEngine(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	e.Subscribe(HandlerFunc(func(ev Event) {
		if ev.Type == EventStdout && string(ev.Line) == "ready" {
			cancel()
		}
	}))
	r, err := e.Run(ctx, helperReq("sleep"))
	if err != nil {
		t.Fatal(err)
	}
	assertStatus(t, r, StatusCancelled)
	if !contains(r.Stdout, "ready") || r.Signal != 15 {
		t.Fatalf("stdout %q signal %d", r.Stdout, r.Signal)
	}
	// An already cancelled context: the execution never starts.
	r, err = e.Run(ctx, helperReq("echo", "x"))
	if err != nil || r.Status != StatusCancelled || r.PID != 0 {
		t.Fatalf("%+v %v", r, err)
	}
}

// With a limit of 2, a third execution waits pending until a slot frees; cancelled, it never starts.
func TestConcurrencyLimit(t *testing.T) {
	e := newEngine(t, Config{MaxConcurrent: 2})
	rec := newRecorder(e)
	a := mustExecute(t, e, helperReq("sleep"))
	b := mustExecute(t, e, helperReq("sleep"))
	c := mustExecute(t, e, helperReq("sleep"))
	d := mustExecute(t, e, helperReq("echo", "never"))
	rec.waitLine(t, a, "ready")
	rec.waitLine(t, b, "ready")
	for _, id := range []string{c, d} {
		if st, _ := e.Status(id); st != StatusPending {
			t.Fatalf("third/fourth execution %s", st)
		}
	}
	if n := e.Running(); n != 2 {
		t.Fatalf("Running() = %d", n)
	}
	if err := e.Cancel(d); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.Status(d); st != StatusCancelled {
		t.Fatalf("cancelled pending: %s", st)
	}
	e.Cancel(a)
	rec.waitLine(t, c, "ready") // a's slot went to c, not to the cancelled d
	if st, _ := e.Status(c); st != StatusRunning {
		t.Fatalf("c: %s", st)
	}
	e.Cancel(b)
	e.Cancel(c)
	for _, id := range []string{a, b, c} {
		mustWait(t, e, id)
	}
	r := mustWait(t, e, d)
	if r.PID != 0 || !r.StartedAt.IsZero() || r.ExitCode != -1 || r.ErrorCode != CodeCancelled {
		t.Fatalf("cancelled pending execution: %+v", r)
	}
	for _, ev := range rec.of(d) {
		if ev.Type == EventStarted || ev.Type == EventStdout {
			t.Fatalf("cancelled pending execution started: %+v", ev)
		}
	}
	if n := e.Running(); n != 0 {
		t.Fatalf("Running() = %d at the end", n)
	}
}

// TestSerialMode: with MaxConcurrent 1, executions never overlap and run in submission order.
func TestSerialMode(t *testing.T) {
	e := newEngine(t, Config{MaxConcurrent: 1})
	var ids []string
	for i := range 6 {
		ids = append(ids, mustExecute(t, e, helperReq("echo", fmt.Sprint(i))))
	}
	var prev *Result
	for _, id := range ids {
		r := mustWait(t, e, id)
		assertStatus(t, r, StatusCompleted)
		if prev != nil && r.StartedAt.Before(prev.FinishedAt) {
			t.Fatalf("%s started at %v before the previous one finished at %v", id, r.StartedAt, prev.FinishedAt)
		}
		prev = r
	}
}

func TestMaxPending(t *testing.T) {
	e := newEngine(t, Config{MaxConcurrent: 1, MaxPending: 1})
	a := mustExecute(t, e, helperReq("sleep"))
	b := mustExecute(t, e, helperReq("echo", "b"))
	_, err := e.Execute(helperReq("echo", "c"))
	if !errors.Is(err, ErrConcurrencyLimit) || !IsRetryable(err) {
		t.Fatalf("third Execute: %v", err)
	}
	var ee *Error
	if errors.As(err, &ee); ee.Limit != 1 {
		t.Errorf("limit %d", ee.Limit)
	}
	if n := len(e.List()); n != 2 {
		t.Errorf("the refused request was registered: %d executions", n)
	}
	e.Cancel(a)
	if r := mustWait(t, e, b); r.Status != StatusCompleted {
		t.Fatalf("b: %s", r.Status)
	}
}

func TestListAndRunning(t *testing.T) {
	e := newEngine(t, Config{MaxConcurrent: 1})
	rec := newRecorder(e)
	done := mustRun(t, e, helperReq("echo", "x"))
	req := helperReq("sleep")
	req.Metadata.Tags = map[string]string{"step": "s"}
	running := mustExecute(t, e, req)
	pending := mustExecute(t, e, helperReq("echo", "y"))
	rec.waitLine(t, running, "ready")
	list := e.List()
	if len(list) != 3 {
		t.Fatalf("List: %+v", list)
	}
	want := []struct {
		id string
		st Status
	}{{done.ID, StatusCompleted}, {running, StatusRunning}, {pending, StatusPending}}
	for i, w := range want {
		s := list[i]
		if s.ID != w.id || s.Status != w.st || s.SubmittedAt.IsZero() {
			t.Errorf("summary %d: %+v, want %s %s", i, s, w.id, w.st)
		}
	}
	if list[1].StartedAt.IsZero() || list[1].Duration <= 0 || list[1].Metadata.Tags["step"] != "s" {
		t.Errorf("running summary %+v", list[1])
	}
	if !list[2].StartedAt.IsZero() {
		t.Errorf("pending summary has a start time")
	}
	if list[0].Duration != done.Duration {
		t.Errorf("finished summary duration %s, want %s", list[0].Duration, done.Duration)
	}
	if e.Running() != 1 {
		t.Errorf("Running() = %d", e.Running())
	}
	e.Cancel(running)
}

func TestCloseStopsEverything(t *testing.T) {
	e, err := New(Config{MaxConcurrent: 1, StopGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(e)
	running := mustExecute(t, e, helperReq("ignore-term"))
	pending := mustExecute(t, e, helperReq("echo", "never"))
	rec.waitLine(t, running, "ready")
	r0, _ := e.Status(running)
	if r0 != StatusRunning {
		t.Fatal(r0)
	}
	var wg sync.WaitGroup
	for range 2 { // concurrent Close calls both wait
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	r, _ := e.Result(running)
	p, _ := e.Result(pending)
	if r.Status != StatusCancelled || p.Status != StatusCancelled || p.PID != 0 {
		t.Fatalf("after Close: %s, %s (pid %d)", r.Status, p.Status, p.PID)
	}
	waitGroupGone(t, r.PID, 10*time.Second)
	if _, err := e.Execute(helperReq("echo", "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Execute after Close: %v", err)
	}
	if ev := rec.of(running); !ev[len(ev)-1].Type.Terminal() {
		t.Fatal("the subscriber did not get the terminal event before Close returned")
	}
	e.Subscribe(Discard)() // harmless after Close
}

func TestCleanupByCount(t *testing.T) {
	e := newEngine(t, Config{MaxKept: 2, MaxConcurrent: 1})
	var ids []string
	for i := range 5 {
		ids = append(ids, mustRun(t, e, helperReq("echo", fmt.Sprint(i))).ID)
	}
	rec := newRecorder(e)
	running := mustExecute(t, e, helperReq("sleep"))
	rec.waitLine(t, running, "ready")
	if n := e.Cleanup(); n != 3 {
		t.Fatalf("Cleanup removed %d, want 3", n)
	}
	for i, id := range ids {
		_, err := e.Status(id)
		if removed := i < 3; removed != errors.Is(err, ErrNotFound) {
			t.Errorf("execution %d: %v", i, err)
		}
	}
	if st, err := e.Status(running); err != nil || st != StatusRunning {
		t.Fatalf("running execution touched by cleanup: %s %v", st, err)
	}
	if n := e.Cleanup(); n != 0 {
		t.Fatalf("second pass removed %d", n)
	}
	e.Cancel(running)
}

func TestCleanupByAge(t *testing.T) {
	e := newEngine(t, Config{Retention: time.Nanosecond})
	r := mustRun(t, e, helperReq("echo", "x"))
	rec := newRecorder(e)
	running := mustExecute(t, e, helperReq("sleep"))
	rec.waitLine(t, running, "ready")
	if n := e.Cleanup(); n != 1 {
		t.Fatalf("removed %d, want 1", n)
	}
	if _, err := e.Result(r.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed id: %v", err)
	}
	e.Cancel(running)
	mustWait(t, e, running)

	keep := newEngine(t, Config{Retention: time.Hour})
	mustRun(t, keep, helperReq("echo", "x"))
	if n := keep.Cleanup(); n != 0 {
		t.Fatalf("removed a fresh execution")
	}
}

func TestAutoCleanup(t *testing.T) {
	e := newEngine(t, Config{AutoCleanup: true, CleanupInterval: 5 * time.Millisecond, Retention: time.Nanosecond})
	r := mustRun(t, e, helperReq("echo", "x"))
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if _, err := e.Status(r.ID); errors.Is(err, ErrNotFound) {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("auto cleanup never removed the execution")
		}
	}
}

// A cleanup pass runs alongside every other call without blocking or racing them.
func TestCleanupConcurrentWithCalls(t *testing.T) {
	e := newEngine(t, Config{MaxKept: 1, MaxConcurrent: 4})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				e.Cleanup()
				e.List()
			}
		}
	}()
	for i := range 40 {
		r, err := e.Run(ctxT(t), helperReq("echo", fmt.Sprint(i)))
		if err != nil || r.Status != StatusCompleted {
			t.Fatalf("%v %v", r, err)
		}
		e.Status(r.ID)
	}
	close(stop)
	wg.Wait()
}
