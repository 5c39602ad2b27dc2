package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/run"
)

// The Store records runs: it is a run.Recorder.
var _ run.Recorder = (*Store)(nil)

// TimeFormat is how every timestamp is stored: UTC ISO-8601 with milliseconds, so that text order is
// time order and sqlite3's date functions read it.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// recordTimeout bounds the writer's checkpoints; each batch has its own bound (batchTimeout), which
// covers the wait for the write lock.
const recordTimeout = BusyTimeout + 10*time.Second

// cloneData copies output bytes: the write happens after the call returns, and the caller may reuse
// its buffers.
func cloneData(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timeText(t)
}

// timeText is t.UTC().Format(TimeFormat) written out digit by digit: Format reads its layout anew on
// every call, and the run loop records several timestamps a step.
func timeText(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(TimeFormat)
	}
	hour, minute, sec := t.Clock()
	var b [len(TimeFormat)]byte
	put := func(at, v, digits int) {
		for i := at + digits - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, year, 4)
	b[4] = '-'
	put(5, int(month), 2)
	b[7] = '-'
	put(8, day, 2)
	b[10] = 'T'
	put(11, hour, 2)
	b[13] = ':'
	put(14, minute, 2)
	b[16] = ':'
	put(17, sec, 2)
	b[19] = '.'
	put(20, t.Nanosecond()/1e6, 3) // truncated, as Format's .000 does
	b[23] = 'Z'
	return string(b[:])
}

func durationMS(start, end time.Time) any {
	if start.IsZero() || end.IsZero() {
		return nil
	}
	d := end.Sub(start).Milliseconds()
	if d < 0 {
		d = 0
	}
	return d
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullExit maps the run model's -1 ("no exit code": killed by a signal or never started) to NULL.
func nullExit(code int) any {
	if code < 0 {
		return nil
	}
	return code
}

func nullSignal(sig int) any {
	if sig <= 0 {
		return nil
	}
	return sig
}

func nullPositive(n int64) any {
	if n <= 0 {
		return nil
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// outputValue is the value stored for an output stream: TEXT when the bytes are valid UTF-8 (an empty
// string for a process that wrote nothing), so that sqlite3 builds with LIKE_DOESNT_MATCH_BLOBS (Debian's)
// still match it with a plain LIKE, else a BLOB of the bytes as given; NULL when there was no process
// (ran is false). Either way the bytes are the ones the step wrote. valid says whether they are UTF-8
// (the stdout_utf8/stderr_utf8 column), from the same one pass over them.
func outputValue(o run.Output, ran bool) (value any, valid bool) {
	valid = utf8.Valid(o.Data)
	switch {
	case o.Data == nil && !ran:
		return nil, valid
	case valid:
		return string(o.Data), valid
	}
	return o.Data, valid
}

// validRunID keeps run ids usable as file names (the lock file) and unambiguous in prefixes.
func validRunID(id string) error {
	if id == "" || len(id) > 128 || id[0] == '.' || id == "last" {
		return fmt.Errorf("invalid run id %q", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("invalid run id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}

// RunStarted records a new run with status running and a pending row for every id in r.StepIDs, and
// takes the run's lock file, which this Store holds until RunFinished or Close: while it is held, crash
// recovery in any process leaves the run alone. A run with a r.ConcurrencyGroup that another running run holds
// is not recorded: the error is a *GroupBusyError (see WaitGroup). r.Status is ignored (a starting run is running). It
// waits until the run is committed. ctx's cancellation is ignored (the write is bounded by its own
// timeout).
func (s *Store) RunStarted(ctx context.Context, r *run.Record) error {
	if err := validRunID(r.ID); err != nil {
		return fmt.Errorf("record start of run: %w", err)
	}
	// The lock is taken before the row exists: recovery never sees this run running and unlocked.
	if err := os.MkdirAll(s.lockDir(), 0o700); err != nil {
		return fmt.Errorf("record start of run %s: create lock folder: %w", r.ID, err)
	}
	// CreateLock, not TryLock: another runner's sweep of stale lock files (removeStaleLocks) must never
	// see this file unlocked, or it would take and delete it under us.
	lock, err := proc.CreateLock(s.lockPath(r.ID))
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("record start of run %s: a run with this id exists already", r.ID)
	}
	if err != nil {
		return fmt.Errorf("record start of run %s: %w", r.ID, err)
	}
	params := r.Params
	if params == "" {
		params = "{}"
	}
	err = s.write("record start of run "+r.ID, func(ctx context.Context, tx *sql.Tx) error {
		if err := checkGroup(ctx, tx, r.ConcurrencyGroup); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO runs (id, playbook, file, file_sha256, params, status,
			started_at, user, host, retry_of, owner_pid, owner_start, owner_host, owner_boot_id, temp_dir,
			workflow_id, workflow_run_id, concurrency_group)
			VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Playbook, r.File, r.FileSHA256, params, formatTime(r.StartedAt), r.User, r.Host,
			nullString(r.RetryOf), s.pid, nullPositive(int64(s.pidStart)), s.host, nullString(s.bootID),
			nullString(r.TempDir), nullString(r.WorkflowID), nullString(r.WorkflowRunID), nullString(r.ConcurrencyGroup))
		if err != nil {
			return err
		}
		if len(r.StepIDs) == 0 {
			return nil
		}
		// One statement for every step: a thousand-step run's start is then one round trip into
		// SQLite, not a thousand.
		ids, err := json.Marshal(r.StepIDs)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO steps (run_id, step_id, seq, status)
			SELECT ?, value, key + 1, 'pending' FROM json_each(?)`, r.ID, string(ids))
		return err
	})
	if err != nil {
		_ = lock.Release(true)
		return err
	}
	s.mu.Lock()
	s.locks[r.ID] = lock
	s.mu.Unlock()
	return nil
}

// AttemptStarted records that an attempt of a step began: the step becomes running, and an attempt row
// keeps the command, the pid (the step's process group id) and that process's start time, which crash
// recovery checks before killing the group. The start time is PIDStart; when that is 0 it is read from
// /proc during the call, so the call must then come from the process that started the step, before that
// process reaps it. A PID of 0 (the process never started) records no pid.
//
// Like AttemptFinished and StepFinished, it queues its write for the background writer and returns
// at once (writer.go explains why); the error it returns is that of an earlier queued write, if one
// failed, or of a closed Store. ctx is not used: recording must not stop because the run was
// cancelled.
func (s *Store) AttemptStarted(_ context.Context, in *run.AttemptStart) error {
	a := *in
	var pid, pidStart any
	if a.PID > 0 {
		pid = a.PID
		t, err := a.PIDStart, error(nil)
		if t == 0 {
			t, err = proc.StartTicks(a.PID)
		}
		if err == nil {
			pidStart = int64(t)
			// The database write below is queued; a runner killed before it commits would leave
			// recovery without the group to kill. The run's lock file takes the group at once.
			s.mu.Lock()
			lock := s.locks[a.RunID]
			s.mu.Unlock()
			if lock != nil {
				if err := lock.Append(fmt.Appendf(nil, "group %d %d\n", a.PID, t)); err != nil {
					return fmt.Errorf("record start of attempt %d of step %s of run %s: %w", a.Attempt, a.StepID, a.RunID, err)
				}
			}
		}
	}
	st := &attemptStart{key: attemptKey{a.RunID, a.StepID, a.Attempt}, started: formatTime(a.StartedAt),
		command: nullString(a.Command), pid: pid, pidStart: pidStart, stepRow: true, attemptRow: true}
	// The description is formatted only for an error: a Sprintf a write would be paid on the run loop
	// for every step.
	what := func() string {
		return fmt.Sprintf("record start of attempt %d of step %s of run %s", a.Attempt, a.StepID, a.RunID)
	}
	return s.enqueue(writeOp{what: what, start: st, fn: func(ctx context.Context, tx *sql.Tx) error {
		if st.stepRow {
			res, err := tx.ExecContext(ctx, `UPDATE steps SET status = 'running', attempts = max(attempts, ?),
				started_at = coalesce(started_at, ?), command = ?, pid = ?
				WHERE run_id = ? AND step_id = ?`,
				a.Attempt, st.started, st.command, st.pid, a.RunID, a.StepID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errUnknownStep
			}
		}
		if !st.attemptRow {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO attempts (run_id, step_id, attempt, status, started_at, command, pid, pid_start)
			VALUES (?, ?, ?, 'running', ?, ?, ?, ?)
			ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET status = 'running',
				started_at = excluded.started_at, command = excluded.command, pid = excluded.pid,
				pid_start = excluded.pid_start`,
			a.RunID, a.StepID, a.Attempt, st.started, st.command, st.pid, st.pidStart)
		return err
	}})
}

var errUnknownStep = errors.New("no such step in the run (was RunStarted called with it?)")

// AttemptFinished records a finished attempt with its bounded output, exact byte totals and truncated
// flags. An attempt that AttemptStarted did not announce is created. The write is queued (see
// AttemptStarted).
func (s *Store) AttemptFinished(_ context.Context, in *run.AttemptRecord) error {
	a := *in
	a.Stdout.Data, a.Stderr.Data = cloneData(a.Stdout.Data), cloneData(a.Stderr.Data)
	if a.FinishedAt.IsZero() {
		a.FinishedAt = time.Now() // not given: now is when we learn it ended
	}
	fin := &attemptFinish{key: attemptKey{a.RunID, a.StepID, a.Attempt}, output: outputSize(a.Stdout, a.Stderr)}
	what := func() string {
		return fmt.Sprintf("record attempt %d of step %s of run %s", a.Attempt, a.StepID, a.RunID)
	}
	return s.enqueue(writeOp{what: what, finish: fin, fn: func(ctx context.Context, tx *sql.Tx) error {
		// The start's values, when coalesce moved that write here; else the row AttemptStarted wrote
		// keeps them (ON CONFLICT leaves those columns alone).
		var started, command, pid, pidStart any
		if st := fin.start; st != nil {
			started, command, pid, pidStart = st.started, st.command, st.pid, st.pidStart
		}
		stdout, _ := outputValue(a.Stdout, true)
		stderr, _ := outputValue(a.Stderr, true)
		if fin.outputMoved { // the step row keeps it (see StepFinished)
			stdout, stderr = nil, nil
		}
		// An unknown step fails the foreign key on (run_id, step_id).
		_, err := tx.ExecContext(ctx, `INSERT INTO attempts (run_id, step_id, attempt, status, exit_code, signal,
				started_at, finished_at, duration_ms, error, stdout, stderr, stdout_bytes, stderr_bytes,
				stdout_truncated, stderr_truncated, command, pid, pid_start, worker)
			VALUES (?, ?, ?, ?, ?, ?, coalesce(?, ?, ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET status = excluded.status,
				exit_code = excluded.exit_code, signal = excluded.signal,
				started_at = coalesce(attempts.started_at, excluded.started_at),
				finished_at = excluded.finished_at, duration_ms = excluded.duration_ms,
				error = excluded.error, stdout = excluded.stdout, stderr = excluded.stderr,
				stdout_bytes = excluded.stdout_bytes, stderr_bytes = excluded.stderr_bytes,
				stdout_truncated = excluded.stdout_truncated, stderr_truncated = excluded.stderr_truncated,
				worker = excluded.worker`,
			a.RunID, a.StepID, a.Attempt, string(a.Status), nullExit(a.ExitCode), nullSignal(a.Signal),
			started, formatTime(a.StartedAt), formatTime(a.FinishedAt), formatTime(a.FinishedAt),
			durationMS(a.StartedAt, a.FinishedAt), nullString(a.Error),
			stdout, stderr, a.Stdout.Bytes, a.Stderr.Bytes,
			boolInt(a.Stdout.Truncated), boolInt(a.Stderr.Truncated), command, pid, pidStart, nullString(a.Worker))
		return err
	}})
}

// StepFinished records a step's final state. For a step that ran, Stdout and Stderr are its last
// attempt's output: they are kept once, in the step row, and that attempt row's copies are cleared
// (the attempt_output view and AttemptOutput put them back). A skipped step (Attempts 0) gets NULL
// output. A step that RunStarted did not list is added after the others. The write is queued (see
// AttemptStarted).
func (s *Store) StepFinished(_ context.Context, in *run.StepRecord) error {
	st := *in
	st.Stdout.Data, st.Stderr.Data = cloneData(st.Stdout.Data), cloneData(st.Stderr.Data)
	outputs := []byte("{}")
	if len(st.Outputs) > 0 {
		var err error
		if outputs, err = json.Marshal(st.Outputs); err != nil {
			return fmt.Errorf("record step %s of run %s: outputs: %w", st.StepID, st.RunID, err)
		}
	}
	ran := st.Attempts > 0 || !st.StartedAt.IsZero()
	done := &stepFinish{run: st.RunID, step: st.StepID, attempts: st.Attempts, output: outputSize(st.Stdout, st.Stderr)}
	what := func() string { return fmt.Sprintf("record step %s of run %s", st.StepID, st.RunID) }
	return s.enqueue(writeOp{what: what, stepDone: done, fn: func(ctx context.Context, tx *sql.Tx) error {
		stdout, stdoutUTF8 := outputValue(st.Stdout, ran)
		stderr, stderrUTF8 := outputValue(st.Stderr, ran)
		args := []any{st.RunID, st.StepID, st.Name, string(st.Status), nullString(st.Reason), nullString(st.Error),
			nullExit(st.ExitCode), nullSignal(st.Signal), st.Attempts, formatTime(st.StartedAt),
			formatTime(st.FinishedAt), durationMS(st.StartedAt, st.FinishedAt), nullString(st.Command),
			stdout, stderr, st.Stdout.Bytes, st.Stderr.Bytes,
			boolInt(st.Stdout.Truncated), boolInt(st.Stderr.Truncated), boolInt(stdoutUTF8), boolInt(stderrUTF8),
			string(outputs), boolInt(st.ContinueOnError), nullString(st.ReusedFrom),
			boolInt(done.setPID), done.pid,
			nullString(st.Fingerprint), nullString(st.RetryReason), nullString(st.RetryDetail),
			nullString(st.Worker)}
		// ?25/?26: the pid of the last attempt, when coalesce moved its start's step write here.
		res, err := tx.ExecContext(ctx, `UPDATE steps SET name = ?3, status = ?4, reason = ?5, error = ?6,
				exit_code = ?7, signal = ?8, attempts = ?9, started_at = ?10, finished_at = ?11,
				duration_ms = ?12, command = ?13, stdout = ?14, stderr = ?15, stdout_bytes = ?16,
				stderr_bytes = ?17, stdout_truncated = ?18, stderr_truncated = ?19, stdout_utf8 = ?20,
				stderr_utf8 = ?21, outputs = ?22, continue_on_error = ?23, reused_from = ?24,
				pid = CASE WHEN ?25 THEN ?26 ELSE pid END,
				fingerprint = ?27, retry_reason = ?28, retry_detail = ?29, worker = ?30
			WHERE run_id = ?1 AND step_id = ?2`, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Not listed by RunStarted: add it after the others.
			_, err = tx.ExecContext(ctx, `INSERT INTO steps (run_id, step_id, seq, name, status, reason, error,
					exit_code, signal, attempts, started_at, finished_at, duration_ms, command, stdout, stderr,
					stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, stdout_utf8, stderr_utf8,
					outputs, continue_on_error, reused_from, fingerprint, retry_reason, retry_detail, worker)
				VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM steps WHERE run_id = ?1),
					?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
					?22, ?23, ?24, ?27, ?28, ?29, ?30)`, args...)
			if err != nil {
				return err
			}
		}
		if st.Attempts <= 0 || len(st.Stdout.Data)+len(st.Stderr.Data) == 0 || done.outputMoved {
			return nil // nothing stored twice
		}
		// Keep the last attempt's output once. The sizes must match, so that a StepRecord that came
		// without its data never erases the only copy. They are byte counts: length() of TEXT counts
		// characters, hence the CAST.
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET stdout = NULL, stderr = NULL
			WHERE run_id = ? AND step_id = ? AND attempt = ? AND stdout_bytes = ? AND stderr_bytes = ?
				AND length(CAST(stdout AS BLOB)) = ? AND length(CAST(stderr AS BLOB)) = ?`,
			st.RunID, st.StepID, st.Attempts, st.Stdout.Bytes, st.Stderr.Bytes,
			len(st.Stdout.Data), len(st.Stderr.Data))
		return err
	}})
}

// RunFinished records the run's final status and releases its lock. The update only applies to a run
// that is still running (compare-and-set): a run that crash recovery already marked interrupted is not
// overwritten, and that is reported as an error. Steps the runner left pending or running (it
// should not) become interrupted, so that no finished run keeps running steps. It waits until this
// and every earlier write is committed. ctx's cancellation is ignored.
//
// When an earlier queued write failed, the final state is written all the same, but a run given as
// succeeded is stored failed with exit code 3 (its record is incomplete), and the error returned says
// so and names the writes that were not made. When the final write itself fails, the run stays
// running, and its lock file keeps a note that its runner ended on its own (exit status 3, the
// contract of a failed RunFinished), so that crash recovery does not say it died.
func (s *Store) RunFinished(ctx context.Context, r *run.Record) error {
	if r.Status == run.StatusRunning || r.Status == run.StatusPending || r.Status == "" {
		return fmt.Errorf("record end of run %s: status %q is not a final status", r.ID, r.Status)
	}
	finished := r.FinishedAt
	if finished.IsZero() {
		finished = time.Now()
	}
	// Every earlier write first: whether one failed decides what is written now.
	_ = s.Flush(ctx)
	earlier := s.failed()
	final := *r
	if earlier != nil {
		final.Unrecorded(earlier)
	}
	status, exitCode, errText := final.Status, final.ExitCode, final.Error
	// The final state is written even after an earlier write failed: the run then ends with exit
	// status 3, and its row should say it is over.
	err := s.write("record end of run "+r.ID, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, exit_code = ?, finished_at = ?,
				duration_ms = ?, error = ?
			WHERE id = ? AND (status = 'running' OR status = 'detached' AND workflow_id IS NOT NULL)`,
			string(status), exitCode, formatTime(finished), durationMS(r.StartedAt, finished),
			nullString(errText), r.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var status string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, r.ID).Scan(&status); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return errors.New("no such run (was RunStarted called?)")
				}
				return err
			}
			return fmt.Errorf("the run is no longer running (status %s): not overwritten", status)
		}
		fin := formatTime(finished)
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET status = 'interrupted', finished_at = ?,
				error = coalesce(error, 'the run ended before this attempt was recorded as finished')
			WHERE run_id = ? AND status = 'running'`, fin, r.ID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE steps SET status = 'interrupted',
				finished_at = CASE WHEN started_at IS NULL THEN NULL ELSE ? END,
				error = coalesce(error, 'the run ended before this step was recorded as finished')
			WHERE run_id = ? AND status IN ('pending', 'running')`, fin, r.ID)
		return err
	})
	// The lock goes whatever happened: the run is over for this process either way. Its file stays
	// when the run is still recorded running, with the note for crash recovery.
	s.mu.Lock()
	lock := s.locks[r.ID]
	delete(s.locks, r.ID)
	s.mu.Unlock()
	if err != nil && lock != nil {
		_ = lock.Append([]byte(exitedNote + oneLine(err.Error()) + "\n"))
	}
	if relErr := lock.Release(err == nil); relErr != nil {
		err = errors.Join(err, fmt.Errorf("record end of run %s: %w", r.ID, relErr))
	}
	if earlier != nil || err != nil {
		if names, n := s.unwritten(); n > 0 {
			list := strings.Join(names, "; ")
			if n > len(names) {
				list += fmt.Sprintf("; and %d more", n-len(names))
			}
			err = errors.Join(fmt.Errorf("not recorded (%d writes): %s", n, strings.ReplaceAll(list, " of run "+r.ID, "")), err)
		} else if earlier != nil {
			err = errors.Join(errors.New("every write that failed was made on a later try, but the run stopped starting steps when the first failed"), err)
		}
	}
	if earlier != nil {
		err = errors.Join(fmt.Errorf("an earlier write failed: %w", earlier), err)
	}
	return err
}

// exitedNote starts the line RunFinished appends to a run's lock file when it could not record the
// run's end: the runner then exits on its own with status 3, and crash recovery says so.
const exitedNote = "exited 3 "

// oneLine keeps a message on one line of the lock file.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
