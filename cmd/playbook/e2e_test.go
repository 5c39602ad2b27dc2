package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests drive the built binary the way people and CI do: real processes, real signals, a real
// database file. They synchronise on lines the processes print and files they create, never on sleeps.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// playbookBin builds the command once per test process.
func playbookBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "playbook-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "playbook")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running `playbook` command whose output lines the test can wait for.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	notify chan struct{}
	done   chan struct{}
	err    error
	dir    string
	db     string
}

// startPlaybook starts `playbook ARGS` in dir with its own database. The runner gets its own process
// group so that a test can signal that group the way a terminal does.
func startPlaybook(t *testing.T, dir, db string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(playbookBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYBOOK_DB="+db, "NO_COLOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	p := &proc{t: t, cmd: cmd, notify: make(chan struct{}, 1), done: make(chan struct{}), dir: dir, db: db}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// waitLine waits until an output line matches re.
func (p *proc) waitLine(re string) {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	seen := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return slices.ContainsFunc(p.lines, rx.MatchString)
	}
	deadline := time.After(30 * time.Second)
	for !seen() {
		select {
		case <-p.notify:
		case <-p.done:
			// One last look: the line may have arrived with the end of the stream.
			if seen() {
				return
			}
			p.t.Fatalf("process ended without printing a line matching %q:\n%s", re, p.output())
		case <-deadline:
			p.t.Fatalf("no line matching %q within 30s:\n%s", re, p.output())
		}
	}
}

// wait waits for the process to end (at most limit) and returns its exit status and how long it took.
func (p *proc) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("still running after %s:\n%s", limit, p.output())
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	p.t.Fatalf("wait: %v", p.err)
	return -1
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *proc) count(re string) int {
	rx := regexp.MustCompile(re)
	n := 0
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if rx.MatchString(l) {
			n++
		}
	}
	return n
}

// groupAlive reports whether any process of the group is still running.
func groupAlive(t *testing.T, pgid int) bool {
	t.Helper()
	return processGroupRunning(pgid)
}

// processGroupRunning reports whether a process of the group is running. Zombies do not count: where
// PID 1 does not reap orphans (some containers) they linger as exit statuses, running nothing.
func processGroupRunning(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: fields start after the last ')'.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg == pgid && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

// waitGroupGone waits (bounded) until no process of the group runs: SIGKILL is asynchronous.
func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(t, pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has running members after 10 s", pgid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func queryDB(t *testing.T, db, q string, args ...any) []string {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	out, err := rowsText(rows)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// rowsText reads and closes rows: each row is its columns joined by "|", NULL as NULL.
func rowsText(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v.Valid {
				parts[i] = v.String
			} else {
				parts[i] = "NULL"
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out, rows.Err()
}

// trapPlaybook is a step that counts the signals it gets, cleans up on TERM, and a cleanup step that
// runs always().
const trapPlaybook = `version: 1
name: trap
steps:
  - id: slow
    stop_grace: 60s
    run: |
      echo $$ > pgid
      n=0
      trap 'n=$((n+1)); echo "got INT count=$n"' INT
      trap 'n=$((n+1)); echo "got TERM count=$n"; sleep 0.3; echo "cleaned up"; exit 0' TERM
      echo ready
      while :; do sleep 0.02; done
  - id: never
    needs: [slow]
    run: echo never ran
  - id: cleanup
    needs: [slow]
    if: always()
    run: echo "cleanup ran"
  - id: on-cancel
    needs: [slow]
    if: cancelled()
    run: echo "on-cancel ran"
`

// TestFirstSignalStopsGracefully: one SIGINT (to the runner, or to its whole process group as a
// terminal sends it) gives the step exactly one TERM, lets it clean up, still runs always() and
// cancelled() steps, records the run cancelled and exits 130; SIGTERM exits 143.
func TestFirstSignalStopsGracefully(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		group  bool
		status int
	}{
		{"SIGINT to the runner", syscall.SIGINT, false, 130},
		{"SIGINT to the runner's group, as a terminal does", syscall.SIGINT, true, 130},
		{"SIGTERM to the runner", syscall.SIGTERM, false, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "pb.db")
			writeFile(t, filepath.Join(dir, "trap.yaml"), trapPlaybook)
			p := startPlaybook(t, dir, db, "run", "trap.yaml")
			p.waitLine(`^\[slow\] ready$`)
			start := time.Now()
			target := p.cmd.Process.Pid
			if tc.group {
				target = -target
			}
			if err := syscall.Kill(target, tc.sig); err != nil {
				t.Fatal(err)
			}
			code := p.wait(45 * time.Second)
			elapsed := time.Since(start)
			out := p.output()
			if code != tc.status {
				t.Fatalf("exit status %d, want %d:\n%s", code, tc.status, out)
			}
			if n := p.count(`got TERM count=1$`); n != 1 {
				t.Errorf("the step got TERM %d times, want once:\n%s", n, out)
			}
			if p.count(`count=2`) != 0 || p.count(`got INT`) != 0 {
				t.Errorf("the step got a signal twice, or the terminal's INT:\n%s", out)
			}
			for _, want := range []string{`^\[slow\] cleaned up$`, `^\[cleanup\] cleanup ran$`, `^\[on-cancel\] on-cancel ran$`,
				`Stopping the run: interrupted by`, `Press Ctrl-C again`, `^\[never\] skipped: the run was cancelled$`} {
				if p.count(want) == 0 {
					t.Errorf("no line matching %q:\n%s", want, out)
				}
			}
			// The ladder is the behaviour: the run ends when the step has cleaned up (0.3 s), not after
			// its 60 s grace; the bound leaves room for a loaded machine.
			if elapsed > 30*time.Second {
				t.Errorf("the graceful stop took %s; the step cleans up in 0.3 s, its grace is 60 s", elapsed)
			}
			waitGroupGone(t, readPID(t, filepath.Join(dir, "pgid")))
			got := queryDB(t, db, `SELECT status, exit_code FROM runs`)
			if want := fmt.Sprintf("cancelled|%d", tc.status); len(got) != 1 || got[0] != want {
				t.Errorf("runs row = %v, want %s", got, want)
			}
			steps := queryDB(t, db, `SELECT step_id, status FROM steps ORDER BY step_id`)
			want := []string{"cleanup|succeeded", "never|skipped", "on-cancel|succeeded", "slow|cancelled"}
			if strings.Join(steps, ",") != strings.Join(want, ",") {
				t.Errorf("steps = %v, want %v", steps, want)
			}
		})
	}
}

// TestSecondSignalKills: a step that ignores TERM keeps the graceful stop waiting for its grace; a
// second Ctrl-C kills every group at once and the runner exits promptly with 130.
func TestSecondSignalKills(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "stubborn.yaml"), `version: 1
name: stubborn
steps:
  - id: stubborn
    stop_grace: 60s
    run: |
      echo $$ > pgid
      trap '' TERM
      sleep 300 &
      echo ready
      wait
  - id: cleanup
    needs: [stubborn]
    if: always()
    run: echo cleanup ran
`)
	p := startPlaybook(t, dir, db, "run", "stubborn.yaml")
	p.waitLine(`^\[stubborn\] ready$`)
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGINT)
	p.waitLine(`Press Ctrl-C again`)
	start := time.Now()
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGINT)
	code := p.wait(30 * time.Second)
	// The forced stop does not wait for the step's 60 s grace (nor its 300 s sleep); the bound leaves
	// room for a loaded machine.
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("the forced stop took %s, want well under the step's 60 s grace (it takes a few ms)", elapsed)
	}
	if code != 130 {
		t.Fatalf("exit status %d, want 130:\n%s", code, p.output())
	}
	if p.count(`cleanup ran`) != 0 {
		t.Errorf("a forced stop must not start cleanup steps:\n%s", p.output())
	}
	waitGroupGone(t, readPID(t, filepath.Join(dir, "pgid")))
}

// TestRunnerKilledIsRecoveredAsInterrupted: the runner dies with SIGKILL (no chance to clean up); the
// next playbook command marks the run interrupted and its step's process group is gone.
func TestRunnerKilledIsRecoveredAsInterrupted(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "long.yaml"), `version: 1
name: long
steps:
  - id: long
    run: |
      echo $$ > pgid
      sleep 300 &
      echo ready
      wait
`)
	p := startPlaybook(t, dir, db, "run", "long.yaml")
	p.waitLine(`^\[long\] ready$`)
	pgid := readPID(t, filepath.Join(dir, "pgid"))
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	p.wait(30 * time.Second)

	out, err := runOnce(t, dir, db, "runs", "--json")
	if err != nil {
		t.Fatalf("playbook runs: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"interrupted"`) {
		t.Errorf("playbook runs does not show the run interrupted:\n%s", out)
	}
	t.Logf("playbook runs:\n%s", out)
	waitGroupGone(t, pgid)
	if got := queryDB(t, db, `SELECT status FROM runs`); len(got) != 1 || got[0] != "interrupted" {
		t.Errorf("runs = %v, want interrupted", got)
	}
	if got := queryDB(t, db, `SELECT status FROM steps`); len(got) != 1 || got[0] != "interrupted" {
		t.Errorf("steps = %v, want interrupted", got)
	}
	if got := queryDB(t, db, `PRAGMA integrity_check`); len(got) != 1 || got[0] != "ok" {
		t.Errorf("integrity_check = %v", got)
	}
}

// TestEightRunnersOneDatabase: eight `playbook run` at once on one database all succeed, nothing is
// lost, nobody sees "database is locked".
func TestEightRunnersOneDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	var b strings.Builder
	b.WriteString("version: 1\nname: many\nmax_parallel: 4\nsteps:\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "  - id: s%d\n    run: echo step %d\n", i, i)
	}
	writeFile(t, filepath.Join(dir, "many.yaml"), b.String())
	var procs []*proc
	for i := 0; i < 8; i++ {
		procs = append(procs, startPlaybook(t, dir, db, "run", "many.yaml", "--output", "json"))
	}
	for i, p := range procs {
		if code := p.wait(60 * time.Second); code != 0 {
			t.Errorf("runner %d: exit status %d:\n%s", i, code, p.output())
		}
		if strings.Contains(p.output(), "locked") {
			t.Errorf("runner %d saw a locked database:\n%s", i, p.output())
		}
	}
	if got := queryDB(t, db, `SELECT count(*), sum(status = 'succeeded') FROM runs`); got[0] != "8|8" {
		t.Errorf("runs: %v, want 8 succeeded", got)
	}
	if got := queryDB(t, db, `SELECT count(*), sum(status = 'succeeded') FROM steps`); got[0] != "400|400" {
		t.Errorf("steps: %v, want 400 succeeded", got)
	}
}

func runOnce(t *testing.T, dir, db string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, playbookBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYBOOK_DB="+db, "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// TestCancelledRunNeverRetries: a step waiting to retry when the run is cancelled gives up; its last
// attempt stands and no other attempt starts.
func TestCancelledRunNeverRetries(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "flaky.yaml"), `version: 1
name: flaky
steps:
  - id: flaky
    retry: {attempts: 5, delay: 60s}
    run: echo "trying"; exit 1
`)
	p := startPlaybook(t, dir, db, "run", "flaky.yaml")
	p.waitLine(`^\[flaky\] attempt 1 failed \(exit status 1\); retrying in 1m00s$`)
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGINT)
	if code := p.wait(30 * time.Second); code != 130 {
		t.Fatalf("exit status %d, want 130:\n%s", code, p.output())
	}
	if n := p.count(`attempt 2 started`) + p.count(`^\[flaky\] trying$`); n != 1 {
		t.Errorf("a cancelled run started another attempt:\n%s", p.output())
	}
	if got := queryDB(t, db, `SELECT status, attempts FROM steps`); len(got) != 1 || got[0] != "failed|1" {
		t.Errorf("step = %v, want failed|1", got)
	}
	if got := queryDB(t, db, `SELECT count(*) FROM attempts`); got[0] != "1" {
		t.Errorf("attempts rows = %v, want 1", got)
	}
}
