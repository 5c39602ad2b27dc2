package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// recordSampleRun records, through the Recorder only, a run with one step of each kind: succeeded,
// failed after a retry, skipped, continue_on_error, reused.
func recordSampleRun(t *testing.T, s *Store, id string) *run.Record {
	t.Helper()
	ctx := context.Background()
	r := fixtureRun(id, "build", "test", "deploy", "lint", "cache")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	recordStep(t, s, id, "build", run.StatusSucceeded, 0, t0.Add(time.Second), 1500*time.Millisecond, "built\n", "")
	// test: attempt 1 fails, attempt 2 fails too.
	for n := 1; n <= 2; n++ {
		start := t0.Add(time.Duration(2+n) * time.Second)
		if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: id, StepID: "test", Attempt: n, StartedAt: start, Command: "go test ./...", PID: 0}); err != nil {
			t.Fatal(err)
		}
		if err := s.AttemptFinished(ctx, &run.AttemptRecord{RunID: id, StepID: "test", Attempt: n, Status: run.StatusFailed,
			ExitCode: n, StartedAt: start, FinishedAt: start.Add(500 * time.Millisecond),
			Stdout: out("try " + string(rune('0'+n)) + "\n"), Stderr: run.Output{Data: []byte("head...[omitted]...tail"), Bytes: 5000, Truncated: true}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: "test", Status: run.StatusFailed, ExitCode: 2,
		Attempts: 2, StartedAt: t0.Add(3 * time.Second), FinishedAt: t0.Add(4500 * time.Millisecond), Command: "go test ./...",
		Stdout: out("try 2\n"), Stderr: run.Output{Data: []byte("head...[omitted]...tail"), Bytes: 5000, Truncated: true},
		Error: "exit status 2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: "deploy", Status: run.StatusSkipped,
		Reason: run.ReasonDependencyFailed, ExitCode: -1}); err != nil {
		t.Fatal(err)
	}
	recordStep(t, s, id, "lint", run.StatusFailed, 1, t0.Add(time.Second), time.Second, "", "lint: 3 problems\n")
	if err := s.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: "lint", Status: run.StatusFailed, ExitCode: 1,
		Attempts: 1, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second), Command: "echo lint",
		Stderr: out("lint: 3 problems\n"), ContinueOnError: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: "cache", Status: run.StatusSucceeded,
		Reason: run.ReasonReused, ExitCode: 0, Attempts: 1, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(time.Second),
		Outputs: map[string]string{"key": "v1", "multi": "a\nb"}, ReusedFrom: "older"}); err != nil {
		t.Fatal(err)
	}
	r.Error = "step test failed"
	finishRun(t, s, r, run.StatusFailed, 1, t0.Add(5*time.Second))
	return r
}

func TestRecorderRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	recordSampleRun(t, s, "run1")

	d, err := s.RunDetail(ctx, "run1")
	if err != nil {
		t.Fatal(err)
	}
	r := d.Run
	if r.Status != run.StatusFailed || r.ExitCode != 1 || !r.StartedAt.Equal(t0) || !r.FinishedAt.Equal(t0.Add(5*time.Second)) ||
		r.User != "alice" || r.Host != "web1" || r.Params != `{"env":"prod","token":"***"}` || r.Error != "step test failed" {
		t.Errorf("run = %+v", r)
	}
	if got := strings.Join(r.StepIDs, ","); got != "build,test,deploy,lint,cache" {
		t.Errorf("StepIDs = %s (file order)", got)
	}
	test := d.Step("test")
	if test.Status != run.StatusFailed || test.Attempts != 2 || test.ExitCode != 2 || test.Stderr.Bytes != 5000 || !test.Stderr.Truncated || test.Error != "exit status 2" {
		t.Errorf("test step = %+v", test)
	}
	if len(d.Attempts["test"]) != 2 || d.Attempts["test"][0].ExitCode != 1 || d.Attempts["test"][1].ExitCode != 2 {
		t.Errorf("attempts of test = %+v", d.Attempts["test"])
	}
	deploy := d.Step("deploy")
	if deploy.Status != run.StatusSkipped || deploy.Reason != run.ReasonDependencyFailed || deploy.ExitCode != -1 || deploy.Attempts != 0 || !deploy.StartedAt.IsZero() {
		t.Errorf("deploy step = %+v", deploy)
	}
	if lint := d.Step("lint"); !lint.ContinueOnError {
		t.Errorf("lint step lost continue_on_error: %+v", lint)
	}
	cache := d.Step("cache")
	if cache.ReusedFrom != "older" || cache.Outputs["multi"] != "a\nb" || cache.Reason != run.ReasonReused {
		t.Errorf("cache step = %+v", cache)
	}

	// Output: the step keeps its last attempt's; earlier attempts keep theirs; the last attempt's is
	// not stored twice but still readable.
	st, err := s.StepOutput(ctx, "run1", "test")
	if err != nil || string(st.Stdout.Data) != "try 2\n" {
		t.Fatalf("StepOutput = %+v, %v", st, err)
	}
	for n, want := range map[int]string{1: "try 1\n", 2: "try 2\n"} {
		a, err := s.AttemptOutput(ctx, "run1", "test", n)
		if err != nil || string(a.Stdout.Data) != want || string(a.Stderr.Data) != "head...[omitted]...tail" || !a.Stderr.Truncated {
			t.Fatalf("AttemptOutput(%d) = %+v, %v", n, a, err)
		}
	}
	db := rawDB(t, s.Path())
	if got := queryString(t, db, `SELECT count(*) FROM attempts WHERE stdout IS NULL`); got != "3" {
		t.Errorf("attempt rows without their own copy = %s, want 3 (the last attempt of build, test, lint)", got)
	}
	if _, err := s.AttemptOutput(ctx, "run1", "test", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("attempt 3: %v, want ErrNotFound", err)
	}

	// The stored form is the public contract.
	ts := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, q := range []string{
		`SELECT started_at FROM runs`, `SELECT finished_at FROM runs`,
		`SELECT started_at FROM steps WHERE step_id = 'test'`, `SELECT finished_at FROM attempts WHERE attempt = 2`,
	} {
		if v := queryString(t, db, q); !ts.MatchString(v) {
			t.Errorf("%s = %q, not ISO-8601 UTC with milliseconds", q, v)
		}
	}
	checks := map[string]string{
		`SELECT started_at FROM runs`:                                                                  "2026-11-26T07:04:52.123Z",
		`SELECT duration_ms FROM runs`:                                                                 "5000",
		`SELECT duration_ms FROM steps WHERE step_id = 'build'`:                                        "1500",
		`SELECT exit_code IS NULL FROM steps WHERE step_id = 'deploy'`:                                 "1",
		`SELECT stdout IS NULL FROM steps WHERE step_id = 'deploy'`:                                    "1",
		`SELECT typeof(stdout) FROM steps WHERE step_id = 'build'`:                                     "text",
		`SELECT CAST(stdout AS TEXT) FROM steps WHERE step_id = 'build'`:                               "built\n",
		`SELECT typeof(stdout) || length(stdout) FROM steps WHERE step_id = 'lint'`:                    "text0",
		`SELECT outputs FROM steps WHERE step_id = 'cache'`:                                            `{"key":"v1","multi":"a\nb"}`,
		`SELECT outputs FROM steps WHERE step_id = 'build'`:                                            `{}`,
		`SELECT stderr_truncated FROM steps WHERE step_id = 'test'`:                                    "1",
		`SELECT reason IS NULL FROM steps WHERE step_id = 'build'`:                                     "1",
		`SELECT retry_of IS NULL FROM runs`:                                                            "1",
		`SELECT count(*) FROM steps WHERE status NOT IN ('succeeded','failed','skipped')`:              "0",
		`SELECT group_concat(stdout, '|') FROM attempt_output WHERE step_id = 'test' ORDER BY attempt`: "try 1\n|try 2\n",
	}
	for q, want := range checks {
		if got := queryString(t, db, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
}

// TestBinaryOutputPreserved: output is stored as the exact bytes, invalid UTF-8 and NUL included (SQLite
// does not check TEXT, so such bytes stored as text would come back altered or break an export).
func TestBinaryOutputPreserved(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	raw := "\xff\xfe\x00ok\xe2\x82"
	r := fixtureRun("bin", "b")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	recordStep(t, s, "bin", "b", run.StatusSucceeded, 0, t0, time.Millisecond, raw, "fine")
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, s.Path())
	var got []byte
	var isUTF8, errUTF8 int
	if err := db.QueryRow(`SELECT stdout, stdout_utf8, stderr_utf8 FROM steps WHERE step_id = 'b'`).Scan(&got, &isUTF8, &errUTF8); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(raw)) || isUTF8 != 0 || errUTF8 != 1 {
		t.Fatalf("stored %q utf8=%d/%d, want %q 0/1", got, isUTF8, errUTF8, raw)
	}
	st, err := s.StepOutput(ctx, "bin", "b")
	if err != nil || !bytes.Equal(st.Stdout.Data, []byte(raw)) {
		t.Fatalf("StepOutput = %q, %v", st.Stdout.Data, err)
	}
}

// A cancelled run must still be able to record that it was cancelled.
func TestRecordingSurvivesCancelledContext(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := fixtureRun("c1", "a")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.StepFinished(ctx, &run.StepRecord{RunID: "c1", StepID: "a", Status: run.StatusSkipped, Reason: run.ReasonRunCancelled, ExitCode: -1}); err != nil {
		t.Fatalf("StepFinished with a cancelled context: %v", err)
	}
	r.Status, r.ExitCode, r.FinishedAt = run.StatusCancelled, 130, t0.Add(time.Second)
	if err := s.RunFinished(ctx, r); err != nil {
		t.Fatalf("RunFinished with a cancelled context: %v", err)
	}
	got, _ := s.Run(context.Background(), "c1")
	if got.Status != run.StatusCancelled || got.ExitCode != 130 {
		t.Fatalf("run = %+v", got)
	}
}

func TestRecorderErrors(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := fixtureRun("e1", "a")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.RunStarted(ctx, fixtureRun("e1", "a")); err == nil {
		t.Error("a second RunStarted with the same id succeeded")
	}
	if err := s.RunStarted(ctx, fixtureRun("../x")); err == nil || !strings.Contains(err.Error(), "invalid run id") {
		t.Errorf("a run id with a slash: %v", err)
	}
	if err := s.RunStarted(ctx, fixtureRun("dup", "a", "a")); err == nil {
		t.Error("duplicate step ids accepted")
	}
	// Compare-and-set: a run that is no longer running is not overwritten.
	if _, err := s.w.Exec(`UPDATE runs SET status = 'interrupted' WHERE id = 'e1'`); err != nil {
		t.Fatal(err)
	}
	r.Status, r.FinishedAt = run.StatusSucceeded, t0.Add(time.Second)
	if err := s.RunFinished(ctx, r); err == nil || !strings.Contains(err.Error(), "no longer running (status interrupted)") {
		t.Errorf("RunFinished over an interrupted run: %v", err)
	}
	if got, _ := s.Run(ctx, "e1"); got.Status != run.StatusInterrupted {
		t.Errorf("status = %s, want interrupted kept", got.Status)
	}
	r.Status = run.StatusRunning
	if err := s.RunFinished(ctx, r); err == nil {
		t.Error("RunFinished accepted status running")
	}
}

// A write that fails in the background is reported by the next call, by Flush, RunFinished and
// Close: never dropped.
func TestAsyncWriteErrorsReported(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := fixtureRun("e2", "a")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: "e2", StepID: "nope", Attempt: 1, StartedAt: t0}); err != nil {
		t.Fatalf("AttemptStarted returns before the write: %v", err)
	}
	err = s.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "record start of attempt 1 of step nope of run e2: no such step") {
		t.Fatalf("Flush: %v", err)
	}
	if err := s.StepFinished(ctx, &run.StepRecord{RunID: "e2", StepID: "a", Status: run.StatusSkipped}); err == nil || !strings.Contains(err.Error(), "an earlier write failed") {
		t.Errorf("the next call: %v", err)
	}
	r.Status, r.ExitCode, r.FinishedAt = run.StatusFailed, 3, t0.Add(time.Second)
	if err := s.RunFinished(ctx, r); err == nil || !strings.Contains(err.Error(), "step nope") {
		t.Errorf("RunFinished: %v", err)
	}
	if got, _ := s.Run(ctx, "e2"); got.Status != run.StatusFailed {
		t.Errorf("the final state was not written after the failure: %s", got.Status)
	}
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "step nope") {
		t.Errorf("Close: %v", err)
	}
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: "e2", StepID: "a", Attempt: 1}); err == nil {
		t.Error("a Recorder call after Close succeeded")
	}

	// A failing write in the middle of a batch loses only itself.
	s3 := openTest(t)
	if err := s3.RunStarted(ctx, fixtureRun("e3", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := s3.StepFinished(ctx, &run.StepRecord{RunID: "e3", StepID: "a", Status: run.StatusSkipped, ExitCode: -1}); err != nil {
		t.Fatal(err)
	}
	if err := s3.AttemptStarted(ctx, &run.AttemptStart{RunID: "e3", StepID: "nope", Attempt: 1, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s3.StepFinished(ctx, &run.StepRecord{RunID: "e3", StepID: "b", Status: run.StatusSkipped, ExitCode: -1}); err != nil {
		t.Fatal(err)
	}
	if err := s3.Flush(ctx); err == nil || !strings.Contains(err.Error(), "record start of attempt 1 of step nope") {
		t.Fatalf("Flush: %v", err)
	}
	if got := queryString(t, s3.w, `SELECT group_concat(step_id || ':' || status) FROM (SELECT * FROM steps ORDER BY seq)`); got != "a:skipped,b:skipped" {
		t.Errorf("steps = %s: the writes around the failing one were lost", got)
	}

	s2 := openTest(t)
	if err := s2.StepFinished(ctx, &run.StepRecord{RunID: "ghost", StepID: "a", Status: run.StatusSkipped}); err != nil {
		t.Fatal(err)
	}
	if err := s2.Flush(ctx); err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Errorf("a step of an unknown run: %v", err)
	}
}

// Steps the scheduler leaves unfinished do not stay running under a finished run.
func TestRunFinishedClosesLeftoverSteps(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := fixtureRun("l1", "a", "b")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: "l1", StepID: "a", Attempt: 1, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	finishRun(t, s, r, run.StatusFailed, 3, t0.Add(time.Second))
	db := rawDB(t, s.Path())
	if got := queryString(t, db, `SELECT group_concat(status) FROM (SELECT status FROM steps ORDER BY seq)`); got != "interrupted,interrupted" {
		t.Errorf("steps = %s", got)
	}
	if got := queryString(t, db, `SELECT status FROM attempts`); got != "interrupted" {
		t.Errorf("attempt = %s", got)
	}
}

// The start time that comes with an attempt is the one recorded, in the attempt's row and in the run's
// lock file, even when the process is gone by the time of the call (a step shorter than the way of its
// started event to the recorder): nothing is looked up then.
func TestAttemptStartedRecordsTheGivenStartTime(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if err := s.RunStarted(ctx, fixtureRun("pst", "a")); err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	pid := gone.Process.Pid
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: "pst", StepID: "a", Attempt: 1, StartedAt: t0,
		Command: "true", PID: pid, PIDStart: 4242}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var start int64
	if err := s.w.QueryRow(`SELECT pid_start FROM attempts WHERE run_id = 'pst' AND step_id = 'a'`).Scan(&start); err != nil {
		t.Fatal(err)
	}
	if start != 4242 {
		t.Errorf("pid_start = %d, want 4242", start)
	}
	lock, err := os.ReadFile(s.lockPath("pst"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("group %d 4242\n", pid); !strings.Contains(string(lock), want) {
		t.Errorf("lock file %q lacks %q", lock, want)
	}
}

// timeText writes what Format(TimeFormat) writes, for any instant and location, and for years Format
// would write with more or fewer digits.
func TestTimeText(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	times := []time.Time{
		time.Date(2026, 11, 26, 15, 4, 5, 999_999_999, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 1_000_000, east),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 2, 29, 12, 0, 0, 0, east),
		time.Now(),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(400*365*86400)-200*365*86400, r.Int64N(1e9)).In(east))
	}
	for _, tm := range times {
		if got, want := timeText(tm), tm.UTC().Format(TimeFormat); got != want {
			t.Fatalf("timeText(%v) = %q, want %q", tm, got, want)
		}
	}
}
