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
			Status: run.StatusFailed, ExitCode: -1, StartedAt: now, FinishedAt: now, Error: masker.String(err.Error()),
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
	env := make(map[string]string, len(l.Env)+1)
	for k, v := range l.Env {
		env[k] = v
	}
	env["PLAYBOOK_OUTPUT"] = outputs
	l.Env = env
	er := local.EngineRequest(&l, req.Secrets)
	er.ID = req.RunID + "." + req.StepID + "." + strconv.Itoa(req.Attempt)

	every := w.Heartbeat
	if every <= 0 {
		every = heartbeatTimeout / 4
		if info := activity.GetInfo(ctx); info.HeartbeatTimeout > 0 {
			every = info.HeartbeatTimeout / 4
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
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
	}()
	res, err := w.Engine.Run(ctx, er)
	if err != nil {
		return fail(err)
	}
	att, outs, retryable := local.AttemptRecord(res, req.RunID, step, req.Attempt, outputs, masker, time.Now().UTC())
	att.Worker = w.Name
	return BoundResult(&StepResult{Attempt: *att, Outputs: outs, Retryable: retryable}, req.OutputLimit), nil
}
