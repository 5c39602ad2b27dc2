package local

import (
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// progressEvery is how often the scheduler hands the run's progress to a ProgressRecorder: the most
// output a crashed runner loses, and the age of what `playbook logs` shows of a running step. Tests
// shorten it.
var progressEvery = time.Second

// recordProgress hands the ProgressRecorder the output of each running step that changed since the last
// call, and the time. The byte counts decide what changed, so a step that prints nothing costs no copy.
func (r *runner) recordProgress(pr run.ProgressRecorder) {
	p := &run.Progress{RunID: r.rec.ID, Time: r.now().UTC()}
	seen := make(map[string][2]int64, len(r.byExec))
	for id, a := range r.byExec {
		if a.pid == 0 {
			continue // not started yet (its record would not match the attempt the store has)
		}
		out, errs, err := r.eng.OutputBytes(id)
		if err != nil {
			continue // not registered yet, or already cleaned up: its final record says it all
		}
		prev, had := r.progressed[id]
		now := [2]int64{out, errs}
		seen[id] = now
		if had && prev == now || !had && now == [2]int64{} && a.n == 1 {
			continue // nothing new (a first attempt's row starts empty)
		}
		got, err := r.eng.Progress(id)
		if err != nil {
			continue
		}
		seen[id] = [2]int64{got.StdoutBytes, got.StderrBytes}
		p.Steps = append(p.Steps, run.StepProgress{StepID: a.step.ID, Attempt: a.n,
			Stdout: run.Output{Data: got.Stdout, Bytes: got.StdoutBytes, Truncated: got.StdoutTruncated},
			Stderr: run.Output{Data: got.Stderr, Bytes: got.StderrBytes, Truncated: got.StderrTruncated}})
	}
	r.progressed = seen
	_ = pr.RunProgress(r.recordContext(), p) // not the run's error (see run.ProgressRecorder)
}

// progressTicker returns the channel that paces recordProgress, nil when the Recorder keeps no
// progress, and a function that stops it.
func (r *runner) progressTicker() (run.ProgressRecorder, <-chan time.Time, func()) {
	pr, ok := r.opts.Recorder.(run.ProgressRecorder)
	if !ok {
		return nil, nil, func() {}
	}
	t := time.NewTicker(progressEvery)
	return pr, t.C, t.Stop
}
