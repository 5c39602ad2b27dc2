package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

// The runs of the seeded database. Their ids share prefixes on purpose.
const (
	runOK      = "a1b2c3d4e5f60001" // deploy-web, succeeded, 3 h ago
	runFailed  = "a1b2c3d4e5f60002" // deploy-web, failed after a retry, 2 h ago
	runBinary  = "b1n0000000000004" // diag, succeeded, binary output, 1 h ago
	runRunning = "ffee000000000003" // backup, running, 10 min ago
)

func output(s string) run.Output {
	return run.Output{Data: []byte(s), Bytes: int64(len(s))}
}

type seeder struct {
	t  *testing.T
	st *store.Store
}

func (s seeder) must(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

// step records one step through the Recorder; attempts gives each attempt's stdout, the last one is
// the step's.
func (s seeder) step(runID, id string, status run.Status, exit int, start time.Time, stderr run.Output, attempts ...string) {
	s.t.Helper()
	ctx := context.Background()
	for i, o := range attempts {
		n := i + 1
		at := start.Add(time.Duration(i) * time.Second)
		s.must(s.st.AttemptStarted(ctx, &run.AttemptStart{RunID: runID, StepID: id, Attempt: n, StartedAt: at, Command: "run " + id}))
		ast := status
		if n < len(attempts) {
			ast = run.StatusFailed
		}
		s.must(s.st.AttemptFinished(ctx, &run.AttemptRecord{RunID: runID, StepID: id, Attempt: n, Status: ast, ExitCode: exit,
			StartedAt: at, FinishedAt: at.Add(500 * time.Millisecond), Stdout: output(o), Stderr: stderr}))
	}
	end := start.Add(time.Duration(len(attempts)-1)*time.Second + 500*time.Millisecond)
	s.must(s.st.StepFinished(ctx, &run.StepRecord{RunID: runID, StepID: id, Status: status, ExitCode: exit,
		Attempts: len(attempts), StartedAt: start, FinishedAt: end, Command: "run " + id,
		Stdout: output(attempts[len(attempts)-1]), Stderr: stderr}))
}

func (s seeder) run(id, playbook, user, host string, start time.Time, steps ...string) *run.Record {
	s.t.Helper()
	r := &run.Record{ID: id, Playbook: playbook, File: "/srv/" + playbook + ".yaml", FileSHA256: strings.Repeat("0", 64),
		Params: `{"env":"prod"}`, StepIDs: steps, Status: run.StatusRunning, StartedAt: start, User: user, Host: host}
	s.must(s.st.RunStarted(context.Background(), r))
	return r
}

func (s seeder) finish(r *run.Record, status run.Status, exit int, end time.Time, msg string) {
	s.t.Helper()
	r.Status, r.ExitCode, r.FinishedAt, r.Error = status, exit, end, msg
	s.must(s.st.RunFinished(context.Background(), r))
}

// seedDB creates a database with four runs recorded through the Recorder, as `playbook run` records
// them, and returns its path. Times are relative to now, for --since and --older-than.
func seedDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "playbook.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := seeder{t, st}
	now := time.Now().UTC()

	t1 := now.Add(-3 * time.Hour)
	r := s.run(runOK, "deploy-web", "alice", "web1", t1, "build", "deploy")
	s.step(runOK, "build", run.StatusSucceeded, 0, t1, output(""), "built v1\n")
	s.step(runOK, "deploy", run.StatusSucceeded, 0, t1.Add(time.Second), output(""), "deployed\n")
	s.finish(r, run.StatusSucceeded, 0, t1.Add(3*time.Second), "")

	t2 := now.Add(-2 * time.Hour)
	r = s.run(runFailed, "deploy-web", "bob", "web2", t2, "build", "test", "notify")
	s.step(runFailed, "build", run.StatusSucceeded, 0, t2, output(""), "built v2\n")
	trunc := run.Output{Data: []byte("FAIL start\n[... 9000 bytes omitted ...]\nFAIL end\n"), Bytes: 9050, Truncated: true}
	s.step(runFailed, "test", run.StatusFailed, 2, t2.Add(time.Second), trunc, "try 1\n", "try 2\n")
	s.must(st.StepFinished(context.Background(), &run.StepRecord{RunID: runFailed, StepID: "notify", Status: run.StatusSkipped,
		Reason: run.ReasonDependencyFailed, ExitCode: -1}))
	s.finish(r, run.StatusFailed, 1, t2.Add(5*time.Second), "step test failed")

	t4 := now.Add(-time.Hour)
	r = s.run(runBinary, "diag", "carol", "db1", t4, "dump")
	s.step(runBinary, "dump", run.StatusSucceeded, 0, t4, output(""), "\xff\xfe\x00ok\xe2\x82")
	// Invalid UTF-8 in the texts too: JSON output must stay valid.
	s.must(st.StepFinished(context.Background(), &run.StepRecord{RunID: runBinary, StepID: "dump", Status: run.StatusSucceeded,
		ExitCode: 0, Attempts: 1, StartedAt: t4, FinishedAt: t4.Add(500 * time.Millisecond), Command: "run dump",
		Stdout: output("\xff\xfe\x00ok\xe2\x82"), Error: "warning: bad byte \xff", Outputs: map[string]string{"raw": "\xfe\x00"}}))
	s.finish(r, run.StatusSucceeded, 0, t4.Add(time.Second), "\xe2\x82 half a rune")
	return path
}

// seedRunning adds a run that stays running, recorded by a Store kept open until the test ends (a
// live runner, which crash recovery must leave alone).
func seedRunning(t *testing.T, path string) {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := seeder{t, st}
	t3 := time.Now().UTC().Add(-10 * time.Minute)
	s.run(runRunning, "backup", "alice", "db1", t3, "dump")
	s.must(st.AttemptStarted(context.Background(), &run.AttemptStart{RunID: runRunning, StepID: "dump", Attempt: 1, StartedAt: t3, Command: "pg_dump"}))
}

// cliCase is one table-driven invocation: the arguments after --db, and what must (not) show.
type cliCase struct {
	name       string
	args       []string
	code       int
	stdout     []string // substrings stdout must contain, in this order
	stdoutIs   string   // when not "", all of stdout
	notStdout  []string
	stderr     []string
	jsonOutput bool // stdout must be valid JSON
}

func runCases(t *testing.T, db string, cases []cliCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{}, c.args[:1]...), append([]string{"--db", db}, c.args[1:]...)...)
			r := runCLI(t, nil, args...)
			if r.Code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, c.code, r.Stdout, r.Stderr)
			}
			if c.stdoutIs != "" && r.Stdout != c.stdoutIs {
				t.Fatalf("stdout is %q, want %q", r.Stdout, c.stdoutIs)
			}
			rest := r.Stdout
			for _, want := range c.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (or has it out of order):\n%s", want, r.Stdout)
				}
				rest = rest[i+len(want):]
			}
			for _, bad := range c.notStdout {
				if strings.Contains(r.Stdout, bad) {
					t.Errorf("stdout has %q:\n%s", bad, r.Stdout)
				}
			}
			for _, want := range c.stderr {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
				}
			}
			if c.jsonOutput && !json.Valid([]byte(r.Stdout)) {
				t.Errorf("stdout is not valid JSON:\n%s", r.Stdout)
			}
		})
	}
}

func TestOpenStoreErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "runs", "--db", filepath.Join(file, "p.db"))
	if r.Code != run.ExitStore || !strings.Contains(r.Stderr, "open store") {
		t.Errorf("unusable --db: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = runCLI(t, nil, "runs") // no --db, PLAYBOOK_DB, XDG_STATE_HOME nor HOME
	if r.Code != run.ExitStore || !strings.Contains(r.Stderr, "cannot find the database") {
		t.Errorf("no location: exit %d, stderr %q", r.Code, r.Stderr)
	}
	notDB := filepath.Join(t.TempDir(), "notes.db")
	os.WriteFile(notDB, []byte(strings.Repeat("not sqlite\n", 100)), 0o600)
	r = runCLI(t, nil, "show", "--db", notDB, "last")
	if r.Code != run.ExitStore || !strings.Contains(r.Stderr, "not a database") {
		t.Errorf("not a database: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// The location rule: $PLAYBOOK_DB, then $XDG_STATE_HOME, then $HOME.
func TestDatabaseLocation(t *testing.T) {
	dir := t.TempDir()
	pbFile := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(pbFile, []byte("version: 1\nname: ok\nsteps:\n  - id: a\n    run: \"true\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"PLAYBOOK_DB=" + filepath.Join(dir, "env.db"), "HOME=" + dir}, filepath.Join(dir, "env.db")},
		{[]string{"XDG_STATE_HOME=" + filepath.Join(dir, "xdg"), "HOME=" + dir}, filepath.Join(dir, "xdg", "playbook", "playbook.db")},
		{[]string{"HOME=" + filepath.Join(dir, "home")}, filepath.Join(dir, "home", ".local", "state", "playbook", "playbook.db")},
	} {
		// run records, so it creates the database (runs and prune would not).
		if r := runCLI(t, c.env, "run", pbFile); r.Code != 0 {
			t.Fatalf("run with %v: %d %s", c.env, r.Code, r.Stderr)
		}
		fi, err := os.Stat(c.want)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("with %v: %s: %v, %v (want mode 0600)", c.env, c.want, fi, err)
		}
	}
}

// A run whose runner stopped recording it is marked interrupted by the next command, which says so.
func TestCommandsRecoverDeadRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s := seeder{t, st}
	s.run("dead00000001", "deploy-web", "alice", "web1", time.Now().Add(-time.Minute), "a")
	st.Close() // releases the run's lock without finishing it: as if the runner had died
	r := runCLI(t, nil, "runs", "--db", path)
	if r.Code != 0 || !strings.Contains(r.Stderr, "run dead00000001 (deploy-web) marked interrupted") || !strings.Contains(r.Stdout, "interrupted") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
}

// Commands that only read never create a database, nor its folder: they say there is none (exit 3).
// Nor do prune and retry, which write but have nothing to work on without one.
func TestReadCommandsCreateNothing(t *testing.T) {
	base := t.TempDir()
	db := filepath.Join(base, "state", "playbook.db")
	for _, args := range [][]string{{"runs"}, {"runs", "--json"}, {"show", "last"}, {"logs", "last", "a"},
		{"prune", "--keep", "1"}, {"prune", "--older-than", "1d", "--dry-run"}, {"retry", "last"}} {
		r := runCLI(t, nil, append([]string{args[0], "--db", db}, args[1:]...)...)
		if r.Code != run.ExitStore || !strings.Contains(r.Stderr, "no database at "+db+": nothing has been run with it yet") {
			t.Errorf("%v: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("created %v", entries)
	}
}

// Another application's SQLite database is refused (exit 3) and left as it was.
func TestForeignDatabaseRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "app.sqlite")
	raw, err := sql.Open("sqlite3", "file:"+db+"?_journal_mode=DELETE")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep')"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	before, _ := os.ReadFile(db)
	for _, cmd := range []string{"runs", "prune"} {
		args := []string{cmd, "--db", db}
		if cmd == "prune" {
			args = append(args, "--keep", "1")
		}
		r := runCLI(t, nil, args...)
		if r.Code != run.ExitStore || !strings.Contains(r.Stderr, db+" is an SQLite database that belongs to something else") ||
			!strings.Contains(r.Stderr, "use --db with another path") {
			t.Errorf("%s: exit %d, stderr %q", cmd, r.Code, r.Stderr)
		}
	}
	after, _ := os.ReadFile(db)
	if !bytes.Equal(before, after) || after[18] != 1 {
		t.Error("the database was changed")
	}
	for _, s := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(db + s); err == nil {
			t.Errorf("%s%s left behind", db, s)
		}
	}
}

// A database others could have written is refused with what to do (exit 3).
func TestUnsafeDatabaseRefused(t *testing.T) {
	db := seedDB(t)
	if err := os.Chmod(db, 0o666); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, nil, "runs", "--db", db)
	if r.Code != run.ExitStore || !strings.Contains(r.Stderr, "refusing database path "+db) || !strings.Contains(r.Stderr, "chmod go-w "+db) {
		t.Errorf("exit %d, stderr %q", r.Code, r.Stderr)
	}
}
