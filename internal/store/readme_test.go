package store

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// cookbookQueries returns the ```sql blocks of the README's store region, by their first line (a
// "-- title" comment).
func cookbookQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, region, ok := strings.Cut(string(b), "<!-- store:begin -->")
	region, _, ok2 := strings.Cut(region, "<!-- store:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no store region")
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(region, -1)
	out := map[string]string{}
	for _, m := range blocks {
		first, _, _ := strings.Cut(m[1], "\n")
		title, ok := strings.CutPrefix(first, "-- ")
		if !ok {
			t.Fatalf("cookbook query without a '-- title' first line:\n%s", m[1])
		}
		out[title] = m[1]
	}
	return out
}

// seedCookbook records, through the Recorder, the runs the cookbook's expected answers describe.
func seedCookbook(t *testing.T, path string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	startRun := func(id, pb, user, host string, start time.Time, retryOf string, steps ...string) *run.Record {
		r := &run.Record{ID: id, Playbook: pb, File: "/srv/" + pb + ".yaml", Params: "{}", StepIDs: steps,
			StartedAt: start, User: user, Host: host, RetryOf: retryOf}
		if pb == "deploy-web" {
			r.ConcurrencyGroup = "deploy-web-prod"
		}
		must(s.RunStarted(ctx, r))
		return r
	}
	type att struct {
		status         run.Status
		exit, signal   int
		stdout, stderr run.Output
	}
	// step records a step's attempts (each 1 s apart, the last one ending at start+d) and its end.
	step := func(runID, id string, start time.Time, d time.Duration, outputs map[string]string, atts ...att) {
		for i, a := range atts {
			at := start.Add(time.Duration(i) * time.Second)
			must(s.AttemptStarted(ctx, &run.AttemptStart{RunID: runID, StepID: id, Attempt: i + 1, StartedAt: at, Command: "run " + id}))
			end := at.Add(500 * time.Millisecond)
			if i == len(atts)-1 {
				end = start.Add(d)
			}
			must(s.AttemptFinished(ctx, &run.AttemptRecord{RunID: runID, StepID: id, Attempt: i + 1, Status: a.status, ExitCode: a.exit,
				Signal: a.signal, StartedAt: at, FinishedAt: end, Stdout: a.stdout, Stderr: a.stderr}))
		}
		last := atts[len(atts)-1]
		must(s.StepFinished(ctx, &run.StepRecord{RunID: runID, StepID: id, Status: last.status, ExitCode: last.exit, Signal: last.signal,
			Attempts: len(atts), StartedAt: start, FinishedAt: start.Add(d), Command: "run " + id, Stdout: last.stdout, Stderr: last.stderr, Outputs: outputs}))
	}
	finish := func(r *run.Record, st run.Status, exit int, d time.Duration, msg string) {
		r.Status, r.ExitCode, r.FinishedAt, r.Error = st, exit, r.StartedAt.Add(d), msg
		must(s.RunFinished(ctx, r))
	}
	ok := func(o string) att { return att{status: run.StatusSucceeded, stdout: out(o)} }

	t1 := now.Add(-48 * time.Hour)
	r := startRun("run-ok-1", "deploy-web", "alice", "web1", t1, "", "build", "deploy")
	step("run-ok-1", "build", t1, 1500*time.Millisecond, map[string]string{"tag": "v1.4.2"}, ok("built\n"))
	step("run-ok-1", "deploy", t1.Add(2*time.Second), 30*time.Second, nil, ok("deployed\n"))
	finish(r, run.StatusSucceeded, 0, time.Minute, "")

	t2 := now.Add(-24 * time.Hour)
	r = startRun("run-fail-2", "deploy-web", "bob", "web2", t2, "", "build", "test", "deploy")
	step("run-fail-2", "build", t2, 2*time.Second, map[string]string{"tag": "v1.4.3"}, ok("built\n"))
	step("run-fail-2", "test", t2.Add(3*time.Second), 45*time.Second, nil,
		att{status: run.StatusFailed, exit: 1, stdout: out("ok\n"), stderr: out("FAIL: a1\n")},
		att{status: run.StatusFailed, exit: 1, stdout: out("ok\n"), stderr: out("FAIL: a2\n")},
		att{status: run.StatusTimedOut, exit: -1, signal: 9, stdout: out("ok\n"), stderr: out("FAIL: a3\n")})
	must(s.StepFinished(ctx, &run.StepRecord{RunID: "run-fail-2", StepID: "deploy", Status: run.StatusSkipped, Reason: run.ReasonDependencyFailed, ExitCode: -1}))
	finish(r, run.StatusFailed, 1, time.Minute, "step test failed")

	t3 := now.Add(-10 * 24 * time.Hour)
	r = startRun("run-old-3", "deploy-web", "alice", "web1", t3, "", "build")
	step("run-old-3", "build", t3, 5*time.Second, nil, att{status: run.StatusFailed, exit: 1, stderr: out("boom: permission denied\n")})
	finish(r, run.StatusFailed, 1, 6*time.Second, "step build failed")

	t4 := now.Add(-20 * time.Hour)
	r = startRun("run-retry-4", "deploy-web", "bob", "web2", t4, "run-fail-2", "build", "test", "deploy")
	must(s.StepFinished(ctx, &run.StepRecord{RunID: "run-retry-4", StepID: "build", Status: run.StatusSucceeded, Reason: run.ReasonReused,
		Attempts: 1, StartedAt: t4, FinishedAt: t4, Command: "run build", Outputs: map[string]string{"tag": "v1.4.3"}, ReusedFrom: "run-fail-2"}))
	step("run-retry-4", "test", t4.Add(time.Second), 12*time.Second, nil, ok("ok\n"))
	step("run-retry-4", "deploy", t4.Add(14*time.Second), 8*time.Second, nil, ok("deployed\n"))
	finish(r, run.StatusSucceeded, 0, 30*time.Second, "")

	t6 := now.Add(-time.Hour)
	r = startRun("run-bin-6", "diag", "carol", "db1", t6, "", "capture", "big")
	step("run-bin-6", "capture", t6, 100*time.Millisecond, nil, ok("\xff\xfe\x00ok\xe2\x82"))
	big := run.Output{Data: []byte("head\n[... 4999990 bytes omitted ...]\ntail\n"), Bytes: 5_000_000, Truncated: true}
	step("run-bin-6", "big", t6.Add(time.Second), 200*time.Millisecond, nil, att{status: run.StatusSucceeded, stdout: big})
	finish(r, run.StatusSucceeded, 0, 2*time.Second, "")

	// run-dead-5: its runner stops recording mid-step (Close releases the lock unfinished); the next
	// Open finds it interrupted.
	t5 := now.Add(-3 * time.Hour)
	startRun("run-dead-5", "backup", "carol", "db1", t5, "", "dump", "upload")
	must(s.AttemptStarted(ctx, &run.AttemptStart{RunID: "run-dead-5", StepID: "dump", Attempt: 1, StartedAt: t5, Command: "pg_dump prod"}))
	must(s.Close())
	s, err = Open(ctx, path)
	must(err)
	if rec := s.Recovered(); len(rec) != 1 || rec[0].ID != "run-dead-5" {
		t.Fatalf("recovered %+v", rec)
	}
	must(s.Close())
}

// Every query of the README's cookbook runs against a real database and gives the expected rows.
func TestReadmeCookbook(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ts := func(d time.Duration) string { return now.Add(d).Format(TimeFormat) }
	want := map[string][]string{
		"Failed runs of the last 7 days": {"run-fail-2|deploy-web|bob|web2|step test failed"},
		"The slowest steps": {
			"deploy-web|test|45000|run-fail-2", "deploy-web|deploy|30000|run-ok-1", "deploy-web|test|12000|run-retry-4",
			"deploy-web|deploy|8000|run-retry-4", "deploy-web|build|5000|run-old-3"},
		"Who ran deploy-web, on which host, how often":          {"bob|web2|2|" + ts(-20*time.Hour), "alice|web1|2|" + ts(-48*time.Hour)},
		"Steps that needed retries, and how each attempt ended": {"run-fail-2|test|timed_out|3|1:failed:1, 2:failed:1, 3:timed_out:signal 9"},
		"Output of the last failure":                            {"run-fail-2|test||ok\n|FAIL: a3\n"},
		"Every attempt's output of a retried step":              {"1|failed|FAIL: a1\n", "2|failed|FAIL: a2\n", "3|timed_out|FAIL: a3\n"},
		"Success rate per playbook over the last 30 days":       {"backup|1|0|0", "deploy-web|4|2|50", "diag|1|1|100"},
		"Runs whose runner died, and what they were running":    {"run-dead-5|backup|db1|dump|pg_dump prod"},
		"Retries and the runs they retried":                     {"run-retry-4|succeeded|run-fail-2|failed"},
		"Steps reused by a retry instead of running again":      {"run-retry-4|build|run-fail-2"},
		"The tag output of every build step":                    {"run-ok-1|v1.4.2", "run-fail-2|v1.4.3", "run-retry-4|v1.4.3"},
		"Steps whose output mentions \"denied\"":                {"run-old-3|build|failed"},
		"Steps whose output was truncated":                      {"run-bin-6|big|5000000|0"},
		"Runs of each concurrency group, newest first": {
			"deploy-web-prod|run-retry-4|succeeded|bob|web2|" + ts(-20*time.Hour) + "|" + ts(-20*time.Hour+30*time.Second),
			"deploy-web-prod|run-fail-2|failed|bob|web2|" + ts(-24*time.Hour) + "|" + ts(-24*time.Hour+time.Minute),
			"deploy-web-prod|run-ok-1|succeeded|alice|web1|" + ts(-48*time.Hour) + "|" + ts(-48*time.Hour+time.Minute),
			"deploy-web-prod|run-old-3|failed|alice|web1|" + ts(-10*24*time.Hour) + "|" + ts(-10*24*time.Hour+6*time.Second)},
		"Steps that wrote binary (non-UTF-8) output": {"run-bin-6|capture|FFFE006F6BE282"},
	}
	queries := cookbookQueries(t)
	for title := range want {
		if _, ok := queries[title]; !ok {
			t.Errorf("README cookbook lacks the query %q", title)
		}
	}
	path := filepath.Join(t.TempDir(), "p.db")
	seedCookbook(t, path, now)
	db := rawDB(t, path)
	sqlite3, _ := exec.LookPath("sqlite3")
	for title, q := range queries {
		t.Run(title, func(t *testing.T) {
			exp, ok := want[title]
			if !ok {
				t.Fatalf("no expected rows for the README query %q: add them to this test", title)
			}
			got := queryRows(t, db, q)
			if strings.Join(got, "\n--\n") != strings.Join(exp, "\n--\n") {
				t.Fatalf("query:\n%s\ngot rows:\n%q\nwant:\n%q", q, got, exp)
			}
			// The sqlite3 command people use must accept it too (it may be older than the driver).
			if sqlite3 != "" {
				cmd := exec.Command(sqlite3, "-readonly", path)
				cmd.Stdin = strings.NewReader(q)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				var stdout bytes.Buffer
				cmd.Stdout = &stdout
				if err := cmd.Run(); err != nil || stderr.Len() > 0 {
					t.Errorf("sqlite3 CLI: %v: %s", err, stderr.String())
				}
				// A search of the output gives the same rows there: Debian's sqlite3 never matches a
				// BLOB with LIKE, the driver's SQLite does.
				if strings.Contains(q, "LIKE") && strings.TrimSuffix(stdout.String(), "\n") != strings.Join(exp, "\n") {
					t.Errorf("sqlite3 CLI gave:\n%s\nwant:\n%s", stdout.String(), strings.Join(exp, "\n"))
				}
			}
		})
	}
}

// queryRows runs q and returns each row as its columns joined by "|", NULL as "" (sqlite3's list
// mode).
func queryRows(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			parts[i] = v.String
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
