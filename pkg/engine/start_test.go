package engine

import (
	"context"
	"testing"
)

// Start forks on the caller's goroutine when a slot is free: when it returns, the process has started
// (its started event is out) and only its end is left to wait for.
func TestStartForksBeforeReturning(t *testing.T) {
	e := newEngine(t, Config{MaxConcurrent: 1})
	id, err := e.Start(helperReq("sleep"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := e.Status(id); st != StatusRunning {
		t.Fatalf("status right after Start = %s, want running", st)
	}
	// The only slot is taken: the next one waits, pending, like Execute.
	id2, err := e.Start(helperReq("echo", "second"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := e.Status(id2); st != StatusPending {
		t.Fatalf("status of a Start without a free slot = %s, want pending", st)
	}
	if err := e.Cancel(id); err != nil {
		t.Fatal(err)
	}
	r, err := e.Wait(context.Background(), id2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusCompleted || string(r.Stdout) != "second\n" {
		t.Errorf("the queued execution: %s %q", r.Status, r.Stdout)
	}
	if r, _ := e.Wait(context.Background(), id); r.Status != StatusCancelled {
		t.Errorf("the cancelled one: %s", r.Status)
	}
}

// A Start that cannot fork reports it in the Result, like Execute: the call itself succeeds.
func TestStartSpawnFailure(t *testing.T) {
	e := newEngine(t, Config{})
	id, err := e.Start(Request{Command: Exec{Program: "/bin/sh"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := e.Wait(context.Background(), id); r.Status != StatusCompleted {
		t.Errorf("status %s, error %q", r.Status, r.Error)
	}
}
