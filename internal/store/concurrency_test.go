//go:build linux

package store

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

func init() {
	helpers["writer"] = concurrentWriter
}

const writerSteps = 200

// concurrentWriter opens the database (racing the others on a fresh file), prints "ready 0", waits
// for a line on stdin so that every writer starts at once, then records a run of writerSteps steps and
// does writerSteps read-then-write transactions on the counter table (SELECT max, INSERT max+1).
func concurrentWriter(dbPath string) error {
	ctx := context.Background()
	s, err := Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS counter (n INTEGER NOT NULL UNIQUE, pid INTEGER)`); err != nil {
		return err
	}
	fmt.Println("ready 0")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	id := fmt.Sprintf("writer-%d", os.Getpid())
	steps := make([]string, writerSteps)
	for i := range steps {
		steps[i] = fmt.Sprintf("step%03d", i)
	}
	r := fixtureRun(id, steps...)
	r.StartedAt = time.Now()
	if err := s.RunStarted(ctx, r); err != nil {
		return err
	}
	for i, st := range steps {
		now := time.Now()
		if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: id, StepID: st, Attempt: 1, StartedAt: now, PID: 0}); err != nil {
			return err
		}
		if err := s.AttemptFinished(ctx, &run.AttemptRecord{RunID: id, StepID: st, Attempt: 1, Status: run.StatusSucceeded, StartedAt: now, FinishedAt: time.Now(), Stdout: out("ok\n")}); err != nil {
			return err
		}
		if err := s.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: st, Status: run.StatusSucceeded, Attempts: 1, StartedAt: now, FinishedAt: time.Now(), Stdout: out("ok\n")}); err != nil {
			return err
		}
		// The read-then-write transaction: only safe because BEGIN IMMEDIATE takes the write lock
		// before the SELECT (a deferred transaction would fail with SQLITE_BUSY on the INSERT).
		err := s.writeTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(n), 0) FROM counter`).Scan(&n); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO counter (n, pid) VALUES (?, ?)`, n+1, os.Getpid())
			return err
		})
		if err != nil {
			return fmt.Errorf("counter %d: %w", i, err)
		}
	}
	r.Status, r.FinishedAt = run.StatusSucceeded, time.Now()
	return s.RunFinished(ctx, r)
}

// TestConcurrentWriterProcesses: eight processes write one database at once; all succeed, nothing is
// lost, and nobody sees "database is locked".
func TestConcurrentWriterProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db") // fresh: the writers also race on creating the schema
	const procs = 8
	hs := make([]*helperProc, procs)
	for i := range hs {
		hs[i] = startHelper(t, "writer", path)
	}
	for _, h := range hs {
		h.expect(t, "ready")
	}
	start := time.Now()
	for _, h := range hs {
		fmt.Fprintln(h.stdin, "go")
	}
	for i, h := range hs {
		err := h.cmd.Wait()
		if strings.Contains(h.stderr.String(), "locked") || strings.Contains(h.stderr.String(), "busy") {
			t.Errorf("writer %d: %s", i, h.stderr)
		}
		if err != nil {
			t.Errorf("writer %d: %v: %s", i, err, h.stderr)
		}
	}
	t.Logf("%d processes x (%d recorded steps + %d read-then-write transactions): %v", procs, writerSteps, writerSteps, time.Since(start))
	db := rawDB(t, path)
	want := map[string]string{
		`SELECT count(*) FROM runs WHERE status = 'succeeded'`:                   fmt.Sprint(procs),
		`SELECT count(*) FROM steps WHERE status = 'succeeded'`:                  fmt.Sprint(procs * writerSteps),
		`SELECT count(*) FROM attempts`:                                          fmt.Sprint(procs * writerSteps),
		`SELECT count(*) FROM counter`:                                           fmt.Sprint(procs * writerSteps),
		`SELECT count(DISTINCT n) = count(*) AND max(n) = count(*) FROM counter`: "1",
		`SELECT count(DISTINCT pid) FROM counter`:                                fmt.Sprint(procs),
	}
	for q, w := range want {
		if got := queryString(t, db, q); got != w {
			t.Errorf("%s = %s, want %s", q, got, w)
		}
	}
	integrityOK(t, path)
}
