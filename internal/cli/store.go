package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

// openStore opens the run database: --db, else $PLAYBOOK_DB, else the XDG state folder. Commands that
// record or delete (run, retry, prune) pass write; the others only read, and never create anything: a
// missing database is an error, and one this user cannot write is opened read-only (without crash
// recovery). Opening for writing runs crash recovery; the runs it marks interrupted are reported on
// stderr. Every failure comes back wrapped with storeError, so the command exits 3.
func openStore(ctx context.Context, sys *System, g *globalOptions, write bool) (*store.Store, error) {
	path, err := dbPath(sys, g)
	if err != nil {
		return nil, err
	}
	o := store.Options{LockWait: store.LockWait}
	if v := sys.getenv("PLAYBOOK_LOCK_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, storeError(fmt.Errorf("PLAYBOOK_LOCK_WAIT=%q: want a positive duration such as 30s or 5m", v))
		}
		o.LockWait = d
	}
	o.Waiting = func(path string) {
		// Once per command, from whichever goroutine waits: one write of one line.
		fmt.Fprintf(sys.ErrOut, "playbook: waiting for the write lock of database %s, which another process holds (giving up after %s)\n",
			path, o.LockWait)
	}
	open := store.OpenForReading
	if write {
		open = store.OpenWith
	}
	st, err := open(ctx, path, o)
	if err != nil {
		return nil, storeError(err)
	}
	for _, r := range st.Recovered() {
		if r.Detached {
			fmt.Fprintf(sys.ErrOut, "playbook: run %s (%s) marked detached: the process that followed it (pid %d) died, and its workflow goes on on Temporal; `playbook attach %s` follows it to its end\n",
				idPrefix(r.ID), r.Playbook, r.OwnerPID, idPrefix(r.ID))
			continue
		}
		what := fmt.Sprintf("its runner (pid %d) died", r.OwnerPID)
		switch {
		case r.Rebooted:
			what = "the machine restarted"
		case r.Exited != "":
			what = fmt.Sprintf("its runner (pid %d) exited (status 3) before it could record the end of the run (%s)", r.OwnerPID, r.Exited)
		}
		fmt.Fprintf(sys.ErrOut, "playbook: run %s (%s) marked interrupted: %s", idPrefix(r.ID), r.Playbook, what)
		if r.Killed > 0 {
			fmt.Fprintf(sys.ErrOut, "; killed %d leftover process group(s)", r.Killed)
		}
		fmt.Fprintln(sys.ErrOut)
	}
	if err := st.RecoveryErr(); err != nil {
		fmt.Fprintf(sys.ErrOut, "playbook: warning: %v; such runs stay marked running until a later command can write the database (free some space)\n", err)
	}
	return st, nil
}

// dbPath is the database file of the command: --db, else $PLAYBOOK_DB, else the XDG state folder.
func dbPath(sys *System, g *globalOptions) (string, error) {
	if g.DB != "" {
		return g.DB, nil
	}
	p, err := store.DefaultPath(sys.getenv)
	if err != nil {
		return "", storeError(err)
	}
	return p, nil
}

// requireDatabase is for the commands that write to a database but have nothing to do without one
// (prune, retry): where there is no database file, it says so (exit 3) before anything, database or
// folder, is created.
func requireDatabase(sys *System, g *globalOptions) error {
	path, err := dbPath(sys, g)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return storeError(fmt.Errorf("database path %s: %w", path, err))
	}
	if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
		return storeError(&store.NoDatabaseError{Path: abs})
	}
	return nil
}

// openRun opens the database, for writing or not (see openStore), and reads one run (RUN: an id, a
// unique prefix of one, or "last") with its steps and attempts. On success the caller closes the
// store; on failure it is closed, and the error already carries its exit status (2 for a run that is
// not there, 3 for the database).
func openRun(ctx context.Context, sys *System, g *globalOptions, ref string, write bool) (*store.Store, *store.RunDetail, error) {
	st, err := openStore(ctx, sys, g, write)
	if err != nil {
		return nil, nil, err
	}
	id, err := resolveRun(ctx, st, ref)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	d, err := st.RunDetail(ctx, id)
	if err != nil {
		st.Close()
		return nil, nil, storeError(err)
	}
	return st, d, nil
}

// resolveRun turns a RUN argument (id, unique prefix, "last") into a run id. A reference that names no
// run, or several, is the user's mistake: exit 2, without the usage hint. Database failures exit 3.
func resolveRun(ctx context.Context, st *store.Store, ref string) (string, error) {
	id, err := st.ResolveRun(ctx, ref)
	if err == nil {
		return id, nil
	}
	var amb *store.AmbiguousRunError
	if errors.Is(err, store.ErrNotFound) || errors.As(err, &amb) {
		return "", &ExitError{Code: run.ExitUsage, Err: err}
	}
	return "", storeError(err)
}

// idPrefix is the part of a run id the output shows, in tables and in messages alike: 12 hex
// characters (48 random bits) stay unique in practice over millions of runs, where 8 would start to
// collide at tens of thousands, making a printed "playbook logs ID" ambiguous. Any unique prefix is
// accepted as RUN.
func idPrefix(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// spanText is the time from start to end in formatDuration's form, "-" when either is unknown.
func spanText(start, end time.Time) string {
	if start.IsZero() || end.IsZero() {
		return "-"
	}
	return formatDuration(max(end.Sub(start), 0))
}

// parseAge reads a duration for --since and --older-than: Go durations (90m, 36h) plus days and
// weeks (7d, 2w).
func parseAge(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 90m, 36h, 7d, 2w)", s)
	}
	return d, nil
}

// parseSince reads --since: a duration back from now, or a time (RFC 3339, or a UTC date or date and
// time).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := parseAge(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a duration (90m, 36h, 7d) nor a time (2026-11-26, 2026-11-26T07:00:00Z)", s)
}

// jsonTime is a timestamp in the database's format, or null.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(store.TimeFormat)
	return &s
}

func jsonDuration(start, end time.Time) *int64 {
	if start.IsZero() || end.IsZero() {
		return nil
	}
	d := end.Sub(start).Milliseconds()
	return &d
}

func jsonInt(n int, valid bool) *int {
	if !valid {
		return nil
	}
	return &n
}

func jsonString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// runJSON is a run in --json output: the runs table's column names. JSON stays valid whatever bytes
// the strings hold (encoding/json replaces invalid UTF-8).
type runJSON struct {
	ID         string          `json:"id"`
	Playbook   string          `json:"playbook"`
	File       string          `json:"file"`
	FileSHA256 string          `json:"file_sha256"`
	Params     json.RawMessage `json:"params"`
	Status     string          `json:"status"`
	ExitCode   *int            `json:"exit_code"`
	StartedAt  *string         `json:"started_at"`
	FinishedAt *string         `json:"finished_at"`
	DurationMS *int64          `json:"duration_ms"`
	User       string          `json:"user"`
	Host       string          `json:"host"`
	Error      *string         `json:"error"`
	RetryOf    *string         `json:"retry_of"`
	// ConcurrencyGroup is the group the run held (the playbook's concurrency key); null for none.
	ConcurrencyGroup *string `json:"concurrency_group"`
}

func newRunJSON(r *run.Record) runJSON {
	params := json.RawMessage(r.Params)
	if !json.Valid(params) || !utf8.Valid(params) {
		b, _ := json.Marshal(r.Params) // not an object any more (edited by hand?): keep it as a string
		params = b
	}
	return runJSON{
		ID: r.ID, Playbook: r.Playbook, File: r.File, FileSHA256: r.FileSHA256, Params: params,
		Status: string(r.Status), ExitCode: jsonInt(r.ExitCode, r.ExitCode >= 0),
		StartedAt: jsonTime(r.StartedAt), FinishedAt: jsonTime(r.FinishedAt),
		DurationMS: jsonDuration(r.StartedAt, r.FinishedAt), User: r.User, Host: r.Host,
		Error: jsonString(r.Error), RetryOf: jsonString(r.RetryOf), ConcurrencyGroup: jsonString(r.ConcurrencyGroup),
	}
}

// printableText makes stored output safe to show: invalid UTF-8 becomes U+FFFD.
func printableText(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return []byte(strings.ToValidUTF8(string(b), "\uFFFD"))
}
