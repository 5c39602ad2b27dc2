package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestDrainingWorkerTakesNoNewStep: SIGTERM to a worker running a step lets that step finish and be
// recorded, takes no new step (the next one waits for, and runs on, another worker of the queue), and
// the worker then exits 0.
func TestDrainingWorkerTakesNoNewStep(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	gate := fmt.Sprintf("drain-%d-%d", os.Getpid(), time.Now().UnixNano())
	pb := filepath.Join(t.TempDir(), "drain.yaml")
	os.WriteFile(pb, []byte(`version: 1
name: drain
steps:
  - id: long
    run: until [ -f `+gate+` ]; do sleep 0.05; done; echo finished
  - id: next
    needs: long
    run: echo "next ran"
`), 0o644)

	w1 := exec.Command(bin, "worker", "--temporal", addr, "--queue", "playbook", "--dir", dir, "--name", "w1",
		"--db", filepath.Join(t.TempDir(), "w1.db"))
	stderr, _ := w1.StderrPipe()
	if err := w1.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w1.Process.Kill(); w1.Wait() })
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "serving queues") {
				close(serving)
				said = true
			}
		}
	}()
	select {
	case <-serving:
	case <-time.After(30 * time.Second):
		t.Fatal("worker w1 did not start")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "runs.db")
	submit := exec.CommandContext(ctx, bin, "run", "--temporal", addr, "--db", db, pb)
	var out strings.Builder
	submit.Stdout, submit.Stderr = &out, &out
	if err := submit.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !gateRunning(gate); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the long step never ran:\n%s", out.String())
		}
	}
	// The worker is told to stop while its step runs; it must not take the next step.
	w1.Process.Signal(syscall.SIGTERM)
	os.WriteFile(filepath.Join(dir, gate), nil, 0o644)
	exited := make(chan error, 1)
	go func() { exited <- w1.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the draining worker exited with %v, want 0", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the draining worker did not exit after its step finished")
	}
	startWorker(t, bin, addr, "playbook", dir, "--name", "w2", "--db", filepath.Join(t.TempDir(), "w2.db"))
	if err := submit.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	_, d := onlyRun(t, db)
	for step, want := range map[string]string{"long": "succeeded w1", "next": "succeeded w2"} {
		if s := d.Step(step); s == nil || string(s.Status)+" "+s.Worker != want || len(d.Attempts[step]) != 1 {
			t.Errorf("%s recorded as %+v, want %s in one attempt", step, s, want)
		}
	}
	if d.Run.Status != run.StatusSucceeded {
		t.Errorf("run %s: %s", d.Run.Status, d.Run.Error)
	}
}
