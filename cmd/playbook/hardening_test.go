//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Faults, end to end: the built binary, real processes, real database files. The runner is killed at
// random moments, the disk fills up, the database or the log folder cannot be written, and steps
// misbehave (close stdout, start daemons, stop themselves, leave writers behind). After each, the
// database must be intact and tell the truth, and no process may be left behind.

// pbResult is how a `playbook` command ended.
type pbResult struct {
	out    string        // stdout and stderr, interleaved
	code   int           // exit status
	maxRSS int64         // peak resident memory of the runner, in bytes (its VmHWM, see pbRun)
	ruRSS  int64         // the rusage figure, in bytes: an upper bound that includes this test's own memory
	took   time.Duration // wall time
}

// pbOpts are the less common ways of running the command.
type pbOpts struct {
	cred    *syscall.Credential // run as another user
	limit   time.Duration       // kill it after this long (default 2 minutes)
	discard bool                // send its stdout to /dev/null (for commands that print gigabytes)
	bin     string              // the binary (default playbookBin)
}

// pbRun runs `playbook ARGS` in dir with database db to its end.
func pbRun(t *testing.T, dir, db string, o pbOpts, args ...string) pbResult {
	t.Helper()
	bin := o.bin
	if bin == "" {
		bin = playbookBin(t)
	}
	limit := o.limit
	if limit == 0 {
		limit = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYBOOK_DB="+db, "NO_COLOR=1")
	if o.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if o.discard {
		cmd.Stdout = nil
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start playbook: %v", err)
	}
	// The runner's peak memory is its VmHWM, sampled until it exits. Its rusage ru_maxrss cannot be
	// used alone: os/exec starts children with vfork semantics (CLONE_VM), and at exec Linux records
	// the parent's high-water mark into the child's maxrss, so a runner started by this (race-enabled,
	// large) test process would report the test's memory, not its own.
	hwm := make(chan int64, 1)
	stop := make(chan struct{})
	go func() {
		var peak int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := vmHWM(cmd.Process.Pid); v > peak {
				peak = v
			}
			select {
			case <-stop:
				hwm <- peak
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	r := pbResult{out: out.String(), took: time.Since(start), maxRSS: <-hwm}
	if ctx.Err() != nil {
		t.Fatalf("playbook %s: still running after %s:\n%s", strings.Join(args, " "), limit, tail(r.out, 4000))
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("playbook %s: %v", strings.Join(args, " "), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.ruRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return r
}

// vmHWM returns the peak resident memory of process pid (VmHWM in /proc/<pid>/status), or 0.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kib << 10
		}
	}
	return 0
}

// tail returns the end of a long text, for failure messages.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// failIf fails the test with what when present holds: each call guards a defect the hardening
// tests found, so that it cannot come back.
func failIf(t *testing.T, present bool, what string) {
	t.Helper()
	if present {
		t.Fatal(what)
	}
}

// checkDB asserts that the database is intact and tells no lie about what is running: integrity_check
// is ok, no run, step or attempt is still running or pending, and every run has all its steps.
func checkDB(t *testing.T, db string, steps int) {
	t.Helper()
	if got := queryDB(t, db, `PRAGMA integrity_check`); len(got) != 1 || got[0] != "ok" {
		t.Fatalf("integrity_check: %v", got)
	}
	if got := queryDB(t, db, `SELECT id, status FROM runs WHERE status = 'running'`); len(got) != 0 {
		t.Fatalf("runs still running after the next command: %v", got)
	}
	if got := queryDB(t, db, `SELECT run_id, step_id, status FROM steps WHERE status IN ('running', 'pending')`); len(got) != 0 {
		t.Fatalf("steps still running or pending: %v", got)
	}
	if got := queryDB(t, db, `SELECT run_id, step_id, attempt FROM attempts WHERE status = 'running'`); len(got) != 0 {
		t.Fatalf("attempts still running: %v", got)
	}
	if steps > 0 {
		if got := queryDB(t, db, `SELECT r.id, count(s.step_id) FROM runs AS r LEFT JOIN steps AS s ON s.run_id = r.id
			GROUP BY r.id HAVING count(s.step_id) != ?`, steps); len(got) != 0 {
			t.Fatalf("runs without all their %d steps: %v", steps, got)
		}
	}
}

// taggedProcesses lists the live processes (zombies excluded) whose environment holds tag: every step
// process and whatever it starts inherits the runner's environment.
func taggedProcesses(tag string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte("\x00"+tag+"\x00")) && !bytes.HasPrefix(env, []byte(tag+"\x00")) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if f := strings.Fields(string(stat[i+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		f := strings.Fields(string(stat[i+1:]))
		found = append(found, fmt.Sprintf("%s (state %s, ppid %s, pgid %s) %s", e.Name(), f[0], f[1], f[2],
			strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))))
	}
	return found
}

// processRunning reports whether process pid exists and is not a zombie.
func processRunning(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// lockFiles returns the contents of the run lock files beside a database.
func lockFiles(dir string) map[string]string {
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "locks", "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		out[filepath.Base(f)] = string(data)
	}
	return out
}

// waitNoTagged waits (bounded: SIGKILL is asynchronous) until no process carries tag.
func waitNoTagged(t *testing.T, tag string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := taggedProcesses(tag)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			t.Fatalf("processes left behind: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLines waits until the process has printed at least n lines.
func (p *proc) waitLines(n int) {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.lines)
		p.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-p.notify:
		case <-p.done:
			return
		case <-deadline:
			p.t.Fatalf("fewer than %d lines within 30s:\n%s", n, p.output())
		}
	}
}

// crashPlaybook takes about a second: a step that writes outputs, six parallel steps with a background
// child each (left in their groups for crash recovery to kill), a step that fails once and is retried,
// and an always() step reading an output.
func crashPlaybook() string {
	var b strings.Builder
	b.WriteString(`version: 1
name: crashy
max_parallel: 3
steps:
  - id: prep
    run: |
      for i in 1 2 3 4 5; do echo "prep $i"; sleep 0.02; done
      echo "tag=v$RANDOM" >> "$PLAYBOOK_OUTPUT"
  - id: flaky
    needs: [prep]
    retry: {attempts: 2}
    run: |
      echo "try"
      f=".try-$PLAYBOOK_RUN_ID"
      if [ ! -f "$f" ]; then touch "$f"; exit 3; fi
`)
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, `  - id: fan-%d
    needs: [prep]
    run: |
      sleep 30 &
      for i in $(seq 1 10); do echo "fan %d line $i"; sleep 0.01; done
`, i, i)
	}
	b.WriteString(`  - id: final
    needs: [flaky, fan-1, fan-2, fan-3, fan-4, fan-5, fan-6]
    if: always()
    run: echo "final ${{ steps.prep.outputs.tag }}"
`)
	return b.String()
}

const crashSteps = 9

// TestKilledAtRandomMoments is the crash test: the runner gets SIGKILL 20 times at random
// moments (while creating the database, recording the run, running steps, retrying, finishing). After
// each, the next command (playbook runs) finds the run interrupted; the database passes
// integrity_check; nothing is left running, in the database or as a process; a final run succeeds on
// the same database and every run that ended has all its rows.
func TestKilledAtRandomMoments(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state", "pb.db")
	writeFile(t, filepath.Join(dir, "crashy.yaml"), crashPlaybook())
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)

	// How many lines a whole run prints (on a database of its own), so that kills spread over all of it.
	t.Setenv("PB_HARDENING_TAG", fmt.Sprintf("kill-%d-calibrate", seed))
	cal := startPlaybook(t, dir, filepath.Join(dir, "calibrate.db"), "run", "crashy.yaml")
	if code := cal.wait(time.Minute); code != 0 {
		t.Fatalf("a whole run failed (%d):\n%s", code, cal.output())
	}
	cal.mu.Lock()
	total := len(cal.lines)
	cal.mu.Unlock()

	var interrupted, finished, unrecorded int
	for i := range 20 {
		tag := fmt.Sprintf("PB_HARDENING_TAG=kill-%d-%d", seed, i)
		t.Setenv("PB_HARDENING_TAG", strings.TrimPrefix(tag, "PB_HARDENING_TAG="))
		runsBefore := 0
		if _, err := os.Stat(db); err == nil {
			runsBefore, _ = strconv.Atoi(queryDB(t, db, `SELECT count(*) FROM runs`)[0])
		}
		p := startPlaybook(t, dir, db, "run", "crashy.yaml")
		var when string
		if i%5 == 0 {
			// Early: the database being created (i == 0) or opened, the run being recorded.
			d := time.Duration(rng.IntN(40)) * time.Millisecond
			when = fmt.Sprintf("after %s", d)
			time.Sleep(d)
		} else {
			// Anywhere in the run, up to its summary: after a random number of its output lines.
			n := 1 + rng.IntN(total)
			when = fmt.Sprintf("after %d of %d lines", n, total)
			p.waitLines(n)
		}
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		p.wait(30 * time.Second)

		if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
			// Killed before it created the database: a command that only reads creates nothing.
			r := pbRun(t, dir, db, pbOpts{}, "runs", "--json", "--limit", "0")
			if _, err := os.Stat(db); r.code != 3 || !strings.Contains(r.out, "no database at") || err == nil {
				t.Fatalf("kill %d (%s), before the database existed: runs exit %d, want 3 and nothing created:\n%s", i, when, r.code, r.out)
			}
			waitNoTagged(t, tag)
			unrecorded++
			t.Logf("kill %d %s: before the database was created", i, when)
			continue
		}
		r := pbRun(t, dir, db, pbOpts{}, "runs", "--json", "--limit", "0")
		if r.code != 0 {
			t.Fatalf("kill %d (%s): the next command failed with %d:\n%s", i, when, r.code, r.out)
		}
		checkDB(t, db, crashSteps)
		if left := taggedProcesses(tag); len(left) > 0 {
			t.Logf("kill %d (%s): after the next command: %v; attempts: %v; locks: %v", i, when, left,
				queryDB(t, db, `SELECT step_id, attempt, status, pid FROM attempts WHERE run_id = (SELECT id FROM runs ORDER BY started_at DESC LIMIT 1)`),
				lockFiles(filepath.Dir(db)))
		}
		waitNoTagged(t, tag)
		runs := queryDB(t, db, `SELECT status FROM runs ORDER BY started_at`)
		switch {
		case len(runs) == runsBefore:
			unrecorded++
			when += ": before the run was recorded"
		case len(runs) != runsBefore+1:
			t.Fatalf("kill %d: %d runs, want %d", i, len(runs), runsBefore+1)
		case runs[len(runs)-1] == "interrupted":
			interrupted++
			when += ": run interrupted"
		default:
			finished++
			when += ": run " + runs[len(runs)-1]
		}
		t.Logf("kill %d %s", i, when)
	}
	t.Setenv("PB_HARDENING_TAG", fmt.Sprintf("kill-%d-final", seed))
	if r := pbRun(t, dir, db, pbOpts{}, "run", "crashy.yaml"); r.code != 0 {
		t.Fatalf("a run after 20 crashes failed (%d):\n%s", r.code, r.out)
	}
	checkDB(t, db, crashSteps)
	waitNoTagged(t, fmt.Sprintf("PB_HARDENING_TAG=kill-%d-final", seed))
	if got := queryDB(t, db, `SELECT count(*) FROM runs WHERE status = 'succeeded'`); got[0] != strconv.Itoa(finished+1) {
		t.Errorf("succeeded runs %v, want %d", got, finished+1)
	}
	// Interrupted runs keep the truth about what finished before the crash: a succeeded step has its
	// exit code, output and end time.
	if got := queryDB(t, db, `SELECT count(*) FROM steps WHERE status = 'succeeded'
		AND (exit_code != 0 OR finished_at IS NULL OR stdout IS NULL)`); got[0] != "0" {
		t.Errorf("%s succeeded steps without their result", got[0])
	}
	t.Logf("20 kills: %d runs interrupted, %d had finished, %d not yet recorded", interrupted, finished, unrecorded)
	if interrupted < 10 {
		t.Errorf("only %d of 20 kills hit a running run; the test no longer kills at interesting moments", interrupted)
	}
}

// mountTmpfs mounts a small tmpfs on a new folder, or skips the test when mounting is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// bigOutputPlaybook (named name) has n steps that each print kib KiB of incompressible text and touch a marker.
func bigOutputPlaybook(name string, n, kib int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: %s\nmax_parallel: 2\nsteps:\n", name)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - id: s%d\n    run: head -c %d /dev/urandom | base64; touch ran-s%d\n", i, kib*768, i)
	}
	return b.String()
}

// fillUp writes to path until its file system is full, and returns how to free that space again.
func fillUp(t *testing.T, path string) (free func()) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	return func() { os.Remove(path) }
}

// base64Size is how many bytes `base64` prints for n input bytes: 4 per 3, and a newline every 76.
func base64Size(n int) int {
	enc := 4 * ((n + 2) / 3)
	return enc + (enc+75)/76
}

// TestDiskFull: the database's file system fills up while a run is recorded (40 steps of 230 KiB of
// output each, 1.5 MiB of space left). The runner stops starting steps, says why and exits 3; the next
// command still reads the database (it warns that it cannot record the dead run yet); once space is
// back, nothing is left running, the database is intact, and it records runs again.
func TestDiskFull(t *testing.T) {
	small := mountTmpfs(t, "3m")
	dir := t.TempDir()
	db := filepath.Join(small, "pb.db")
	writeFile(t, filepath.Join(dir, "fill.yaml"), bigOutputPlaybook("filler", 40, 300))
	writeFile(t, filepath.Join(dir, "small.yaml"), bigOutputPlaybook("small", 3, 1))
	ballast := filepath.Join(small, "ballast")
	writeFile(t, ballast, strings.Repeat("b", 1536<<10))
	tag := fmt.Sprintf("disk-full-%d", time.Now().UnixNano())
	t.Setenv("PB_HARDENING_TAG", tag)

	r := pbRun(t, dir, db, pbOpts{}, "run", "fill.yaml")
	if r.code != 3 {
		t.Fatalf("exit status %d, want 3:\n%s", r.code, tail(r.out, 3000))
	}
	if !strings.Contains(r.out, "database or disk is full") || !strings.Contains(r.out, "could not be recorded") {
		t.Errorf("the error does not say the disk is full and the run could not be recorded:\n%s", tail(r.out, 2000))
	}
	waitNoTagged(t, "PB_HARDENING_TAG="+tag)
	ran, _ := filepath.Glob(filepath.Join(dir, "ran-*"))
	if len(ran) >= 40 {
		t.Errorf("all %d steps ran although nothing could be recorded", len(ran))
	}
	summary := regexpFind(r.out, `Run [0-9a-f]{12} (\w+) in`)

	// Still full: the next command reads the database.
	list := pbRun(t, dir, db, pbOpts{}, "runs", "--json")
	if list.code != 0 || !strings.Contains(list.out, `"filler"`) {
		t.Fatalf("playbook runs on the full disk: exit %d\n%s", list.code, list.out)
	}
	if got := queryDB(t, db, `PRAGMA integrity_check`); len(got) != 1 || got[0] != "ok" {
		t.Fatalf("integrity_check on the full disk: %v", got)
	}

	// Space comes back.
	os.Remove(ballast)
	if list := pbRun(t, dir, db, pbOpts{}, "runs"); list.code != 0 {
		t.Fatalf("playbook runs: %d\n%s", list.code, list.out)
	}
	checkDB(t, db, 40)
	if r := pbRun(t, dir, db, pbOpts{}, "run", "small.yaml"); r.code != 0 {
		t.Fatalf("a run once space is back: %d\n%s", r.code, r.out)
	}
	checkDB(t, db, 0)
	status := queryDB(t, db, `SELECT status, exit_code FROM runs WHERE playbook = 'filler'`)
	t.Logf("the run that filled the disk: %v, summary %q; %d of 40 steps ran", status, summary, len(ran))
	failIf(t, summary == "succeeded" || len(status) == 1 && strings.HasPrefix(status[0], "succeeded"),
		fmt.Sprintf("a run that could not be recorded is reported %q and stored %v: scheduler.finish keeps status "+
			"succeeded when a write failed", summary, status))
	if len(status) != 1 || strings.HasPrefix(status[0], "succeeded") {
		t.Errorf("the run that could not be recorded is stored as %v", status)
	}
}

// regexpFind returns the first group of the first match of re in s, or "".
func regexpFind(s, re string) string {
	if m := regexp.MustCompile(re).FindStringSubmatch(s); len(m) > 1 {
		return m[1]
	}
	return ""
}

// TestDiskFullBeforeTheRun: the disk is already full, so the database cannot even start recording
// (SQLite needs room for its WAL): exit 3, an error that says so, and no step runs. Once space is back
// the database is intact and records the next run.
func TestDiskFullBeforeTheRun(t *testing.T) {
	small := mountTmpfs(t, "1m")
	dir := t.TempDir()
	db := filepath.Join(small, "pb.db")
	writeFile(t, filepath.Join(dir, "fill.yaml"), bigOutputPlaybook("few", 3, 1))
	if r := pbRun(t, dir, db, pbOpts{}, "run", "fill.yaml"); r.code != 0 {
		t.Fatalf("first run: %d\n%s", r.code, r.out)
	}
	for _, f := range []string{"ran-s1", "ran-s2", "ran-s3"} {
		os.Remove(filepath.Join(dir, f))
	}
	free := fillUp(t, filepath.Join(small, "filler"))
	r := pbRun(t, dir, db, pbOpts{}, "run", "fill.yaml")
	if r.code != 3 {
		t.Fatalf("exit status %d, want 3:\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, "no space left on device") && !strings.Contains(r.out, "disk is full") {
		t.Errorf("the error does not say the disk is full:\n%s", r.out)
	}
	if !strings.Contains(r.out, db) {
		t.Errorf("the error does not name the database:\n%s", r.out)
	}
	if ran, _ := filepath.Glob(filepath.Join(dir, "ran-*")); len(ran) != 0 {
		t.Errorf("steps ran although the run could not be recorded: %v", ran)
	}
	free()
	if r := pbRun(t, dir, db, pbOpts{}, "run", "fill.yaml"); r.code != 0 {
		t.Fatalf("run after space came back: %d\n%s", r.code, r.out)
	}
	checkDB(t, db, 3)
	if got := queryDB(t, db, `SELECT count(*) FROM runs WHERE status = 'succeeded'`); got[0] != "2" {
		t.Errorf("succeeded runs: %v, want 2", got)
	}
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// asNobody prepares to run the binary as an unprivileged user when the tests run as root (root ignores
// file modes): it copies the binary where that user can run it and opens base to it. It returns the
// binary and the credential, or ("", nil) when the tests do not run as root.
func asNobody(t *testing.T, base string) (string, *syscall.Credential) {
	t.Helper()
	if os.Geteuid() != 0 {
		return "", nil
	}
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "bin", "playbook")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(playbookBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, &syscall.Credential{Uid: 65534, Gid: 65534}
}

// TestReadOnlyDatabase: a database file the runner may read but not write. The run is refused before
// any step starts, with exit 3 and an error naming the file; the file is not changed.
func TestReadOnlyDatabase(t *testing.T) {
	base := t.TempDir()
	bin, cred := asNobody(t, base)
	work := filepath.Join(base, "work")
	if err := os.Mkdir(work, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(work, 0o777)
	writeFile(t, filepath.Join(work, "p.yaml"), "version: 1\nname: ro\nsteps:\n  - id: a\n    run: touch ran; echo ran\n")
	db := filepath.Join(base, "state", "pb.db")
	if r := pbRun(t, work, db, pbOpts{}, "run", "p.yaml"); r.code != 0 {
		t.Fatalf("first run: %d\n%s", r.code, r.out)
	}
	os.Remove(filepath.Join(work, "ran"))
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		os.Chmod(f, 0o444)
	}
	os.Chmod(filepath.Dir(db), 0o555)
	t.Cleanup(func() { os.Chmod(filepath.Dir(db), 0o700) })
	before := fileHash(t, db)

	r := pbRun(t, work, db, pbOpts{bin: bin, cred: cred}, "run", "p.yaml")
	if r.code != 3 {
		t.Fatalf("exit status %d, want 3:\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, db) || !strings.Contains(r.out, "permission denied") && !strings.Contains(r.out, "read-only") {
		t.Errorf("the error does not name the database and say it cannot be written:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Join(work, "ran")); err == nil {
		t.Error("the step ran although the run could not be recorded")
	}
	if fileHash(t, db) != before {
		t.Error("the read-only database file changed")
	}
	if got := queryDB(t, db, `SELECT count(*) FROM runs`); got[0] != "1" {
		t.Errorf("runs: %v, want the first one only", got)
	}
}

// TestLogDirNotWritable: --log-dir names a folder that cannot be created. Nothing runs, no run is left
// running, and the error names the folder.
func TestLogDirNotWritable(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "p.yaml"), "version: 1\nname: logs\nsteps:\n  - id: a\n    run: touch ran; echo ran\n")
	writeFile(t, filepath.Join(dir, "plainfile"), "not a folder\n")
	r := pbRun(t, dir, db, pbOpts{}, "run", "p.yaml", "--log-dir", "plainfile/logs")
	if r.code == 0 {
		t.Fatalf("a run whose log folder cannot be created succeeded:\n%s", r.out)
	}
	if !strings.Contains(r.out, "plainfile/logs") || !strings.Contains(r.out, "not a directory") {
		t.Errorf("the error does not name the folder and the cause:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the step ran without its log folder")
	}
	if _, err := os.Stat(db); err == nil {
		checkDB(t, db, 0)
	}
	failIf(t, r.code == 1, "an unusable --log-dir exits 1 (\"the run failed\") although nothing ran; it is bad "+
		"usage: exit 2 (scheduler.Run's log folder error reaches cli.run as a plain error)")
	if r.code != 2 {
		t.Errorf("exit status %d, want 2 (bad usage: nothing ran)", r.code)
	}
}

// TestLogDirFills: the log folder's file system fills during the run. The steps still succeed and the
// database keeps their bounded output and exact byte counts; each step whose file is incomplete says
// so, in the database and on the terminal.
func TestLogDirFills(t *testing.T) {
	small := mountTmpfs(t, "1m")
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "p.yaml"), bigOutputPlaybook("logs", 8, 300))
	r := pbRun(t, dir, db, pbOpts{}, "run", "p.yaml", "--log-dir", filepath.Join(small, "logs"))
	if r.code != 0 {
		t.Fatalf("exit status %d:\n%s", r.code, tail(r.out, 2000))
	}
	checkDB(t, db, 8)
	if got := queryDB(t, db, `SELECT count(*), sum(stdout_bytes = ?) FROM steps WHERE status = 'succeeded'`, base64Size(300*768)); got[0] != "8|8" {
		t.Errorf("steps: %v, want 8 succeeded with their byte counts", got)
	}
	incomplete := queryDB(t, db, `SELECT step_id FROM steps WHERE error LIKE '%incomplete%no space left on device%'`)
	if len(incomplete) == 0 {
		t.Fatalf("no step says its log file is incomplete:\n%v", queryDB(t, db, `SELECT step_id, error FROM steps`))
	}
	failIf(t, !strings.Contains(r.out, "incomplete"), fmt.Sprintf("%d steps lost part of their log file but the "+
		"terminal does not say so (the warning is only in steps.error; progress/printSummary show no note for a "+
		"succeeded step)", len(incomplete)))
}

// misbehavePlaybook has steps that do what steps should not: close stdout early, start daemons (one
// holding stdout), stop themselves with SIGSTOP (with and without a TERM handler) under a timeout,
// and exit while their children keep writing.
const misbehavePlaybook = `version: 1
name: misbehave
max_parallel: 6
fail_fast: false
steps:
  - id: closes-stdout
    run: |
      echo before
      exec 1>&-
      echo "after close" >&2
      sleep 0.2
      echo "still here" >&2
  - id: daemon
    run: |
      setsid sh -c 'echo $$ > daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &
      nohup sh -c 'echo $$ > nohup.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &
      while [ ! -s daemon.pid ] || [ ! -s nohup.pid ]; do sleep 0.01; done
      echo started
  - id: daemon-holds-stdout
    run: |
      setsid sh -c 'echo $$ > holder.pid; echo "daemon says hi"; exec sleep 300' &
      while [ ! -s holder.pid ]; do sleep 0.01; done
      echo parent done
  - id: stopper
    timeout: 1s
    stop_grace: 30s
    run: |
      trap 'echo got TERM; exit 0' TERM
      echo stopping myself
      kill -STOP $$
      echo continued by itself
  - id: stopper-no-trap
    timeout: 1s
    stop_grace: 30s
    run: |
      echo stopping myself
      kill -STOP $$
      echo continued by itself
  - id: orphan-writers
    run: |
      echo $$ > writers.pgid
      ( while :; do echo "child writes"; sleep 0.005; done ) &
      ( while :; do echo "child writes to stderr" >&2; sleep 0.005; done ) &
      sleep 0.1
      echo parent exits
`

// TestMisbehavingSteps runs misbehavePlaybook and checks what must happen to each step.
func TestMisbehavingSteps(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "m.yaml"), misbehavePlaybook)
	t.Cleanup(func() {
		for _, f := range []string{"daemon.pid", "nohup.pid", "holder.pid"} {
			if data, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	r := pbRun(t, dir, db, pbOpts{limit: 3 * time.Minute}, "run", "m.yaml")
	if r.code != 1 {
		t.Fatalf("exit status %d, want 1 (two steps timed out):\n%s", r.code, r.out)
	}
	checkDB(t, db, 6)
	row := func(id string) map[string]string {
		got := queryDB(t, db, `SELECT status, coalesce(exit_code, 'NULL'), coalesce(signal, 'NULL'), duration_ms,
			CAST(stdout AS TEXT), CAST(stderr AS TEXT), coalesce(error, '') FROM steps WHERE step_id = ?`, id)
		if len(got) != 1 {
			t.Fatalf("step %s: %v", id, got)
		}
		f := strings.SplitN(got[0], "|", 7)
		return map[string]string{"status": f[0], "exit": f[1], "signal": f[2], "ms": f[3], "stdout": f[4], "stderr": f[5], "error": f[6]}
	}
	ms := func(s map[string]string) int { n, _ := strconv.Atoi(s["ms"]); return n }

	s := row("closes-stdout")
	if s["status"] != "succeeded" || s["stdout"] != "before\n" || !strings.Contains(s["stderr"], "after close") || !strings.Contains(s["stderr"], "still here") {
		t.Errorf("closes-stdout: %v", s)
	}

	s = row("daemon")
	// The step ends with its shell: it waits neither for its daemons nor, holding no pipe, for WaitDelay.
	if s["status"] != "succeeded" || strings.Contains(s["error"], "output may be incomplete") {
		t.Errorf("daemon: %v", s)
	}
	// A setsid daemon escapes its step's group kill but not the end of the run.
	daemon := readPID(t, filepath.Join(dir, "daemon.pid"))
	for deadline := time.Now().Add(3 * time.Second); processRunning(daemon); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the setsid daemon %d outlived the run", daemon)
			break
		}
	}
	// nohup does not leave the step's group: it is killed with the group when the step ends.
	nohup := readPID(t, filepath.Join(dir, "nohup.pid"))
	deadline := time.Now().Add(10 * time.Second)
	for processRunning(nohup) {
		if time.Now().After(deadline) {
			t.Errorf("the nohup child %d outlived its step's group", nohup)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	s = row("daemon-holds-stdout")
	if s["status"] != "succeeded" || !strings.Contains(s["stdout"], "parent done") || !strings.Contains(s["error"], "output may be incomplete") {
		t.Errorf("daemon-holds-stdout: %v", s)
	}
	// Time is the behaviour (the runner stops reading 2 s after the step's group is gone; the daemon
	// holds stdout for 300 s), bounded with room for a loaded machine.
	if ms(s) > 20000 {
		t.Errorf("daemon-holds-stdout took %d ms: the runner must stop reading 2 s after the step's group is gone", ms(s))
	}

	for _, id := range []string{"stopper", "stopper-no-trap"} {
		s = row(id)
		if s["status"] != "timed_out" || strings.Contains(s["stdout"], "continued by itself") {
			t.Errorf("%s: %v", id, s)
		}
		// The signal is what tells: SIGKILL means the ladder waited out the 30 s grace. The time bound
		// stays well under the grace, with room for a loaded machine (the step stops in about 1 s).
		if ms(s) > 20000 || s["signal"] == "9" {
			t.Errorf("%s: stopped after %d ms with signal %s: a stopped step must get SIGCONT after its stop signal, not wait for SIGKILL", id, ms(s), s["signal"])
		}
	}
	if s = row("stopper"); !strings.Contains(s["stdout"], "got TERM") || s["exit"] != "0" {
		t.Errorf("stopper did not run its TERM handler: %v", s)
	}
	if s = row("stopper-no-trap"); s["signal"] != "15" {
		t.Errorf("stopper-no-trap: signal %s, want 15 (SIGTERM)", s["signal"])
	}

	s = row("orphan-writers")
	// Its writers die with the group when the shell exits, so the step waits for no pipe (WaitDelay).
	if s["status"] != "succeeded" || !strings.Contains(s["stdout"], "parent exits") || strings.Contains(s["error"], "output may be incomplete") {
		t.Errorf("orphan-writers: %v", s)
	}
	waitGroupGone(t, readPID(t, filepath.Join(dir, "writers.pgid")))

	failIf(t, !strings.Contains(r.out, "output may be incomplete"), "a step whose output was cut (a daemon "+
		"kept stdout open) succeeds with a warning in steps.error, but the terminal does not show it")
}
