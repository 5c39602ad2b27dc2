package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/run"
)

// TestRecoveryDetachesDistributedRun: the process that submitted a run on Temporal dies with kill -9.
// The run goes on in its workflow, so crash recovery marks it detached (not interrupted), leaves its
// steps and attempts as they were and kills nothing; an attach then adopts it, and the records that
// follow complete it.
func TestRecoveryDetachesDistributedRun(t *testing.T) {
	becomeSubreaper(t)
	path := filepath.Join(t.TempDir(), "p.db")
	openAt(t, path).Close()
	h := startHelper(t, "runner", path, "STORE_TEST_RUN=remote", "STORE_TEST_WORKFLOW=playbook-remote")
	pgid := h.expect(t, "ready")
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL); reapOrphan(t, pgid) })
	h.killAndReap()

	s := openAt(t, path) // recovery runs here
	rec := s.Recovered()
	if len(rec) != 1 || rec[0].ID != "remote" || !rec[0].Detached || rec[0].Killed != 0 {
		t.Fatalf("Recovered() = %+v, want run remote detached with nothing killed", rec)
	}
	if !proc.GroupAlive(pgid) {
		t.Error("recovery killed a process group of a detached run")
	}
	db := rawDB(t, path)
	for q, want := range map[string]string{
		`SELECT status FROM runs WHERE id = 'remote'`:                                  "detached",
		`SELECT finished_at IS NULL AND exit_code IS NULL AND error IS NULL FROM runs`: "1",
		`SELECT group_concat(status) FROM (SELECT status FROM steps ORDER BY seq)`:     "running,pending",
		`SELECT status FROM attempts`:                                                  "running",
		`SELECT workflow_id FROM runs`:                                                 "playbook-remote",
	} {
		if got := queryString(t, db, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}

	// A second recovery (another command's Open) changes nothing.
	if again := openAt(t, path).Recovered(); len(again) != 0 {
		t.Errorf("a second recovery found %+v", again)
	}

	ctx := context.Background()
	if err := s.Adopt(ctx, "remote"); err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if got := queryString(t, db, `SELECT status || ' ' || owner_pid FROM runs`); got != "running "+itoa(syscall.Getpid()) {
		t.Errorf("after Adopt: status, owner = %q, want running and this process", got)
	}
	// While this Store follows it, another process (an Open here is another set of locks) cannot.
	other := openAt(t, path)
	if len(other.Recovered()) != 0 {
		t.Errorf("recovery took an adopted run: %+v", other.Recovered())
	}
	if err := other.Adopt(ctx, "remote"); !errors.Is(err, ErrFollowed) {
		t.Errorf("a second Adopt = %v, want ErrFollowed", err)
	}

	end := time.Now()
	if err := s.AttemptFinished(ctx, &run.AttemptRecord{RunID: "remote", StepID: "a", Attempt: 1, Status: run.StatusSucceeded,
		StartedAt: end, FinishedAt: end, Worker: "w2"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := s.StepFinished(ctx, &run.StepRecord{RunID: "remote", StepID: id, Status: run.StatusSucceeded, Attempts: 1,
			StartedAt: end, FinishedAt: end, Worker: "w2"}); err != nil {
			t.Fatal(err)
		}
	}
	r := fixtureRun("remote")
	r.Status, r.FinishedAt = run.StatusSucceeded, end
	if err := s.RunFinished(ctx, r); err != nil {
		t.Fatalf("RunFinished of an adopted run: %v", err)
	}
	if got := queryString(t, db, `SELECT status || ' ' || (SELECT group_concat(worker) FROM steps) || ' ' ||
		(SELECT worker FROM attempts) FROM runs`); got != "succeeded w2,w2 w2" {
		t.Errorf("the run's end and workers = %q", got)
	}
	if err := s.Adopt(ctx, "remote"); err == nil || !strings.Contains(err.Error(), "already finished") {
		t.Errorf("Adopt of a finished run = %v", err)
	}
}

// TestDetachedRunCompletesWithoutAdopt: records that reach a detached run complete it, even when the
// writer did not adopt it first (a batch written by a process that opened the database before).
func TestDetachedRunCompletesWithoutAdopt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	s := openAt(t, path)
	r := fixtureRun("r1", "a")
	r.WorkflowID, r.WorkflowRunID = "playbook-r1", "0195-abc"
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	if _, err := db.Exec(`UPDATE runs SET status = 'detached' WHERE id = 'r1'`); err != nil {
		t.Fatal(err)
	}
	r.Status, r.FinishedAt = run.StatusFailed, t0.Add(time.Minute)
	if err := s.RunFinished(ctx, r); err != nil {
		t.Fatalf("RunFinished of a detached run: %v", err)
	}
	got, err := s.Run(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != run.StatusFailed || got.WorkflowID != "playbook-r1" || got.WorkflowRunID != "0195-abc" {
		t.Errorf("Run = status %s, workflow %q %q", got.Status, got.WorkflowID, got.WorkflowRunID)
	}

	// A local run marked detached by hand stays refused: only runs on Temporal are detached.
	local := fixtureRun("r2", "a")
	if err := s.RunStarted(ctx, local); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE runs SET status = 'detached' WHERE id = 'r2'`); err != nil {
		t.Fatal(err)
	}
	local.Status = run.StatusSucceeded
	if err := s.RunFinished(ctx, local); err == nil {
		t.Error("RunFinished completed a local run marked detached")
	}
	if err := s.Adopt(ctx, "r2"); err == nil || !strings.Contains(err.Error(), "local run") {
		t.Errorf("Adopt of a local run = %v", err)
	}
}

// TestRunSeen: a worker records a run on Temporal once, detached, with a row for each step it ran, in
// the order it first saw them; a run without a workflow id is refused.
func TestRunSeen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	s := openAt(t, path)
	r := fixtureRun("r1")
	r.WorkflowID = "playbook-r1"
	for _, step := range []string{"b", "a", "b"} {
		if err := s.RunSeen(ctx, r, step); err != nil {
			t.Fatalf("RunSeen %s: %v", step, err)
		}
	}
	db := rawDB(t, path)
	if got := queryString(t, db, `SELECT status || ' ' || workflow_id || ' ' || (SELECT group_concat(step_id || seq) FROM
		(SELECT step_id, seq FROM steps ORDER BY seq)) FROM runs`); got != "detached playbook-r1 b1,a2" {
		t.Errorf("runs and steps = %q", got)
	}
	if err := s.RunSeen(ctx, fixtureRun("r2"), "a"); err == nil || !strings.Contains(err.Error(), "no workflow id") {
		t.Errorf("RunSeen of a local run = %v", err)
	}
}
