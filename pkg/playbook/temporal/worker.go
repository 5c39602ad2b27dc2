package temporal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

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
	// the attempt's heartbeat timeout.
	Heartbeat time.Duration
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
	go w.heartbeat(ctx, id, stop)
	res, err := w.Engine.Wait(context.WithoutCancel(ctx), id)
	if err != nil {
		return fail(err)
	}
	att, outs, retryable := local.AttemptRecord(res, req.RunID, step, req.Attempt, outputs, masker, time.Now().UTC())
	return &StepResult{Attempt: *att, Outputs: outs, Retryable: retryable}, nil
}

// maxHeartbeat is the longest a running step goes between heartbeats: a cancellation (Ctrl-C, the
// run's timeout) reaches the worker only in a heartbeat's answer, so it bounds how late the step stops.
const maxHeartbeat = time.Second

// heartbeat tells Temporal that the attempt's worker is alive until stop is closed, and cancels the
// attempt's execution id when the answer says the workflow cancelled it (or no longer knows it).
// It heartbeats through the client, not activity.RecordHeartbeat: the SDK holds those back for 80 %
// of the heartbeat timeout (16 s by default) after the first, and learns of a cancellation only then.
func (w *Steps) heartbeat(ctx context.Context, id string, stop <-chan struct{}) {
	every := w.Heartbeat
	if every <= 0 {
		every = min(heartbeatTimeout/4, maxHeartbeat)
		if info := activity.GetInfo(ctx); info.HeartbeatTimeout > 0 {
			every = min(info.HeartbeatTimeout/4, maxHeartbeat)
		}
	}
	c := activity.GetClient(ctx)
	token := activity.GetInfo(ctx).TaskToken
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if c == nil {
				activity.RecordHeartbeat(ctx)
				continue
			}
			err := c.RecordActivityHeartbeat(ctx, token)
			var gone *serviceerror.NotFound
			if temporal.IsCanceledError(err) || errors.As(err, &gone) {
				_ = w.Engine.Cancel(id)
				return
			}
		case <-stop:
			return
		}
	}
}
