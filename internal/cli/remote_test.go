package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/playbook/local"
	"github.com/playbookhq/playbook/pkg/run"
)

// fakeRemote plays a distributed run: it writes nothing, and shows the events a run on Temporal
// shows, with the worker of each step.
type fakeRemote struct {
	runs    []RemoteRun
	attachs []RemoteAttach
}

func (f *fakeRemote) Worker(context.Context, RemoteWorker) error { return errors.New("no worker here") }

func (f *fakeRemote) Run(_ context.Context, r RemoteRun) (*local.Summary, error) {
	f.runs = append(f.runs, r)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := run.Record{ID: "0123456789abcdef0123456789abcdef", Playbook: "p", File: r.Playbook.File, StepIDs: []string{"a"},
		Status: run.StatusRunning, StartedAt: t0}
	r.Observer.Observe(run.Event{Type: run.EventRunStarted, Time: t0, Run: &rec})
	r.Observer.Observe(run.Event{Type: run.EventStepStarted, Time: t0, StepID: "a", Attempt: 1, Command: "echo hi"})
	r.Observer.Observe(run.Event{Type: run.EventStepOutput, Time: t0, StepID: "a", Attempt: 1, Stream: "stdout", Line: []byte("hi")})
	step := &run.StepRecord{RunID: rec.ID, StepID: "a", Status: run.StatusSucceeded, Attempts: 1, StartedAt: t0,
		FinishedAt: t0.Add(time.Second), Worker: "w1"}
	r.Observer.Observe(run.Event{Type: run.EventStepFinished, Time: t0, StepID: "a", Step: step})
	rec.Status, rec.FinishedAt = run.StatusSucceeded, t0.Add(time.Second)
	r.Observer.Observe(run.Event{Type: run.EventRunFinished, Time: t0, Run: &rec})
	return &local.Summary{Run: rec, Steps: []*run.StepRecord{step}}, nil
}

func (f *fakeRemote) Attach(_ context.Context, a RemoteAttach) (*local.Summary, error) {
	f.attachs = append(f.attachs, a)
	return nil, errors.New("no attach here")
}

func runRemoteCLI(t *testing.T, rem Remote, exec func(string, []string) error, env []string, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	sys := &System{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(k string) string { return vars[k] },
		Remote: rem, Exec: exec}
	code := Main(args, sys)
	return cliResult{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

func remotePlaybook(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nname: p\nparams:\n  n: {type: int}\nsteps:\n  - id: a\n    run: echo hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestRunTemporalShowsTheRemoteRun: run --temporal gives the Remote the playbook as loaded here, and
// shows its events as a local run's, with the worker of each step in the view, the summary and JSON.
func TestRunTemporalShowsTheRemoteRun(t *testing.T) {
	file := remotePlaybook(t)
	rem := &fakeRemote{}
	db := filepath.Join(t.TempDir(), "pb.db")
	r := runRemoteCLI(t, rem, nil, nil, "run", "--temporal", "h:7233", "--db", db, "-p", "n=3", "--max-parallel", "2",
		"--heartbeat-timeout", "5s", "--key-file", "k", file)
	if r.Code != 0 || len(rem.runs) != 1 {
		t.Fatalf("exit %d, %d remote runs:\n%s%s", r.Code, len(rem.runs), r.Stdout, r.Stderr)
	}
	got := rem.runs[0]
	if got.Temporal.Address != "h:7233" || got.Temporal.KeyFile != "k" || got.Params["n"] != "3" || got.MaxParallel != 2 ||
		got.HeartbeatTimeout != 5*time.Second || !bytes.Contains(got.Source, []byte("name: p")) || got.Store == nil ||
		len(got.FingerprintKey) == 0 {
		t.Errorf("the remote got %+v", got)
	}
	for _, want := range []string{
		`(?m)^\[a\] started: echo hi$`,
		`(?m)^\[a\] hi$`,
		`(?m)^\[a\] succeeded in 1.0s on w1$`,
		`(?m)^STEP +STATUS +EXIT +DURATION +ATTEMPTS +WORKER +NOTE$`,
		`(?m)^a +succeeded +0 +1.0s +1 +w1 *$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.Stdout) {
			t.Errorf("no match for %s in:\n%s", want, r.Stdout)
		}
	}
	r = runRemoteCLI(t, rem, nil, nil, "run", "--temporal", "h:7233", "--db", db, "-p", "n=3", "--output", "json", file)
	if r.Code != 0 || !strings.Contains(r.Stdout, `"event":"step_finished"`) || !strings.Contains(r.Stdout, `"worker":"w1"`) {
		t.Errorf("--output json: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// Only the flag makes a run distributed; a local run's table has no worker column.
	r = runRemoteCLI(t, rem, nil, []string{"PLAYBOOK_TEMPORAL=h:7233"}, "run", "--db", db, "-p", "n=3", file)
	if r.Code != 0 || len(rem.runs) != 2 || strings.Contains(r.Stdout, "WORKER") || !strings.Contains(r.Stdout, "[a] hi") {
		t.Errorf("a local run with $PLAYBOOK_TEMPORAL: exit %d, %d remote runs:\n%s%s", r.Code, len(rem.runs), r.Stdout, r.Stderr)
	}
}

// TestRunTemporalRefusesLocalOnlyFlags: what only a local run can do is refused with --temporal
// (exit 2), before anything is sent.
func TestRunTemporalRefusesLocalOnlyFlags(t *testing.T) {
	file := remotePlaybook(t)
	rem := &fakeRemote{}
	for _, flag := range [][]string{{"--log-dir", t.TempDir()}, {"--output-limit", "1KiB"}} {
		args := append([]string{"run", "--temporal", "h:1", "--db", filepath.Join(t.TempDir(), "pb.db"), "-p", "n=1", file}, flag...)
		r := runRemoteCLI(t, rem, nil, nil, args...)
		if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, flag[0]+" does not apply with --temporal") {
			t.Errorf("%v: exit %d:\n%s", flag, r.Code, r.Stderr)
		}
	}
	if len(rem.runs) != 0 {
		t.Errorf("a refused run was sent")
	}
}

// TestHandoffWithoutRemote: without a Remote (playbook), worker, run --temporal and attach hand the
// whole command line to playbook-temporal, before anything else is done; other commands never do.
func TestHandoffWithoutRemote(t *testing.T) {
	file := remotePlaybook(t)
	var got [][]string
	exec := func(name string, args []string) error {
		got = append(got, append([]string{name}, args...))
		return errors.New("exec failed")
	}
	for _, args := range [][]string{
		{"run", "--temporal", "h:1", "-p", "n=1", "missing.yaml"},
		{"worker", "--db", "x.db", "--queue", "a,b"},
		{"attach", "abc"},
	} {
		got = nil
		r := runRemoteCLI(t, nil, exec, nil, args...)
		if want := append([]string{PluginName}, args...); len(got) != 1 || !slices.Equal(got[0], want) || r.Code != run.ExitFailed ||
			!strings.Contains(r.Stderr, "exec failed") {
			t.Errorf("%v: exec %v, exit %d, stderr %q", args, got, r.Code, r.Stderr)
		}
	}
	got = nil
	r := runRemoteCLI(t, nil, func(string, []string) error { return errNoPlugin }, nil, "attach", "abc")
	if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, "go install ./cmd/...") {
		t.Errorf("without the plugin: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = runRemoteCLI(t, nil, exec, nil, "run", "--temporal", "h:1", "--dry-run", "-p", "n=1", file)
	if r.Code != 0 || len(got) != 0 || !strings.Contains(r.Stdout, "Plan for p") {
		t.Errorf("--dry-run --temporal: exec %v, exit %d:\n%s%s", got, r.Code, r.Stdout, r.Stderr)
	}
}

// TestAttachShowsWhatIsRecorded: attach adopts the run, shows its start and the steps already recorded,
// then follows it with the Remote.
func TestAttachShowsWhatIsRecorded(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "pb.db")
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC()
	id := "00112233445566778899aabbccddeeff"
	rec := &run.Record{ID: id, Playbook: "p", File: "/p.yaml", StepIDs: []string{"first", "second"}, Status: run.StatusRunning,
		StartedAt: t0, WorkflowID: "playbook-" + id, WorkflowRunID: "r1"}
	err = errors.Join(st.RunStarted(ctx, rec),
		st.AttemptStarted(ctx, &run.AttemptStart{RunID: id, StepID: "first", Attempt: 1, StartedAt: t0, Command: "true"}),
		st.AttemptFinished(ctx, &run.AttemptRecord{RunID: id, StepID: "first", Attempt: 1, Status: run.StatusSucceeded, StartedAt: t0, FinishedAt: t0, Worker: "w1"}),
		st.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: "first", Status: run.StatusSucceeded, Attempts: 1, StartedAt: t0, FinishedAt: t0, Worker: "w1"}),
		st.Close())
	if err != nil {
		t.Fatal(err)
	}
	rem := &fakeRemote{}
	r := runRemoteCLI(t, rem, nil, nil, "attach", "--db", db, "--temporal", "h:1", id[:8])
	if len(rem.attachs) != 1 || rem.attachs[0].RunID != id || rem.attachs[0].WorkflowID != "playbook-"+id {
		t.Fatalf("attach: %+v, exit %d:\n%s%s", rem.attachs, r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{`(?m)^Run 001122334455 p \(/p.yaml\), 2 steps$`, `(?m)^\[first\] succeeded in <1ms on w1$`} {
		if !regexp.MustCompile(want).MatchString(r.Stdout) {
			t.Errorf("no match for %s in:\n%s", want, r.Stdout)
		}
	}
	if r.Code != run.ExitFailed || !strings.Contains(r.Stderr, "no attach here") {
		t.Errorf("the Remote's error: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// TestRetryOfARunOnTemporal: a run on Temporal is retried only there: without --temporal the retry
// is refused (it would run every step on this machine); with it the Remote gets the retried run and
// its steps to reuse.
func TestRetryOfARunOnTemporal(t *testing.T) {
	file := remotePlaybook(t)
	pb, err := playbook.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "pb.db")
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	const id = "0123456789abcdef0123456789abcdef"
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := &run.Record{ID: id, Playbook: "p", File: file, FileSHA256: pb.SHA256, Params: `{"n":3}`, StepIDs: []string{"a"},
		StartedAt: t0, WorkflowID: "playbook-" + id}
	if err := st.RunStarted(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := st.StepFinished(ctx, &run.StepRecord{RunID: id, StepID: "a", Status: run.StatusFailed, ExitCode: 1, Attempts: 1,
		StartedAt: t0, FinishedAt: t0, Worker: "w1"}); err != nil {
		t.Fatal(err)
	}
	rec.Status, rec.ExitCode, rec.FinishedAt = run.StatusFailed, 1, t0.Add(time.Second)
	if err := st.RunFinished(ctx, rec); err != nil {
		t.Fatal(err)
	}
	st.Close()

	rem := &fakeRemote{}
	r := runRemoteCLI(t, rem, nil, nil, "retry", "--db", db, id[:8])
	if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, "ran on Temporal (workflow playbook-"+id+"): retry it there with --temporal") || len(rem.runs) != 0 {
		t.Fatalf("retry without --temporal: exit %d, %q, %d remote runs", r.Code, r.Stderr, len(rem.runs))
	}
	r = runRemoteCLI(t, rem, nil, nil, "retry", "--db", db, "--temporal", "h:7233", id[:8])
	if r.Code != 0 || len(rem.runs) != 1 {
		t.Fatalf("retry --temporal: exit %d, %s%s, %d remote runs", r.Code, r.Stdout, r.Stderr, len(rem.runs))
	}
	got := rem.runs[0]
	if got.RetryOf != id || got.Reuse["a"] == nil || got.Reuse["a"].Status != run.StatusFailed || got.Params["n"] != "3" {
		t.Errorf("the Remote got retry of %q, reuse %+v, params %v", got.RetryOf, got.Reuse, got.Params)
	}
}
