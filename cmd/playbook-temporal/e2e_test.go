package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

// devServer returns the address of a Temporal dev server for the test, and the server's database
// file ("" when unknown). With $TEMPORAL_ADDRESS (.ci/run and .ci/temporal export it) that shared
// server is used, and the test gets a namespace of its own there: the binary from buildBinary and the
// CLI from cliPath use it, and it is deleted when the test ends; the file is $TEMPORAL_DB_FILE. Else
// the test starts its own server (ownDevServer).
func devServer(t *testing.T) (addr, dbFile string) {
	t.Helper()
	addr = os.Getenv("TEMPORAL_ADDRESS")
	if addr == "" {
		return ownDevServer(t)
	}
	e := &e2eServer{namespace: newNamespace(t, addr)}
	if cli := temporalCLI(t); cli != "" {
		// The CLI reads its namespace from the environment when no --namespace is given.
		e.cli = writeScript(t, "temporal", "TEMPORAL_NAMESPACE="+shellQuote(e.namespace)+" exec "+shellQuote(cli)+` "$@"`)
	}
	e2eMu.Lock()
	e2eTests[t] = e
	e2eMu.Unlock()
	t.Cleanup(func() {
		e2eMu.Lock()
		delete(e2eTests, t)
		e2eMu.Unlock()
	})
	return addr, os.Getenv("TEMPORAL_DB_FILE")
}

// e2eServer is what a test on the shared server was given.
type e2eServer struct {
	namespace string // the test's own namespace
	cli       string // the Temporal CLI in that namespace; "" without a CLI
}

var (
	e2eMu    sync.Mutex
	e2eTests = map[*testing.T]*e2eServer{} // the tests running on the shared server
)

// testNamespace is the namespace the test's runs and workers use: its own on the shared server, else
// "default". A test that dials Temporal itself (client.Dial) needs it.
func testNamespace(t *testing.T) string {
	if e := e2eOf(t); e != nil {
		return e.namespace
	}
	return "default"
}

func e2eOf(t *testing.T) *e2eServer {
	e2eMu.Lock()
	defer e2eMu.Unlock()
	return e2eTests[t]
}

// ownDevServer starts the Temporal CLI's dev server on a free loopback port, with the settings that
// favour latency (the same as .ci/temporal's), and returns its address and database file. Without a
// CLI the test is skipped, unless CI is set (then it fails: CI must provide a server or a CLI).
func ownDevServer(t *testing.T) (addr, dbFile string) {
	t.Helper()
	cli := temporalCLI(t)
	if cli == "" {
		const how = "set TEMPORAL_ADDRESS to a running dev server (`.ci/temporal go test ./cmd/playbook-temporal` starts one), or TEMPORAL_CLI to a Temporal CLI (or put `temporal` in PATH)"
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but there is no Temporal server for the end-to-end tests: " + how)
		}
		t.Skip("no Temporal server for the end-to-end tests: " + how)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	dbFile = filepath.Join(dir, "dev.db")
	srv := exec.Command(cli, "server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--headless",
		"--db-filename", dbFile,
		"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
		"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
		"--dynamic-config-value", "system.enableActivityEagerExecution=true")
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-srv.Process.Pid, syscall.SIGKILL); srv.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := exec.Command(cli, "operator", "cluster", "health", "--address", addr).CombinedOutput()
		if bytes.Contains(out, []byte("SERVING")) {
			return addr, dbFile
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dev server did not serve within 60 s:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond) // polling the server's own health answer
	}
}

// temporalCLI is $TEMPORAL_CLI, else `temporal` in PATH, else "".
func temporalCLI(t *testing.T) string {
	t.Helper()
	if cli := os.Getenv("TEMPORAL_CLI"); cli != "" {
		if st, err := os.Stat(cli); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			t.Fatalf("TEMPORAL_CLI=%s is not an executable file (%v): point it at a Temporal CLI, or unset it", cli, err)
		}
		return cli
	}
	cli, _ := exec.LookPath("temporal")
	return cli
}

// newNamespace registers a namespace of the test's own on the server at addr, and deletes it (with
// whatever runs are left in it) when the test ends.
func newNamespace(t *testing.T, addr string) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 100 {
		name = name[:100]
	}
	ns := fmt.Sprintf("e2e-%s-%d-%d", name, os.Getpid(), time.Now().UnixNano()%1e9)
	c, err := client.Dial(client.Options{HostPort: addr, Logger: quietLogger})
	if err != nil {
		t.Fatalf("TEMPORAL_ADDRESS=%s: connect: %v", addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	}); err != nil {
		c.Close()
		t.Fatalf("TEMPORAL_ADDRESS=%s: register the test's namespace %s: %v", addr, ns, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.OperatorService().DeleteNamespace(ctx, &operatorservice.DeleteNamespaceRequest{Namespace: ns}); err != nil {
			t.Logf("delete the test's namespace %s: %v", ns, err)
		}
		c.Close()
	})
	// A namespace is served once the frontend knows it: a request in it answers without NotFound.
	for {
		_, err := c.WorkflowService().ListOpenWorkflowExecutions(ctx, &workflowservice.ListOpenWorkflowExecutionsRequest{Namespace: ns, MaximumPageSize: 1})
		var notFound *serviceerror.NamespaceNotFound
		if !errors.As(err, &notFound) {
			if err != nil {
				t.Fatalf("TEMPORAL_ADDRESS=%s: the test's namespace %s: %v", addr, ns, err)
			}
			return ns
		}
		if ctx.Err() != nil {
			t.Fatalf("TEMPORAL_ADDRESS=%s: the test's namespace %s was not served within 30 s", addr, ns)
		}
		time.Sleep(50 * time.Millisecond) // polling the server's own answer
	}
}

// quietLogger is the SDK logger of the tests' own clients and replays: their warnings are not the
// test's.
var quietLogger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// writeScript writes an executable shell script with body in a temporary folder of the test.
func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// buildBinary builds playbook-temporal once for the test. On the shared server it returns a script
// that runs the binary's worker, run and attach in the test's namespace.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "playbook-temporal")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return inNamespace(t, bin)
}

// inNamespace returns bin, or on the shared server a script that runs its worker, run, retry and
// attach in the test's namespace. exec keeps the process the test signals (Ctrl-C, kill -9) the
// binary itself.
func inNamespace(t *testing.T, bin string) string {
	t.Helper()
	e := e2eOf(t)
	if e == nil {
		return bin
	}
	return writeScript(t, filepath.Base(bin), `case "$1" in
worker|run|retry|attach) sub=$1; shift; exec `+shellQuote(bin)+` "$sub" --namespace `+shellQuote(e.namespace)+` "$@" ;;
esac
exec `+shellQuote(bin)+` "$@"`)
}

// startWorker starts a real worker process serving queues from dir, and waits until it says so.
func startWorker(t *testing.T, bin, addr, queues, dir string, extra ...string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"worker", "--temporal", addr, "--queue", queues, "--dir", dir}, extra...)...)
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// What the worker says (the SDK's warnings among it) is shown when the test fails: a step that
	// never ran, or a run that never ended, is explained there.
	var said string
	ready, ended := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		if t.Failed() {
			// Its goroutines (GOTRACEBACK=all) show what its workflows and steps wait on.
			cmd.Process.Signal(syscall.SIGABRT) // not caught: the runtime dumps every goroutine
		} else {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		cmd.Wait()
		<-ended
		if t.Failed() || os.Getenv("PLAYBOOK_TEST_WORKER_LOG") != "" {
			t.Logf("the worker for %s said:\n%s", queues, said)
		}
	})
	go func() {
		defer close(ended)
		buf := make([]byte, 4096)
		var seen strings.Builder
		serving := false
		for {
			n, err := stderr.Read(buf)
			seen.Write(buf[:n])
			if !serving && strings.Contains(seen.String(), ": serving queues ") {
				close(ready)
				serving = true
			}
			if err != nil {
				said = seen.String()
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-ended:
		t.Fatalf("the worker for %s ended before serving:\n%s", queues, said)
	case <-time.After(30 * time.Second):
		t.Fatalf("worker for %s did not start", queues)
	}
}

// TestSharedServerGivesEachTestANamespace: with TEMPORAL_ADDRESS, a test uses that server in a
// namespace of its own, which its workers and its CLI use, so that it sees nothing of another test's.
func TestSharedServerGivesEachTestANamespace(t *testing.T) {
	shared := os.Getenv("TEMPORAL_ADDRESS")
	if shared == "" {
		shared, _ = ownDevServer(t)
		t.Setenv("TEMPORAL_ADDRESS", shared)
	}
	var first string
	t.Run("first", func(t *testing.T) {
		addr, _ := devServer(t)
		e := e2eOf(t)
		if addr != shared || e == nil {
			t.Fatalf("devServer gave %s (namespace %+v), want the shared server %s, a namespace of the test's own", addr, e, shared)
		}
		first = testNamespace(t)
		startWorker(t, buildBinary(t), addr, "isolated", t.TempDir())
		// The worker polls in the test's namespace: the CLI, in it too, sees it.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, err := exec.Command(cliPath(t), "task-queue", "describe", "--address", addr, "--task-queue", "isolated", "--output", "json").Output()
			var tq struct{ Pollers []json.RawMessage }
			if err == nil && json.Unmarshal(out, &tq) == nil && len(tq.Pollers) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no worker polls the queue in the test's namespace %s: %v\n%s", first, err, out)
			}
		}
		if out, err := exec.Command(cliPath(t), "workflow", "start", "--address", addr, "--type", "Nothing", "--task-queue", "nowhere", "-w", "isolated-run").CombinedOutput(); err != nil {
			t.Fatalf("start a run: %v\n%s", err, out)
		}
	})
	t.Run("second", func(t *testing.T) {
		addr, _ := devServer(t)
		if e := e2eOf(t); e == nil || e.namespace == first || addr != shared {
			t.Fatalf("the second test is on %s in %+v, the first in %s: want the shared server, another namespace", addr, e, first)
		}
		out, err := exec.Command(cliPath(t), "workflow", "describe", "--address", addr, "-w", "isolated-run").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "not found") {
			t.Errorf("the first test's run is visible in the second's namespace (%v):\n%s", err, out)
		}
	})
}

// TestNoServerFailsInCI: without TEMPORAL_ADDRESS and without a CLI, an e2e test fails when CI is
// set, and is skipped, saying why, when it is not.
func TestNoServerFailsInCI(t *testing.T) {
	for _, ci := range []string{"1", ""} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTwoWorkersTwoQueues$", "-test.v")
		cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=", "TEMPORAL_CLI=", "PATH="+t.TempDir(), "CI="+ci)
		out, err := cmd.CombinedOutput()
		want := "--- SKIP"
		if ci != "" {
			want = "--- FAIL"
		}
		if !strings.Contains(string(out), want) || !strings.Contains(string(out), "no Temporal server for the end-to-end tests") {
			t.Errorf("CI=%q: want %s saying there is no server (%v):\n%s", ci, want, err, out)
		}
	}
}

// TestTwoWorkersTwoQueues: every step runs on the worker of its queue (each worker's --dir shows
// where), outputs flow from a step on one worker to a step on the other, and a step's retry runs.
func TestTwoWorkersTwoQueues(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	w1, w2 := t.TempDir(), t.TempDir()
	w1db, w2db := filepath.Join(t.TempDir(), "w1.db"), filepath.Join(t.TempDir(), "w2.db")
	startWorker(t, bin, addr, "playbook,db", w1, "--name", "w1", "--db", w1db)
	startWorker(t, bin, addr, "web", w2, "--name", "w2", "--db", w2db)
	pb := filepath.Join(t.TempDir(), "dist.yaml")
	os.WriteFile(pb, []byte(`version: 1
name: dist
steps:
  - id: dump
    runs_on: db
    run: echo "host=$PWD" >> "$PLAYBOOK_OUTPUT"
  - id: deploy
    needs: dump
    runs_on: web
    run: echo "from ${{ steps.dump.outputs.host }} on $PWD" > deployed
  - id: flaky
    needs: deploy
    retry: {attempts: 2, delay: 100ms}
    run: test -f marker || { touch marker; exit 3; }
`), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "runs.db")
	out, err := exec.CommandContext(ctx, bin, "run", "--temporal", addr, "--db", db, pb).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	// The submitting machine's database has the run as a local run records it.
	_, detail := onlyRun(t, db)
	if detail.Run.Status != run.StatusSucceeded || detail.Run.ExitCode != 0 {
		t.Fatalf("run recorded %s, exit %d: want succeeded", detail.Run.Status, detail.Run.ExitCode)
	}
	runs := []*run.Record{detail.Run}
	if f := detail.Step("flaky"); f == nil || f.Status != run.StatusSucceeded || f.Attempts != 2 || len(detail.Attempts["flaky"]) != 2 {
		t.Errorf("flaky recorded as %+v with %d attempts", f, len(detail.Attempts["flaky"]))
	}
	if d := detail.Step("dump"); d == nil || d.Outputs["host"] != w1 {
		t.Errorf("dump recorded as %+v", d)
	}
	// Which worker ran each attempt is recorded, with the workflow that ran the run.
	for step, want := range map[string]string{"dump": "w1", "deploy": "w2", "flaky": "w1"} {
		for _, a := range detail.Attempts[step] {
			if a.Worker != want {
				t.Errorf("%s attempt %d recorded on worker %q, want %q", step, a.Attempt, a.Worker, want)
			}
		}
		if s := detail.Step(step); s == nil || s.Worker != want {
			t.Errorf("%s recorded on worker %+v, want %q", step, s, want)
		}
	}
	if r := detail.Run; r.WorkflowID != "playbook-"+r.ID || r.WorkflowRunID == "" {
		t.Errorf("run recorded with workflow %q, run %q", r.WorkflowID, r.WorkflowRunID)
	}
	// Each worker's own database has the run, with the attempts that ran there and nothing else.
	for db, want := range map[string]string{w1db: "dump:1:succeeded:w1 flaky:2:succeeded:w1", w2db: "deploy:1:succeeded:w2"} {
		wst, err := store.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		wd, err := wst.RunDetail(ctx, runs[0].ID)
		wst.Close()
		if err != nil {
			t.Errorf("%s: %v", db, err)
			continue
		}
		var got []string
		for _, s := range wd.Steps {
			got = append(got, fmt.Sprintf("%s:%d:%s:%s", s.StepID, len(wd.Attempts[s.StepID]), s.Status, s.Worker))
		}
		if strings.Join(got, " ") != want || wd.Run.Status != run.StatusDetached || wd.Run.WorkflowID != detail.Run.WorkflowID {
			t.Errorf("%s: run %s (workflow %q) with steps %q, want detached with %q", filepath.Base(db), wd.Run.Status, wd.Run.WorkflowID, got, want)
		}
	}
	if !strings.Contains(string(out), " succeeded in ") {
		t.Fatalf("run output:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(w2, "deployed"))
	if err != nil || strings.TrimSpace(string(got)) != fmt.Sprintf("from %s on %s", w1, w2) {
		t.Errorf("deploy wrote %q (%v): want it on the web worker, with the db worker's output", got, err)
	}
	if _, err := os.Stat(filepath.Join(w1, "marker")); err != nil {
		t.Errorf("flaky did not run on the playbook queue's worker: %v", err)
	}
}

// TestCtrlCStopsTheRunEverywhere: Ctrl-C of `run` cancels the workflow: the running step's process
// on its worker is stopped, a cancelled() step runs, and the run exits 130.
func TestCtrlCStopsTheRunEverywhere(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	w1, w2 := t.TempDir(), t.TempDir()
	startWorker(t, bin, addr, "playbook", w1)
	startWorker(t, bin, addr, "web", w2)
	pb := filepath.Join(t.TempDir(), "cancel.yaml")
	os.WriteFile(pb, []byte(`version: 1
name: cancel
steps:
  - id: long
    runs_on: web
    run: echo $$ > long.pid; sleep 300
  - id: cleanup
    needs: long
    if: cancelled()
    run: echo cleaned > cleaned
`), 0o644)
	cmd := exec.Command(bin, "run", "--temporal", addr, "--db", filepath.Join(t.TempDir(), "runs.db"), pb)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(time.Minute); pid == 0; time.Sleep(20 * time.Millisecond) {
		if data, err := os.ReadFile(filepath.Join(w2, "long.pid")); err == nil && len(data) > 1 {
			fmt.Sscan(string(data), &pid)
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the long step never started:\n%s", out.String())
		}
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d (%v), want 130:\n%s", code, err, out.String())
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("the long step's process %d is still alive on its worker", pid)
	}
	if _, err := os.Stat(filepath.Join(w1, "cleaned")); err != nil {
		t.Errorf("the cancelled() step did not run: %v", err)
	}
}

// TestKilledSubmitterThenAttach: kill -9 of `run` mid-run does not stop the workflow; `attach` follows
// it to its end and completes the local record: every step and attempt, as an uninterrupted run's.
func TestKilledSubmitterThenAttach(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	w := t.TempDir()
	startWorker(t, bin, addr, "playbook", w)
	pb := filepath.Join(t.TempDir(), "long.yaml")
	gate := fmt.Sprintf("go-%d-%d", os.Getpid(), time.Now().UnixNano()) // no other test's step waits for it
	os.WriteFile(pb, []byte(`version: 1
name: long
steps:
  - id: first
    run: "true"
  - id: gate
    needs: first
    run: until [ -f `+gate+` ]; do sleep 0.05; done
  - id: last
    needs: gate
    run: echo "v=done" >> "$PLAYBOOK_OUTPUT"
`), 0o644)
	db := filepath.Join(t.TempDir(), "runs.db")
	cmd := exec.Command(bin, "run", "--temporal", addr, "--db", db, pb)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ids := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "Run" {
				ids <- f[1]
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var id string
	select {
	case id = <-ids:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("run never said which run it started")
	}
	// Once the gate step runs (the first step's records are written by then), kill the submitter.
	for deadline := time.Now().Add(time.Minute); !gateRunning(gate); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the gate step never ran")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()

	// Crash recovery (any command's Open) marks the run detached, not interrupted: it goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if st, err := store.Open(ctx, db); err != nil {
		t.Fatal(err)
	} else {
		rec := st.Recovered()
		if full, err := st.ResolveRun(ctx, id); err == nil {
			id = full // the view shows a prefix
		}
		r, rerr := st.Run(ctx, id)
		st.Close()
		if len(rec) != 1 || !rec[0].Detached || rerr != nil || r.Status != run.StatusDetached {
			t.Fatalf("after the submitter died: recovered %+v, run %+v (%v): want it detached", rec, r, rerr)
		}
	}
	os.WriteFile(filepath.Join(w, gate), nil, 0o644) // the run goes on without its submitter

	att, err := exec.CommandContext(ctx, bin, "attach", "--temporal", addr, "--db", db, id).CombinedOutput()
	if err != nil {
		t.Fatalf("attach: %v\n%s", err, att)
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	detail, err := st.RunDetail(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if detail.Run.Status != run.StatusSucceeded || detail.Run.ExitCode != 0 {
		t.Errorf("run recorded %s exit %d (%s), want succeeded", detail.Run.Status, detail.Run.ExitCode, detail.Run.Error)
	}
	for _, s := range []string{"first", "gate", "last"} {
		if r := detail.Step(s); r == nil || r.Status != run.StatusSucceeded || len(detail.Attempts[s]) != 1 {
			t.Errorf("%s recorded as %+v with %d attempts", s, r, len(detail.Attempts[s]))
		}
	}
	if r := detail.Step("last"); r == nil || r.Outputs["v"] != "done" {
		t.Errorf("last's outputs: %+v", r)
	}
}

// gateRunning reports whether the gate step's shell runs: its loop is the only process that waits for
// a file of that name.
func gateRunning(name string) bool {
	out, _ := exec.Command("pgrep", "-f", "until \\[ -f "+name+" \\]").Output()
	return len(bytes.TrimSpace(out)) > 0
}

// TestKilledWorkerIsLost: kill -9 of the worker running a step fails that attempt as worker_lost once
// its heartbeats stop, and the step's own retry runs it on the other worker of its queue.
func TestKilledWorkerIsLost(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	shared := t.TempDir()
	w1, w2 := filepath.Join(shared, "w1"), filepath.Join(shared, "w2")
	os.Mkdir(w1, 0o755)
	os.Mkdir(w2, 0o755)
	// The workers' databases share a folder, as two workers' of one machine do: each sweeps up what a
	// dead one left.
	dbs := t.TempDir()
	startWorker(t, bin, addr, "playbook", w1, "--db", filepath.Join(dbs, "w1.db"))
	startWorker(t, bin, addr, "playbook", w2, "--db", filepath.Join(dbs, "w2.db"))
	pb := filepath.Join(t.TempDir(), "lost.yaml")
	// The first attempt claims the job and says which worker runs it (its shell's parent), then hangs;
	// the second finds the claim and succeeds where it runs.
	os.WriteFile(pb, []byte(`version: 1
name: lost
steps:
  - id: job
    retry: {attempts: 2, delay: 100ms}
    run: |
      if [ -f ../claimed ]; then echo "ran=$PWD" >> "$PLAYBOOK_OUTPUT"; exit 0; fi
      echo $PWD > ../claimed
      sleep 300 & echo $! > ../sleeper
      echo $PPID > ../victim
      wait
`), 0o644)
	db := filepath.Join(t.TempDir(), "runs.db")
	cmd := exec.Command(bin, "run", "--temporal", addr, "--db", db, "--heartbeat-timeout", "2s", pb)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var victim int
	for deadline := time.Now().Add(time.Minute); victim == 0; time.Sleep(20 * time.Millisecond) {
		if data, err := os.ReadFile(filepath.Join(shared, "victim")); err == nil && len(data) > 1 {
			fmt.Sscan(string(data), &victim)
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the first attempt never started")
		}
	}
	claimed, _ := os.ReadFile(filepath.Join(shared, "claimed"))
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	_, detail := onlyRun(t, db)
	job, atts := detail.Step("job"), detail.Attempts["job"]
	if job == nil || job.Status != run.StatusSucceeded || len(atts) != 2 {
		t.Fatalf("job recorded as %+v with %d attempts", job, len(atts))
	}
	if !strings.HasPrefix(atts[0].Error, "worker_lost") {
		t.Errorf("attempt 1 failed with %q, want worker_lost", atts[0].Error)
	}
	if ran := job.Outputs["ran"]; ran == "" || ran == strings.TrimSpace(string(claimed)) {
		t.Errorf("attempt 2 ran in %q, attempt 1 in %q: want the other worker", ran, strings.TrimSpace(string(claimed)))
	}
	// What the lost attempt started in the background does not outlive its worker: the other worker
	// of the machine kills it.
	var sleeper int
	if data, err := os.ReadFile(filepath.Join(shared, "sleeper")); err != nil || func() bool { _, e := fmt.Sscan(string(data), &sleeper); return e != nil }() {
		t.Fatalf("the first attempt's background sleep: %q %v", data, err)
	}
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(sleeper, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(sleeper, syscall.SIGKILL)
			t.Fatal("the lost attempt's background process is still running 30 s after its worker died")
		}
	}
}

// TestSecretsNeverInClear: with a key, a secret param and what a step prints are encrypted before
// they reach Temporal: neither is in `temporal workflow show`'s JSON nor in the dev server's database
// file, while the local record has the step's output with the secret masked. Without a key, a
// playbook with a secret param is refused before anything is sent.
func TestSecretsNeverInClear(t *testing.T) {
	addr, serverDB := devServer(t)
	bin := buildBinary(t)
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte(strings.Repeat("5a", 32)), 0o600)
	startWorker(t, bin, addr, "playbook", t.TempDir(), "--key-file", key)
	pb := filepath.Join(t.TempDir(), "secret.yaml")
	os.WriteFile(pb, []byte(`version: 1
name: secret
params:
  token: {secret: true}
steps:
  - id: login
    run: echo "MARKER-7f3a1c"; echo "token $PLAYBOOK_PARAM_TOKEN"
`), 0o644)
	const secret = "hunter2-SECRET-91b"
	refused := exec.Command(bin, "run", "--temporal", addr, "--db", filepath.Join(t.TempDir(), "r.db"), "-p", "token="+secret, pb)
	if out, _ := refused.CombinedOutput(); refused.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), `param "token" is secret`) {
		t.Errorf("without a key: exit %d:\n%s", refused.ProcessState.ExitCode(), out)
	}
	db := filepath.Join(t.TempDir(), "runs.db")
	out, err := exec.Command(bin, "run", "--temporal", addr, "--db", db, "--key-file", key, "-p", "token="+secret, pb).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	ctx := context.Background()
	st, detail := onlyRun(t, db)
	runs := []*run.Record{detail.Run}
	login, err := st.StepOutput(ctx, runs[0].ID, "login")
	if err != nil || login == nil || !strings.Contains(string(login.Stdout.Data), "MARKER-7f3a1c") || !strings.Contains(string(login.Stdout.Data), "token ***") || strings.Contains(string(login.Stdout.Data), secret) {
		t.Errorf("the local record of login: %+v (%v)", login, err)
	}
	show, err := exec.Command(cliPath(t), "workflow", "show", "--address", addr, "-w", "playbook-"+runs[0].ID, "--output", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("workflow show: %v\n%s", err, show)
	}
	show = append(show, decodedPayloads(t, show)...)
	for _, what := range []string{secret, "MARKER-7f3a1c"} {
		if bytes.Contains(show, []byte(what)) {
			t.Errorf("%q is in clear in the workflow's history", what)
		}
		data, _ := os.ReadFile(serverDB)
		for _, f := range []string{serverDB, serverDB + "-wal"} {
			if b, _ := os.ReadFile(f); len(b) > 0 {
				data = append(data, b...)
			}
		}
		if bytes.Contains(data, []byte(what)) {
			t.Errorf("%q is in clear in the dev server's database file", what)
		}
	}
}

// cliPath is the Temporal CLI devServer used; on the shared server, one in the test's namespace.
func cliPath(t *testing.T) string {
	t.Helper()
	if e := e2eOf(t); e != nil && e.cli != "" {
		return e.cli
	}
	cli := temporalCLI(t)
	if cli == "" {
		t.Fatal("no Temporal CLI: set TEMPORAL_CLI, or put `temporal` in PATH")
	}
	return cli
}

// decodedPayloads is every payload's data in a `workflow show --output json`, decoded from base64,
// concatenated: the clear text of the history, where the codec did not encrypt.
func decodedPayloads(t *testing.T, show []byte) []byte {
	var doc any
	if err := json.Unmarshal(show, &doc); err != nil {
		t.Fatalf("workflow show printed no JSON: %v", err)
	}
	var out []byte
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "data" {
					if b, err := base64.StdEncoding.DecodeString(s); err == nil {
						out = append(out, b...)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

// onlyRun opens the submitter's database db (closed at the test's end) and reads the one run it
// holds, with its steps and attempts; anything else fails the test.
func onlyRun(t *testing.T, db string) (*store.Store, *store.RunDetail) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	runs, err := st.ListRuns(ctx, store.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs recorded in %s: %+v (%v), want one", db, runs, err)
	}
	d, err := st.RunDetail(ctx, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return st, d
}
