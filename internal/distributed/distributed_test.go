package distributed

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/playbookhq/playbook/internal/cli"
	pbtemporal "github.com/playbookhq/playbook/pkg/playbook/temporal"
	"github.com/playbookhq/playbook/pkg/run"
)

type nopRecorder struct{ run.Recorder }

func (nopRecorder) AttemptFinished(context.Context, *run.AttemptRecord) error { return nil }

// TestViewShowsOutputThenRetry: an attempt's recorded lines are shown when its record is written,
// stdout then stderr, the last one partial without its newline; the step_retrying event that came
// before the record waits for them, as a local run shows the lines before the retry.
func TestViewShowsOutputThenRetry(t *testing.T) {
	var got []string
	v := &view{Recorder: nopRecorder{}, held: map[string]run.Event{}, obs: run.ObserverFunc(func(e run.Event) {
		s := string(e.Type)
		if e.Type == run.EventStepOutput {
			s = fmt.Sprintf("%s %s %q partial=%v", e.Type, e.Stream, e.Line, e.Partial)
		}
		got = append(got, s)
	})}
	v.Observe(run.Event{Type: run.EventStepStarted, StepID: "a", Attempt: 1})
	v.Observe(run.Event{Type: run.EventStepRetrying, StepID: "a", Attempt: 1})
	if err := v.AttemptFinished(context.Background(), &run.AttemptRecord{StepID: "a", Attempt: 1,
		Stdout: run.Output{Data: []byte("one\ntwo\n")}, Stderr: run.Output{Data: []byte("three")}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"step_started", `step_output stdout "one" partial=false`, `step_output stdout "two" partial=false`,
		`step_output stderr "three" partial=true`, "step_retrying"}
	if !slices.Equal(got, want) {
		t.Errorf("events\n%q\nwant\n%q", got, want)
	}
}

// fakeClient is the part of a Temporal client that follow uses.
type fakeClient struct {
	client.Client
	done      chan struct{}
	cancelled chan string
	signalled chan string
}

type fakeRun struct {
	client.WorkflowRun
	done <-chan struct{}
}

func (r fakeRun) Get(_ context.Context, v any) error {
	<-r.done
	v.(*pbtemporal.RunOutput).Run = run.Record{ID: "x", Status: run.StatusCancelled, ExitCode: run.ExitInterrupted}
	return nil
}

func (c *fakeClient) GetWorkflow(_ context.Context, id, runID string) client.WorkflowRun {
	return fakeRun{done: c.done}
}

func (c *fakeClient) CancelWorkflow(_ context.Context, id, runID string) error {
	c.cancelled <- id
	return nil
}

func (c *fakeClient) SignalWorkflow(_ context.Context, id, runID, name string, _ any) error {
	c.signalled <- id + " " + name
	return nil
}

// TestFollowCancelsThenKills: the end of the command's context cancels the workflow (the first
// Ctrl-C), kill sends it the kill signal (the second); the run's outcome comes from the workflow.
func TestFollowCancelsThenKills(t *testing.T) {
	c := &fakeClient{done: make(chan struct{}), cancelled: make(chan string, 1), signalled: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	kill := make(chan struct{})
	type result struct {
		st  run.Status
		err error
	}
	res := make(chan result, 1)
	go func() {
		sum, err := follow(ctx, c, "x", "playbook-x", kill)
		if err != nil {
			res <- result{err: err}
			return
		}
		res <- result{st: sum.Run.Status}
	}()
	cancel()
	if id := <-c.cancelled; id != "playbook-x" {
		t.Errorf("cancelled %q", id)
	}
	close(kill)
	if s := <-c.signalled; s != "playbook-x "+pbtemporal.KillSignal {
		t.Errorf("signalled %q", s)
	}
	close(c.done)
	if r := <-res; r.err != nil || r.st != run.StatusCancelled {
		t.Errorf("follow: %+v", r)
	}
}

// TestConnectionFromEnv: blank connection flags come from the environment, but for run, where only
// --temporal makes a run distributed: $PLAYBOOK_TEMPORAL never does.
func TestConnectionFromEnv(t *testing.T) {
	env := map[string]string{"PLAYBOOK_TEMPORAL": "env:1", "PLAYBOOK_TEMPORAL_KEY_FILE": "/k", "PLAYBOOK_TEMPORAL_NAMESPACE": "ns"}
	getenv := func(k string) string { return env[k] }
	if c := connection(cli.TemporalOptions{}, getenv, true); c.Address != "env:1" || c.KeyFile != "/k" || c.Namespace != "ns" {
		t.Errorf("worker, attach: %+v", c)
	}
	if c := connection(cli.TemporalOptions{Address: "flag:1", Namespace: "n2"}, getenv, false); c.Address != "flag:1" || c.KeyFile != "/k" || c.Namespace != "n2" {
		t.Errorf("run: %+v", c)
	}
	if c := connection(cli.TemporalOptions{}, getenv, false); c.Address != "" {
		t.Errorf("run without --temporal: %+v", c)
	}
}
