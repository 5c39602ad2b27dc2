package temporal

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/playbookhq/playbook/pkg/playbook/scheduler"
	"github.com/playbookhq/playbook/pkg/run"
)

// A workflow run's history grows with every activity and every batch of records, and Temporal ends
// a run whose history passes 50 MB or 51,200 events. So a long run continues as new: at a quiet
// point (new starts held, every attempt and record batch in flight finished) the workflow hands the
// next run what it needs to go on, and the run goes on there. The core is deterministic and records
// nothing itself, so what is handed on is the log of the events fed to it (their captured output
// stripped: it is recorded already), from which the next run rebuilds the same core, plus what only
// the driver knows: the retries waiting for their delay, the run's timeout, its start.
//
// A run continues as new when Temporal suggests it, when its history reaches continueEvents events
// or continueBytes bytes, whichever comes first: well under the limits, since what is in flight
// then (at most MaxInFlight attempts) still adds to it while it drains.
const (
	continueEvents = 10_000
	continueBytes  = 10 << 20
)

// carried is what a workflow run hands the next one when it continues as new.
type carried struct {
	Events        []loggedEvent // every event fed to the core, in order
	StartedAt     time.Time     // the run's record's start
	WorkflowRunID string        // the first workflow run's id, which the run's record keeps
	Retries       []pendingRetry
	TimeoutDue    time.Time // when the run's timeout expires; zero: none, or it has
	Runs          int       // workflow runs before the next one
}

// pendingRetry is a retry waiting for its delay: RetryDue for Step and Attempt is due at Due.
type pendingRetry struct {
	Step    string
	Attempt int
	Due     time.Time
}

// loggedEvent is one event fed to the core and when; Kind says which (the fields it needs are set).
type loggedEvent struct {
	At        time.Time
	Kind      string
	Step      string             `json:",omitempty"`
	Attempt   int                `json:",omitempty"`
	Result    *run.AttemptRecord `json:",omitempty"`
	Outputs   map[string]string  `json:",omitempty"`
	Retryable bool               `json:",omitempty"`
	Cause     string             `json:",omitempty"`
	On        bool               `json:",omitempty"`
}

// logEvent is ev as the next run replays it. An attempt's captured output is left out: it is in
// the records already and nothing decides on it.
func logEvent(at time.Time, ev scheduler.Event) loggedEvent {
	l := loggedEvent{At: at}
	switch e := ev.(type) {
	case scheduler.Begin:
		l.Kind = "begin"
	case scheduler.AttemptStarted:
		l.Kind, l.Step, l.Attempt, l.Result = "started", e.Step, e.Attempt, &run.AttemptRecord{StartedAt: e.At}
	case scheduler.AttemptFinished:
		l.Kind, l.Step, l.Attempt, l.Outputs, l.Retryable = "finished", e.Step, e.Attempt, e.Outputs, e.Retryable
		if e.Result != nil {
			r := *e.Result
			r.Stdout.Data, r.Stderr.Data = nil, nil
			l.Result = &r
		}
	case scheduler.RetryDue:
		l.Kind, l.Step, l.Attempt = "retry", e.Step, e.Attempt
	case scheduler.Cancel:
		l.Kind = "cancel"
		if e.Cause != nil {
			l.Cause = e.Cause.Error()
		}
	case scheduler.Kill:
		l.Kind = "kill"
		if e.Cause != nil {
			l.Cause = e.Cause.Error()
		}
	case scheduler.Timeout:
		l.Kind = "timeout"
	case scheduler.RecordFailed:
		l.Kind = "record_failed"
		if e.Err != nil {
			l.Cause = e.Err.Error()
		}
	case scheduler.Hold:
		l.Kind, l.On = "hold", e.On
	}
	return l
}

// event is the logged event as the core takes it.
func (l loggedEvent) event() (scheduler.Event, error) {
	cause := func() error {
		if l.Cause == "" {
			return nil
		}
		return errors.New(l.Cause)
	}
	switch l.Kind {
	case "begin":
		return scheduler.Begin{}, nil
	case "started":
		var at time.Time
		if l.Result != nil {
			at = l.Result.StartedAt
		}
		return scheduler.AttemptStarted{Step: l.Step, Attempt: l.Attempt, At: at}, nil
	case "finished":
		return scheduler.AttemptFinished{Step: l.Step, Attempt: l.Attempt, Result: l.Result, Outputs: l.Outputs, Retryable: l.Retryable}, nil
	case "retry":
		return scheduler.RetryDue{Step: l.Step, Attempt: l.Attempt}, nil
	case "cancel":
		return scheduler.Cancel{Cause: cause()}, nil
	case "kill":
		return scheduler.Kill{Cause: cause()}, nil
	case "timeout":
		return scheduler.Timeout{}, nil
	case "record_failed":
		return scheduler.RecordFailed{Err: cause()}, nil
	case "hold":
		return scheduler.Hold{On: l.On}, nil
	}
	return nil, fmt.Errorf("an event of unknown kind %q in the state the previous workflow run handed on", l.Kind)
}

// encodeCarried compresses c: the log of a long run is large and repetitive.
func encodeCarried(c *carried) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(c); err != nil {
		return nil, fmt.Errorf("encode the state to continue with: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress the state to continue with: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeCarried(data []byte) (*carried, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read the state the previous workflow run handed on: %w", err)
	}
	var c carried
	if err := json.NewDecoder(zr).Decode(&c); err != nil {
		return nil, fmt.Errorf("read the state the previous workflow run handed on: %w", err)
	}
	_, err = io.Copy(io.Discard, zr)
	return &c, err
}

// resume rebuilds the core of a run that continued as new by replaying the events fed to it, and
// takes over what the driver knew. The commands the replay produces were carried out already.
func (d *driver) resume(c *carried) error {
	for _, l := range c.Events {
		ev, err := l.event()
		if err != nil {
			return err
		}
		d.core.Step(l.At, ev)
	}
	d.log = c.Events
	d.runs = c.Runs
	d.rec.StartedAt = c.StartedAt
	d.rec.WorkflowRunID = c.WorkflowRunID
	for _, r := range c.Retries {
		d.retryAt(r.Step, r.Attempt, r.Due)
	}
	d.timeoutAt(c.TimeoutDue)
	return nil
}

// shouldContinue reports whether this workflow run's history is long enough to go on in a new one.
func (d *driver) shouldContinue(ctx workflow.Context) bool {
	if d.noContinue || d.draining {
		return false
	}
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= continueEvents ||
		info.GetCurrentHistorySize() >= continueBytes || (d.continueAfter > 0 && d.activities >= d.continueAfter)
}

// quiet reports whether nothing is in flight: no attempt, no batch of records, no record waiting.
func (d *driver) quiet() bool {
	return d.core.Running() == 0 && !d.sending && len(d.pending) == 0
}

// continueAsNew ends this workflow run with the next one's input: in with the state to go on from.
// When that state does not fit in a payload, the run goes on in this workflow run instead (and
// tries no more): its history may then reach Temporal's limits.
func (d *driver) continueAsNew(ctx workflow.Context, in RunInput) error {
	c := &carried{Events: d.log, StartedAt: d.rec.StartedAt, WorkflowRunID: d.rec.WorkflowRunID, Runs: d.runs + 1,
		TimeoutDue: d.timeoutDue}
	steps := make([]string, 0, len(d.retries))
	for s := range d.retries {
		steps = append(steps, s)
	}
	sort.Strings(steps) // the command's input must be the same on replay
	for _, s := range steps {
		r := d.retries[s]
		c.Retries = append(c.Retries, pendingRetry{Step: s, Attempt: r.attempt, Due: r.due})
	}
	data, err := encodeCarried(c)
	next := in
	next.Carried = data
	if err == nil && jsonSize(next) > PayloadBudget {
		err = fmt.Errorf("the state to continue with takes %d bytes; a payload holds %d", jsonSize(next), PayloadBudget)
	}
	if err != nil {
		workflow.GetLogger(ctx).Warn("the run cannot continue as new; it goes on in this workflow run", "error", err)
		d.noContinue, d.draining = true, false
		d.feed(scheduler.Hold{On: false})
		return nil
	}
	return workflow.NewContinueAsNewError(ctx, WorkflowName, next)
}

// retry is a retry timer of the driver: RetryDue for attempt is due at due.
type retry struct {
	attempt int
	due     time.Time
}

// retryAt feeds RetryDue for step's attempt at due.
func (d *driver) retryAt(step string, attempt int, due time.Time) {
	d.retries[step] = retry{attempt: attempt, due: due}
	wait := due.Sub(workflow.Now(d.ctx))
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	ev := scheduler.RetryDue{Step: step, Attempt: attempt}
	d.sel.AddFuture(workflow.NewTimer(d.ctx, wait), func(workflow.Future) {
		if r, ok := d.retries[step]; ok && r.attempt == attempt {
			delete(d.retries, step)
		}
		d.feed(ev)
	})
}

// timeoutAt feeds Timeout at due (zero: never).
func (d *driver) timeoutAt(due time.Time) {
	d.timeoutDue = due
	if due.IsZero() {
		return
	}
	wait := due.Sub(workflow.Now(d.ctx))
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	d.sel.AddFuture(workflow.NewTimer(d.ctx, wait), func(workflow.Future) {
		d.timeoutDue = time.Time{}
		d.feed(scheduler.Timeout{})
	})
}
