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
