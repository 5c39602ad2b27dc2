package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/run"
)

// ErrFollowed is returned (wrapped) by Adopt for a run whose submitter, or an earlier attach, is alive
// on this machine and still follows it.
var ErrFollowed = errors.New("the run is followed by a live process")

// Adopt makes this Store, in place of the process that submitted it, the owner of a run on Temporal
// (a run with a workflow id): it takes the run's lock file and records this process as the run's
// owner, status running again if crash recovery had marked it detached. The records that come next
// (RunFinished included) are then this process's to write, and should it die in turn, crash recovery
// marks the run detached again.
//
// A run recorded on this machine whose lock is held (its submitter, or another attach, is alive) is
// not taken: the error wraps ErrFollowed and names the process. A run recorded by another machine
// cannot be judged from here and is taken. A local run, or a run already finished, gives an error that
// says so; a run not in the database, a *NotFoundError.
func (s *Store) Adopt(ctx context.Context, runID string) error {
	r, err := s.Run(ctx, runID)
	if err != nil {
		return fmt.Errorf("attach to run %s: %w", runID, err)
	}
	if r.WorkflowID == "" {
		return fmt.Errorf("attach to run %s: it is a local run, not one on Temporal: there is nothing to follow", runID)
	}
	if r.Status != run.StatusRunning && r.Status != run.StatusDetached {
		return fmt.Errorf("attach to run %s: it has already finished (%s)", runID, r.Status)
	}
	if s.owns(runID) {
		return nil
	}
	if err := os.MkdirAll(s.lockDir(), 0o700); err != nil {
		return fmt.Errorf("attach to run %s: create lock folder: %w", runID, err)
	}
	// CreateLock first, as RunStarted does, so that no other process's sweep of stale lock files can
	// take the new file before it is locked; a file already there is the dead (or live) owner's.
	lock, err := proc.CreateLock(s.lockPath(runID))
	if errors.Is(err, os.ErrExist) {
		lock, err = proc.TryLock(s.lockPath(runID), false)
	}
	if errors.Is(err, proc.ErrLocked) {
		owners, _ := s.RunOwners(ctx, []string{runID})
		return fmt.Errorf("attach to run %s: %w (pid %d on %s): wait for it to end, or stop it first", runID, ErrFollowed,
			owners[runID].PID, owners[runID].Host)
	}
	if err != nil {
		return fmt.Errorf("attach to run %s: %w", runID, err)
	}
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'running', owner_pid = ?, owner_start = ?,
				owner_host = ?, owner_boot_id = ?
			WHERE id = ? AND workflow_id IS NOT NULL AND status IN ('running', 'detached')`,
			s.pid, nullPositive(int64(s.pidStart)), s.host, nullString(s.bootID), runID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errors.New("it finished meanwhile")
		}
		return nil
	})
	if err != nil {
		_ = lock.Release(false)
		return fmt.Errorf("attach to run %s: %w", runID, err)
	}
	s.mu.Lock()
	s.locks[runID] = lock
	s.mu.Unlock()
	return nil
}

// RunSeen records, in a worker's database, a run on Temporal of which the worker is about to run an
// attempt of step stepID: the run, unless it is there already, and the step, unless it is. The run is
// stored detached: this database holds only the attempts that ran on this machine (written next with
// AttemptStarted, AttemptFinished and StepFinished as in any run), while the submitter's database
// follows the run to its end. r.WorkflowID is required; r.StepIDs and r.Status are ignored. It waits
// until the write is committed.
func (s *Store) RunSeen(ctx context.Context, r *run.Record, stepID string) error {
	if err := validRunID(r.ID); err != nil {
		return fmt.Errorf("record run seen by a worker: %w", err)
	}
	if r.WorkflowID == "" {
		return fmt.Errorf("record run %s seen by a worker: no workflow id: only runs on Temporal come to workers", r.ID)
	}
	params := r.Params
	if params == "" {
		params = "{}"
	}
	return s.write("record run "+r.ID+" seen by a worker", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO runs (id, playbook, file, file_sha256, params, status,
				started_at, user, host, retry_of, workflow_id, workflow_run_id)
			VALUES (?, ?, ?, ?, ?, 'detached', ?, ?, ?, NULL, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			r.ID, r.Playbook, r.File, r.FileSHA256, params, formatTime(r.StartedAt), r.User, r.Host,
			r.WorkflowID, nullString(r.WorkflowRunID))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO steps (run_id, step_id, seq, status)
			SELECT ?1, ?2, coalesce(max(seq), 0) + 1, 'pending' FROM steps WHERE run_id = ?1
			ON CONFLICT (run_id, step_id) DO NOTHING`, r.ID, stepID)
		return err
	})
}
