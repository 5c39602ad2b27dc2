package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// progressRecorder is a fakeRecorder that also keeps progress, handing each record to the test.
type progressRecorder struct {
	fakeRecorder
	got chan run.Progress
}

func (p *progressRecorder) RunProgress(_ context.Context, rp *run.Progress) error {
	select {
	case p.got <- *rp:
	default: // the test is not listening: drop it, as a slow store would make the next one count
	}
	return nil
}

// The scheduler hands a ProgressRecorder the run's time even while its step prints nothing, a running
// step's output when it changed (and only then), and stops when the run ends.
func TestProgressWhileStepRuns(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 20 * time.Millisecond
	dir := t.TempDir()
	g1, g2 := filepath.Join(dir, "g1"), filepath.Join(dir, "g2")
	pb := load(t, fmt.Sprintf(`version: 1
name: progress
steps:
  - id: a
    run: "while [ ! -e %s ]; do sleep 0.01; done; echo hello; while [ ! -e %s ]; do sleep 0.01; done"
`, g1, g2))
	rec := &progressRecorder{got: make(chan run.Progress)}
	type result struct {
		sum *Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Run(context.Background(), pb, Options{Recorder: rec})
		done <- result{sum, err}
	}()
	next := func() run.Progress {
		t.Helper()
		select {
		case p := <-rec.got:
			return p
		case r := <-done:
			t.Fatalf("the run ended early: %+v, %v", r.sum, r.err)
		case <-time.After(30 * time.Second):
			t.Fatal("no progress record within 30s")
		}
		return run.Progress{}
	}
	// Silent: the time moves on, no step.
	p1, p2 := next(), next()
	if len(p1.Steps)+len(p2.Steps) != 0 || !p2.Time.After(p1.Time) || p1.RunID == "" {
		t.Errorf("progress of a silent step: %+v then %+v", p1, p2)
	}
	os.WriteFile(g1, nil, 0o600)
	var p run.Progress
	for len(p.Steps) == 0 {
		p = next()
	}
	if st := p.Steps[0]; len(p.Steps) != 1 || st.StepID != "a" || st.Attempt != 1 || string(st.Stdout.Data) != "hello\n" || st.Stdout.Bytes != 6 {
		t.Errorf("progress after the step printed: %+v", p.Steps)
	}
	// Nothing new: the output is not handed over again.
	for range 3 {
		if q := next(); len(q.Steps) != 0 {
			t.Errorf("unchanged output handed over again: %+v", q.Steps)
		}
	}
	os.WriteFile(g2, nil, 0o600)
	r := <-done
	if r.err != nil || r.sum.Run.Status != run.StatusSucceeded {
		t.Fatalf("run: %+v, %v", r.sum, r.err)
	}
}
