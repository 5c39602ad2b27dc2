package temporal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/playbookhq/playbook/internal/mask"
	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/playbook/local"
	"github.com/playbookhq/playbook/pkg/run"
)

// Steps runs, on a worker, the step attempts its queues receive: with the process engine, exactly as
// a local run does (process group, stop signal and grace, bounded output, masking, $PLAYBOOK_OUTPUT).
// Its zero value is not usable: Engine and TempDir are required.
type Steps struct {
	// Engine runs the processes; its MaxConcurrent is the worker's --max-parallel.
	Engine *engine.Engine
	// Dir is what a step's relative dir (and a step without one) runs in: the worker's --dir.
	Dir string
	// TempDir holds each attempt's $PLAYBOOK_OUTPUT file and the copy of its script, mode 0700.
	TempDir string
	// Name is the worker's name, recorded with every attempt it runs (run.AttemptRecord.Worker): its
	// host's name unless `playbook worker --name` says otherwise. "" records none.
	Name string
	// Recorder, when set, is the worker's own database: every attempt the worker runs is recorded
	// there too once it has ended (WorkerRecorder), so that `playbook runs` on that machine says what
	// ran on it. A write that fails is reported on Log and never fails the attempt: the submitter's
	// database is the run's record.
	Recorder WorkerRecorder
	// Instance is the worker process's instance id (NewInstance), given to every step's environment
	// as InstanceEnv so that Sweep finds what a dead worker left; "" gives none.
	Instance string
	// Killed reports whether the run of workflow wid is being killed (KilledQuery), which the worker
	// asks while a cancelled step stops; nil: never (a cancelled step gets its grace).
	Killed func(wid string) bool
	// Log receives the worker's warnings; nil discards them.
	Log func(format string, args ...any)
	// Heartbeat is how often a running attempt tells Temporal its worker is alive; 0 is a quarter of
	// the attempt's heartbeat timeout, at most maxHeartbeat.
	Heartbeat time.Duration
}

// maxHeartbeat is the longest a running step goes between heartbeats: a cancellation (Ctrl-C, the
// run's timeout) reaches the worker only in a heartbeat's answer. The SDK sends a heartbeat at most
// once per its worker's throttle interval (80 % of the heartbeat timeout, capped by
// worker.Options.MaxHeartbeatThrottleInterval), which the worker must therefore set to this too.
const maxHeartbeat = time.Second

// HeartbeatThrottle is the worker.Options.MaxHeartbeatThrottleInterval of a worker running Steps: a
// step then stops within about that long of its run's cancellation.
const HeartbeatThrottle = maxHeartbeat

// heartbeat tells Temporal that the attempt's worker is alive until stop is closed. The SDK's answer
// to a heartbeat is how a cancellation reaches ctx (and so the step's process group).
func (w *Steps) heartbeat(ctx context.Context, stop <-chan struct{}) {
	every := w.Heartbeat
	if every <= 0 {
		every = min(heartbeatTimeout/4, maxHeartbeat)
		if info := activity.GetInfo(ctx); info.HeartbeatTimeout > 0 {
			every = min(info.HeartbeatTimeout/4, maxHeartbeat)
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			activity.RecordHeartbeat(ctx)
		case <-stop:
			return
		}
	}
}

// Run is the step activity (StepActivityName). Cancelling ctx, which the workflow does through the
// heartbeat, stops the step as a local cancel does: its stop signal to the group, SIGKILL after its
// grace. An attempt that cannot start is a failed attempt, not an activity error: the step's retry
// policy, in the workflow, decides what comes next.
func (w *Steps) Run(ctx context.Context, req StepRequest) (*StepResult, error) {
	l := req.Launch
	masker := mask.New(req.Secrets)
	step := &playbook.Step{ID: req.StepID, Timeout: l.Timeout}
	base := filepath.Join(w.TempDir, req.RunID+"."+req.StepID+"."+strconv.Itoa(req.Attempt))
	outputs := base + ".out"
	defer os.Remove(outputs)
	fail := func(err error) (*StepResult, error) {
		now := time.Now().UTC()
		return &StepResult{Attempt: run.AttemptRecord{RunID: req.RunID, StepID: req.StepID, Attempt: req.Attempt,
			Status: run.StatusFailed, ExitCode: -1, StartedAt: now, FinishedAt: now, Error: masker.String(local.StartFailure(err)),
			Worker: w.Name}}, nil
	}
	if err := os.WriteFile(outputs, nil, 0o600); err != nil {
		return fail(fmt.Errorf("create the step's $PLAYBOOK_OUTPUT file: %w", err))
	}
	if l.Script != "" {
		// The script came with the run: the worker runs that copy, not whatever has the same path here.
		script := base + filepath.Ext(l.Script)
		if err := os.WriteFile(script, req.Script, 0o700); err != nil {
			return fail(fmt.Errorf("write the step's script: %w", err))
		}
		defer os.Remove(script)
		l.Script = script
	}
	if l.Dir == "" {
		l.Dir = w.Dir
	} else if !filepath.IsAbs(l.Dir) {
		l.Dir = filepath.Join(w.Dir, l.Dir)
	}
	env := make(map[string]string, len(l.Env)+2)
	for k, v := range l.Env {
		env[k] = v
	}
	env["PLAYBOOK_OUTPUT"] = outputs
	if w.Instance != "" {
		env[InstanceEnv] = w.Instance
	}
	l.Env = env
	er := local.EngineRequest(&l, req.Secrets)
	er.ID = req.RunID + "." + req.StepID + "." + strconv.Itoa(req.Attempt)
	// The engine keeps each stream's head and tail at the run's limit, which BoundResult then holds to:
	// a step's output costs the worker no more memory than it can send.
	er.OutputLimit = req.OutputLimit
	if er.OutputLimit <= 0 || er.OutputLimit > MaxOutputLimit {
		er.OutputLimit = MaxOutputLimit
	}

	// Started and cancelled by id, as the local runner does, not through Engine.Run's context: a
	// cancelled attempt then records the same error ("cancelled") on both backends.
	id, err := w.Engine.Start(er)
	if err != nil {
		return fail(err)
	}
	ended := make(chan struct{})
	defer close(ended)
	wid := ""
	if activity.IsActivity(ctx) {
		wid = activity.GetInfo(ctx).WorkflowExecution.ID
	}
	stopCancel := context.AfterFunc(ctx, func() { w.stop(wid, id, ended) })
	defer stopCancel()
	stop := make(chan struct{})
	defer close(stop)
	go w.heartbeat(ctx, stop)
	res, err := w.Engine.Wait(context.WithoutCancel(ctx), id)
	if err != nil {
		r, _ := fail(err)
		w.record(ctx, req, wid, l.Display, &r.Attempt, nil)
		return r, nil
	}
	att, outs, retryable := local.AttemptRecord(res, req.RunID, step, req.Attempt, outputs, masker, time.Now().UTC())
	att.Worker = w.Name
	bounded := BoundResult(&StepResult{Attempt: *att, Outputs: outs, Retryable: retryable}, req.OutputLimit)
	w.record(ctx, req, wid, l.Display, &bounded.Attempt, bounded.Outputs)
	return bounded, nil
}

// stop stops execution id of a step of workflow wid, whose activity was cancelled: with the step's
// stop signal, then SIGKILL after its grace, as a local cancel does. A cancellation carries no reason,
// so while the step stops, the worker asks the run's workflow (Killed) whether the run is being
// killed (the second Ctrl-C): then it sends SIGKILL at once, as a local kill does. It returns when the
// execution has ended.
func (w *Steps) stop(wid, id string, ended <-chan struct{}) {
	_ = w.Engine.Cancel(id)
	if w.Killed == nil || wid == "" {
		return
	}
	t := time.NewTicker(killPoll)
	defer t.Stop()
	for {
		if w.Killed(wid) {
			_ = w.Engine.Kill(id)
			return
		}
		select {
		case <-ended:
			return
		case <-t.C:
		}
	}
}

// killPoll is how often a stopping step's worker asks whether its run is being killed.
const killPoll = 250 * time.Millisecond

// WorkerRecorder is what a worker records of the attempts it runs, in its own database
// (*store.Store has these methods): once an attempt has ended, the run and step (RunSeen, when first
// seen), the attempt, and the step as its last attempt here left it. Nothing is written while the
// attempt runs, so a worker that dies leaves no row claiming a step still runs: the submitter's
// database records that attempt (worker_lost).
type WorkerRecorder interface {
	RunSeen(ctx context.Context, r *run.Record, stepID string) error
	AttemptFinished(ctx context.Context, a *run.AttemptRecord) error
	StepFinished(ctx context.Context, s *run.StepRecord) error
}

// record writes a finished attempt of workflow wid to the worker's database, when it has one. A
// write that fails is reported on Log and changes nothing else.
func (w *Steps) record(ctx context.Context, req StepRequest, wid, display string, a *run.AttemptRecord, outputs map[string]string) {
	if w.Recorder == nil || req.Run == nil {
		return
	}
	r := *req.Run
	if wid != "" {
		r.WorkflowID = wid
	}
	err := w.Recorder.RunSeen(ctx, &r, req.StepID)
	if err == nil {
		err = w.Recorder.AttemptFinished(ctx, a)
	}
	if err == nil {
		err = w.Recorder.StepFinished(ctx, &run.StepRecord{RunID: a.RunID, StepID: a.StepID, Status: a.Status,
			Error: a.Error, ExitCode: a.ExitCode, Signal: a.Signal, Attempts: a.Attempt, StartedAt: a.StartedAt,
			FinishedAt: a.FinishedAt, Command: display, Stdout: a.Stdout, Stderr: a.Stderr, Outputs: outputs,
			Worker: a.Worker})
	}
	if err != nil && w.Log != nil {
		w.Log("playbook worker: recording step %s of run %s in this worker's database: %v", req.StepID, req.RunID, err)
	}
}
