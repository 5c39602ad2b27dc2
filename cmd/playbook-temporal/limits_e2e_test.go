package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestGiBOfOutputOnTemporal: a step that prints 1 GiB succeeds on a real worker, and the submitter's
// database records its head and tail, with the count of every byte.
func TestGiBOfOutputOnTemporal(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	startWorker(t, bin, addr, "playbook", t.TempDir())
	pb := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(pb, []byte(`version: 1
name: big
steps:
  - id: flood
    run: "echo HEAD; head -c 1073741824 /dev/zero | tr '\\0' x; echo; echo TAIL"
  - {id: after, needs: flood, run: "true"}
`), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "runs.db")
	out, err := exec.CommandContext(ctx, bin, "run", "--temporal", addr, "--db", db, pb).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	st, detail := onlyRun(t, db)
	if detail.Run.Status != run.StatusSucceeded {
		t.Fatalf("run recorded %s: want succeeded", detail.Run.Status)
	}
	flood, err := st.StepOutput(ctx, detail.Run.ID, "flood")
	if err != nil || flood == nil {
		t.Fatalf("flood's output: %v", err)
	}
	const total = int64(1<<30 + len("HEAD\n\nTAIL\n"))
	o := flood.Stdout
	if o.Bytes != total || !o.Truncated || len(o.Data) > 256<<10+64 || !bytes.HasPrefix(o.Data, []byte("HEAD\nxxx")) ||
		!bytes.HasSuffix(o.Data, []byte("xxx\nTAIL\n")) || !bytes.Contains(o.Data, []byte(" bytes omitted ...]\n")) {
		t.Errorf("flood's stdout recorded as %d bytes of %d (truncated %v): %.40q...%.40q", len(o.Data), o.Bytes, o.Truncated,
			o.Data, o.Data[max(0, len(o.Data)-40):])
	}
	if a := detail.Attempts["flood"]; len(a) != 1 || a[0].Status != run.StatusSucceeded || a[0].Stdout.Bytes != total {
		t.Errorf("flood's attempts: %+v", a)
	}
}

// TestOverLimitRefusedAtSubmit: a playbook whose output_limit a run on Temporal cannot carry is
// refused before anything is sent, exit 2, with the file and the limit in the message.
func TestOverLimitRefusedAtSubmit(t *testing.T) {
	bin := buildBinary(t)
	pb := filepath.Join(t.TempDir(), "limit.yaml")
	os.WriteFile(pb, []byte("version: 1\nname: limit\noutput_limit: 1MiB\nsteps:\n  - {id: a, run: \"true\"}\n"), 0o644)
	cmd := exec.Command(bin, "run", "--temporal", "127.0.0.1:1", "--db", filepath.Join(t.TempDir(), "r.db"), pb)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != run.ExitUsage || !strings.Contains(string(out), pb+": output_limit is 1048576 bytes") ||
		!strings.Contains(string(out), "at most 262144 bytes (256KiB)") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(pb), "r.db")); err == nil {
		t.Errorf("the refused run was recorded")
	}
}

// Test5000Steps: a playbook of 5,000 steps (50 chains of 100) runs to success on real workers, every
// step recorded once in the submitter's database, over several workflow runs (continue-as-new).
func Test5000Steps(t *testing.T) {
	t.Parallel() // minutes, mostly waiting on the dev server: side by side
	addr, _ := devServer(t)
	bin := buildBinary(t)
	for i := 0; i < 2; i++ {
		startWorker(t, bin, addr, "playbook", t.TempDir(), "--max-parallel", "32")
	}
	const steps, chains = 5000, 50
	var src strings.Builder
	src.WriteString("version: 1\nname: many\nsteps:\n")
	for i := 0; i < steps; i++ {
		if i < chains {
			fmt.Fprintf(&src, "  - {id: s%d, run: \"true\"}\n", i)
		} else {
			fmt.Fprintf(&src, "  - {id: s%d, needs: s%d, run: \"true\"}\n", i, i-chains)
		}
	}
	pb := filepath.Join(t.TempDir(), "many.yaml")
	os.WriteFile(pb, []byte(src.String()), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	db := filepath.Join(t.TempDir(), "runs.db")
	began := time.Now()
	out, err := exec.CommandContext(ctx, bin, "run", "--temporal", addr, "--db", db, pb).CombinedOutput()
	took := time.Since(began)
	if err != nil {
		t.Fatalf("run: %v\n%.2000s", err, out)
	}
	_, detail := onlyRun(t, db)
	if detail.Run.Status != run.StatusSucceeded {
		t.Fatalf("run recorded %s: want succeeded", detail.Run.Status)
	}
	succeeded := 0
	for _, s := range detail.Steps {
		if s.Status == run.StatusSucceeded && s.Attempts == 1 && len(detail.Attempts[s.StepID]) == 1 {
			succeeded++
		}
	}
	if len(detail.Steps) != steps || succeeded != steps {
		t.Errorf("%d steps recorded, %d succeeded once, want %d", len(detail.Steps), succeeded, steps)
	}
	count, err := exec.Command(cliPath(t), "workflow", "count", "--address", addr, "--query", "WorkflowId='playbook-"+detail.Run.ID+"'").CombinedOutput()
	if err != nil {
		t.Fatalf("workflow count: %v\n%s", err, count)
	}
	m := regexp.MustCompile(`Total: (\d+)`).FindSubmatch(count)
	if m == nil || string(m[1]) == "1" {
		t.Fatalf("want the run to continue as new; workflow count says:\n%s", count)
	}
	t.Logf("5,000 steps in %s over %s workflow runs", took.Round(time.Second), m[1])
}

// TestCtrlCAfterContinueAsNew: Ctrl-C of `run` stops a run that has continued as new (its first
// workflow run is closed by then): the running step stops, the cancelled() step runs, exit 130.
func TestCtrlCAfterContinueAsNew(t *testing.T) {
	t.Parallel() // minutes, mostly waiting on the dev server: side by side
	addr, _ := devServer(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	startWorker(t, bin, addr, "playbook", dir, "--max-parallel", "32")
	// Enough steps for Temporal to suggest continuing as new (at 4 Ki events by default), then one
	// that waits for the Ctrl-C.
	const steps, chains = 1500, 50
	var src strings.Builder
	src.WriteString("version: 1\nname: ctrlc\nsteps:\n")
	var last []string
	for i := 0; i < steps; i++ {
		if i < chains {
			fmt.Fprintf(&src, "  - {id: s%d, run: \"true\"}\n", i)
		} else {
			fmt.Fprintf(&src, "  - {id: s%d, needs: s%d, run: \"true\"}\n", i, i-chains)
		}
		if i >= steps-chains {
			last = append(last, fmt.Sprintf("s%d", i))
		}
	}
	fmt.Fprintf(&src, "  - {id: wait, needs: [%s], run: \"touch started; exec sleep 600\"}\n", strings.Join(last, ", "))
	src.WriteString("  - {id: cleanup, needs: wait, if: cancelled(), run: \"touch cleaned\"}\n")
	pb := filepath.Join(t.TempDir(), "ctrlc.yaml")
	os.WriteFile(pb, []byte(src.String()), 0o644)
	db := filepath.Join(t.TempDir(), "runs.db")
	cmd := exec.Command(bin, "run", "--temporal", addr, "--db", db, pb)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for {
		if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("run ended before its last step started:\n%.2000s", out.String())
		case <-time.After(100 * time.Millisecond): // polling for the file the step creates
		}
	}
	m := regexp.MustCompile(`Run (\S+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no run id in:\n%s", out.String())
	}
	count, _ := exec.Command(cliPath(t), "workflow", "count", "--address", addr, "--query", "WorkflowId='playbook-"+m[1]+"'").CombinedOutput()
	if n := regexp.MustCompile(`Total: (\d+)`).FindSubmatch(count); n == nil || string(n[1]) == "1" {
		t.Fatalf("the run did not continue as new before its last step, so this tests nothing:\n%s", count)
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("run did not end after Ctrl-C:\n%.2000s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130:\n%.2000s", code, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "cleaned")); err != nil {
		t.Errorf("the cancelled() step did not run: %v", err)
	}
	// Each workflow run of the chain, its carried state and the cancellation among them, replays.
	newReplayer(t, addr, testNamespace(t), "").check(t, db)
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
