package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestMain lets the test binary act as a helper process (a fake runner, a concurrent writer, ...)
// when STORE_TEST_HELPER names one; see helpers in crash_test.go and concurrency_test.go.
func TestMain(m *testing.M) {
	if name := os.Getenv("STORE_TEST_HELPER"); name != "" {
		os.Exit(runHelper(name, os.Args[len(os.Args)-1]))
	}
	code := m.Run()
	if code == 0 {
		// Every Store was closed: no writer, pool or watcher goroutine may be left.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var helpers = map[string]func(arg string) error{}

func runHelper(name, arg string) int {
	h, ok := helpers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", name)
		return 2
	}
	if err := h(arg); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
		return 1
	}
	return 0
}

// openTest opens a store in a fresh temporary folder and closes it at the end of the test.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state", "playbook.db"))
}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 26, 7, 4, 52, 123_000_000, time.UTC)

// fixtureRun is a RunRecord with sensible values.
func fixtureRun(id string, steps ...string) *run.Record {
	return &run.Record{
		ID: id, Playbook: "deploy-web", File: "/srv/playbooks/deploy.yaml",
		FileSHA256: strings.Repeat("ab", 32), Params: `{"env":"prod","token":"***"}`,
		StepIDs: steps, Status: run.StatusRunning, StartedAt: t0, User: "alice", Host: "web1",
	}
}

func out(s string) run.Output { return run.Output{Data: []byte(s), Bytes: int64(len(s))} }

// recordStep records one step that ran once through the Recorder, as the scheduler does.
func recordStep(t testing.TB, s *Store, runID, stepID string, status run.Status, exit int, start time.Time, d time.Duration, stdout, stderr string) {
	t.Helper()
	ctx := context.Background()
	cmd := "echo " + stepID
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: runID, StepID: stepID, Attempt: 1, StartedAt: start, Command: cmd}); err != nil {
		t.Fatal(err)
	}
	a := &run.AttemptRecord{RunID: runID, StepID: stepID, Attempt: 1, Status: status, ExitCode: exit,
		StartedAt: start, FinishedAt: start.Add(d), Stdout: out(stdout), Stderr: out(stderr)}
	if err := s.AttemptFinished(ctx, a); err != nil {
		t.Fatal(err)
	}
	st := &run.StepRecord{RunID: runID, StepID: stepID, Status: status, ExitCode: exit, Attempts: 1,
		StartedAt: start, FinishedAt: start.Add(d), Command: cmd, Stdout: out(stdout), Stderr: out(stderr)}
	if err := s.StepFinished(ctx, st); err != nil {
		t.Fatal(err)
	}
}

func finishRun(t testing.TB, s *Store, r *run.Record, status run.Status, exit int, end time.Time) {
	t.Helper()
	r.Status, r.ExitCode, r.FinishedAt = status, exit, end
	if err := s.RunFinished(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// rawDB opens a plain connection to the database file, for checks that bypass the Store.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn(path, false, LockWait))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryString(t testing.TB, db *sql.DB, q string, args ...any) string {
	t.Helper()
	var v sql.NullString
	if err := db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v.String
}

func integrityOK(t testing.TB, path string) {
	t.Helper()
	if got := queryString(t, rawDB(t, path), "PRAGMA integrity_check"); got != "ok" {
		t.Fatalf("integrity_check = %q", got)
	}
}
