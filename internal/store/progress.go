package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/playbookhq/playbook/pkg/run"
)

// RunProgress records a running run's progress (run.ProgressRecorder): runs.last_seen_at
// becomes p.Time, and each step of p.Steps gets its output so far in its steps row (the row that
// keeps the last attempt's output; the attempt row gets the byte counts), so that `playbook logs`
// shows it and a runner killed now leaves it. Only a step still running that attempt is written: a
// progress record never overwrites a final one. The write is queued like AttemptStarted's, but its
// failure is not reported by later calls: the next progress record, or the final one, replaces it.
func (s *Store) RunProgress(_ context.Context, in *run.Progress) error {
	p := *in
	p.Steps = append([]run.StepProgress(nil), in.Steps...)
	for i := range p.Steps {
		st := &p.Steps[i]
		st.Stdout.Data, st.Stderr.Data = cloneData(st.Stdout.Data), cloneData(st.Stderr.Data)
	}
	what := func() string { return "record progress of run " + p.RunID }
	return s.enqueue(writeOp{what: what, bestEffort: true, fn: func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET last_seen_at = ? WHERE id = ? AND status = 'running'`,
			formatTime(p.Time), p.RunID); err != nil {
			return err
		}
		for _, st := range p.Steps {
			stdout, stdoutUTF8 := outputValue(st.Stdout, true)
			stderr, stderrUTF8 := outputValue(st.Stderr, true)
			_, err := tx.ExecContext(ctx, `UPDATE steps SET stdout = ?, stderr = ?, stdout_bytes = ?,
					stderr_bytes = ?, stdout_truncated = ?, stderr_truncated = ?, stdout_utf8 = ?, stderr_utf8 = ?
				WHERE run_id = ? AND step_id = ? AND status = 'running' AND attempts = ?`,
				stdout, stderr, st.Stdout.Bytes, st.Stderr.Bytes,
				boolInt(st.Stdout.Truncated), boolInt(st.Stderr.Truncated), boolInt(stdoutUTF8), boolInt(stderrUTF8),
				p.RunID, st.StepID, st.Attempt)
			if err != nil {
				return fmt.Errorf("step %s: %w", st.StepID, err)
			}
			_, err = tx.ExecContext(ctx, `UPDATE attempts SET stdout_bytes = ?, stderr_bytes = ?,
					stdout_truncated = ?, stderr_truncated = ?
				WHERE run_id = ? AND step_id = ? AND attempt = ? AND status = 'running'`,
				st.Stdout.Bytes, st.Stderr.Bytes, boolInt(st.Stdout.Truncated), boolInt(st.Stderr.Truncated),
				p.RunID, st.StepID, st.Attempt)
			if err != nil {
				return fmt.Errorf("step %s: %w", st.StepID, err)
			}
		}
		return nil
	}})
}

var _ run.ProgressRecorder = (*Store)(nil)
