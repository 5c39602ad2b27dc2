package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// talkPlaybook is a step that prints a numbered line every 50 ms until the file "gate" exists, then
// "done".
const talkPlaybook = `version: 1
name: talk
steps:
  - id: talk
    run: |
      echo $$ > pgid
      i=0
      while [ ! -e gate ]; do i=$((i+1)); echo "line $i"; sleep 0.05; done
      echo done
`

// pollDB runs q until ok accepts its rows (the database may not exist yet: the runner creates it), at
// most 30 s.
func pollDB(t *testing.T, db, q string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := tryQuery(db, q)
		if err == nil && ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no acceptable rows within 30s (last: %v, %v)", q, rows, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tryQuery(db, q string) ([]string, error) {
	if _, err := os.Stat(db); err != nil {
		return nil, err
	}
	conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rows, err := conn.Query(q)
	if err != nil {
		return nil, err
	}
	return rowsText(rows)
}

var lineRE = regexp.MustCompile(`(?m)^(?:\[stdout\] )?line ([0-9]+)$`)

// lastLine is the number of the last complete "line N" of out, 0 if none.
func lastLine(out string) int {
	m := lineRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func parseDBTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

// TestKilledRunnerKeepsOutputSoFar: a runner killed with SIGKILL while its step prints leaves the step's
// output as of its last progress record (at most about a second old), the step's real start, and a run
// whose recovered end is when the runner was last seen alive.
func TestKilledRunnerKeepsOutputSoFar(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "talk.yaml"), talkPlaybook)
	p := startPlaybook(t, dir, db, "run", "talk.yaml")
	const q = `SELECT CAST(s.stdout AS TEXT), r.last_seen_at FROM steps s JOIN runs r ON r.id = s.run_id`
	// Two progress records in a row: the step's output is kept up to date while it runs, not once.
	first := pollDB(t, db, q, func(r []string) bool { return len(r) == 1 && lastLine(r[0]) > 0 })
	k1 := lastLine(first[0])
	second := pollDB(t, db, q, func(r []string) bool { return len(r) == 1 && lastLine(r[0]) > k1 })
	k2 := lastLine(second[0])
	seen := parseDBTime(t, strings.Split(second[0], "|")[1])
	// Kill the runner once the step has printed a few lines more than the record holds.
	p.waitLine(fmt.Sprintf(`^\[talk\] line %d$`, k2+3))
	pgid := readPID(t, filepath.Join(dir, "pgid"))
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	p.wait(10 * time.Second)

	if out, err := runOnce(t, dir, db, "runs"); err != nil {
		t.Fatalf("playbook runs: %v\n%s", err, out)
	}
	waitGroupGone(t, pgid)
	got := queryDB(t, db, `SELECT s.status, CAST(s.stdout AS TEXT), s.stdout_bytes, s.started_at, r.started_at,
		r.finished_at, r.duration_ms, r.status FROM steps s JOIN runs r ON r.id = s.run_id`)
	if len(got) != 1 {
		t.Fatalf("rows: %v", got)
	}
	f := strings.Split(got[0], "|")
	stdout := f[1]
	if f[0] != "interrupted" || f[7] != "interrupted" {
		t.Errorf("step %s, run %s: want both interrupted", f[0], f[7])
	}
	if !strings.HasPrefix(stdout, "line 1\nline 2\n") || !strings.Contains(stdout, fmt.Sprintf("\nline %d\n", k2)) {
		t.Errorf("stored output lacks the lines printed before the progress record seen (line %d):\n%s", k2, stdout)
	}
	if n, _ := strconv.Atoi(f[2]); n < len(stdout) {
		t.Errorf("stdout_bytes %d < %d bytes stored", n, len(stdout))
	}
	stepStart, runStart, runEnd := parseDBTime(t, f[3]), parseDBTime(t, f[4]), parseDBTime(t, f[5])
	if stepStart.Before(runStart) || !stepStart.Before(seen) {
		t.Errorf("step started_at %s: want between the run's start %s and the progress record at %s", stepStart, runStart, seen)
	}
	if runEnd.Before(seen) {
		t.Errorf("recovered run ends %s, before the runner was seen alive at %s", runEnd, seen)
	}
	if ms, _ := strconv.ParseInt(f[6], 10, 64); ms < seen.Sub(runStart).Milliseconds() {
		t.Errorf("duration_ms %d < %d, the time to the progress record seen", ms, seen.Sub(runStart).Milliseconds())
	}
}

// TestLogsOfARunningStep: `logs RUN STEP` shows a running step's output so far; `logs -f` prints its
// lines as they come, each once and in order, and returns 0 when the step ends.
func TestLogsOfARunningStep(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "talk.yaml"), talkPlaybook)
	p := startPlaybook(t, dir, db, "run", "talk.yaml")
	pollDB(t, db, `SELECT CAST(stdout AS TEXT) FROM steps`, func(r []string) bool { return len(r) == 1 && lastLine(r[0]) >= 3 })

	out, err := runOnce(t, dir, db, "logs", "last", "talk")
	if err != nil {
		t.Fatalf("playbook logs: %v\n%s", err, out)
	}
	// Both streams, so each line says which one it is from.
	if !strings.Contains(out, "[stdout] line 1\n[stdout] line 2\n[stdout] line 3\n") || !strings.Contains(out, "still running") {
		t.Errorf("logs of the running step:\n%s", out)
	}
	snapshot := lastLine(out)

	f := startPlaybook(t, dir, db, "logs", "last", "talk", "-f")
	// The follower shows lines the step printed after the snapshot, before the step ends.
	f.waitLine(fmt.Sprintf(`^\[stdout\] line %d$`, snapshot+25))
	select {
	case <-f.done:
		t.Fatalf("logs -f ended while the step runs:\n%s", f.output())
	default:
	}
	writeFile(t, filepath.Join(dir, "gate"), "")
	f.waitLine(`^\[stdout\] done$`)
	if code := f.wait(30 * time.Second); code != 0 {
		t.Errorf("logs -f exited %d:\n%s", code, f.output())
	}
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("run exited %d:\n%s", code, p.output())
	}
	// Every line once, in order, then done.
	var want []string
	for i := 1; i <= lastLine(f.output()); i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	want = append(want, "done")
	var lines []string
	for _, l := range strings.Split(f.output(), "\n") {
		if !strings.HasPrefix(l, "playbook: ") {
			lines = append(lines, strings.TrimPrefix(l, "[stdout] "))
		}
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("logs -f printed:\n%s\nwant lines 1 to %d once each, then done", f.output(), len(want)-1)
	}
	if !strings.Contains(f.output(), "playbook: step talk ended: succeeded") {
		t.Errorf("logs -f does not say how the step ended:\n%s", f.output())
	}
}

// TestLogsFollowNeedsAStep: -f without STEP is refused with a clear message.
func TestLogsFollowNeedsAStep(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "ok.yaml"), "version: 1\nname: ok\nsteps:\n  - id: a\n    run: echo hi\n")
	if out, err := runOnce(t, dir, db, "run", "ok.yaml"); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	out, err := runOnce(t, dir, db, "logs", "last", "-f")
	if err == nil || !strings.Contains(out, "--follow needs a STEP") {
		t.Errorf("logs last -f: %v\n%s", err, out)
	}
}
