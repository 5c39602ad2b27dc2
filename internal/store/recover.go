package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/run"
)

// RecoveredRun is a run that crash recovery found without its runner and marked interrupted.
type RecoveredRun struct {
	ID       string
	Playbook string
	OwnerPID int // the dead runner's pid, 0 if unknown
	// Rebooted is true when the machine restarted since the run started (its boot id changed): the
	// run's processes died with the machine and nothing was killed.
	Rebooted bool
	// Killed counts the leftover process groups that got SIGKILL; Spared counts recorded groups left
	// alone because their number now belongs to another process.
	Killed, Spared int
	// Exited, when not "", is why the runner could not record the end of the run before it exited on
	// its own with status 3 (the note RunFinished left in the run's lock file): it did not die.
	Exited string
	// TempDirRemoved is true when the run's temporary folder (its steps' $PLAYBOOK_OUTPUT files) was
	// found and removed.
	TempDirRemoved bool
	// Detached is true for a run on Temporal (its record has a workflow id): it was marked detached,
	// not interrupted, and nothing was killed or removed, since its steps run on workers and its
	// workflow goes on. `playbook attach` follows it and completes its record.
	Detached bool
}

// Recovered returns the runs that the Open of this Store (and later Recover calls) marked
// interrupted or detached, so that a command can tell the user.
func (s *Store) Recovered() []RecoveredRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RecoveredRun(nil), s.recovered...)
}

// Recover finds the runs still marked running whose runner is gone and marks them interrupted,
// together with their pending and running steps and attempts; then it kills the process groups their
// running attempts left behind. Open calls it; a long-lived process may call it again.
//
// A run on Temporal (one with a workflow id) is marked detached instead, and only the run: its steps
// and attempts keep their state, nothing is killed, and the records its workflow sends later (through
// `playbook attach`) complete it.
//
// A run is judged only when it was recorded on this host (same hostname). Its runner is dead when:
// the machine rebooted since (the recorded boot id differs: nothing is killed then, the processes died
// with the machine); or its lock file can be locked (the kernel drops a dead process's flock); or, if
// the lock file is missing, the recorded runner pid is gone or now names a process with another start
// time. A run whose lock is held is alive and never touched, nor is a run recorded by this Store.
//
// The run's update is a compare-and-set (WHERE status = 'running'), so a run that finished in the
// meantime keeps its final state, and its groups are killed only when this call made the change. The
// interrupted run's finished_at is the last time it recorded anything (its last sign of life), not
// the time of recovery. Groups are killed with the pid-reuse guard of proc.KillStaleGroup.
//
// Errors reading the database are returned; so are errors writing it, as a *RecoveryError, once every
// run has been tried. Failures to inspect or kill a process are not (the run is still marked, and the
// group is counted as spared).
func (s *Store) Recover(ctx context.Context) ([]RecoveredRun, error) {
	type candidate struct {
		id, playbook string
		pid          sql.NullInt64
		start        sql.NullInt64
		host, bootID sql.NullString
		tempDir      sql.NullString // run.Record.TempDir
		workflowID   sql.NullString // run.Record.WorkflowID
	}
	var cands []candidate
	rows, err := s.r.QueryContext(ctx, `SELECT id, playbook, owner_pid, owner_start, owner_host, owner_boot_id, temp_dir,
			workflow_id
		FROM runs WHERE status = 'running'`)
	if err != nil {
		return nil, fmt.Errorf("crash recovery in %s: %w", s.path, err)
	}
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.playbook, &c.pid, &c.start, &c.host, &c.bootID, &c.tempDir, &c.workflowID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("crash recovery in %s: %w", s.path, err)
		}
		cands = append(cands, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("crash recovery in %s: %w", s.path, err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("crash recovery in %s: %w", s.path, err)
	}

	var found []RecoveredRun
	var markErrs []error
	for _, c := range cands {
		if s.owns(c.id) {
			continue
		}
		if c.host.Valid && c.host.String != s.host {
			continue // another machine's run: its processes and its lock are not visible from here
		}
		rebooted := s.bootID != "" && c.bootID.Valid && c.bootID.String != "" && c.bootID.String != s.bootID
		var lock *proc.FileLock
		if !rebooted {
			var dead bool
			lock, dead = s.ownerDead(c.id, c.pid, c.start)
			if !dead {
				continue
			}
		}
		if c.workflowID.Valid && c.workflowID.String != "" {
			detached, err := s.markDetached(ctx, c.id)
			if err != nil {
				markErrs = append(markErrs, fmt.Errorf("crash recovery in %s: run %s: %w", s.path, c.id, err))
			} else if detached {
				found = append(found, RecoveredRun{ID: c.id, Playbook: c.playbook, OwnerPID: int(c.pid.Int64),
					Rebooted: rebooted, Detached: true})
			}
			if lock != nil {
				_ = lock.Release(err == nil)
			} else if rebooted && err == nil {
				_ = os.Remove(s.lockPath(c.id))
			}
			continue
		}
		exited := exitedReason(lock)
		rec, groups, err := s.markInterrupted(ctx, c.id, int(c.pid.Int64), rebooted, exited)
		if err != nil {
			// The database cannot be written (a full disk, say): the run stays marked running, and its
			// groups alive, until a later recovery can record it. The other runs are still tried.
			_ = lock.Release(false)
			markErrs = append(markErrs, fmt.Errorf("crash recovery in %s: run %s: %w", s.path, c.id, err))
			continue
		}
		if rec {
			groups = mergeGroups(groups, lockedGroups(lock))
			r := RecoveredRun{ID: c.id, Playbook: c.playbook, OwnerPID: int(c.pid.Int64), Rebooted: rebooted, Exited: exited}
			if !rebooted {
				for _, g := range groups {
					if !g.start.Valid {
						r.Spared++ // no start time recorded: the group cannot be told from a stranger's
						continue
					}
					out, err := proc.KillStaleGroup(int(g.pgid), uint64(g.start.Int64))
					switch {
					case err != nil || out == proc.GroupReused:
						r.Spared++
					case out == proc.GroupKilled:
						r.Killed++
					}
				}
				r.Killed += killUnrecordedGroups(c.id, groups)
			}
			// After the kills: no step of the run is left to write into the folder.
			r.TempDirRemoved = removeTempDir(c.id, c.tempDir.String)
			found = append(found, r)
		}
		if lock != nil {
			_ = lock.Release(true)
		} else if rebooted {
			_ = os.Remove(s.lockPath(c.id))
		}
	}
	s.removeStaleLocks(ctx)
	s.mu.Lock()
	s.recovered = append(s.recovered, found...)
	s.mu.Unlock()
	if len(markErrs) > 0 {
		return found, &RecoveryError{Err: errors.Join(markErrs...)}
	}
	return found, nil
}

// RecoveryError is Recover's error when runs whose runner is dead could not be marked interrupted
// because the database could not be written (a full disk, say). Those runs stay marked running until a
// later recovery succeeds. Open does not fail for it, so that a full disk leaves the database
// readable; Store.RecoveryErr returns it.
type RecoveryError struct{ Err error }

func (e *RecoveryError) Error() string { return e.Err.Error() }
func (e *RecoveryError) Unwrap() error { return e.Err }

// RecoveryErr returns the *RecoveryError of the recovery that Open ran, or nil.
func (s *Store) RecoveryErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recoverErr
}

// removeTempDir removes dir, the temporary folder a dead run left (run.Record.TempDir, read
// with the run by Recover): its steps' $PLAYBOOK_OUTPUT files, which may hold secrets in clear. It
// removes the folder only when it can tell it is that run's: an absolute path whose last element is
// named for the run (run.TempDirPrefix, the run id, "-"), a real folder (a symlink there is
// neither followed nor removed) owned by this process's user. Anything else is left alone: the path
// comes from a database that other users may be able to write. It reports whether it removed the
// folder.
func removeTempDir(runID, dir string) bool {
	if dir == "" || !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return false
	}
	if !strings.HasPrefix(filepath.Base(dir), run.TempDirPrefix+runID+"-") {
		return false
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() { // a symlink is not a folder to Lstat
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Geteuid() {
		return false
	}
	// RemoveAll does not follow symlinks found inside the folder; it removes the links themselves.
	return os.RemoveAll(dir) == nil
}

// killUnrecordedGroups kills the process groups a dead run's steps left that neither the database nor
// the lock file names: a step forked in the instant before its runner could record the group (the
// runner died between the fork and the lock file's append), whose shell had already started a
// background child. Every step process, and whatever it starts, inherits PLAYBOOK_RUN_ID=<run id>, a
// random 128-bit id that no other process carries, so they are found by their environment. A process
// that left the step's session (setsid: a daemon leads its own session and group, PGID == SID) is
// killed too: nothing a run started outlives it, whether the runner ended the run (the runner kills
// such processes at the run's end) or died. This process's own group is spared. It returns the groups
// killed.
func killUnrecordedGroups(runID string, recorded []staleGroup) int {
	procs, err := proc.WithEnv("PLAYBOOK_RUN_ID=" + runID)
	if err != nil {
		return 0
	}
	own := syscall.Getpgrp()
	known := map[int]bool{}
	for _, g := range recorded {
		known[int(g.pgid)] = true // judged above, with the pid-reuse guard
	}
	killed := map[int]bool{}
	for _, p := range procs {
		if p.PGID <= 1 || p.PGID == own || known[p.PGID] || killed[p.PGID] {
			continue
		}
		if syscall.Kill(-p.PGID, syscall.SIGKILL) == nil {
			killed[p.PGID] = true
		}
	}
	return len(killed)
}

func (s *Store) owns(runID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.locks[runID]
	return ok
}

// ownerDead decides whether a run's runner (on this machine, this boot) is gone. When it is judged by
// its lock, the lock is returned held, so that no other process recovers the same run meanwhile.
func (s *Store) ownerDead(runID string, pid, start sql.NullInt64) (*proc.FileLock, bool) {
	lock, err := proc.TryLock(s.lockPath(runID), false)
	switch {
	case err == nil:
		return lock, true
	case errors.Is(err, proc.ErrLocked):
		return nil, false
	case !errors.Is(err, os.ErrNotExist):
		return nil, false // cannot tell (permissions?): leave it alone
	}
	// No lock file (deleted by hand, or the runner finished between our query and now; the
	// compare-and-set then changes nothing). Fall back to the pid and its start time.
	if !pid.Valid || !start.Valid {
		return nil, false
	}
	st, err := proc.ReadStat(int(pid.Int64))
	if errors.Is(err, proc.ErrNoProcess) {
		return nil, true
	}
	if err != nil {
		return nil, false // no /proc: cannot tell
	}
	return nil, st.Zombie() || st.StartTicks != uint64(start.Int64)
}

type staleGroup struct {
	pgid  int64
	start sql.NullInt64
}

// lockedGroups reads the process groups a runner wrote into its lock file (AttemptStarted), lines of
// "group PGID START-TICKS". A line cut short by the runner's death is ignored.
func lockedGroups(lock *proc.FileLock) []staleGroup {
	if lock == nil {
		return nil
	}
	data, err := lock.Contents()
	if err != nil {
		return nil
	}
	var groups []staleGroup
	for _, line := range strings.Split(string(data), "\n") {
		var pgid, start int64
		if n, err := fmt.Sscanf(line, "group %d %d", &pgid, &start); err != nil || n != 2 || pgid <= 1 {
			continue
		}
		groups = append(groups, staleGroup{pgid: pgid, start: sql.NullInt64{Int64: start, Valid: true}})
	}
	return groups
}

// exitedReason returns the note RunFinished left in a lock file when it could not record the run's
// end, or "".
func exitedReason(lock *proc.FileLock) string {
	if lock == nil {
		return ""
	}
	data, err := lock.Contents()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if why, ok := strings.CutPrefix(line, exitedNote); ok {
			return why
		}
	}
	return ""
}

// mergeGroups adds to db the groups of extra it lacks. Groups of attempts that finished are in the
// lock file too; killing them is guarded by their leader's start time like any other.
func mergeGroups(db, extra []staleGroup) []staleGroup {
	seen := make(map[int64]bool, len(db))
	for _, g := range db {
		seen[g.pgid] = true
	}
	for _, g := range extra {
		if !seen[g.pgid] {
			seen[g.pgid] = true
			db = append(db, g)
		}
	}
	return db
}

// markDetached marks a distributed run whose submitter died detached, if it is still running, and
// returns whether it did.
func (s *Store) markDetached(ctx context.Context, runID string) (bool, error) {
	changed := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'detached' WHERE id = ? AND status = 'running'`, runID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		changed = n > 0
		return nil
	})
	return changed, err
}

// markInterrupted marks the run interrupted if it is still running and returns whether it did, with
// the process groups of its running attempts.
// exited is the runner's note (exitedReason): it ended on its own, and the messages say so.
func (s *Store) markInterrupted(ctx context.Context, runID string, ownerPID int, rebooted bool, exited string) (bool, []staleGroup, error) {
	var groups []staleGroup
	changed := false
	runMsg := fmt.Sprintf("the runner (pid %d) died before the run finished; marked by crash recovery", ownerPID)
	attemptMsg, stepMsg := "the runner died during this attempt", "the runner died while this step was running"
	switch {
	case rebooted:
		runMsg = "the machine restarted before the run finished; marked by crash recovery"
	case exited != "":
		runMsg = fmt.Sprintf("the runner (pid %d) exited (status 3) before it could record the end of the run: %s; marked by crash recovery", ownerPID, exited)
		attemptMsg = "the runner exited (status 3) before it could record the end of this attempt"
		stepMsg = "the runner exited (status 3) before it could record the end of this step"
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		groups = groups[:0]
		changed = false
		rows, err := tx.QueryContext(ctx, `SELECT pid, pid_start FROM attempts
			WHERE run_id = ? AND status = 'running' AND pid IS NOT NULL`, runID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var g staleGroup
			if err := rows.Scan(&g.pgid, &g.start); err != nil {
				rows.Close()
				return err
			}
			groups = append(groups, g)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// The last sign of life: the latest time the run recorded anything, its progress included.
		var last sql.NullString
		err = tx.QueryRowContext(ctx, `SELECT max(t) FROM (
				SELECT started_at AS t FROM runs WHERE id = ?1
				UNION ALL SELECT last_seen_at FROM runs WHERE id = ?1
				UNION ALL SELECT max(started_at) FROM steps WHERE run_id = ?1
				UNION ALL SELECT max(finished_at) FROM steps WHERE run_id = ?1
				UNION ALL SELECT max(started_at) FROM attempts WHERE run_id = ?1
				UNION ALL SELECT max(finished_at) FROM attempts WHERE run_id = ?1)`, runID).Scan(&last)
		if err != nil {
			return err
		}
		end := last.String
		if !last.Valid {
			end = time.Now().UTC().Format(TimeFormat)
		}
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'interrupted', exit_code = NULL,
				finished_at = ?1, error = ?2,
				duration_ms = max(0, CAST(round((julianday(?1) - julianday(started_at)) * 86400000) AS INTEGER))
			WHERE id = ?3 AND status = 'running'`, end, runMsg, runID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			groups = nil
			return nil // finished meanwhile: its own final state stands
		}
		changed = true
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET status = 'interrupted', finished_at = ?1,
				duration_ms = max(0, CAST(round((julianday(?1) - julianday(started_at)) * 86400000) AS INTEGER)),
				error = coalesce(error, ?2)
			WHERE run_id = ?3 AND status = 'running'`, end, attemptMsg, runID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE steps SET status = 'interrupted',
				finished_at = CASE WHEN started_at IS NULL THEN NULL ELSE ?1 END,
				duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE
					max(0, CAST(round((julianday(?1) - julianday(started_at)) * 86400000) AS INTEGER)) END,
				error = coalesce(error, CASE WHEN status = 'running' THEN ?2 ELSE NULL END)
			WHERE run_id = ?3 AND status IN ('pending', 'running')`, end, stepMsg, runID)
		return err
	})
	return changed, groups, err
}

// removeStaleLocks deletes lock files nobody holds whose run is not running: left by a runner killed
// between taking its lock and recording its run. Held locks are never touched.
func (s *Store) removeStaleLocks(ctx context.Context) {
	entries, err := os.ReadDir(s.lockDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), proc.TempPrefix) {
			removeAbandonedTemp(filepath.Join(s.lockDir(), e.Name()))
			continue
		}
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || s.owns(id) {
			continue
		}
		l, err := proc.TryLock(filepath.Join(s.lockDir(), e.Name()), false)
		if err != nil {
			continue // held (alive) or already gone
		}
		var status string
		err = s.r.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, id).Scan(&status)
		if (err == nil && status != "running") || errors.Is(err, sql.ErrNoRows) {
			_ = l.Release(true)
			continue
		}
		_ = l.Release(false)
	}
}

// abandonedAfter is how old a temporary file of proc.CreateLock must be before a sweep removes it. A
// creator holds its temporary name for microseconds; a younger file may be one between its steps.
const abandonedAfter = 10 * time.Second

// removeAbandonedTemp deletes a temporary file left by a runner killed inside proc.CreateLock, when
// nobody holds it and it is old enough.
func removeAbandonedTemp(path string) {
	fi, err := os.Lstat(path)
	if err != nil || time.Since(fi.ModTime()) < abandonedAfter {
		return
	}
	if l, err := proc.TryLock(path, false); err == nil {
		_ = l.Release(true)
	}
}
