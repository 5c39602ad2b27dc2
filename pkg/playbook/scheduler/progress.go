package scheduler

import (
	"context"
	"time"
)

// ProgressRecorder is implemented by a Recorder that keeps a running run's progress, so that a runner
// that dies (kill -9) leaves its steps' output so far and the time it was last alive. The scheduler
// calls RunProgress about once a second (progressEvery) while the run goes on, on the goroutine of the
// other Recorder calls and in order with them. Its error is not the run's: a progress record that
// could not be written is replaced by the next one, and by the final records.
type ProgressRecorder interface {
	RunProgress(ctx context.Context, p *RunProgress) error
}

// RunProgress is a running run's progress.
type RunProgress struct {
	RunID string
	// Time is when the runner was last known to be alive: now.
	Time time.Time
	// Steps are the running steps whose output changed since the previous RunProgress, or whose attempt
	// started since (a retry, whose output so far replaces the previous attempt's). Often empty.
	Steps []StepProgress
}

// StepProgress is the output so far of the running attempt of a step, bounded and masked as the final
// record's (head and tail with a marker past the output limit).
type StepProgress struct {
	StepID  string
	Attempt int
	Stdout  Output
	Stderr  Output
}

// progressEvery is how often the scheduler hands the run's progress to a ProgressRecorder: the most
// output a crashed runner loses, and the age of what `playbook logs` shows of a running step. Tests
// shorten it.
var progressEvery = time.Second

// recordProgress hands the ProgressRecorder the output of each running step that changed since the last
// call, and the time. The byte counts decide what changed, so a step that prints nothing costs no copy.
func (r *runner) recordProgress(pr ProgressRecorder) {
	p := &RunProgress{RunID: r.rec.ID, Time: r.now().UTC()}
	seen := make(map[string][2]int64, len(r.byExec))
	for id, s := range r.byExec {
		if s.pid == 0 {
			continue // not started yet (its record would not match the attempt the store has)
		}
		out, errs, err := r.eng.OutputBytes(id)
		if err != nil {
			continue // not registered yet, or already cleaned up: its final record says it all
		}
		prev, had := r.progressed[id]
		now := [2]int64{out, errs}
		seen[id] = now
		if had && prev == now || !had && now == [2]int64{} && s.attempt == 1 {
			continue // nothing new (a first attempt's row starts empty)
		}
		got, err := r.eng.Progress(id)
		if err != nil {
			continue
		}
		seen[id] = [2]int64{got.StdoutBytes, got.StderrBytes}
		p.Steps = append(p.Steps, StepProgress{StepID: s.step.ID, Attempt: s.attempt,
			Stdout: Output{Data: got.Stdout, Bytes: got.StdoutBytes, Truncated: got.StdoutTruncated},
			Stderr: Output{Data: got.Stderr, Bytes: got.StderrBytes, Truncated: got.StderrTruncated}})
	}
	r.progressed = seen
	_ = pr.RunProgress(r.recordContext(), p) // not the run's error (see ProgressRecorder)
}

// progressTicker returns the channel that paces recordProgress, nil when the Recorder keeps no
// progress, and a function that stops it.
func (r *runner) progressTicker() (ProgressRecorder, <-chan time.Time, func()) {
	pr, ok := r.opts.Recorder.(ProgressRecorder)
	if !ok {
		return nil, nil, func() {}
	}
	t := time.NewTicker(progressEvery)
	return pr, t.C, t.Stop
}
