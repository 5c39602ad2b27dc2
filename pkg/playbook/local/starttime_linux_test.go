//go:build linux

package local

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// startRecorder keeps what AttemptStarted was given, and the output of the last step.
type startRecorder struct {
	fakeRecorder
	mu     sync.Mutex
	starts []run.AttemptStart
	stdout string
}

func (r *startRecorder) StepFinished(ctx context.Context, s *run.StepRecord) error {
	r.mu.Lock()
	r.stdout = string(s.Stdout.Data)
	r.mu.Unlock()
	return r.fakeRecorder.StepFinished(ctx, s)
}

func (r *startRecorder) AttemptStarted(ctx context.Context, a *run.AttemptStart) error {
	r.mu.Lock()
	r.starts = append(r.starts, *a)
	r.mu.Unlock()
	return r.fakeRecorder.AttemptStarted(ctx, a)
}

// Each attempt reaches the recorder with its process's start time from the engine, the one /proc gave
// the process itself, so that the store need not look it up (by then a short step may be gone).
func TestAttemptStartCarriesTheProcessStartTime(t *testing.T) {
	pb := load(t, `version: 1
name: ticks
steps:
  - id: a
    exec: [sh, -c, 'read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ t _ < /proc/$$/stat; echo $t']
`)
	rec := &startRecorder{}
	sum, err := Run(context.Background(), pb, Options{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Run.Status != run.StatusSucceeded {
		t.Fatalf("run %s: %s", sum.Run.Status, sum.Run.Error)
	}
	own, err := strconv.ParseUint(strings.TrimSpace(rec.stdout), 10, 64)
	if err != nil {
		t.Fatalf("the step printed %q: %v", rec.stdout, err)
	}
	if len(rec.starts) != 1 || rec.starts[0].PIDStart != own {
		t.Errorf("AttemptStarted got %+v; the process started at %d", rec.starts, own)
	}
}
