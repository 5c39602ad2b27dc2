package engine

import (
	"runtime"
	"testing"
	"time"
)

// waitIdle waits until every live worker of e waits for a job, and returns how many there are.
func waitIdle(t *testing.T, e *Engine) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		live, idle := e.poolCounts()
		if live == idle {
			return live
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d workers idle after 30s", idle, live)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling an observable count, not waiting for a guess
	}
}

// Worker goroutines stay bounded by the slots in use, end after workerIdle without work, and end at
// Close (idle ones included: goleak checks the package's end too).
func TestWorkers(t *testing.T) {
	run := func(e *Engine) {
		ids := make([]string, 4)
		for i := range ids {
			ids[i] = mustExecute(t, e, Request{Command: Exec{Program: "/bin/sh", Args: []string{"-c", "exit 0"}}})
		}
		for _, id := range ids {
			if r := mustWait(t, e, id); r.ExitCode != 0 {
				t.Fatalf("%+v", r)
			}
		}
	}
	e, err := New(Config{MaxConcurrent: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.idle = time.Hour // no worker ends by itself while the rounds run
	// Four slots were used at once: once the workers are back, four at most, whatever the number of
	// executions after.
	for round := range 6 {
		run(e)
		if n := waitIdle(t, e); n < 1 || n > 4 {
			t.Fatalf("round %d: %d workers for 4 slots", round, n)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if live, _ := e.poolCounts(); live != 0 {
		t.Fatalf("%d workers after Close", live)
	}

	// Idle workers end by themselves after e.idle.
	e, err = New(Config{MaxConcurrent: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	run(e)
	for deadline := time.Now().Add(workerIdle + 30*time.Second); ; time.Sleep(time.Millisecond) {
		live, idle := e.poolCounts()
		if live == 0 && idle == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers (%d idle) %v after their last job", live, idle, workerIdle+30*time.Second)
		}
	}

	// Workers that would wait an hour for work end at Close (else it would not return).
	e, err = New(Config{MaxConcurrent: 4})
	if err != nil {
		t.Fatal(err)
	}
	e.idle = time.Hour
	run(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// By the pool's own count: the process's goroutine count moves with other tests' (goleak checks
	// the package's end).
	if live, idle := e.poolCounts(); live != 0 || idle != 0 {
		t.Errorf("%d workers (%d idle) after Close", live, idle)
	}
}
