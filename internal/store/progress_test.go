package store

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// RunProgress stores a running step's output so far and the run's last-seen time; it never writes a
// step that is not running that attempt, and never a run that ended.
func TestRunProgress(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := fixtureRun("prog", "a", "b")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: r.ID, StepID: "a", Attempt: 1, StartedAt: t0.Add(time.Second), Command: "talk"}); err != nil {
		t.Fatal(err)
	}
	long := run.Output{Data: []byte("head\n[... 90 bytes omitted ...]\ntail\n"), Bytes: 100, Truncated: true}
	p := &run.Progress{RunID: r.ID, Time: t0.Add(5 * time.Second), Steps: []run.StepProgress{
		{StepID: "a", Attempt: 1, Stdout: out("so far\n"), Stderr: long},
		{StepID: "a", Attempt: 2, Stdout: out("not this attempt\n")},
		{StepID: "b", Attempt: 1, Stdout: out("not started\n")},
	}}
	if err := s.RunProgress(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(q, want string) {
		t.Helper()
		if got := queryString(t, s.r, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	check(`SELECT last_seen_at FROM runs WHERE id = 'prog'`, "2026-11-26T07:04:57.123Z")
	check(`SELECT status || ' ' || CAST(stdout AS TEXT) || stdout_bytes || ' ' || stderr_bytes || stderr_truncated FROM steps WHERE step_id = 'a'`,
		"running so far\n7 1001")
	check(`SELECT stdout_bytes || ' ' || stderr_bytes || stderr_truncated || ' ' || (stdout IS NULL) FROM attempts WHERE step_id = 'a'`, "7 1001 1")
	check(`SELECT stdout IS NULL FROM steps WHERE step_id = 'b'`, "1")
	// logs reads it as the step's output.
	if st, err := s.StepOutput(ctx, r.ID, "a"); err != nil || string(st.Stdout.Data) != "so far\n" || !st.Stderr.Truncated {
		t.Errorf("StepOutput: %+v, %v", st, err)
	}

	// A progress record that comes after the final one changes nothing.
	recordStep(t, s, r.ID, "b", run.StatusSucceeded, 0, t0.Add(2*time.Second), time.Second, "final b\n", "")
	if err := s.RunProgress(ctx, &run.Progress{RunID: r.ID, Time: t0.Add(6 * time.Second),
		Steps: []run.StepProgress{{StepID: "b", Attempt: 1, Stdout: out("stale\n")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check(`SELECT CAST(stdout AS TEXT) FROM steps WHERE step_id = 'b'`, "final b\n")
	finishRun(t, s, r, run.StatusSucceeded, 0, t0.Add(7*time.Second))
	if err := s.RunProgress(ctx, &run.Progress{RunID: r.ID, Time: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check(`SELECT last_seen_at FROM runs WHERE id = 'prog'`, "2026-11-26T07:04:58.123Z")
}

// Crash recovery ends a dead run when its runner was last seen, when that is later than its last
// state change.
func TestRecoveryEndsWhenLastSeen(t *testing.T) {
	s := openTest(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	insertOwnedRun(t, s, "seen", dead.Process.Pid, 12345, s.host, s.bootID)
	if _, err := s.w.Exec(`UPDATE steps SET status = 'running', started_at = '2026-11-26T07:00:01.000Z', attempts = 1 WHERE run_id = 'seen'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`UPDATE runs SET last_seen_at = '2026-11-26T07:00:42.500Z' WHERE id = 'seen'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, s.r, `SELECT status || ' ' || finished_at || ' ' || duration_ms FROM runs WHERE id = 'seen'`); got != "interrupted 2026-11-26T07:00:42.500Z 42500" {
		t.Errorf("run = %q, want interrupted at its last-seen time", got)
	}
	if got := queryString(t, s.r, `SELECT finished_at || ' ' || duration_ms FROM steps WHERE run_id = 'seen'`); got != "2026-11-26T07:00:42.500Z 41500" {
		t.Errorf("step = %q", got)
	}
}
