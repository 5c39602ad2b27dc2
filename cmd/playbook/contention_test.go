//go:build linux

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The run database under contention and when it cannot be written: a runner waits for a lock other
// processes hold, stops starting steps once a write has failed, records whole every step it did start,
// and never reports success for a run whose record is incomplete.

// busyLoops keeps both CPUs busy with shell loops until the test ends.
func busyLoops(t *testing.T, n int) {
	t.Helper()
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a busy loop: %v", err)
		}
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		})
	}
}

// TestContentionSixteenRunners: sixteen `playbook run` of 50 quick steps start at once on one new
// database while both CPUs are busy. Every runner waits for the others' locks (migration, recovery,
// the run's start, its steps) rather than giving up: all exit 0, and every run and step is recorded
// succeeded. Before, some runners exited 3 with "database is locked" before recording anything, and
// one exited 0 with four of its steps stored interrupted.
func TestContentionSixteenRunners(t *testing.T) {
	skipShort(t)
	const runners, steps = 16, 50
	bin := playbookBin(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	var b strings.Builder
	b.WriteString("version: 1\nname: quick\nmax_parallel: 4\nsteps:\n")
	for i := range steps {
		fmt.Fprintf(&b, "  - id: s%02d\n    exec: [\"true\"]\n", i)
	}
	writeFile(t, filepath.Join(dir, "quick.yaml"), b.String())
	busyLoops(t, 2)

	// The whole test's bound: far above the few seconds it takes, so that only a hang reaches it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type result struct {
		code int
		out  string
		took time.Duration
	}
	results := make([]result, runners)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, bin, "run", "quick.yaml", "--output", "json")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PLAYBOOK_DB="+db, "NO_COLOR=1")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			t0 := time.Now()
			err := cmd.Run()
			results[i] = result{code: cmd.ProcessState.ExitCode(), out: out.String(), took: time.Since(t0)}
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				results[i].code, results[i].out = -1, fmt.Sprintf("%v\n%s", err, out.String())
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%d runners of %d steps did not all finish within 3 minutes (busy loops on both CPUs): a runner hangs", runners, steps)
	}
	waited := 0
	var slowest time.Duration
	for i, r := range results {
		slowest = max(slowest, r.took)
		if strings.Contains(r.out, "waiting for the write lock") {
			waited++
		}
		if r.code != 0 {
			t.Errorf("runner %d: exit status %d:\n%s", i, r.code, tail(r.out, 2000))
		}
	}
	t.Logf("%d runners x %d steps under 2 busy loops: %s in all, slowest runner %s; %d runners said they waited for the lock",
		runners, steps, took.Round(time.Millisecond), slowest.Round(time.Millisecond), waited)
	if got := queryDB(t, db, `SELECT count(*), coalesce(sum(status = 'succeeded' AND exit_code = 0), 0) FROM runs`); got[0] != fmt.Sprintf("%d|%d", runners, runners) {
		t.Errorf("runs (all, succeeded): %v, want %d of each", got, runners)
	}
	if got := queryDB(t, db, `SELECT count(*), coalesce(sum(status = 'succeeded'), 0), coalesce(sum(status = 'interrupted'), 0) FROM steps`); got[0] != fmt.Sprintf("%d|%d|0", runners*steps, runners*steps) {
		t.Errorf("steps (all, succeeded, interrupted): %v, want %d, %d, 0", got, runners*steps, runners*steps)
	}
	if got := queryDB(t, db, `SELECT count(*) FROM attempts WHERE status != 'succeeded' OR pid IS NULL OR finished_at IS NULL`); got[0] != "0" {
		t.Errorf("%s attempts are not recorded whole (succeeded, with pid and end)", got[0])
	}
	if got := queryDB(t, db, `PRAGMA integrity_check`); len(got) != 1 || got[0] != "ok" {
		t.Errorf("integrity_check: %v", got)
	}
}

// event is one line of `playbook run --output json`, the fields these tests read.
type event struct {
	Type   string `json:"event"`
	Step   string `json:"step"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// jsonEvents reads the JSON lines of out, skipping what is not JSON (stderr is mixed in).
func jsonEvents(out string) []event {
	var evs []event
	for _, line := range strings.Split(out, "\n") {
		var e event
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil {
			evs = append(evs, e)
		}
	}
	return evs
}

// holdWriteLock takes the database's write lock (BEGIN IMMEDIATE) from this process, as another
// program would, and returns how to let it go.
func holdWriteLock(t *testing.T, db string) (release func()) {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db+"?_txlock=immediate&_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin()
	if err != nil {
		conn.Close()
		t.Fatalf("BEGIN IMMEDIATE on %s: %v", db, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback()
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// chainPlaybook is n steps in a chain; s2 waits for the file "held" (the test holds the lock by
// then), the others sleep a little, and each touches ran-sN when it starts.
func chainPlaybook(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: chain\nsteps:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - id: s%d\n", i)
		if i > 1 {
			fmt.Fprintf(&b, "    needs: [s%d]\n", i-1)
		}
		body := "sleep 0.3"
		if i == 2 {
			body = "while [ ! -e held ]; do sleep 0.01; done"
		}
		fmt.Fprintf(&b, "    run: touch ran-s%d; %s\n", i, body)
	}
	return b.String()
}

// TestLockedDatabaseStopsTheRun: another process holds the database's write lock during an 8-step
// chain, longer than the runner may wait (PLAYBOOK_LOCK_WAIT=1s). The runner says it waits; once the
// write fails it starts no other step (no step_started after run_cancelling); when the lock is let go,
// every step that did start is recorded with its attempt (pid, start, end), not interrupted; the run
// is recorded failed with exit status 3, which is the runner's, and run_finished does not say
// succeeded. Before, steps kept starting while a result waited on the lock, and a step that started
// as the write failed was stored interrupted with no attempt. Now steps stop starting once a write
// has waited about a second (store.Stalled): the remaining steps need 1.8 s of sleeps, so they cannot
// all have started before that, however loaded the machine.
func TestLockedDatabaseStopsTheRun(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "chain.yaml"), chainPlaybook(8))
	t.Setenv("PLAYBOOK_LOCK_WAIT", "1s")
	p := startPlaybook(t, dir, db, "run", "chain.yaml", "--output", "json")
	p.waitLine(`"event":"step_started".*"step":"s2"`)
	release := holdWriteLock(t, db)
	writeFile(t, filepath.Join(dir, "held"), "")
	p.waitLine(`"event":"run_cancelling"`)
	release()
	code := p.wait(time.Minute)
	out := p.output()
	if code != 3 {
		t.Fatalf("exit status %d, want 3:\n%s", code, out)
	}
	if !strings.Contains(out, "waiting for the write lock of database "+db) {
		t.Errorf("the runner did not say it waited for the lock:\n%s", out)
	}
	evs := jsonEvents(out)
	started := map[string]bool{}
	finished := map[string]string{}
	cancelling := false
	for _, e := range evs {
		switch e.Type {
		case "run_cancelling":
			cancelling = true
		case "step_started":
			if cancelling {
				t.Errorf("step %s started after run_cancelling", e.Step)
			}
			started[e.Step] = true
		case "step_finished":
			finished[e.Step] = e.Status
		case "run_finished":
			if e.Status == "succeeded" {
				t.Errorf("run_finished says succeeded with exit status 3")
			}
		}
	}
	if len(started) == 8 {
		t.Errorf("all 8 steps started although the run could not be recorded:\n%s", out)
	}
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("s%d", i)
		_, ranErr := os.Stat(filepath.Join(dir, "ran-"+id))
		if ranErr == nil && !started[id] {
			t.Errorf("step %s ran without a step_started event", id)
		}
		row := queryDB(t, db, `SELECT status, coalesce(reason, ''), attempts, started_at IS NOT NULL, finished_at IS NOT NULL FROM steps WHERE step_id = ?`, id)
		if !started[id] {
			if len(row) != 1 || row[0] != "skipped|record_error|0|0|0" {
				t.Errorf("step %s never started: stored %v, want skipped for record_error", id, row)
			}
			continue
		}
		if len(row) != 1 || row[0] != finished[id]+"||1|1|1" || finished[id] != "succeeded" {
			t.Errorf("step %s started and ended %q: stored %v, want it succeeded with its attempt", id, finished[id], row)
		}
		att := queryDB(t, db, `SELECT status, pid IS NOT NULL, started_at IS NOT NULL, finished_at IS NOT NULL FROM attempts WHERE step_id = ?`, id)
		if len(att) != 1 || att[0] != "succeeded|1|1|1" {
			t.Errorf("step %s's attempt: %v, want succeeded with pid, start and end", id, att)
		}
	}
	if got := queryDB(t, db, `SELECT status, exit_code FROM runs`); len(got) != 1 || got[0] != "failed|3" {
		t.Errorf("run stored as %v, want failed|3:\n%s", got, out)
	}
	if got := queryDB(t, db, `SELECT count(*) FROM steps WHERE status = 'interrupted'`); got[0] != "0" {
		t.Errorf("%s steps stored interrupted", got[0])
	}
}

// TestRunnerThatCouldNotRecordItsEnd: the lock stays held until the runner has given up and exited 3,
// its run still recorded running. The next command's crash recovery marks the run interrupted and says
// the runner exited (status 3) before it could record the end of the run, not that it died.
func TestRunnerThatCouldNotRecordItsEnd(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "chain.yaml"), chainPlaybook(3))
	t.Setenv("PLAYBOOK_LOCK_WAIT", "1s")
	p := startPlaybook(t, dir, db, "run", "chain.yaml")
	p.waitLine(`^\[s2\] started`)
	release := holdWriteLock(t, db)
	writeFile(t, filepath.Join(dir, "held"), "")
	code := p.wait(time.Minute)
	release()
	out := p.output()
	if code != 3 {
		t.Fatalf("exit status %d, want 3:\n%s", code, out)
	}
	if regexp.MustCompile(`Run [0-9a-f]+ succeeded`).MatchString(out) {
		t.Errorf("the summary says succeeded with exit status 3:\n%s", out)
	}
	if !strings.Contains(out, "not recorded") || !strings.Contains(out, "record end of run") {
		t.Errorf("the error does not name what was not recorded:\n%s", out)
	}
	list, err := runOnce(t, dir, db, "runs")
	if err != nil {
		t.Fatalf("playbook runs: %v\n%s", err, list)
	}
	if strings.Contains(list, "died") || !strings.Contains(list, "exited (status 3) before it could record the end of the run") {
		t.Errorf("recovery of a runner that exited on its own:\n%s", list)
	}
	if got := queryDB(t, db, `SELECT status, error FROM runs`); len(got) != 1 || !strings.HasPrefix(got[0], "interrupted|") || strings.Contains(got[0], "died") {
		t.Errorf("run stored as %v, want interrupted, without 'died'", got)
	}
}

// TestDiskFullNothingStartsAfterCancelling: the disk fills while 40 steps are recorded, two at a
// time. Once the runner says run_cancelling, no step starts (no step_started after it, and no step
// ran without one), and the run exits 3 without saying succeeded. Before, steps kept starting after
// run_cancelling and ran to success.
func TestDiskFullNothingStartsAfterCancelling(t *testing.T) {
	small := mountTmpfs(t, "3m")
	dir := t.TempDir()
	db := filepath.Join(small, "pb.db")
	writeFile(t, filepath.Join(dir, "fill.yaml"), bigOutputPlaybook("filler", 40, 300))
	writeFile(t, filepath.Join(small, "ballast"), strings.Repeat("b", 1536<<10))
	r := pbRun(t, dir, db, pbOpts{}, "run", "fill.yaml", "--output", "json")
	if r.code != 3 {
		t.Fatalf("exit status %d, want 3:\n%s", r.code, tail(r.out, 3000))
	}
	cancelling, started := false, 0
	for _, e := range jsonEvents(r.out) {
		switch e.Type {
		case "run_cancelling":
			cancelling = true
		case "step_started":
			started++
			if cancelling {
				t.Errorf("step %s started after run_cancelling", e.Step)
			}
		case "run_finished":
			if e.Status == "succeeded" {
				t.Error("run_finished says succeeded with exit status 3")
			}
		}
	}
	if !cancelling {
		t.Errorf("no run_cancelling event:\n%s", tail(r.out, 3000))
	}
	if ran, _ := filepath.Glob(filepath.Join(dir, "ran-*")); len(ran) != started {
		t.Errorf("%d steps ran, %d step_started events", len(ran), started)
	}
}
