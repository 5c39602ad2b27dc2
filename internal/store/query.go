package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// ErrNotFound is matched (errors.Is) by every "no such run, step or attempt" error.
var ErrNotFound = errors.New("not found")

// NotFoundError says that a run reference (id, prefix or "last"), a step or an attempt names nothing.
// It matches ErrNotFound.
type NotFoundError struct {
	What string // "run", "step" or "attempt"
	Ref  string // what was asked for
}

// Error says what was not found.
func (e *NotFoundError) Error() string {
	if e.What == "run" && e.Ref == "last" {
		return "no run recorded yet"
	}
	return fmt.Sprintf("no %s matches %q", e.What, e.Ref)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AmbiguousRunError says that a run id prefix matches several runs. Candidates holds some of them
// (at most maxCandidates), in id order; More is true when other runs match too.
type AmbiguousRunError struct {
	Prefix     string
	Candidates []string
	More       bool
}

const maxCandidates = 10

// Error lists the candidates and asks for a longer prefix.
func (e *AmbiguousRunError) Error() string {
	more := ""
	if e.More {
		more = ", ..."
	}
	return fmt.Sprintf("run prefix %q is ambiguous: it matches %s%s; give more characters",
		e.Prefix, strings.Join(e.Candidates, ", "), more)
}

// ResolveRun turns what a user typed into a run id: a full id, a unique prefix of one, or "last" (the
// run started most recently). Unknown refs give *NotFoundError, prefixes matching several runs
// *AmbiguousRunError.
func (s *Store) ResolveRun(ctx context.Context, ref string) (string, error) {
	_ = s.Flush(ctx) // read this Store's own writes; write errors are reported to the Recorder's caller
	if ref == "" {
		return "", &NotFoundError{What: "run", Ref: ref}
	}
	var id string
	if ref == "last" {
		err := s.r.QueryRowContext(ctx, `SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1`).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return "", &NotFoundError{What: "run", Ref: ref}
		}
		if err != nil {
			return "", fmt.Errorf("find the last run: %w", err)
		}
		return id, nil
	}
	// A range on the primary key, so that a prefix costs an index seek. U+10FFFF sorts after any
	// character an id may contain (ids are compared as UTF-8 bytes).
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`,
		ref, ref+"\U0010FFFF", maxCandidates+1)
	if err != nil {
		return "", fmt.Errorf("find run %q: %w", ref, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return "", fmt.Errorf("find run %q: %w", ref, err)
		}
		if id == ref {
			return id, nil // an exact id wins even if it is also a prefix of others
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("find run %q: %w", ref, err)
	}
	switch len(ids) {
	case 0:
		return "", &NotFoundError{What: "run", Ref: ref}
	case 1:
		return ids[0], nil
	}
	more := len(ids) > maxCandidates
	if more {
		ids = ids[:maxCandidates]
	}
	return "", &AmbiguousRunError{Prefix: ref, Candidates: ids, More: more}
}

const runColumns = `id, playbook, file, file_sha256, params, status, exit_code, started_at, finished_at,
	user, host, error, retry_of, workflow_id, workflow_run_id, concurrency_group`

type scanner interface{ Scan(dest ...any) error }

func scanRun(sc scanner) (*run.Record, error) {
	var (
		r                 run.Record
		status            string
		exit              sql.NullInt64
		started           string
		finished, errText sql.NullString
		retryOf           sql.NullString
		wfID, wfRunID     sql.NullString
		group             sql.NullString
	)
	if err := sc.Scan(&r.ID, &r.Playbook, &r.File, &r.FileSHA256, &r.Params, &status, &exit, &started,
		&finished, &r.User, &r.Host, &errText, &retryOf, &wfID, &wfRunID, &group); err != nil {
		return nil, err
	}
	r.Status = run.Status(status)
	r.ExitCode = -1
	if exit.Valid {
		r.ExitCode = int(exit.Int64)
	}
	r.StartedAt = parseTime(started)
	r.FinishedAt = parseTime(finished.String)
	r.Error = errText.String
	r.RetryOf = retryOf.String
	r.WorkflowID, r.WorkflowRunID = wfID.String, wfRunID.String
	r.ConcurrencyGroup = group.String
	return &r, nil
}

// parseTime reads a stored timestamp; "" or an unreadable value give the zero time.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(TimeFormat, s); err == nil {
		return t
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

// RunFilter selects runs for ListRuns. The zero value selects every run.
type RunFilter struct {
	Limit    int        // at most this many; 0 = no limit
	Status   run.Status // only runs with this status; "" = any
	Playbook string     // only runs of this playbook (its name); "" = any
	Since    time.Time  // only runs started at or after this; zero = any time
}

// ListRuns returns the runs that match f, newest first (by started_at, then id). RunRecord.StepIDs is
// not filled; ExitCode is -1 while a run has none (running, interrupted).
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]*run.Record, error) {
	_ = s.Flush(ctx) // read this Store's own writes; write errors are reported to the Recorder's caller
	var where []string
	var args []any
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(f.Status))
	}
	if f.Playbook != "" {
		where = append(where, "playbook = ?")
		args = append(args, f.Playbook)
	}
	if !f.Since.IsZero() {
		where = append(where, "started_at >= ?")
		args = append(args, f.Since.UTC().Format(TimeFormat))
	}
	q := "SELECT " + runColumns + " FROM runs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY started_at DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*run.Record
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// RunDetail is one run with its steps and their attempts, read in one snapshot.
type RunDetail struct {
	// Run has StepIDs filled in file order. ExitCode is -1 while the run has none.
	Run *run.Record
	// Steps in file order. Stdout and Stderr carry Bytes and Truncated but no Data (see StepOutput).
	// ExitCode is -1 when there is none. Outputs is nil when the step produced none.
	Steps []*run.StepRecord
	// Attempts of each step by step id, in order, without output data (see AttemptOutput). A step
	// skipped or reused from an earlier run has none.
	Attempts map[string][]*run.AttemptRecord
}

// Step returns the step with id stepID, or nil.
func (d *RunDetail) Step(stepID string) *run.StepRecord {
	for _, st := range d.Steps {
		if st.StepID == stepID {
			return st
		}
	}
	return nil
}

// Run returns one run by its full id (see ResolveRun for prefixes), *NotFoundError if there is none.
func (s *Store) Run(ctx context.Context, id string) (*run.Record, error) {
	_ = s.Flush(ctx) // read this Store's own writes; write errors are reported to the Recorder's caller
	r, err := scanRun(s.r.QueryRowContext(ctx, "SELECT "+runColumns+" FROM runs WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{What: "run", Ref: id}
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, nil
}

const stepColumns = `step_id, name, status, reason, error, exit_code, signal, attempts, started_at,
	finished_at, command, stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, outputs,
	continue_on_error, reused_from, fingerprint, retry_reason, retry_detail, worker`

func scanStep(sc scanner, runID string, extra ...any) (*run.StepRecord, error) {
	var (
		st                                  run.StepRecord
		status, outputs                     string
		reason, errText, started, finished  sql.NullString
		command, reused                     sql.NullString
		fingerprint, retryReason, retryDet  sql.NullString
		worker                              sql.NullString
		exit, signal                        sql.NullInt64
		outTrunc, errTrunc, continueOnError bool
	)
	dest := []any{&st.StepID, &st.Name, &status, &reason, &errText, &exit, &signal, &st.Attempts, &started,
		&finished, &command, &st.Stdout.Bytes, &st.Stderr.Bytes, &outTrunc, &errTrunc, &outputs,
		&continueOnError, &reused, &fingerprint, &retryReason, &retryDet, &worker}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	st.RunID = runID
	st.Status = run.Status(status)
	st.Reason = reason.String
	st.Error = errText.String
	st.ExitCode = -1
	if exit.Valid {
		st.ExitCode = int(exit.Int64)
	}
	st.Signal = int(signal.Int64)
	st.StartedAt = parseTime(started.String)
	st.FinishedAt = parseTime(finished.String)
	st.Command = command.String
	st.Stdout.Truncated, st.Stderr.Truncated = outTrunc, errTrunc
	st.ContinueOnError = continueOnError
	st.ReusedFrom = reused.String
	st.Fingerprint, st.RetryReason, st.RetryDetail = fingerprint.String, retryReason.String, retryDet.String
	st.Worker = worker.String
	if outputs != "" && outputs != "{}" {
		if err := json.Unmarshal([]byte(outputs), &st.Outputs); err != nil {
			return nil, fmt.Errorf("step %s: outputs: %w", st.StepID, err)
		}
	}
	return &st, nil
}

const attemptColumns = `attempt, status, exit_code, signal, started_at, finished_at, error,
	stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, worker`

// qualifiedAttemptColumns is attemptColumns for a query where the attempts table is "a".
var qualifiedAttemptColumns = "a." + strings.Join(strings.Fields(strings.ReplaceAll(attemptColumns, ",", " ")), ", a.")

func scanAttempt(sc scanner, runID, stepID string, extra ...any) (*run.AttemptRecord, error) {
	var (
		a                  run.AttemptRecord
		status             string
		exit, signal       sql.NullInt64
		finished, errText  sql.NullString
		worker             sql.NullString
		started            string
		outTrunc, errTrunc bool
	)
	dest := []any{&a.Attempt, &status, &exit, &signal, &started, &finished, &errText,
		&a.Stdout.Bytes, &a.Stderr.Bytes, &outTrunc, &errTrunc, &worker}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	a.RunID, a.StepID = runID, stepID
	a.Status = run.Status(status)
	a.ExitCode = -1
	if exit.Valid {
		a.ExitCode = int(exit.Int64)
	}
	a.Signal = int(signal.Int64)
	a.StartedAt = parseTime(started)
	a.FinishedAt = parseTime(finished.String)
	a.Error = errText.String
	a.Stdout.Truncated, a.Stderr.Truncated = outTrunc, errTrunc
	a.Worker = worker.String
	return &a, nil
}

// RunDetail returns run id (a full id) with its steps and attempts, without output data; this is
// what retry needs to reuse the steps that succeeded (their Outputs included). *NotFoundError if
// the run does not exist.
func (s *Store) RunDetail(ctx context.Context, id string) (*RunDetail, error) {
	_ = s.Flush(ctx) // read this Store's own writes; write errors are reported to the Recorder's caller
	var d RunDetail
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		d.Run, err = scanRun(tx.QueryRowContext(ctx, "SELECT "+runColumns+" FROM runs WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return &NotFoundError{What: "run", Ref: id}
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+stepColumns+" FROM steps WHERE run_id = ? ORDER BY seq", id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			st, err := scanStep(rows, id)
			if err != nil {
				return err
			}
			d.Steps = append(d.Steps, st)
			d.Run.StepIDs = append(d.Run.StepIDs, st.StepID)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		arows, err := tx.QueryContext(ctx, "SELECT step_id, "+attemptColumns+" FROM attempts WHERE run_id = ? ORDER BY step_id, attempt", id)
		if err != nil {
			return err
		}
		defer arows.Close()
		d.Attempts = map[string][]*run.AttemptRecord{}
		for arows.Next() {
			var stepID string
			a, err := scanAttempt(prefixScanner{arows, &stepID}, id, "")
			if err != nil {
				return err
			}
			a.StepID = stepID
			d.Attempts[stepID] = append(d.Attempts[stepID], a)
		}
		return arows.Err()
	})
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return nil, err
		}
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	return &d, nil
}

// prefixScanner scans one leading column into first, then hands the rest to a row scanner.
type prefixScanner struct {
	sc    scanner
	first any
}

// Scan fills first, then dest.
func (p prefixScanner) Scan(dest ...any) error { return p.sc.Scan(append([]any{p.first}, dest...)...) }

// StepOutput returns a step's record with its stored output (the last attempt's bounded stdout and
// stderr, Data nil when nothing was stored). *NotFoundError if the step does not exist.
func (s *Store) StepOutput(ctx context.Context, runID, stepID string) (*run.StepRecord, error) {
	_ = s.Flush(ctx) // read this Store's own writes; write errors are reported to the Recorder's caller
	var stdout, stderr []byte
	st, err := scanStep(s.r.QueryRowContext(ctx, "SELECT "+stepColumns+", stdout, stderr FROM steps WHERE run_id = ? AND step_id = ?",
		runID, stepID), runID, &stdout, &stderr)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{What: "step", Ref: stepID}
	}
	if err != nil {
		return nil, fmt.Errorf("read step %s of run %s: %w", stepID, runID, err)
	}
	st.Stdout.Data, st.Stderr.Data = stdout, stderr
	return st, nil
}

// AttemptOutput returns one attempt (1-based) of a step with its stored output. The last attempt's
// output lives in the step row once the step finished; it is taken from there.
// *NotFoundError if there is no such attempt.
func (s *Store) AttemptOutput(ctx context.Context, runID, stepID string, attempt int) (*run.AttemptRecord, error) {
	_ = s.Flush(ctx) // read this Store's own writes; write errors are reported to the Recorder's caller
	var stdout, stderr []byte
	a, err := scanAttempt(s.r.QueryRowContext(ctx, `SELECT `+qualifiedAttemptColumns+`,
			CASE WHEN a.stdout IS NULL AND a.attempt = s.attempts THEN s.stdout ELSE a.stdout END,
			CASE WHEN a.stderr IS NULL AND a.attempt = s.attempts THEN s.stderr ELSE a.stderr END
		FROM attempts AS a JOIN steps AS s ON s.run_id = a.run_id AND s.step_id = a.step_id
		WHERE a.run_id = ? AND a.step_id = ? AND a.attempt = ?`, runID, stepID, attempt),
		runID, stepID, &stdout, &stderr)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{What: "attempt", Ref: fmt.Sprintf("%s #%d", stepID, attempt)}
	}
	if err != nil {
		return nil, fmt.Errorf("read attempt %d of step %s of run %s: %w", attempt, stepID, runID, err)
	}
	a.Stdout.Data, a.Stderr.Data = stdout, stderr
	return a, nil
}
