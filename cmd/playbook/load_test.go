//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Load, end to end: many runners on one database, a 10,000-step playbook, a step printing 100,000
// lines a second, 500 steps of 10 MiB each. Nothing may be lost (rows, byte counts, lines) and the
// runner's memory must stay bounded. These are the suite's heaviest tests: -short skips them, and CI
// (go test -race ./..., without -short) runs them.

// maxRunnerRSS is a generous bound on a runner's peak memory, whatever its load.
const maxRunnerRSS = 200 << 20

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a load test; CI runs it without -short")
	}
}

func checkRSS(t *testing.T, what string, r pbResult) {
	t.Helper()
	t.Logf("%s: %s, peak RSS %.1f MiB (rusage, with this test's own memory: %.1f MiB)", what,
		r.took.Round(time.Millisecond), float64(r.maxRSS)/(1<<20), float64(r.ruRSS)/(1<<20))
	if r.maxRSS <= 0 {
		t.Errorf("%s: the runner's memory could not be read", what)
	}
	if r.maxRSS > maxRunnerRSS {
		t.Errorf("%s: the runner's peak RSS is %d MiB, over %d MiB", what, r.maxRSS>>20, maxRunnerRSS>>20)
	}
}

// TestLoadEightRunners: eight `playbook run` at once on one database, 200 steps each, every step
// writing output and an output value. All succeed, nobody sees a locked database, and every row,
// byte and output is there.
func TestLoadEightRunners(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	var b strings.Builder
	b.WriteString("version: 1\nname: many\nmax_parallel: 4\nsteps:\n")
	for i := range 200 {
		fmt.Fprintf(&b, "  - id: s%03d\n    exec: [sh, -c, 'echo \"step %03d of $PLAYBOOK_RUN_ID\"; echo n=%d >> \"$PLAYBOOK_OUTPUT\"']\n", i, i, i)
	}
	writeFile(t, filepath.Join(dir, "many.yaml"), b.String())
	results := make([]pbResult, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = pbRun(t, dir, db, pbOpts{limit: 5 * time.Minute}, "run", "many.yaml", "--output", "json")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("runner %d: exit status %d:\n%s", i, r.code, tail(r.out, 2000))
		}
		if strings.Contains(r.out, "locked") || strings.Contains(r.out, "SQLITE_BUSY") {
			t.Errorf("runner %d saw a locked database", i)
		}
		checkRSS(t, fmt.Sprintf("runner %d", i), r)
	}
	checkDB(t, db, 200)
	if got := queryDB(t, db, `SELECT count(*), sum(status = 'succeeded') FROM runs`); got[0] != "8|8" {
		t.Errorf("runs: %v, want 8 succeeded", got)
	}
	// "step NNN of <32 hex>\n" is 45 bytes.
	if got := queryDB(t, db, `SELECT count(*), sum(status = 'succeeded'), sum(stdout_bytes), sum(length(stdout)),
		sum(CAST(stdout AS TEXT) = printf('step %s of %s', substr(step_id, 2), run_id) || char(10)),
		sum(json_extract(outputs, '$.n') = CAST(substr(step_id, 2) AS INTEGER))
		FROM steps`); got[0] != "1600|1600|72000|72000|1600|1600" {
		t.Errorf("steps (count, succeeded, bytes, stored bytes, right text, right output): %v, want 1600 of each and 72000 bytes", got)
	}
	if got := queryDB(t, db, `SELECT count(*) FROM attempts WHERE status = 'succeeded'`); got[0] != "1600" {
		t.Errorf("attempts: %v", got)
	}
}

// TestLoadTenThousandSteps: a 10,000-step playbook (chains of 50 steps, 200 chains side by side, a
// final step needing every chain) runs end to end and records every step, in bounded memory.
func TestLoadTenThousandSteps(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	var b strings.Builder
	b.WriteString("version: 1\nname: tenk\nmax_parallel: 8\nsteps:\n")
	var tails []string
	for c := range 200 {
		for k := range 50 {
			if c == 199 && k == 49 {
				break // the 10,000th step is the final one
			}
			fmt.Fprintf(&b, "  - id: c%d-%d\n    exec: [\"true\"]\n", c, k)
			if k > 0 {
				fmt.Fprintf(&b, "    needs: [c%d-%d]\n", c, k-1)
			}
		}
		last := 49
		if c == 199 {
			last = 48
		}
		tails = append(tails, fmt.Sprintf("c%d-%d", c, last))
	}
	fmt.Fprintf(&b, "  - id: final\n    needs: [%s]\n    exec: [echo, all done]\n", strings.Join(tails, ", "))
	writeFile(t, filepath.Join(dir, "tenk.yaml"), b.String())

	if r := pbRun(t, dir, db, pbOpts{}, "validate", "tenk.yaml"); r.code != 0 {
		t.Fatalf("validate: %d\n%s", r.code, tail(r.out, 2000))
	}
	r := pbRun(t, dir, db, pbOpts{limit: 30 * time.Minute, discard: true}, "run", "tenk.yaml")
	if r.code != 0 {
		t.Fatalf("exit status %d:\n%s", r.code, tail(r.out, 2000))
	}
	checkRSS(t, "10,000 steps", r)
	checkDB(t, db, 10000)
	if got := queryDB(t, db, `SELECT count(*), sum(status = 'succeeded'), sum(attempts) FROM steps`); got[0] != "10000|10000|10000" {
		t.Errorf("steps: %v, want 10000 succeeded, one attempt each", got)
	}
	if got := queryDB(t, db, `SELECT CAST(stdout AS TEXT) FROM steps WHERE step_id = 'final'`); len(got) != 1 || got[0] != "all done\n" {
		t.Errorf("final step: %v", got)
	}
	// Every step started after the step it needs had finished.
	if got := queryDB(t, db, `SELECT count(*) FROM steps AS s JOIN steps AS d ON d.run_id = s.run_id
		AND d.step_id = substr(s.step_id, 1, instr(s.step_id, '-')) || (CAST(substr(s.step_id, instr(s.step_id, '-') + 1) AS INTEGER) - 1)
		WHERE s.step_id LIKE 'c%' AND s.started_at < d.finished_at`); got[0] != "0" {
		t.Errorf("%s steps started before the step they need had finished", got[0])
	}
}

// TestLoadFastPrinter: a step printing about 100,000 short lines a second for three seconds. The
// runner keeps up: the log file holds every line in order, the database the exact byte count and the
// head and tail, --output json every line or a count of the ones it skipped for its reader, and the
// runner's memory stays bounded.
func TestLoadFastPrinter(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	// 30 batches of 10,000 numbered lines, one every 0.1 s.
	writeFile(t, filepath.Join(dir, "fast.yaml"), `version: 1
name: fast
steps:
  - id: printer
    run: |
      for b in $(seq 0 29); do
        seq -f "line %06g" $((b * 10000)) $((b * 10000 + 9999))
        sleep 0.1
      done
`)
	const lines = 300000
	var want bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&want, "line %06d\n", i)
	}
	r := pbRun(t, dir, db, pbOpts{}, "run", "fast.yaml", "--output", "json", "--log-dir", "logs")
	if r.code != 0 {
		t.Fatalf("exit status %d:\n%s", r.code, tail(r.out, 2000))
	}
	checkRSS(t, "300,000 lines in 3 s", r)
	rate := float64(lines) / r.took.Seconds()
	t.Logf("%.0f lines a second through the runner", rate)

	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*", "printer.stdout"))
	if len(files) != 1 {
		t.Fatalf("log files: %v", files)
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the log file has %d bytes, want the %d bytes printed, in order", len(got), want.Len())
	}
	if row := queryDB(t, db, `SELECT status, stdout_bytes, stdout_truncated, length(stdout) < 2200000,
		substr(CAST(stdout AS TEXT), 1, 12), substr(CAST(stdout AS TEXT), -12) FROM steps`); len(row) != 1 ||
		row[0] != fmt.Sprintf("succeeded|%d|0|1|line 000000\n|line 299999\n", want.Len()) &&
			row[0] != fmt.Sprintf("succeeded|%d|1|1|line 000000\n|line 299999\n", want.Len()) {
		t.Errorf("step row: %v", row)
	}
	// --output json: every line is an event, or counted as dropped for a reader that fell behind.
	seen, dropped := 0, 0
	sc := bufio.NewScanner(strings.NewReader(r.out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next := 0
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // stderr lines
		}
		if d, ok := ev["dropped"].(float64); ok {
			dropped += int(d)
		}
		if ev["event"] != "output" || ev["stream"] != "stdout" {
			continue
		}
		line, _ := ev["line"].(string)
		n, err := strconv.Atoi(strings.TrimPrefix(line, "line "))
		if err != nil || n < next {
			t.Fatalf("line event %q out of order (after %d)", line, next)
		}
		next = n + 1
		seen++
	}
	t.Logf("--output json: %d line events, %d reported dropped", seen, dropped)
	if seen+dropped > lines || seen == 0 {
		t.Errorf("--output json: %d line events + %d dropped = %d, want %d", seen, dropped, seen+dropped, lines)
	}
	failIf(t, seen+dropped < lines, fmt.Sprintf("--output json lost %d lines without counting them: the engine "+
		"reports lines dropped at the end of a step on its terminal event, and scheduler.handle does not pass that "+
		"count on (no dropped on step_finished)", lines-seen-dropped))
}

// TestLoadManyBigSteps: 500 steps each writing 10 MiB (5 GiB in all), four at a time. Every byte is
// counted, the database keeps each step's head and tail within the output limit, and the runner's
// memory does not grow with the output.
func TestLoadManyBigSteps(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	const steps, size = 500, 10 << 20
	var b strings.Builder
	b.WriteString("version: 1\nname: big\nmax_parallel: 4\noutput_limit: 64KiB\nsteps:\n")
	for i := range steps {
		fmt.Fprintf(&b, "  - id: s%03d\n    run: yes 'some step output, line after line' | head -c %d\n", i, size)
	}
	writeFile(t, filepath.Join(dir, "big.yaml"), b.String())
	r := pbRun(t, dir, db, pbOpts{limit: 30 * time.Minute, discard: true}, "run", "big.yaml")
	if r.code != 0 {
		t.Fatalf("exit status %d:\n%s", r.code, tail(r.out, 2000))
	}
	checkRSS(t, "500 × 10 MiB", r)
	t.Logf("%.0f MiB/s through the runner", float64(steps*size)/(1<<20)/r.took.Seconds())
	checkDB(t, db, steps)
	if got := queryDB(t, db, `SELECT count(*), sum(status = 'succeeded'), sum(stdout_bytes), sum(stdout_truncated),
		max(length(stdout)) <= 65536 + 100, sum(CAST(stdout AS TEXT) LIKE 'some step output%bytes omitted%line after line%')
		FROM steps`); got[0] != fmt.Sprintf("%d|%d|%d|%d|1|%d", steps, steps, steps*size, steps, steps) {
		t.Errorf("steps (count, succeeded, bytes, truncated, bounded, head and tail kept): %v, want %d steps and %d bytes", got, steps, steps*size)
	}
}
