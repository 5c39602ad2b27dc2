package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/playbookhq/playbook/internal/store"
)

// viewPlaybook prints on both streams, retries once, and skips a step: every kind of event a step has.
const viewPlaybook = `version: 1
name: view
steps:
  - id: hello
    runs_on: web
    run: echo "hello from $PWD"; echo "warned" >&2; printf "no newline"
  - id: flaky
    needs: hello
    retry: {attempts: 2, delay: 100ms}
    run: echo "trying"; test -f marker || { touch marker; exit 3; }
  - id: never
    needs: flaky
    if: failure()
    run: echo never
`

// buildBoth builds playbook and playbook-temporal into one folder, as `go install ./cmd/...` does.
func buildBoth(t *testing.T) (playbookBin, temporalBin string) {
	t.Helper()
	dir := t.TempDir()
	playbookBin, temporalBin = filepath.Join(dir, "playbook"), filepath.Join(dir, "playbook-temporal")
	for bin, pkg := range map[string]string{playbookBin: "../playbook", temporalBin: "."} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	// The playbook binary hands its arguments, --namespace included, to the real playbook-temporal
	// beside it.
	return inNamespace(t, playbookBin), inNamespace(t, temporalBin)
}

// TestDistributedRunView: `playbook run --temporal`, handed to playbook-temporal, shows what a local
// run shows: each step's start, the lines it printed, its end with the worker that ran it, and the
// summary with a worker column; `--output json` gives, step by step, the event types of a local run
// of the same playbook.
func TestDistributedRunView(t *testing.T) {
	addr, _ := devServer(t)
	pbBin, bin := buildBoth(t)
	w1, w2 := t.TempDir(), t.TempDir()
	startWorker(t, bin, addr, "playbook", w1, "--name", "w1")
	startWorker(t, bin, addr, "web", w2, "--name", "w2")
	file := filepath.Join(t.TempDir(), "view.yaml")
	os.WriteFile(file, []byte(viewPlaybook), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	text := exec.CommandContext(ctx, pbBin, "run", "--temporal", addr, "--db", filepath.Join(t.TempDir(), "t.db"), file)
	text.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := text.Output()
	if err != nil {
		t.Fatalf("playbook run --temporal: %v\n%s", err, out)
	}
	for _, want := range []string{
		`(?m)^Run [0-9a-f]{12} view \(.*view.yaml\), 3 steps$`,
		`(?m)^\[hello\] started: echo "hello from \$PWD"`,
		`(?m)^\[hello\] hello from ` + regexp.QuoteMeta(w2) + `$`,
		`(?m)^\[hello\] warned$`,
		`(?m)^\[hello\] no newline ⏎$`,
		`(?m)^\[hello\] succeeded in \S+ on w2$`,
		`(?m)^\[flaky\] attempt 1 failed on w1 \(exit status 3\); retrying in 100ms$`,
		`(?m)^\[flaky\] attempt 2 started`,
		`(?m)^\[flaky\] trying$`,
		`(?m)^\[flaky\] succeeded in \S+ after 2 attempts on w1$`,
		`(?m)^\[never\] skipped: its if is false$`,
		`(?m)^STEP +STATUS +EXIT +DURATION +ATTEMPTS +WORKER +NOTE$`,
		`(?m)^hello +succeeded +0 +\S+ +1 +w2 *$`,
		`(?m)^never +skipped +- +- +0 +- +its if is false$`,
		`(?m)^Run [0-9a-f]{12} succeeded in `,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("the text view has no match for %s:\n%s", want, out)
		}
	}

	os.Remove(filepath.Join(w1, "marker"))
	dist, distOut := jsonEvents(t, exec.CommandContext(ctx, bin, "run", "--temporal", addr, "--db", filepath.Join(t.TempDir(), "d.db"), "--output", "json", file))
	localDir := t.TempDir()
	lc := exec.CommandContext(ctx, pbBin, "run", "--db", filepath.Join(t.TempDir(), "l.db"), "--output", "json", file)
	lc.Dir = localDir
	// A local run ignores runs_on: every step runs here, relative dirs in the playbook's folder.
	os.Remove(filepath.Join(filepath.Dir(file), "marker"))
	loc, _ := jsonEvents(t, lc)
	os.Remove(filepath.Join(filepath.Dir(file), "marker"))
	for _, step := range []string{"", "hello", "flaky", "never"} {
		if d, l := dist[step], loc[step]; !slices.Equal(d, l) {
			t.Errorf("step %q: distributed events %v, local %v", step, d, l)
		}
	}
	if !regexp.MustCompile(`"event":"step_finished".*"step":"hello".*"worker":"w2"`).Match(distOut) {
		t.Errorf("hello's step_finished does not name its worker:\n%s", distOut)
	}
	if len(loc["hello"]) == 0 {
		t.Fatalf("the local run gave no events for hello")
	}
}

// jsonEvents runs cmd (with --output json) and returns the sequence of event types of each step
// ("" for the run's own), checking that every line is a JSON object; and its output.
func jsonEvents(t *testing.T, cmd *exec.Cmd) (map[string][]string, []byte) {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	events := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e struct{ Event, Step string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q (%v)", sc.Text(), err)
		}
		events[e.Step] = append(events[e.Step], e.Event)
	}
	return events, out
}

// TestSecondCtrlCKillsTheRun: the first Ctrl-C cancels the workflow (the view says the run is
// stopping), the second sends it the kill signal, and the command exits 130.
func TestSecondCtrlCKillsTheRun(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	w := t.TempDir()
	startWorker(t, bin, addr, "playbook", w)
	file := filepath.Join(t.TempDir(), "stubborn.yaml")
	// The step ignores its stop signal for longer than the test: only the forced stop ends the run.
	os.WriteFile(file, []byte(`version: 1
name: stubborn
steps:
  - id: stubborn
    stop_grace: 10m
    run: trap '' TERM INT; echo $$ > stubborn.pid; while true; do sleep 0.05; done
`), 0o644)
	t.Cleanup(func() {
		var pid int
		if data, err := os.ReadFile(filepath.Join(w, "stubborn.pid")); err == nil {
			if _, err := fmt.Sscan(string(data), &pid); err == nil && pid > 0 {
				syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	})
	db := filepath.Join(t.TempDir(), "runs.db")
	cmd := exec.Command(bin, "run", "--temporal", addr, "--db", db, file)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if data, err := os.ReadFile(filepath.Join(w, "stubborn.pid")); err == nil && len(data) > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the step never started")
		}
	}
	cmd.Process.Signal(os.Interrupt)
	stopping := make(chan struct{})
	var errText strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if !said && strings.HasPrefix(sc.Text(), "Stopping the run: ") {
				close(stopping)
				said = true
			}
		}
	}()
	select {
	case <-stopping:
	case <-time.After(time.Minute):
		t.Fatal("the run never said it was stopping")
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d, want 130:\n%s", code, stdout.String())
	}
	m := regexp.MustCompile(`(?m)^Run ([0-9a-f]+) `).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no run id in:\n%s", stdout.String())
	}
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.ResolveRun(ctx, m[1])
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	show, err := exec.Command(cliPath(t), "workflow", "show", "--address", addr, "-w", "playbook-"+id, "--output", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("workflow show: %v\n%s", err, show)
	}
	for _, want := range []string{"EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED", "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED", "playbook.kill"} {
		if !bytes.Contains(show, []byte(want)) {
			t.Errorf("the workflow's history has no %s: events %s", want, regexp.MustCompile(`EVENT_TYPE_\w+`).FindAll(show, -1))
		}
	}
}

// TestAttachView: attach to a run whose submitter was killed shows the same view as run, from what
// the database has (the run's start, the steps already finished) to the end, with the lines the
// later steps printed, the summary, and the run's exit status.
func TestAttachView(t *testing.T) {
	addr, _ := devServer(t)
	pbBin, bin := buildBoth(t)
	w := t.TempDir()
	startWorker(t, bin, addr, "playbook", w, "--name", "wa")
	gate := fmt.Sprintf("attach-%d-%d", os.Getpid(), time.Now().UnixNano())
	file := filepath.Join(t.TempDir(), "attach.yaml")
	os.WriteFile(file, []byte(`version: 1
name: attach
steps:
  - id: first
    run: echo first-line
  - id: gate
    needs: first
    run: until [ -f `+gate+` ]; do sleep 0.05; done
  - id: last
    needs: gate
    run: echo last-line; exit 3
`), 0o644)
	db := filepath.Join(t.TempDir(), "runs.db")
	cmd := exec.Command(bin, "run", "--temporal", addr, "--db", db, file)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(time.Minute); !gateRunning(gate); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the gate step never ran")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	os.WriteFile(filepath.Join(w, gate), nil, 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	att := exec.CommandContext(ctx, pbBin, "attach", "--db", db, "last")
	att.Env = append(os.Environ(), "PLAYBOOK_TEMPORAL="+addr, "NO_COLOR=1")
	out, _ := att.Output()
	if code := att.ProcessState.ExitCode(); code != 1 {
		t.Errorf("attach exit %d, want the run's, 1:\n%s", code, out)
	}
	for _, want := range []string{
		`(?m)^Run [0-9a-f]{12} attach \(.*attach.yaml\), 3 steps$`,
		`(?m)^\[first\] succeeded in \S+ on wa$`,
		`(?m)^\[gate\] succeeded in \S+ on wa$`,
		`(?m)^\[last\] last-line$`,
		`(?m)^\[last\] failed in \S+ on wa: exit status 3$`,
		`(?m)^last +failed +3 +\S+ +1 +wa +exit status 3$`,
		`(?m)^Run [0-9a-f]{12} failed in `,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("attach's view has no match for %s:\n%s", want, out)
		}
	}
}

// TestWorkerDrainsOnSIGTERM: `playbook worker` given SIGTERM takes no new step, lets its running step
// finish and be recorded, then exits 0.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	addr, _ := devServer(t)
	pbBin, bin := buildBoth(t)
	w1 := t.TempDir()
	startWorker(t, bin, addr, "other", t.TempDir(), "--name", "spare") // carries the workflow meanwhile
	worker := exec.Command(pbBin, "worker", "--temporal", addr, "--queue", "playbook", "--dir", w1, "--name", "w1")
	stderr, _ := worker.StderrPipe()
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer worker.Process.Kill()
	var log strings.Builder
	serving, draining := make(chan struct{}), make(chan struct{})
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			switch {
			case strings.Contains(sc.Text(), ": serving queues "):
				close(serving)
			case strings.Contains(sc.Text(), ": draining"):
				close(draining)
			}
		}
	}()
	select {
	case <-serving:
	case <-time.After(time.Minute):
		t.Fatalf("the worker did not start:\n%s", log.String())
	}
	file := filepath.Join(t.TempDir(), "drain.yaml")
	gate := fmt.Sprintf("drain-%d-%d", os.Getpid(), time.Now().UnixNano())
	os.WriteFile(file, []byte(`version: 1
name: drain
steps:
  - id: slow
    run: touch started; until [ -f `+gate+` ]; do sleep 0.05; done; echo finished
`), 0o644)
	db := filepath.Join(t.TempDir(), "runs.db")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCmd := exec.CommandContext(ctx, bin, "run", "--temporal", addr, "--db", db, file)
	var out bytes.Buffer
	runCmd.Stdout, runCmd.Stderr = &out, &out
	if err := runCmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(w1, "started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the step never started")
		}
	}
	worker.Process.Signal(syscall.SIGTERM)
	select {
	case <-draining:
	case <-time.After(time.Minute):
		t.Fatalf("the worker did not say it drains")
	}
	os.WriteFile(filepath.Join(w1, gate), nil, 0o644) // the step ends only now that the worker drains
	err := worker.Wait()
	<-logged
	if err != nil {
		t.Errorf("the worker: %v\n%s", err, log.String())
	}
	if err := runCmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`(?m)^\[slow\] finished$`).Match(out.Bytes()) || !regexp.MustCompile(`(?m)^\[slow\] succeeded in \S+ on w1$`).Match(out.Bytes()) {
		t.Errorf("the run's view:\n%s", out.String())
	}
}
