package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// PruneOptions says which runs Prune deletes. A run is deleted when it is not running and it matches
// any criterion that is set. The zero value deletes nothing.
type PruneOptions struct {
	// Before deletes runs started before this time; zero = not by age.
	Before time.Time
	// Keep deletes every run but the Keep most recently started (running runs count among them);
	// 0 = not by count.
	Keep int
}

// PruneResult is what Prune removed and the database's size (the file plus its WAL) around it.
type PruneResult struct {
	Runs, Steps, Attempts int64
	SizeBefore, SizeAfter int64
}

// pruneBatch is how many runs one delete transaction removes: small enough that the write lock is
// held for milliseconds, so that runners recording meanwhile never wait long.
const pruneBatch = 500

// Prune deletes old runs with their steps and attempts, never a running run, then gives the freed
// space back to the file system (PRAGMA incremental_vacuum on databases created with
// auto_vacuum=incremental, which Open does for new ones, else VACUUM) and truncates the WAL. Runs
// whose retry_of named a deleted run keep running with retry_of NULL. On cancel, the batches already
// deleted stay deleted and the counts say how many.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (*PruneResult, error) {
	res := &PruneResult{SizeBefore: s.size()}
	if o.Before.IsZero() && o.Keep <= 0 {
		res.SizeAfter = res.SizeBefore
		return res, nil
	}
	where, args, err := s.pruneWhere(ctx, s.w, o)
	if err != nil {
		return res, err
	}
	pick := "SELECT id FROM runs WHERE " + where + " LIMIT " + fmt.Sprint(pruneBatch)
	for {
		var n int64
		err := s.writeTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS prune_ids (id TEXT PRIMARY KEY)"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM temp.prune_ids"); err != nil {
				return err
			}
			r, err := tx.ExecContext(ctx, "INSERT INTO temp.prune_ids "+pick, args...)
			if err != nil {
				return err
			}
			if n, err = r.RowsAffected(); err != nil || n == 0 {
				return err
			}
			var steps, attempts int64
			if err := tx.QueryRowContext(ctx, `SELECT
					(SELECT count(*) FROM steps WHERE run_id IN (SELECT id FROM temp.prune_ids)),
					(SELECT count(*) FROM attempts WHERE run_id IN (SELECT id FROM temp.prune_ids))`).Scan(&steps, &attempts); err != nil {
				return err
			}
			// Deleting a run deletes its steps and attempts (ON DELETE CASCADE).
			if _, err := tx.ExecContext(ctx, "DELETE FROM runs WHERE id IN (SELECT id FROM temp.prune_ids)"); err != nil {
				return err
			}
			res.Steps += steps
			res.Attempts += attempts
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("prune %s: %w", s.path, err)
		}
		res.Runs += n
		if n < pruneBatch {
			break
		}
	}
	if res.Runs > 0 {
		if err := s.reclaim(ctx); err != nil {
			return res, fmt.Errorf("prune %s: reclaim space: %w", s.path, err)
		}
	}
	res.SizeAfter = s.size()
	return res, nil
}

// reclaim gives free pages back to the file system and empties the WAL.
func (s *Store) reclaim(ctx context.Context) error {
	var mode int
	if err := s.w.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return err
	}
	if mode == 2 {
		// Each step of the statement frees one page: read every row so that it runs to the end.
		rows, err := s.w.QueryContext(ctx, "PRAGMA incremental_vacuum")
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
	} else if _, err := s.w.ExecContext(ctx, "VACUUM"); err != nil {
		return err
	}
	// TRUNCATE also shrinks the -wal file; if readers keep it busy, the next checkpoint does it.
	rows, err := s.w.QueryContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	return errors.Join(rows.Err(), rows.Close())
}

// size is the bytes the database takes on disk: the file and its WAL.
func (s *Store) size() int64 {
	var n int64
	for _, p := range []string{s.path, s.path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// pruneWhere is the SQL condition (with its arguments) that picks the runs o deletes, read through db.
func (s *Store) pruneWhere(ctx context.Context, db *sql.DB, o PruneOptions) (string, []any, error) {
	var conds []string
	var args []any
	if !o.Before.IsZero() {
		conds = append(conds, "started_at < ?")
		args = append(args, o.Before.UTC().Format(TimeFormat))
	}
	if o.Keep > 0 {
		// The Keep-th newest run is the boundary: what is older goes. Comparing with it (the
		// started_at index serves) costs far less than "NOT IN (the Keep newest)" in every batch.
		var started, id string
		err := db.QueryRowContext(ctx, `SELECT started_at, id FROM runs ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?`,
			o.Keep-1).Scan(&started, &id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			conds = append(conds, "0") // fewer runs than Keep: none goes by count
		case err != nil:
			return "", nil, fmt.Errorf("prune %s: %w", s.path, err)
		default:
			conds = append(conds, "(started_at < ? OR (started_at = ? AND id < ?))")
			args = append(args, started, started, id)
		}
	}
	where := "status != 'running' AND (" + conds[0]
	if len(conds) > 1 {
		where += " OR " + conds[1]
	}
	where += ")"
	return where, args, nil
}

// PruneCandidates lists the runs that Prune with o would delete, newest first, and deletes nothing.
// It only reads, so it works on a read-only Store. The zero o lists none.
func (s *Store) PruneCandidates(ctx context.Context, o PruneOptions) ([]*run.Record, error) {
	if o.Before.IsZero() && o.Keep <= 0 {
		return nil, nil
	}
	_ = s.Flush(ctx) // see this Store's own writes
	where, args, err := s.pruneWhere(ctx, s.r, o)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT "+runColumns+" FROM runs WHERE "+where+" ORDER BY started_at DESC, id DESC", args...)
	if err != nil {
		return nil, fmt.Errorf("prune %s: list runs: %w", s.path, err)
	}
	defer rows.Close()
	var out []*run.Record
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("prune %s: list runs: %w", s.path, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("prune %s: list runs: %w", s.path, err)
	}
	return out, nil
}
