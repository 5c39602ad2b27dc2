package store

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// sqlite3CLI runs q with the sqlite3 command people audit with, read-only, and returns its output;
// the test is skipped without one. Debian's is built with LIKE_DOESNT_MATCH_BLOBS: LIKE never matches
// a BLOB there.
func sqlite3CLI(t *testing.T, path, q string) string {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 command")
	}
	cmd := exec.Command(bin, "-readonly", path, q)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("sqlite3 %q: %v: %s", q, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestOutputTextOrBlob: output that is valid UTF-8 is stored as TEXT, in steps and attempts, by the final
// records and by progress, so that a plain LIKE finds it with any sqlite3; other output is a BLOB; the
// bytes are the ones written either way. The last attempt's copy is still cleared when its output has
// characters of several bytes (length() of TEXT counts characters).
func TestOutputTextOrBlob(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	const text, binary = "héllo: permission denied ✓\n", "\xff\xfedenied\x00"
	r := fixtureRun("r1", "retried", "bin", "quiet", "running")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i, o := range []string{"first try denied é\n", text} {
		a := i + 1
		if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: "r1", StepID: "retried", Attempt: a, StartedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.AttemptFinished(ctx, &run.AttemptRecord{RunID: "r1", StepID: "retried", Attempt: a, Status: run.StatusFailed,
			ExitCode: 1, StartedAt: t0, FinishedAt: t0.Add(time.Second), Stdout: out(o), Stderr: out("ошибка\n")}); err != nil {
			t.Fatal(err)
		}
	}
	// Committed before the step's end, so that the writer cannot fold the last attempt's output into it.
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.StepFinished(ctx, &run.StepRecord{RunID: "r1", StepID: "retried", Status: run.StatusFailed, ExitCode: 1, Attempts: 2,
		StartedAt: t0, FinishedAt: t0.Add(2 * time.Second), Stdout: out(text), Stderr: out("ошибка\n")}); err != nil {
		t.Fatal(err)
	}
	recordStep(t, s, "r1", "bin", run.StatusSucceeded, 0, t0, time.Second, binary, "")
	recordStep(t, s, "r1", "quiet", run.StatusSucceeded, 0, t0, time.Second, "", "")
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: "r1", StepID: "running", Attempt: 1, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.RunProgress(ctx, &run.Progress{RunID: "r1", Time: t0.Add(time.Second), Steps: []run.StepProgress{
		{StepID: "running", Attempt: 1, Stdout: out("so far denied ü\n"), Stderr: out("\xc3")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, s.Path())
	checks := map[string]string{
		`SELECT typeof(stdout) || typeof(stderr) FROM steps WHERE step_id = 'retried'`:                    "texttext",
		`SELECT typeof(stdout) || typeof(stderr) FROM attempts WHERE step_id = 'retried' AND attempt = 1`: "texttext",
		`SELECT typeof(stdout) || typeof(stderr) FROM steps WHERE step_id = 'bin'`:                        "blobtext",
		`SELECT typeof(stdout) || length(stdout) FROM steps WHERE step_id = 'quiet'`:                      "text0",
		`SELECT typeof(stdout) || typeof(stderr) FROM steps WHERE step_id = 'running'`:                    "textblob",
		// The last attempt's output is kept once, in the step row.
		`SELECT count(*) FROM attempts WHERE step_id = 'retried' AND attempt = 2 AND stdout IS NOT NULL`: "0",
		`SELECT stdout FROM attempt_output WHERE step_id = 'retried' AND attempt = 2`:                    text,
		// length() of TEXT counts characters; the byte size is stdout_bytes, or length(CAST(... AS BLOB)).
		`SELECT length(stdout) || ' ' || length(CAST(stdout AS BLOB)) || ' ' || stdout_bytes FROM steps WHERE step_id = 'retried'`: "27 30 30",
		// The driver's SQLite matches a BLOB with LIKE too (bin); Debian's sqlite3 does not (below).
		`SELECT group_concat(step_id, ',') FROM (SELECT step_id FROM steps WHERE stdout LIKE '%denied%' ORDER BY seq)`: "retried,bin,running",
		`SELECT group_concat(attempt, ',') FROM attempt_output WHERE step_id = 'retried' AND stdout LIKE '%denied%'`:   "1,2",
	}
	for q, want := range checks {
		if got := queryString(t, db, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	var got []byte
	if err := db.QueryRow(`SELECT stdout FROM steps WHERE step_id = 'bin'`).Scan(&got); err != nil || string(got) != binary {
		t.Errorf("binary output = %q, %v; want %q", got, err, binary)
	}
	st, err := s.StepOutput(ctx, "r1", "retried")
	if err != nil || string(st.Stdout.Data) != text {
		t.Errorf("StepOutput = %q, %v", st.Stdout.Data, err)
	}
	// The sqlite3 command people use finds the text with a plain LIKE.
	if got := sqlite3CLI(t, s.Path(), `SELECT group_concat(step_id, ',') FROM steps WHERE stdout LIKE '%denied%' OR stderr LIKE '%ошибка%'`); got != "retried,running" {
		t.Errorf("sqlite3 CLI: steps whose output has denied: %q, want retried,running", got)
	}
}

// v5Database makes a database as the release before migration 6 made it: its migrations only, and rows
// written the way its code wrote them (every output a BLOB, the last attempt's copy in the step row).
func v5Database(t *testing.T, path string) {
	t.Helper()
	migs, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	s, err := open(context.Background(), path, migs[:5], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	b := func(s string) []byte { return []byte(s) }
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO runs (id, playbook, file, file_sha256, params, status, exit_code, started_at, finished_at, user, host)
		VALUES ('old', 'diag', '/srv/diag.yaml', '', '{}', 'failed', 1, '2026-11-26T07:04:52.123Z', '2026-11-26T07:05:52.123Z', 'alice', 'web1')`)
	step := func(seq int, id string, attempts int, stdout, stderr any, utf8Out, utf8Err int) {
		exec(`INSERT INTO steps (run_id, step_id, seq, status, attempts, stdout, stderr, stdout_bytes, stderr_bytes, stdout_utf8, stderr_utf8)
			VALUES ('old', ?, ?, 'succeeded', ?, ?, ?, coalesce(length(?), 0), coalesce(length(?), 0), ?, ?)`, id, seq, attempts, stdout, stderr, stdout, stderr, utf8Out, utf8Err)
	}
	attempt := func(id string, n int, stdout, stderr any) {
		exec(`INSERT INTO attempts (run_id, step_id, attempt, status, started_at, stdout, stderr, stdout_bytes, stderr_bytes)
			VALUES ('old', ?, ?, 'failed', '2026-11-26T07:04:52.123Z', ?, ?, coalesce(length(?), 0), coalesce(length(?), 0))`, id, n, stdout, stderr, stdout, stderr)
	}
	step(1, "retried", 2, b("access denied é\n"), b("ошибка\n"), 1, 1)
	attempt("retried", 1, b("first try: denied\n"), b("\xff\xfe"))
	attempt("retried", 2, nil, nil)
	step(2, "bin", 1, b("\xff\xfedenied\x00"), b(""), 0, 1)
	attempt("bin", 1, nil, nil)
	step(3, "skipped", 0, nil, nil, 1, 1)
	step(4, "nul", 1, b("a\x00denied"), b("ok"), 1, 1)
	attempt("nul", 1, nil, nil)
	if got := queryString(t, db, `SELECT group_concat(DISTINCT typeof(stdout)) FROM steps WHERE stdout IS NOT NULL`); got != "blob" {
		t.Fatalf("the old rows' output is %s, want blob", got)
	}
}

// TestMigrationTextOutput: opening a database of the previous release converts its output to TEXT where
// it is valid UTF-8 and leaves the rest BLOB, byte for byte, so that plain LIKE finds old output too.
func TestMigrationTextOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	v5Database(t, path)
	db := rawDB(t, path)
	before := queryString(t, db, `SELECT group_concat(hex(coalesce(stdout, 'null')) || '/' || hex(coalesce(stderr, 'null')), ',') FROM
		(SELECT stdout, stderr FROM steps UNION ALL SELECT stdout, stderr FROM attempts)`)
	s := openAt(t, path)
	if s.migrated < 1 {
		t.Fatalf("applied %d migrations", s.migrated)
	}
	checks := map[string]string{
		`SELECT group_concat(step_id || ':' || typeof(stdout) || '/' || typeof(stderr), ',') FROM (SELECT * FROM steps ORDER BY seq)`:                            "retried:text/text,bin:blob/text,skipped:null/null,nul:text/text",
		`SELECT group_concat(step_id || attempt || ':' || typeof(stdout) || '/' || typeof(stderr), ',') FROM (SELECT * FROM attempts ORDER BY step_id, attempt)`: "bin1:null/null,nul1:null/null,retried1:text/blob,retried2:null/null",
		`SELECT group_concat(hex(coalesce(stdout, 'null')) || '/' || hex(coalesce(stderr, 'null')), ',') FROM
			(SELECT stdout, stderr FROM steps UNION ALL SELECT stdout, stderr FROM attempts)`: before,
		// The driver's SQLite matches a BLOB with LIKE too (bin); Debian's sqlite3 does not (below). A NUL
		// ends the text for LIKE (nul).
		`SELECT group_concat(step_id, ',') FROM steps WHERE stdout LIKE '%denied%'`:                     "retried,bin",
		`SELECT group_concat(step_id || attempt, ',') FROM attempt_output WHERE stdout LIKE '%denied%'`: "retried1,retried2,bin1",
		`SELECT group_concat(stdout_utf8 || stderr_utf8, ',') FROM (SELECT * FROM steps ORDER BY seq)`:  "11,01,11,11",
		`PRAGMA integrity_check`: "ok",
	}
	for q, want := range checks {
		if got := queryString(t, db, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	if got := sqlite3CLI(t, path, `SELECT group_concat(step_id, ',') FROM steps WHERE stdout LIKE '%denied%' OR stderr LIKE '%ошибка%'`); got != "retried" {
		t.Errorf("sqlite3 CLI after the migration: %q, want retried", got)
	}
}
