package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// holdLock takes the database's write lock (BEGIN IMMEDIATE) on a connection of its own and returns
// how to let it go.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db := rawDB(t, path)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			if err := tx.Rollback(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

// A batch that could not get the lock within LockWait is not dropped: Failed reports it at once, and
// once the lock is free its writes are made with the next ones, so the steps are recorded whole. The
// run is then stored failed with exit code 3 (its runner was told of the failure), and RunFinished
// says that every write was made on a later try. Before, the batch was lost, the run stored succeeded
// with its steps interrupted, and RunFinished returned nil: the runner exited 0.
func TestLockedBatchIsWrittenLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pb.db")
	var told atomic.Int32
	s, err := OpenWith(context.Background(), path, Options{LockWait: 200 * time.Millisecond, Waiting: func(string) { told.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := fixtureRun("r1", "a", "b")
	if err := s.RunStarted(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	release := holdLock(t, path)
	recordStep(t, s, "r1", "a", run.StatusSucceeded, 0, t0, time.Second, "out a", "")
	deadline := time.Now().Add(time.Minute)
	for s.Failed() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no failure reported while the lock is held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var lerr *LockError
	if !errors.As(s.Failed(), &lerr) {
		t.Errorf("Failed() = %v, want a *LockError", s.Failed())
	}
	release()
	// The calls report the earlier failure; their writes are queued all the same.
	b := t0.Add(time.Second)
	ctx := context.Background()
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: "r1", StepID: "b", Attempt: 1, StartedAt: b, PID: 0}); !errors.As(err, &lerr) {
		t.Errorf("AttemptStarted after the failure: %v, want the earlier *LockError", err)
	}
	s.AttemptFinished(ctx, &run.AttemptRecord{RunID: "r1", StepID: "b", Attempt: 1, Status: run.StatusSucceeded, StartedAt: b, FinishedAt: b.Add(time.Second), Stdout: out("out b")})
	s.StepFinished(ctx, &run.StepRecord{RunID: "r1", StepID: "b", Status: run.StatusSucceeded, Attempts: 1, StartedAt: b, FinishedAt: b.Add(time.Second), Stdout: out("out b")})
	r.Status, r.ExitCode, r.FinishedAt = run.StatusSucceeded, 0, t0.Add(3*time.Second)
	err = s.RunFinished(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "made on a later try") {
		t.Errorf("RunFinished = %v, want the earlier failure, every write made on a later try", err)
	}
	if got := queryString(t, s.w, `SELECT group_concat(step_id || ':' || status || ':' || attempts, ' ') FROM steps WHERE run_id = 'r1'`); got != "a:succeeded:1 b:succeeded:1" {
		t.Errorf("steps: %s", got)
	}
	if got := queryString(t, s.w, `SELECT status || ':' || exit_code FROM runs WHERE id = 'r1'`); got != "failed:3" {
		t.Errorf("run: %s, want failed:3", got)
	}
	if told.Load() != 1 {
		t.Errorf("Waiting called %d times, want once", told.Load())
	}
}

// The run's end cannot be written (the lock stays held): RunFinished fails, naming what is missing,
// and leaves a note in the run's lock file; the next Open's crash recovery marks the run interrupted
// and says its runner exited with status 3 before it could record the end, not that it died.
func TestRecoveryOfARunnerThatCouldNotRecordItsEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pb.db")
	s, err := OpenWith(context.Background(), path, Options{LockWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := fixtureRun("r1", "a")
	if err := s.RunStarted(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	release := holdLock(t, path)
	r.Status, r.ExitCode, r.FinishedAt = run.StatusSucceeded, 0, t0.Add(time.Second)
	err = s.RunFinished(context.Background(), r)
	var lerr *LockError
	if !errors.As(err, &lerr) || !strings.Contains(err.Error(), "record end of run r1") {
		t.Fatalf("RunFinished = %v, want a *LockError naming the run's end", err)
	}
	release()

	s2 := openAt(t, path)
	got := s2.Recovered()
	if len(got) != 1 || got[0].ID != "r1" || !strings.Contains(got[0].Exited, "stayed locked") {
		t.Fatalf("Recovered = %+v, want r1 with the runner's note", got)
	}
	msg := queryString(t, s2.w, `SELECT error FROM runs WHERE id = 'r1'`)
	if strings.Contains(msg, "died") || !strings.Contains(msg, "exited (status 3) before it could record the end of the run") {
		t.Errorf("run error %q", msg)
	}
	if st := queryString(t, s2.w, `SELECT error FROM steps WHERE run_id = 'r1'`); strings.Contains(st, "died") {
		t.Errorf("step error %q", st)
	}
}
