// Package distributed carries out the commands of the command line that need Temporal's SDK: it is
// the cli.Remote of `playbook-temporal`. `worker` serves task queues with the process engine; `run
// --temporal` submits a playbook as the Run workflow and follows it; `attach` follows a run another
// process submitted. Following a run is serving its record queue: each batch of records is written to
// this machine's database and shown to the command's view (pbtemporal.Records).
package distributed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/playbookhq/playbook/internal/cli"
	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook/local"
	pbtemporal "github.com/playbookhq/playbook/pkg/playbook/temporal"
	"github.com/playbookhq/playbook/pkg/run"
)

// WorkflowQueue is the task queue of the run workflows themselves, which every worker serves: a run
// goes on when the machine that submitted it is gone.
const WorkflowQueue = "playbook-workflows"

// sweepEvery is how often a worker looks for processes that a dead worker of its machine left.
const sweepEvery = 5 * time.Second

// workerStopTimeout is how long a draining worker lets its running steps finish before they are
// stopped.
const workerStopTimeout = time.Minute

// Remote is the cli.Remote of playbook-temporal.
type Remote struct{}

var _ cli.Remote = Remote{}

func connection(t cli.TemporalOptions, getenv func(string) string, fromEnv bool) pbtemporal.Connection {
	c := pbtemporal.Connection{Address: t.Address, Namespace: t.Namespace, KeyFile: t.KeyFile, TLSCAFile: t.TLSCA,
		TLSCertFile: t.TLSCert, TLSKeyFile: t.TLSKey, TLSServerName: t.TLSServerName, APIKeyFile: t.APIKeyFile}
	addr := c.Address
	c.FillFromEnv(getenv)
	if !fromEnv {
		c.Address = addr
	}
	return c
}

// dial connects to Temporal with the SDK's messages going to logTo, warnings and errors only: its
// default logger writes everything to stdout, where --output json must have nothing but events.
func dial(cn pbtemporal.Connection, logTo io.Writer) (client.Client, error) {
	opts, err := cn.Options()
	if err != nil {
		return nil, err
	}
	if logTo == nil {
		logTo = io.Discard
	}
	opts.Logger = log.NewStructuredLogger(slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w (is the server up, and --temporal or PLAYBOOK_TEMPORAL right?)", cn.Address, err)
	}
	return c, nil
}

// Worker serves w's queues, and the run workflows, until ctx ends; then it drains.
func (Remote) Worker(ctx context.Context, w cli.RemoteWorker) error {
	cn := connection(w.Temporal, w.Getenv, true)
	cn.Identity = w.Name
	c, err := dial(cn, w.Log)
	if err != nil {
		return err
	}
	defer c.Close()
	eng, err := engine.New(engine.Config{MaxConcurrent: w.MaxParallel, DefaultTimeout: engine.NoTimeout, MaxTimeout: engine.NoTimeout})
	if err != nil {
		return fmt.Errorf("start the process engine: %w", err)
	}
	defer eng.Close()
	tmp, err := os.MkdirTemp("", "playbook-worker-")
	if err != nil {
		return fmt.Errorf("the worker's folder for step files: %w", err)
	}
	defer os.RemoveAll(tmp)
	// Processes a dead worker of this machine left are killed now and every few seconds; this worker's
	// own are found by its instance id should it die in turn.
	instances := filepath.Join(filepath.Dir(w.Store.Path()), "workers")
	inst, err := pbtemporal.NewInstance(instances)
	if err != nil {
		return err
	}
	defer inst.Close()
	sweepDone := make(chan struct{})
	defer func() { <-sweepDone }()
	go func() {
		defer close(sweepDone)
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		for {
			if n, _ := pbtemporal.Sweep(instances); n > 0 {
				fmt.Fprintf(w.Log, "playbook worker %s: killed %d process group(s) left by a worker of this machine that died\n", w.Name, n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	steps := &pbtemporal.Steps{Engine: eng, Dir: w.Dir, TempDir: tmp, Name: w.Name, Recorder: w.Store, Instance: inst.ID,
		Log:    func(format string, args ...any) { fmt.Fprintf(w.Log, format+"\n", args...) },
		Killed: func(wid string) bool { return killed(c, wid) }}

	wf := worker.New(c, WorkflowQueue, worker.Options{DeadlockDetectionTimeout: pbtemporal.DeadlockDetectionTimeout})
	wf.RegisterWorkflowWithOptions(pbtemporal.Run, workflow.RegisterOptions{Name: pbtemporal.WorkflowName})
	workers := []worker.Worker{wf}
	for _, q := range w.Queues {
		sw := worker.New(c, q, worker.Options{MaxConcurrentActivityExecutionSize: w.MaxParallel, WorkerStopTimeout: workerStopTimeout,
			MaxHeartbeatThrottleInterval: pbtemporal.HeartbeatThrottle})
		sw.RegisterActivityWithOptions(steps.Run, activity.RegisterOptions{Name: pbtemporal.StepActivityName})
		workers = append(workers, sw)
	}
	for i, x := range workers {
		if err := x.Start(); err != nil {
			for _, started := range workers[:i] {
				started.Stop()
			}
			return fmt.Errorf("start the worker on %s: %w", cn.Address, err)
		}
	}
	fmt.Fprintf(w.Log, "playbook worker %s: serving queues %s on %s, %d steps at once\n", w.Name, strings.Join(w.Queues, ","),
		cn.Address, w.MaxParallel)
	<-ctx.Done()
	fmt.Fprintf(w.Log, "playbook worker %s: draining: no new step; running steps finish, or are stopped after %s\n", w.Name, workerStopTimeout)
	// The step queues first: while their steps finish, this worker still carries workflows.
	for i := len(workers) - 1; i >= 0; i-- {
		workers[i].Stop()
	}
	return nil
}

// Run submits r's playbook as a workflow and follows it to its end.
func (Remote) Run(ctx context.Context, r cli.RemoteRun) (*local.Summary, error) {
	cn := connection(r.Temporal, r.Getenv, false)
	if cn.KeyFile == "" {
		for _, p := range r.Playbook.Params {
			if p.Secret {
				return nil, &cli.ExitError{Code: run.ExitUsage, Err: fmt.Errorf("%s: param %q is secret, and a distributed run sends it to the workers: give --key-file (or set PLAYBOOK_TEMPORAL_KEY_FILE) so that it is encrypted before it reaches Temporal", r.Playbook.File, p.Name)}
			}
		}
	}
	in := pbtemporal.RunInput{File: r.Playbook.File, Source: r.Source, Scripts: r.Scripts, Params: r.Params,
		MaxParallel: r.MaxParallel, FingerprintKey: r.FingerprintKey, HeartbeatTimeout: r.HeartbeatTimeout,
		User: r.User, Host: r.Host, RetryOf: r.RetryOf, Reuse: r.Reuse, Skip: r.Skip}
	if err := pbtemporal.CheckLimits(r.Playbook, &in); err != nil {
		return nil, &cli.ExitError{Code: run.ExitUsage, Err: err}
	}
	c, err := dial(cn, r.Log)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	id := local.NewRunID()
	in.RunID = id
	// The run's records come back on a queue of its own, served here: should this process die, they
	// wait in Temporal for an attach.
	stop, err := serveRecords(c, id, r.Store, r.Observer)
	if err != nil {
		return nil, err
	}
	defer stop()
	wr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflowID(id), TaskQueue: WorkflowQueue},
		pbtemporal.WorkflowName, in)
	if err != nil {
		return nil, fmt.Errorf("start the run on Temporal at %s: %w", cn.Address, err)
	}
	return follow(ctx, c, id, wr.GetID(), r.Kill)
}

// killed asks run workflow wid whether it is being killed; no answer within a few seconds is no.
func killed(c client.Client, wid string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(ctx, wid, "", pbtemporal.KilledQuery)
	var k bool
	return err == nil && v.Get(&k) == nil && k
}

// workflowID is the id of run id's workflow.
func workflowID(runID string) string { return "playbook-" + runID }

// Attach follows a run another process submitted, and writes the records it had not taken.
func (Remote) Attach(ctx context.Context, a cli.RemoteAttach) (*local.Summary, error) {
	c, err := dial(connection(a.Temporal, a.Getenv, true), a.Log)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop, err := serveRecords(c, a.RunID, a.Store, a.Observer)
	if err != nil {
		return nil, err
	}
	defer stop()
	return follow(ctx, c, a.RunID, a.WorkflowID, a.Kill)
}

// follow waits for the end of workflow wid (following it through continue-as-new). The end of ctx
// cancels it, the graceful stop whose always() and cancelled() steps still run; kill sends it
// KillSignal, the forced stop.
func follow(ctx context.Context, c client.Client, id, wid string, kill <-chan struct{}) (*local.Summary, error) {
	var res pbtemporal.RunOutput
	done := make(chan error, 1)
	go func() { done <- c.GetWorkflow(context.Background(), wid, "").Get(context.Background(), &res) }()
	stopping := ctx.Done()
	for {
		select {
		case err := <-done:
			if err != nil {
				return nil, fmt.Errorf("run %s (workflow %s): %w", id, wid, err)
			}
			return &local.Summary{Run: res.Run, Steps: res.Steps}, nil
		case <-stopping:
			stopping = nil
			if in, ok := context.Cause(ctx).(*run.Interrupt); ok && !in.Kill {
				// Before the cancellation, so that the workflow has it when the cancellation comes:
				// the run then ends as a local run stopped by that signal (its error, 128+N).
				_ = c.SignalWorkflow(context.Background(), wid, "", pbtemporal.InterruptSignal, int(in.Signal))
			}
			if err := c.CancelWorkflow(context.Background(), wid, ""); err != nil {
				return nil, fmt.Errorf("cancel run %s (workflow %s): %w", id, wid, err)
			}
		case <-kill:
			kill = nil
			if err := c.SignalWorkflow(context.Background(), wid, "", pbtemporal.KillSignal, nil); err != nil {
				return nil, fmt.Errorf("kill run %s (workflow %s): %w", id, wid, err)
			}
		}
	}
}

// serveRecords serves run id's record queue until the returned stop is called: each batch is written
// to st and shown to obs.
func serveRecords(c client.Client, id string, st *store.Store, obs run.Observer) (stop func(), err error) {
	rw := worker.New(c, pbtemporal.RecordQueue(id), worker.Options{MaxConcurrentActivityExecutionSize: 1})
	state := func(ctx context.Context, runID string) (run.Status, error) {
		r, err := st.Run(ctx, runID)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return r.Status, nil
	}
	v := &view{Recorder: st, obs: obs, held: map[string]run.Event{}}
	if obs == nil {
		v.obs = run.ObserverFunc(func(run.Event) {})
	}
	recs := &pbtemporal.Records{Recorder: v, State: state, Observer: v}
	write := func(ctx context.Context, batch []pbtemporal.Record) error {
		err := recs.Write(ctx, batch)
		if err == nil {
			// The store commits in the background: the batch is acknowledged only once it is on
			// disk, or a submitter killed in between would lose what the workflow counts as written.
			err = st.Flush(ctx)
		}
		// A batch shows at once, not when the view's buffer fills.
		if f, ok := obs.(run.Flusher); ok {
			f.Flush()
		}
		return err
	}
	rw.RegisterActivityWithOptions(write, activity.RegisterOptions{Name: pbtemporal.RecordActivityName})
	if err := rw.Start(); err != nil {
		return nil, fmt.Errorf("serve the records of run %s: %w", id, err)
	}
	return rw.Stop, nil
}

// view is the run's Recorder and Observer for pbtemporal.Records: it shows, once an attempt's record
// is written, the output its step printed (a step on a worker cannot stream it here as it runs, but
// its record carries the head and tail the worker kept), and holds back a step_retrying event until
// then, so that the failed attempt's lines come before it, as in a local run.
type view struct {
	run.Recorder
	obs run.Observer

	mu   sync.Mutex
	held map[string]run.Event // step id -> its step_retrying, until its attempt's record is written
}

func (v *view) Observe(e run.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Type == run.EventStepRetrying {
		v.held[e.StepID] = e
		return
	}
	v.obs.Observe(e)
}

func (v *view) AttemptFinished(ctx context.Context, a *run.AttemptRecord) error {
	if err := v.Recorder.AttemptFinished(ctx, a); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	showOutput(v.obs, a)
	if e, ok := v.held[a.StepID]; ok && e.Attempt == a.Attempt {
		delete(v.held, a.StepID)
		v.obs.Observe(e)
	}
	return nil
}

// showOutput gives obs each line of the attempt's recorded stdout, then of its stderr, as step_output
// events; a last line without its newline is partial.
func showOutput(obs run.Observer, a *run.AttemptRecord) {
	for _, s := range []struct {
		name string
		data []byte
	}{{"stdout", a.Stdout.Data}, {"stderr", a.Stderr.Data}} {
		data := s.data
		for len(data) > 0 {
			line, rest, found := bytes.Cut(data, []byte{'\n'})
			obs.Observe(run.Event{Type: run.EventStepOutput, Time: a.FinishedAt, StepID: a.StepID, Attempt: a.Attempt,
				Stream: s.name, Line: line, Partial: !found})
			data = rest
		}
	}
}
