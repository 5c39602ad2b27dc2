//go:build linux

package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/run"
)

func init() {
	helpers["runner"] = fakeRunner
	helpers["churn"] = churnRunner
}

// startSleep starts `sleep 300` in its own process group, as the engine starts a step.
func startSleep() (*exec.Cmd, error) {
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, cmd.Start()
}

// fakeRunner records a running run (id from STORE_TEST_RUN) whose step "a" is a real sleep in its
// own process group, prints "ready <pgid>", and waits for its stdin to close. Then it finishes the
// run like a live runner would. The test kills it with SIGKILL to simulate a crash.
func fakeRunner(dbPath string) error {
	ctx := context.Background()
	s, err := Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer s.Close()
	id := os.Getenv("STORE_TEST_RUN")
	r := fixtureRun(id, "a", "b")
	r.StartedAt = time.Now()
	r.WorkflowID = os.Getenv("STORE_TEST_WORKFLOW") // a run on Temporal
	if err := s.RunStarted(ctx, r); err != nil {
		return err
	}
	sleep, err := startSleep()
	if err != nil {
		return err
	}
	if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: id, StepID: "a", Attempt: 1, StartedAt: time.Now(), Command: "sleep 300", PID: sleep.Process.Pid}); err != nil {
		return err
	}
	// The write is asynchronous: wait until it is on disk before telling the test, which then
	// kills us (a real runner killed earlier than that loses the attempt's row: see writer.go).
	if err := s.Flush(ctx); err != nil {
		return err
	}
	fmt.Printf("ready %d\n", sleep.Process.Pid)
	io.Copy(io.Discard, os.Stdin) // until the test closes stdin (a live runner) or kills us
	syscall.Kill(-sleep.Process.Pid, syscall.SIGKILL)
	sleep.Wait()
	for _, step := range []string{"a", "b"} {
		if err := s.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: step, Status: run.StatusCancelled, ExitCode: -1, Signal: 9, Attempts: 1, StartedAt: r.StartedAt, FinishedAt: time.Now()}); err != nil {
			return err
		}
	}
	r.Status, r.ExitCode, r.FinishedAt = run.StatusCancelled, 130, time.Now()
	return s.RunFinished(ctx, r)
}

// churnRunner starts a sleep in its own group, prints "sleep <pgid>", then records runs of five steps
// (each attempt naming the sleep's group) as fast as it can, until killed.
func churnRunner(dbPath string) error {
	sleep, err := startSleep()
	if err != nil {
		return err
	}
	fmt.Printf("sleep %d\n", sleep.Process.Pid)
	ctx := context.Background()
	s, err := Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer s.Close()
	for i := 0; ; i++ {
		id := fmt.Sprintf("churn-%d-%d", os.Getpid(), i)
		steps := []string{"s1", "s2", "s3", "s4", "s5"}
		r := fixtureRun(id, steps...)
		r.StartedAt = time.Now()
		if err := s.RunStarted(ctx, r); err != nil {
			return err
		}
		for _, st := range steps {
			now := time.Now()
			if err := s.AttemptStarted(ctx, &run.AttemptStart{RunID: id, StepID: st, Attempt: 1, StartedAt: now, PID: sleep.Process.Pid}); err != nil {
				return err
			}
			o := out(strings.Repeat("output line\n", 100))
			if err := s.AttemptFinished(ctx, &run.AttemptRecord{RunID: id, StepID: st, Attempt: 1, Status: run.StatusSucceeded, StartedAt: now, FinishedAt: time.Now(), Stdout: o}); err != nil {
				return err
			}
			if err := s.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: st, Status: run.StatusSucceeded, Attempts: 1, StartedAt: now, FinishedAt: time.Now(), Stdout: o}); err != nil {
				return err
			}
		}
		r.Status, r.FinishedAt = run.StatusSucceeded, time.Now()
		if err := s.RunFinished(ctx, r); err != nil {
			return err
		}
	}
}

var subreaperOnce sync.Once

// becomeSubreaper makes this test process adopt the orphans of the helpers it kills, so that it can
// reap them: a killed sleep must not stay a zombie (which kill(-pgid, 0) still counts).
func becomeSubreaper(t *testing.T) {
	subreaperOnce.Do(func() {
		const prSetChildSubreaper = 36
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
			t.Logf("PR_SET_CHILD_SUBREAPER: %v", errno)
		}
	})
}

type helperProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *strings.Builder
}

// startHelper re-executes the test binary as helper name with arg.
func startHelper(t *testing.T, name, arg string, env ...string) *helperProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", arg)
	cmd.Env = append(append(os.Environ(), "STORE_TEST_HELPER="+name), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &helperProc{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), stderr: &strings.Builder{}}
	cmd.Stderr = h.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return h
}

// expect reads the helper's next line, which must start with prefix, and returns the number after it.
func (h *helperProc) expect(t *testing.T, prefix string) int {
	t.Helper()
	if !h.lines.Scan() {
		h.cmd.Wait()
		t.Fatalf("helper ended before printing %q: %s", prefix, h.stderr)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(h.lines.Text(), prefix+" "))
	if err != nil {
		t.Fatalf("helper printed %q, want %q <n>", h.lines.Text(), prefix)
	}
	return n
}

// killAndReap SIGKILLs a helper and waits for it, as a crash of the runner.
func (h *helperProc) killAndReap() {
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.cmd.Wait()
}

// reapOrphan waits (bounded) for pid, a grandchild this subreaper adopted, to be dead and reaped.
func reapOrphan(t *testing.T, pid int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, syscall.ECHILD) {
			t.Errorf("wait4(%d): %v", pid, err)
		}
	case <-time.After(10 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL) // unblocks the goroutine
		t.Fatalf("process %d still alive 10 s after recovery", pid)
	}
}

// TestCrashRecoveryKillsLeftoverGroup: the runner dies with kill -9, which would leave its run "running"
// forever and its steps' processes orphaned; the next Open marks its run and steps interrupted and kills
// the step's leftover process group.
func TestCrashRecoveryKillsLeftoverGroup(t *testing.T) {
	becomeSubreaper(t)
	path := filepath.Join(t.TempDir(), "p.db")
	openAt(t, path).Close()
	h := startHelper(t, "runner", path, "STORE_TEST_RUN=crashed")
	pgid := h.expect(t, "ready")
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	if !proc.GroupAlive(pgid) {
		t.Fatal("the step's group is not running before the crash")
	}
	h.killAndReap()

	s := openAt(t, path) // recovery runs here
	reapOrphan(t, pgid)
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0) = %v, want ESRCH: the leftover group survived", pgid, err)
	}
	rec := s.Recovered()
	if len(rec) != 1 || rec[0].ID != "crashed" || rec[0].Killed != 1 || rec[0].OwnerPID != h.cmd.Process.Pid {
		t.Errorf("Recovered() = %+v", rec)
	}
	db := rawDB(t, path)
	checks := map[string]string{
		`SELECT status FROM runs WHERE id = 'crashed'`:                                     "interrupted",
		`SELECT exit_code IS NULL AND finished_at IS NOT NULL FROM runs`:                   "1",
		`SELECT group_concat(status) FROM (SELECT status FROM steps ORDER BY seq)`:         "interrupted,interrupted",
		`SELECT started_at IS NULL AND finished_at IS NULL FROM steps WHERE step_id = 'b'`: "1",
		`SELECT status FROM attempts`:                                                      "interrupted",
		`SELECT error LIKE '%runner (pid%died%' FROM runs`:                                 "1",
	}
	for q, want := range checks {
		if got := queryString(t, db, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	integrityOK(t, path)
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "locks", "crashed.lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead run's lock file is still there: %v", err)
	}
}

// TestRecoveryLeavesLiveRunAlone: a live runner's run is never touched by recovery started elsewhere.
func TestRecoveryLeavesLiveRunAlone(t *testing.T) {
	becomeSubreaper(t)
	path := filepath.Join(t.TempDir(), "p.db")
	openAt(t, path).Close()
	h := startHelper(t, "runner", path, "STORE_TEST_RUN=alive")
	pgid := h.expect(t, "ready")
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })

	s := openAt(t, path)
	if rec := s.Recovered(); len(rec) != 0 {
		t.Errorf("recovered a live run: %+v", rec)
	}
	if _, err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(context.Background(), "alive")
	if err != nil || r.Status != run.StatusRunning {
		t.Fatalf("live run: %+v, %v", r, err)
	}
	if !proc.GroupAlive(pgid) {
		t.Fatal("recovery killed a live runner's step")
	}
	// The runner finishes normally: its final state is recorded over running.
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("runner: %v: %s", err, h.stderr)
	}
	if r, _ := s.Run(context.Background(), "alive"); r.Status != run.StatusCancelled {
		t.Fatalf("after the runner finished: %s", r.Status)
	}
}

// TestRandomKillLoop: SIGKILL at a random moment never corrupts the database, and after recovery nothing
// is left running.
func TestRandomKillLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("20 helper processes")
	}
	becomeSubreaper(t)
	path := filepath.Join(t.TempDir(), "p.db")
	for i := 0; i < 20; i++ {
		h := startHelper(t, "churn", path)
		pgid := h.expect(t, "sleep")
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond) // the random crash moment, not a synchronisation
		h.killAndReap()

		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("iteration %d: Open after the crash: %v", i, err)
		}
		db := rawDB(t, path)
		integrityOK(t, path)
		for _, q := range []string{
			`SELECT count(*) FROM runs WHERE status = 'running'`,
			`SELECT count(*) FROM steps WHERE status IN ('running', 'pending')`,
			`SELECT count(*) FROM attempts WHERE status = 'running'`,
		} {
			if got := queryString(t, db, q); got != "0" {
				t.Fatalf("iteration %d: %s = %s", i, q, got)
			}
		}
		s.Close()
		db.Close()
		syscall.Kill(-pgid, syscall.SIGKILL) // recovery killed it only if an attempt was running
		reapOrphan(t, pgid)
	}
	s := openAt(t, path)
	runs, _ := s.ListRuns(context.Background(), RunFilter{})
	t.Logf("%d runs recorded over 20 crashes, %d marked interrupted", len(runs), countStatus(runs, run.StatusInterrupted))
}

func countStatus(rs []*run.Record, st run.Status) int {
	n := 0
	for _, r := range rs {
		if r.Status == st {
			n++
		}
	}
	return n
}

// insertOwnedRun writes a running run row as another process would have, with the given owner.
func insertOwnedRun(t *testing.T, s *Store, id string, pid int, start uint64, host, boot string) {
	t.Helper()
	_, err := s.w.Exec(`INSERT INTO runs (id, playbook, file, file_sha256, status, started_at, owner_pid, owner_start, owner_host, owner_boot_id)
		VALUES (?, 'p', '/f', '', 'running', '2026-11-26T07:00:00.000Z', ?, ?, ?, ?)`, id, pid, int64(start), host, boot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`INSERT INTO steps (run_id, step_id, seq, status) VALUES (?, 'a', 1, 'pending')`, id); err != nil {
		t.Fatal(err)
	}
}

// The liveness rules besides the lock: other hosts, reboots, and a missing lock file.
func TestRecoveryRules(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	selfStart, err := proc.StartTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A pid that is certainly dead: a child we ran and reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	insertOwnedRun(t, s, "otherhost", dead.Process.Pid, 1, "some-other-host", s.bootID)
	insertOwnedRun(t, s, "rebooted", os.Getpid(), selfStart, s.host, "00000000-0000-0000-0000-000000000000")
	insertOwnedRun(t, s, "nolock-dead", dead.Process.Pid, 12345, s.host, s.bootID)
	insertOwnedRun(t, s, "nolock-alive", os.Getpid(), selfStart, s.host, s.bootID)
	insertOwnedRun(t, s, "nolock-reused", os.Getpid(), selfStart+1, s.host, s.bootID)
	rec, err := s.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]run.Status{
		"otherhost":     run.StatusRunning, // another machine's: never judged from here
		"rebooted":      run.StatusInterrupted,
		"nolock-dead":   run.StatusInterrupted,
		"nolock-alive":  run.StatusRunning,
		"nolock-reused": run.StatusInterrupted, // the pid now names a process with another start time
	}
	for id, st := range want {
		r, err := s.Run(ctx, id)
		if err != nil || r.Status != st {
			t.Errorf("%s: %v, %v; want %s", id, r.Status, err, st)
		}
	}
	for _, r := range rec {
		if r.ID == "rebooted" && (!r.Rebooted || r.Killed != 0 || !strings.Contains(queryString(t, s.r, `SELECT error FROM runs WHERE id = 'rebooted'`), "restarted")) {
			t.Errorf("rebooted run: %+v", r)
		}
	}
	if len(rec) != 3 {
		t.Errorf("recovered %d runs, want 3: %+v", len(rec), rec)
	}
}

// A stale lock file whose run is over (a runner killed between taking its lock and recording its
// run) is removed; a held one is not.
func TestStaleLockFilesRemoved(t *testing.T) {
	s := openTest(t)
	dir := s.lockDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "never-recorded.lock")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	held, err := proc.TryLock(filepath.Join(dir, "starting.lock"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(true)
	if _, err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale lock file kept: %v", err)
	}
	if _, err := os.Stat(held.Path()); err != nil {
		t.Errorf("held lock file removed: %v", err)
	}
}

// The attempt's row is written by the background writer a few milliseconds after AttemptStarted; a
// runner killed in between must still have its step's group killed. AttemptStarted writes the group
// into the run's lock file at once, and recovery reads it there.
func TestRecoveryKillsGroupKnownOnlyToTheLockFile(t *testing.T) {
	becomeSubreaper(t)
	path := filepath.Join(t.TempDir(), "p.db")
	s := openAt(t, path)
	if err := s.RunStarted(context.Background(), fixtureRun("lost", "a")); err != nil {
		t.Fatal(err)
	}
	cmd, err := startSleep()
	if err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL); cmd.Wait() })
	if err := s.AttemptStarted(context.Background(), &run.AttemptStart{RunID: "lost", StepID: "a", Attempt: 1,
		StartedAt: time.Now(), Command: "sleep 300", PID: pgid}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The queued write is lost, as if the runner had died before it committed.
	db := rawDB(t, path)
	if _, err := db.Exec(`DELETE FROM attempts; UPDATE steps SET pid = NULL, status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	s.Close() // drops the flock without finishing the run: the runner is "dead"

	s2 := openAt(t, path)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the step's group survived recovery")
	}
	if rec := s2.Recovered(); len(rec) != 1 || rec[0].Killed != 1 {
		t.Errorf("Recovered() = %+v, want one run with one group killed", rec)
	}
	if got := queryString(t, db, `SELECT status FROM runs WHERE id = 'lost'`); got != "interrupted" {
		t.Errorf("run status %q, want interrupted", got)
	}
}

// Every playbook command sweeps stale lock files when it opens the database; runners starting at the
// same moment must not lose their fresh lock to that sweep. Found with eight runners on one database:
// one of them failed with "lock ...: locked by a live process" on its own new run, because another
// runner's sweep had taken the just-created, not yet locked, file.
func TestRunStartSurvivesConcurrentSweeps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "playbook.db")
	runner := openAt(t, path)
	sweeper := openAt(t, path)
	ctx := context.Background()
	stop := make(chan struct{})
	sweeps := make(chan int)
	go func() {
		n := 0
		defer func() { sweeps <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n++
			if _, err := sweeper.Recover(ctx); err != nil {
				t.Errorf("Recover: %v", err)
				return
			}
		}
	}()
	const runs = 300
	failed := 0
	for i := range runs {
		r := fixtureRun(fmt.Sprintf("sweep-%03d", i), "only")
		if err := runner.RunStarted(ctx, r); err != nil {
			if failed++; failed <= 3 {
				t.Errorf("RunStarted %s: %v", r.ID, err)
			}
			continue
		}
		r.Status, r.FinishedAt = run.StatusSucceeded, r.StartedAt.Add(time.Second)
		if err := runner.RunFinished(ctx, r); err != nil {
			t.Errorf("RunFinished %s: %v", r.ID, err)
		}
	}
	close(stop)
	if n := <-sweeps; n < 2 {
		t.Errorf("only %d sweeps ran beside %d run starts", n, runs)
	}
	if failed > 0 {
		t.Errorf("%d of %d runs could not start", failed, runs)
	}
	var succeeded int
	if err := runner.r.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE status = 'succeeded'`).Scan(&succeeded); err != nil {
		t.Fatal(err)
	}
	if succeeded != runs-failed {
		t.Errorf("%d runs succeeded, want %d (none interrupted by the sweeper)", succeeded, runs-failed)
	}
	if left, _ := os.ReadDir(runner.lockDir()); len(left) != 0 {
		t.Errorf("%d lock files left", len(left))
	}
}

// A temporary file of proc.CreateLock left by a runner killed between its two steps is removed once
// it is old; a young one (perhaps a creator's between its steps) is not.
func TestAbandonedLockTempRemoved(t *testing.T) {
	s := openTest(t)
	dir := s.lockDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, proc.TempPrefix+"a.lock.0001")
	young := filepath.Join(dir, proc.TempPrefix+"b.lock.0002")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Minute)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("abandoned temporary kept: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young temporary removed: %v", err)
	}
}
