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
			Status: run.StatusFailed, ExitCode: -1, StartedAt: now, FinishedAt: now, Error: masker.String(err.Error())}}, nil
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
	env := make(map[string]string, len(l.Env)+1)
	for k, v := range l.Env {
		env[k] = v
	}
	env["PLAYBOOK_OUTPUT"] = outputs
	l.Env = env
	er := local.EngineRequest(&l, req.Secrets)
	er.ID = req.RunID + "." + req.StepID + "." + strconv.Itoa(req.Attempt)

	// Started and cancelled by id, as the local runner does, not through Engine.Run's context: a
	// cancelled attempt then records the same error ("cancelled") on both backends.
	id, err := w.Engine.Start(er)
	if err != nil {
		return fail(err)
	}
	stopCancel := context.AfterFunc(ctx, func() { _ = w.Engine.Cancel(id) })
	defer stopCancel()
	stop := make(chan struct{})
	defer close(stop)
	go w.heartbeat(ctx, stop)
	res, err := w.Engine.Wait(context.WithoutCancel(ctx), id)
	if err != nil {
		return fail(err)
	}
	att, outs, retryable := local.AttemptRecord(res, req.RunID, step, req.Attempt, outputs, masker, time.Now().UTC())
	return &StepResult{Attempt: *att, Outputs: outs, Retryable: retryable}, nil
}
