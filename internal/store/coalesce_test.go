package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// hold keeps the writer from taking writes until the returned func is called, so that everything
// recorded meanwhile is committed as one batch.
func hold(s *Store) (release func()) {
	q := &s.queue
	q.mu.Lock()
	q.held = true
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		q.held = false
		q.mu.Unlock()
		signal(q.wake)
	}
}

// recordScript records the same run in a fixed order: steps that ran once, failed and were retried,
// never started (pid 0) on their second attempt, produced output, and a step whose finish is recorded
// only after the held part (release is called before it). flush is called after every call.
func recordScript(t *testing.T, s *Store, flush func(), release func()) {
	t.Helper()
	ctx := context.Background()
	pid := os.Getpid() // a live process, so that the start time and the lock file entry are written
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		flush()
	}
	start := func(step string, attempt, pid, ms int) {
		must(s.AttemptStarted(ctx, &run.AttemptStart{RunID: "co", StepID: step, Attempt: attempt,
			StartedAt: at(ms), Command: "run " + step, PID: pid}))
	}
	finish := func(step string, attempt int, status run.Status, exit, from, to int, stdout string) {
		must(s.AttemptFinished(ctx, &run.AttemptRecord{RunID: "co", StepID: step, Attempt: attempt,
			Status: status, ExitCode: exit, StartedAt: at(from + 1), FinishedAt: at(to), Stdout: out(stdout),
			Error: map[bool]string{true: "", false: "exit status 1"}[exit == 0]}))
	}
	done := func(step string, attempts int, status run.Status, exit, from, to int, stdout string) {
		must(s.StepFinished(ctx, &run.StepRecord{RunID: "co", StepID: step, Status: status, ExitCode: exit,
			Attempts: attempts, StartedAt: at(from), FinishedAt: at(to), Command: "run " + step, Stdout: out(stdout)}))
	}

	start("a", 1, pid, 0)
	finish("a", 1, run.StatusSucceeded, 0, 0, 5, "hello\n")
	done("a", 1, run.StatusSucceeded, 0, 0, 5, "hello\n")

	start("b", 1, pid, 10)
	finish("b", 1, run.StatusFailed, 1, 10, 12, "")
	start("b", 2, pid+1, 20)
	finish("b", 2, run.StatusSucceeded, 0, 20, 25, "second\n")
	done("b", 2, run.StatusSucceeded, 0, 10, 25, "second\n")

	start("c", 1, pid, 30)
	finish("c", 1, run.StatusFailed, 1, 30, 31, "")
	start("c", 2, 0, 40) // the process never started
	finish("c", 2, run.StatusFailed, 1, 40, 40, "")
	done("c", 2, run.StatusFailed, 1, 30, 40, "")

	start("f", 1, pid, 45)
	finish("f", 1, run.StatusSucceeded, 0, 45, 46, "kept\n")
	must(s.StepFinished(ctx, &run.StepRecord{RunID: "co", StepID: "f", Status: run.StatusSucceeded,
		Attempts: 1, StartedAt: at(45), FinishedAt: at(46), Command: "run f"})) // without the output

	start("d", 1, pid, 50) // still running when the batch commits
	start("e", 1, pid, 60)
	finish("e", 1, run.StatusSucceeded, 0, 60, 70, "")

	release()
	finish("d", 1, run.StatusSucceeded, 0, 50, 80, "late\n")
	done("d", 1, run.StatusSucceeded, 0, 50, 80, "late\n")
	done("e", 1, run.StatusSucceeded, 0, 60, 70, "")
}

// TestCoalescedBatchWritesTheSameRows: the rows a run leaves are the same whether each write is
// committed on its own or the writer takes them in one batch, where coalesce folds the starts into
// the finishes.
func TestCoalescedBatchWritesTheSameRows(t *testing.T) {
	steps := []string{"a", "b", "c", "d", "e", "f"}

	apart := openTest(t)
	if err := apart.RunStarted(context.Background(), fixtureRun("co", steps...)); err != nil {
		t.Fatal(err)
	}
	flushApart := func() {
		if err := apart.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	recordScript(t, apart, flushApart, func() {})

	together := openTest(t)
	if err := together.RunStarted(context.Background(), fixtureRun("co", steps...)); err != nil {
		t.Fatal(err)
	}
	held := true
	release := hold(together)
	recordScript(t, together, func() {
		if !held {
			if err := together.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}, func() { held = false; release() })
	if err := together.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	for _, q := range []string{
		`SELECT * FROM steps ORDER BY step_id`,
		`SELECT * FROM attempts ORDER BY step_id, attempt`,
	} {
		want, got := dumpRows(t, apart.w, q), dumpRows(t, together.w, q)
		if got != want {
			t.Errorf("%s\none write per transaction:\n%s\none batch:\n%s", q, want, got)
		}
	}
	// The comparison means something only if the rows hold what the script wrote.
	rows := dumpRows(t, together.w, `SELECT step_id, attempt, status, command, pid IS NOT NULL, pid_start IS NOT NULL,
		coalesce(stdout, 'NULL') FROM attempts ORDER BY step_id, attempt`)
	for _, want := range []string{
		"a|1|succeeded|run a|1|1|NULL", // the step row keeps the last attempt's output
		"b|1|failed|run b|1|1|",
		"c|2|failed|run c|0|0|",
		"d|1|succeeded|run d|1|1|NULL",
		"e|1|succeeded|run e|1|1|",
		"f|1|succeeded|run f|1|1|kept\n", // the step row came without it: the only copy stays
	} {
		if !strings.Contains(rows, want+"\n") {
			t.Errorf("attempts lack %q:\n%s", want, rows)
		}
	}
	pids := dumpRows(t, together.w, `SELECT step_id, coalesce(pid, 'NULL') FROM steps ORDER BY step_id`)
	wantPIDs := fmt.Sprintf("a|%d\nb|%d\nc|NULL\nd|%[1]d\ne|%[1]d\nf|%[1]d\n", os.Getpid(), os.Getpid()+1)
	if pids != wantPIDs {
		t.Errorf("step pids:\n%s\nwant:\n%s", pids, wantPIDs)
	}
}

// TestCoalesceFoldsStartsIntoLaterWrites checks what coalesce removes, so that the test above cannot
// pass with a coalesce that does nothing.
func TestCoalesceFoldsStartsIntoLaterWrites(t *testing.T) {
	k := func(step string, attempt int) attemptKey { return attemptKey{"r", step, attempt} }
	newStart := func(step string, attempt int, pid any) *attemptStart {
		return &attemptStart{key: k(step, attempt), pid: pid, stepRow: true, attemptRow: true}
	}
	a1, b1, b2, c1 := newStart("a", 1, 10), newStart("b", 1, 20), newStart("b", 2, nil), newStart("c", 1, 30)
	five := outputSizes{kept: [2]int{5, 0}, total: [2]int64{5, 0}}
	fa1, fb1 := &attemptFinish{key: k("a", 1), output: five}, &attemptFinish{key: k("b", 1), output: five}
	fc1 := &attemptFinish{key: k("c", 1)}
	da := &stepFinish{run: "r", step: "a", attempts: 1, output: five}
	db := &stepFinish{run: "r", step: "b", attempts: 2, output: five} // its last attempt is not in the batch
	batch := []writeOp{
		{finish: fc1}, // before its start: stays as it is
		{start: a1}, {finish: fa1}, {stepDone: da},
		{start: b1}, {finish: fb1}, {start: b2}, {stepDone: db},
		{start: c1},
	}
	coalesce(batch)
	if a1.attemptRow || a1.stepRow || fa1.start != a1 || !da.setPID || da.pid != 10 {
		t.Errorf("a: start %+v, finish.start %p, step %+v", *a1, fa1.start, *da)
	}
	if !fa1.outputMoved || !da.outputMoved || fb1.outputMoved || db.outputMoved {
		t.Errorf("output moved: a %v/%v, b %v/%v; want only a's", fa1.outputMoved, da.outputMoved, fb1.outputMoved, db.outputMoved)
	}
	if b1.attemptRow || b1.stepRow || fb1.start != b1 {
		t.Errorf("b1: %+v", *b1)
	}
	if !b2.attemptRow || b2.stepRow { // no finish in the batch: its row is written; the step row is not
		t.Errorf("b2: %+v", *b2)
	}
	if !db.setPID || db.pid != nil { // the last attempt's pid, even none
		t.Errorf("b step: %+v", *db)
	}
	if !c1.attemptRow || !c1.stepRow || fc1.start != nil {
		t.Errorf("c: start %+v, finish.start %p", *c1, fc1.start)
	}
}

// dumpRows renders a query's rows, one line each, columns joined by |.
func dumpRows(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			switch v := v.(type) {
			case []byte:
				b.WriteString(string(v))
			case nil:
				b.WriteString("NULL")
			default:
				fmt.Fprint(&b, v)
			}
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
