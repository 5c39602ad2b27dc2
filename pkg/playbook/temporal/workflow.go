// Package temporal runs a playbook as a Temporal workflow: the workflow drives the same scheduling core
// as a local run (pkg/playbook/scheduler), and each step's attempt is an activity on the task queue
// its runs_on names, run by a `playbook worker` there with the process engine.
//
// Workflow code is replayed from its history, so everything the workflow does is deterministic: the
// playbook is parsed from the bytes and scripts the submitter sent (playbook.ParseScripts, no file
// read), time comes from workflow.Now, timers and activities are the SDK's, and the core itself reads
// no clock and iterates no map where order matters.
package temporal

import (
	"errors"
	"fmt"
	"sort"
	"syscall"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/playbook/scheduler"
	"github.com/playbookhq/playbook/pkg/run"
)

// WorkflowName is the name the run workflow is registered and started under.
const WorkflowName = "playbook.Run"

// StepActivityName is the name of the activity that runs one attempt of a step on a worker.
const StepActivityName = "playbook.Step"

// RecordActivityName is the name of the activity that writes a batch of records of a run to the
// database of the machine that submitted it (RecordQueue).
const RecordActivityName = "playbook.Record"

// RecordQueue is the task queue of a run's records: the submitting `playbook run` serves it, and
// `playbook attach` after it. While nobody does, the records wait in Temporal, in order.
func RecordQueue(runID string) string { return "playbook-run-" + runID }

// Record is one write to the submitting machine's database, or one event of the run for its view
// (Retrying, Cancelling); exactly one field is set.
type Record struct {
	RunStarted      *run.Record        `json:",omitempty"`
	AttemptStarted  *run.AttemptStart  `json:",omitempty"`
	AttemptFinished *run.AttemptRecord `json:",omitempty"`
	StepFinished    *run.StepRecord    `json:",omitempty"`
	RunFinished     *run.Record        `json:",omitempty"`
	Retrying        *Retrying          `json:",omitempty"`
	Cancelling      *Cancelling        `json:",omitempty"`
}

// KillSignal is the signal that makes a running workflow's run stop by force (the second Ctrl-C).
const KillSignal = "playbook.kill"

// KilledQuery answers whether the run is being killed (KillSignal, or a kill of the core's own): the
// worker of a step whose activity was cancelled asks it, and kills the step at once when it is.
const KilledQuery = "playbook.killed"

// InterruptSignal carries the number of the signal that stopped the submitter (SIGINT, SIGTERM, SIGHUP),
// sent just before it cancels the workflow: the run then ends as a local run stopped by that signal
// does (its error, exit status 128+N). A cancellation without it ends the run as "the workflow was
// cancelled", exit status 130.
const InterruptSignal = "playbook.interrupt"

// RunInput is what the submitter sends: the playbook as it loaded it, and how to run it.
type RunInput struct {
	RunID string
	// File is the playbook's absolute path on the submitting machine (records and messages name it);
	// Source its bytes and Scripts its script files' content (playbook.ReadScripts).
	File    string
	Source  []byte
	Scripts playbook.Scripts
	// Params are the -p values as typed (name -> text): the workflow resolves them against the
	// playbook, as the submitter already did, so typed values never go through JSON.
	Params      map[string]string
	MaxParallel int // 0: the playbook's max_parallel, else no cap
	// FingerprintKey, RetryOf and Reuse are as in scheduler.Config.
	FingerprintKey []byte
	RetryOf        string
	Reuse          map[string]*run.StepRecord
	// Skip is the steps the user chose not to run, as in scheduler.Config.
	Skip map[string]string `json:",omitempty"`
	// HeartbeatTimeout is how long a step's worker may go without a heartbeat before its attempt
	// fails as worker_lost; 0 is 20 s.
	HeartbeatTimeout time.Duration
	// User and Host are who submitted the run and from where, recorded with it as a local run's are.
	User, Host string
	// RecordWindow is the least time between two batches of records sent to the submitter: the view's
	// lag, traded for fewer workflow tasks. 0 is 250 ms; negative sends each batch at once.
	RecordWindow time.Duration
	// ContinueAfter makes the workflow continue as new once a workflow run has started this many
	// activities (steps and record batches), besides when its history is long (continue.go); 0: only
	// then. For tests.
	ContinueAfter int
	// Carried is set by the workflow itself when it continues as new: the state the next workflow
	// run goes on from (compressed).
	Carried []byte `json:",omitempty"`
}

// RunOutput is the run's outcome: its record and every step's, as a local run's Summary, without
// the steps' captured output and outputs (the submitter's database has them). Steps is nil when
// the steps' records would not fit in a payload (thousands of steps): read them from the database.
type RunOutput struct {
	Run   run.Record
	Steps []*run.StepRecord
}

// StepRequest is one attempt of a step, for the worker of its queue.
type StepRequest struct {
	RunID   string
	StepID  string
	Attempt int
	Launch  scheduler.Launch
	Script  []byte   // the content of Launch.Script, which the worker runs (a path of the submitter's)
	Secrets []string // masked in everything the worker records or returns
	// Run is the run's record as it started (no step list), for the worker's own database.
	Run *run.Record `json:",omitempty"`
	// OutputLimit is the bytes of each stream the worker returns (head and tail): the playbook's
	// output_limit, at most MaxOutputLimit; 0 is MaxOutputLimit.
	OutputLimit int64
}

// StepResult is what a worker returns of an attempt: its record (bounded output, masked) and the
// outputs the step wrote.
type StepResult struct {
	Attempt   run.AttemptRecord
	Outputs   map[string]string
	Retryable bool
}

// heartbeatTimeout is how long a step's worker may go without a heartbeat before the attempt is
// failed as worker_lost, unless RunInput says otherwise.
const heartbeatTimeout = 20 * time.Second

// recordWindow is the least time between two batches of records, unless RunInput says otherwise.
const recordWindow = 250 * time.Millisecond

// DeadlockDetectionTimeout is the worker.Options.DeadlockDetectionTimeout of a worker that runs the
// workflow. The SDK takes workflow code that runs this long without waiting on Temporal for a
// deadlock, and fails its workflow task (1 s by default). This workflow waits on nothing else: what
// runs between two waits is its own work, parsing the playbook and replaying a continued run's log,
// which for thousands of steps on a busy machine can take more than a second, and would then fail
// again on every retry of the task, stalling the run. Past the workflow task's own timeout (10 s by
// default) Temporal gives the task to another worker anyway, so the detector waits that long.
const DeadlockDetectionTimeout = 10 * time.Second

// noLimit stands for "no timeout" in activity options, which need one: longer than any run.
const noLimit = 10 * 365 * 24 * time.Hour

// Run is the workflow: it parses the playbook, then feeds the scheduling core the events of the run
// (activities finished, timers fired, cancellation, the kill signal) and carries out its commands.
// Cancelling the workflow is the graceful stop; KillSignal is the forced one.
func Run(ctx workflow.Context, in RunInput) (*RunOutput, error) {
	pb, err := playbook.ParseScripts(in.File, in.Source, in.Scripts)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "invalid_playbook", nil)
	}
	params, err := pb.ResolveParams(in.Params)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "invalid_params", nil)
	}
	maxPar := in.MaxParallel
	if maxPar <= 0 {
		maxPar = pb.MaxParallel
	}
	if maxPar <= 0 || maxPar > MaxInFlight {
		maxPar = MaxInFlight
	}
	core, err := scheduler.New(pb, scheduler.Config{Params: params, RunID: in.RunID, MaxParallel: maxPar,
		Distributed: true, FingerprintKey: in.FingerprintKey, RetryOf: in.RetryOf, Reuse: in.Reuse, Skip: in.Skip})
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), "invalid_run", nil)
	}
	d := &driver{core: core, sel: workflow.NewSelector(ctx), inflight: map[string]workflow.CancelFunc{}, scripts: in.Scripts,
		heartbeat: heartbeatTimeout, outputLimit: outputLimit(pb), retries: map[string]retry{}, continueAfter: in.ContinueAfter,
		recordWindow: recordWindow}
	if in.RecordWindow != 0 {
		d.recordWindow = max(in.RecordWindow, 0)
	}
	if in.HeartbeatTimeout > 0 {
		d.heartbeat = in.HeartbeatTimeout
	}
	// Activities and timers live in a context of their own: the workflow's cancellation is an event
	// for the core, which decides what to stop (always() steps still start).
	d.ctx, _ = workflow.NewDisconnectedContext(ctx)
	d.rec = core.Record()
	d.rec.StartedAt = workflow.Now(ctx).UTC()
	d.rec.User, d.rec.Host = in.User, in.Host
	info := workflow.GetInfo(ctx)
	d.rec.WorkflowID, d.rec.WorkflowRunID = info.WorkflowExecution.ID, info.WorkflowExecution.RunID

	cancelled := workflow.NewChannel(ctx)
	workflow.Go(ctx, func(gctx workflow.Context) {
		gctx.Done().Receive(gctx, nil)
		cancelled.Send(d.ctx, struct{}{})
	})
	if err := workflow.SetQueryHandler(ctx, KilledQuery, func() (bool, error) { return d.killed, nil }); err != nil {
		return nil, err
	}
	interrupts := workflow.GetSignalChannel(ctx, InterruptSignal)
	cancel := func() {
		if d.cancelled {
			return
		}
		var cause error = errors.New("the workflow was cancelled")
		var sig int
		if interrupts.ReceiveAsync(&sig) && sig > 0 {
			cause = &run.Interrupt{Signal: syscall.Signal(sig)}
		}
		d.feed(scheduler.Cancel{Cause: cause})
	}
	d.sel.AddReceive(cancelled, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(d.ctx, nil)
		cancel()
	})
	kill := workflow.GetSignalChannel(ctx, KillSignal)
	d.sel.AddReceive(kill, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(d.ctx, nil)
		d.feed(scheduler.Kill{Cause: errors.New("killed")})
	})
	if in.Carried == nil {
		if pb.Timeout > 0 {
			d.timeoutAt(d.rec.StartedAt.Add(pb.Timeout))
		}
		started := *d.rec
		d.write(Record{RunStarted: &started})
		d.feed(scheduler.Begin{})
	} else {
		c, err := decodeCarried(in.Carried)
		if err == nil {
			err = d.resume(c)
		}
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), "invalid_state", nil)
		}
		// The previous workflow run held new starts until it was quiet: this one lets them start.
		d.feed(scheduler.Hold{On: false})
	}
	for !core.Done() {
		if d.shouldContinue(ctx) {
			d.draining = true
			d.feed(scheduler.Hold{On: true})
			d.send() // what waits for the next batch goes now: the drain waits for it
		}
		if d.draining && d.quiet() {
			// A stop that came meanwhile is taken here, so that none is lost with this workflow run.
			for kill.ReceiveAsync(nil) {
				d.feed(scheduler.Kill{Cause: errors.New("killed")})
			}
			if ctx.Err() != nil {
				cancel()
			}
			if core.Done() {
				break
			}
			if d.quiet() {
				if err := d.continueAsNew(ctx, in); err != nil {
					return nil, err
				}
				continue
			}
		}
		d.sel.Select(d.ctx)
	}
	// The run is over once its record is: the workflow waits until the submitter's database (or an
	// attach's) has taken every record.
	d.send() // the last records go at once, not at the end of a batch window
	for d.sending || len(d.pending) > 0 {
		d.sel.Select(d.ctx)
	}
	return boundOutput(&RunOutput{Run: *core.Record(), Steps: core.Steps()}), nil
}

// write queues a record for the submitter's database and sends it when no batch is on its way: one
// batch at a time, so that they are written in order.
// A batch is one activity's input, so it is cut to fit in a payload.
func (d *driver) write(r Record) {
	size := recordSize(r)
	if size > PayloadBudget {
		r, size = fitRecord(r, size)
	}
	d.pending = append(d.pending, r)
	d.sizes = append(d.sizes, size)
	d.send()
}

// send sends the pending records as one batch, unless one is on its way (it sends them when it is
// back) or the last batch went less than recordWindow ago: then a timer sends them at the window's
// end, unless a later event does first. Every batch's completion is a workflow task, which delays
// whatever else the workflow has to do (the next step of a chain): one batch per window bounds that
// cost, and the view on the submitter lags by at most the window. The run's first record, the last
// ones and those of a drain go at once.
func (d *driver) send() {
	if d.sending || len(d.pending) == 0 {
		return
	}
	now := workflow.Now(d.ctx)
	if wait := d.lastSent.Add(d.recordWindow).Sub(now); wait > 0 && !d.draining && !d.core.Done() {
		if d.flushTimer == nil {
			tctx, cancel := workflow.WithCancel(d.ctx)
			d.flushTimer = cancel
			d.sel.AddFuture(workflow.NewTimer(tctx, wait), func(f workflow.Future) {
				if f.Get(tctx, nil) == nil { // not cancelled: nothing sent the records meanwhile
					d.flushTimer = nil
					d.send()
				}
			})
		}
		return
	}
	if d.flushTimer != nil {
		d.flushTimer()
		d.flushTimer = nil
	}
	d.lastSent = now
	n, size := 1, 2+d.sizes[0] // [ and ], then a comma before each record after the first
	for n < len(d.pending) && size+1+d.sizes[n] <= PayloadBudget {
		size += 1 + d.sizes[n]
		n++
	}
	batch := d.pending[:n:n]
	d.pending, d.sizes = d.pending[n:], d.sizes[n:]
	if len(d.pending) == 0 {
		d.pending, d.sizes = nil, nil
	}
	d.sending = true
	d.activities++
	rctx := workflow.WithActivityOptions(d.ctx, workflow.ActivityOptions{
		TaskQueue:              RecordQueue(d.rec.ID),
		ScheduleToStartTimeout: noLimit, // nobody serves the queue: the submitter died; attach will
		StartToCloseTimeout:    5 * time.Minute,
		HeartbeatTimeout:       30 * time.Second,                                         // the writer died mid-batch: the next one gets it
		RetryPolicy:            &temporal.RetryPolicy{MaximumInterval: 30 * time.Second}, // until written
	})
	d.sel.AddFuture(workflow.ExecuteActivity(rctx, RecordActivityName, batch), func(f workflow.Future) {
		d.sending = false
		if err := f.Get(rctx, nil); err != nil {
			// Only a cancelled workflow context ends the retries; nothing more can be recorded then.
			d.pending, d.sizes = nil, nil
			return
		}
		d.send()
	})
}

// driver carries out the core's commands with workflow primitives.
type driver struct {
	ctx      workflow.Context
	core     *scheduler.Core
	rec      *run.Record
	runInfo  *run.Record // rec as it started, without its steps: what workers record of the run
	sel      workflow.Selector
	inflight map[string]workflow.CancelFunc // by step id: the running attempt's activity
	scripts  playbook.Scripts
	queue    []scheduler.Command
	applying bool

	heartbeat time.Duration // the steps' activities' heartbeat timeout

	// recordWindow is the least time between two batches of records (RunInput.RecordWindow);
	// lastSent is when the last one went, flushTimer cancels the timer that sends the pending ones.
	recordWindow time.Duration
	lastSent     time.Time
	flushTimer   workflow.CancelFunc

	pending []Record // records not sent yet
	sizes   []int    // the size of each pending record as JSON
	sending bool     // a batch of records is on its way

	outputLimit int64 // of each stream of each attempt

	// Continuing as new (continue.go).
	log           []loggedEvent    // every event fed to the core
	retries       map[string]retry // by step: the retry timers not fired yet
	timeoutDue    time.Time        // when the run's timeout expires; zero: none, or it has
	runs          int              // workflow runs of this run before this one
	activities    int              // started by this workflow run
	continueAfter int              // RunInput.ContinueAfter
	draining      bool             // new starts are held until nothing is in flight
	noContinue    bool             // the state did not fit in a payload: this workflow run goes on
	cancelled     bool             // Cancel was fed
	killed        bool             // KillAll was carried out (KilledQuery)
}

func (d *driver) feed(ev scheduler.Event) {
	now := workflow.Now(d.ctx)
	d.log = append(d.log, logEvent(now, ev))
	if _, ok := ev.(scheduler.Cancel); ok {
		d.cancelled = true
	}
	d.queue = append(d.queue, d.core.Step(now, ev)...)
	if d.applying {
		return
	}
	d.applying = true
	for i := 0; i < len(d.queue); i++ {
		d.do(d.queue[i])
		d.queue[i] = nil
	}
	d.queue = d.queue[:0]
	d.applying = false
}

func (d *driver) do(cmd scheduler.Command) {
	switch c := cmd.(type) {
	case *scheduler.StartAttempt:
		d.start(c)
	case *scheduler.RetryLater:
		if c.Failed != nil {
			failed := *c.Failed
			failed.Stdout.Data, failed.Stderr.Data = nil, nil
			d.write(Record{Retrying: &Retrying{Failed: failed, Delay: c.Delay}})
		}
		d.retryAt(c.Step, c.Attempt, workflow.Now(d.ctx).Add(c.Delay))
	case *scheduler.StopSteps:
		for _, s := range c.Steps {
			if cancel := d.inflight[s.Step]; cancel != nil {
				cancel()
			}
		}
	case *scheduler.KillAll:
		// Before the cancellations: a worker that gets one asks KilledQuery whether to kill at once.
		d.killed = true
		steps := make([]string, 0, len(d.inflight))
		for step := range d.inflight {
			steps = append(steps, step)
		}
		sort.Strings(steps) // the commands' order must be the same on replay
		for _, step := range steps {
			d.inflight[step]()
		}
	case *scheduler.AttemptUnstarted:
		a := c.Attempt
		d.write(Record{AttemptStarted: &run.AttemptStart{RunID: a.RunID, StepID: a.StepID, Attempt: a.Attempt, StartedAt: a.StartedAt, Command: c.Command}})
	case *scheduler.RecordAttempt:
		d.write(Record{AttemptFinished: c.Attempt})
	case *scheduler.RecordStep:
		d.write(Record{StepFinished: c.Record})
	case *scheduler.Stopping:
		// Only the view hears of it: what to stop comes as StopSteps and KillAll.
		d.write(Record{Cancelling: &Cancelling{Reason: c.Reason, At: workflow.Now(d.ctx).UTC()}})
	case *scheduler.RunDone:
		done := *c.Record
		d.write(Record{RunFinished: &done})
	}
}

// start runs an attempt as an activity on its step's queue. The activity is tried once: the step's
// own retry policy, in the core, decides what happens after a failure.
func (d *driver) start(c *scheduler.StartAttempt) {
	l := c.Launch
	limit := noLimit
	if l.Timeout > 0 {
		// The worker enforces the step's timeout itself (and stops it with its signal and grace); the
		// activity's own limit only catches a worker that never answers.
		limit = l.Timeout + l.StopGrace + time.Minute
	}
	actx, cancel := workflow.WithCancel(d.ctx)
	actx = workflow.WithActivityOptions(actx, workflow.ActivityOptions{
		TaskQueue:           l.Queue,
		StartToCloseTimeout: limit,
		HeartbeatTimeout:    d.heartbeat,
		WaitForCancellation: true,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	step, attempt := c.Step.ID, c.Attempt
	d.inflight[step] = cancel
	// The attempt's start is recorded when it is sent: which worker takes it, and its process, are
	// known only from its result.
	d.write(Record{AttemptStarted: &run.AttemptStart{RunID: d.rec.ID, StepID: step, Attempt: attempt,
		StartedAt: workflow.Now(d.ctx).UTC(), Command: l.Display}})
	if d.runInfo == nil {
		info := *d.rec
		info.StepIDs = nil
		d.runInfo = &info
	}
	req := StepRequest{RunID: d.rec.ID, StepID: step, Attempt: attempt, Launch: *l, Secrets: d.core.Secrets(),
		OutputLimit: d.outputLimit, Run: d.runInfo}
	if l.Script != "" {
		req.Script = d.scripts[l.Script]
	}
	if n := requestSize(req); n > PayloadBudget {
		// Its command or env grew with what earlier steps output: it cannot be sent.
		delete(d.inflight, step)
		now := workflow.Now(d.ctx).UTC()
		d.feed(scheduler.AttemptFinished{Step: step, Attempt: attempt, Result: &run.AttemptRecord{RunID: d.rec.ID,
			StepID: step, Attempt: attempt, Status: run.StatusFailed, ExitCode: -1, StartedAt: now, FinishedAt: now,
			Error: fmt.Sprintf("the step's command, env and script take %d bytes once encoded; a step run on Temporal is sent in a payload of at most %d bytes (1.5MiB): pass large values in files",
				n, PayloadBudget)}})
		return
	}
	d.activities++
	f := workflow.ExecuteActivity(actx, StepActivityName, req)
	d.sel.AddFuture(f, func(f workflow.Future) {
		delete(d.inflight, step)
		var res StepResult
		err := f.Get(actx, &res)
		if err != nil {
			res = d.failed(step, attempt, err)
		}
		d.feed(scheduler.AttemptFinished{Step: step, Attempt: attempt, Result: &res.Attempt, Outputs: res.Outputs, Retryable: res.Retryable})
	})
}

// failed is the result of an attempt whose activity did not return one: its worker was lost (no
// heartbeat), it was cancelled, or it failed to run.
func (d *driver) failed(step string, attempt int, err error) StepResult {
	now := workflow.Now(d.ctx).UTC()
	att := run.AttemptRecord{RunID: d.rec.ID, StepID: step, Attempt: attempt, Status: run.StatusFailed, ExitCode: -1,
		StartedAt: now, FinishedAt: now}
	var timeout *temporal.TimeoutError
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &canceled):
		att.Status, att.Error = run.StatusCancelled, "cancelled"
	case errors.As(err, &timeout):
		att.Error = fmt.Sprintf("worker_lost: no word from the worker running it (%s)", timeout.TimeoutType())
	default:
		att.Error = err.Error()
	}
	return StepResult{Attempt: att, Retryable: true}
}

// workflowOptions registers Run under WorkflowName.
func workflowOptions() workflow.RegisterOptions { return workflow.RegisterOptions{Name: WorkflowName} }
