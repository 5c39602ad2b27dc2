// Package local runs a playbook on this machine: it drives the scheduling core (pkg/playbook/scheduler),
// which makes every decision of the run, with the process engine (pkg/engine), which runs the steps,
// and a run.Recorder (internal/store), which keeps the audit trail. It owns what the core must not
// touch: processes, timers, the steps' $PLAYBOOK_OUTPUT files, the clock, and the order in which
// records and progress events are written.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/playbookhq/playbook/internal/mask"
	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/playbook/scheduler"
	"github.com/playbookhq/playbook/pkg/run"
)

// Options configure Run. The zero value runs the playbook with its own settings, records nothing and
// reports no progress.
type Options struct {
	// Params are the resolved params (playbook.ResolveParams). Nil is the same as no -p values, which
	// only works when every param has a default or is optional.
	Params playbook.Params
	// RunID names the run; "" generates a random 128-bit hex id.
	RunID string
	// MaxParallel caps the steps running at once. 0 takes the playbook's max_parallel, else
	// DefaultMaxParallel.
	MaxParallel int
	// OutputLimit is the number of bytes of each stream of each step kept in memory and handed to the
	// Recorder (head and tail with a marker). 0 takes the playbook's output_limit, else 1 MiB.
	OutputLimit int64
	// Recorder receives the run as it happens. Nil records nothing.
	Recorder run.Recorder
	// Observer receives progress events. Nil reports nothing.
	Observer run.Observer
	// LogDir, when set, receives the complete (masked) streams of every attempt:
	// <LogDir>/<run id>/<step id>.stdout and .stderr for the first attempt, <step id>.<n>.stdout for
	// attempt n > 1. Folders are created 0700, files 0600.
	LogDir string
	// User and Host are recorded with the run.
	User, Host string
	// RetryOf is the run this run retries; Reuse holds that run's steps by step id (any status): see
	// scheduler.Config for what is reused. Nil: not a retry.
	RetryOf string
	Reuse   map[string]*run.StepRecord
	// Skip holds the steps the user chose not to run (playbook.Select), as in scheduler.Config.
	Skip map[string]string
	// ConcurrencyGroup is the run's concurrency group (Playbook.GroupName), "" for none: the Recorder
	// refuses to start the run while another run holds it (store.GroupBusyError).
	ConcurrencyGroup string
	// FingerprintKey keys the fingerprint of each step's inputs (scheduler.Config). Nil is the empty
	// key (only fit for runs that are not recorded).
	FingerprintKey []byte
	// Kill, when closed, stops the run at once: every running step's process group gets SIGKILL and no
	// other step starts, not even always() ones. It is the runner's second Ctrl-C.
	Kill <-chan struct{}
	// Engine runs the steps. Nil creates a *engine.Engine for this run (closed when Run returns) whose
	// concurrency is MaxParallel and whose steps have no timeout but their own.
	Engine Engine
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Engine is what Run needs of the process engine; *engine.Engine implements it, and tests give a
// fake. Events must reach the Subscribe handler in order for each execution: started, output lines,
// one terminal event (completed, failed, timed_out or cancelled) with its Result.
type Engine interface {
	// Start starts the execution before it returns (the caller's goroutine forks); Execute hands it
	// to the engine's own goroutine. Both return its id, or an error when it could not start.
	Start(req engine.Request) (string, error)
	Execute(req engine.Request) (string, error)
	// Cancel stops an execution with its stop signal, then SIGKILL after its grace.
	Cancel(id string) error
	// KillAll sends SIGKILL to every running execution's process group.
	KillAll()
	// Cleanup forgets finished executions.
	Cleanup() int
	// OutputBytes and Progress report a running execution's output so far.
	OutputBytes(id string) (stdout, stderr int64, err error)
	Progress(id string) (*engine.Progress, error)
	Subscribe(h engine.Handler) (unsubscribe func())
	Close() error
}

// Summary is the outcome of a run.
type Summary struct {
	Run   run.Record
	Steps []*run.StepRecord // file order; Stdout and Stderr data are dropped once recorded (the byte counts stay)
	// RecordErr is the first error the Recorder returned. The run then exits with status 3.
	RecordErr error
}

// ErrRecord wraps Recorder failures returned by Run.
var ErrRecord = errors.New("the run could not be recorded")

// defaultOutputLimit is the per-stream bound when neither the options nor the playbook set one.
const defaultOutputLimit = 1 << 20

// Run runs the playbook's steps on this machine: each step starts when every step in its needs has
// finished and its if holds, at most MaxParallel at once. It returns when every step has finished or
// been skipped.
//
// Cancelling ctx is the graceful stop (the first Ctrl-C): no new step starts except those whose if calls
// always() or cancelled(), and every running step gets its stop signal, then SIGKILL after its grace.
// Give the cause with context.WithCancelCause and a *run.Interrupt to choose the exit status. Closing
// Options.Kill is the forced stop. The playbook's timeout acts like a cancel and ends the run timed_out.
//
// The error is non-nil only when the run could not start (nothing ran) or when recording failed
// (errors.Is(err, ErrRecord)); a failed run is a Summary with Run.Status failed.
func Run(ctx context.Context, pb *playbook.Playbook, opts Options) (*Summary, error) {
	r, err := newRunner(pb, opts)
	if err != nil {
		return nil, err
	}
	defer r.cleanup()
	return r.run(ctx)
}

// attempt is an attempt handed to the engine, until its terminal event.
type attempt struct {
	step        *playbook.Step
	n           int
	execID      string
	pid         int // 0 until its started event
	command     string
	outputsPath string
	dropped     int // output lines the observer missed and has not been told of
}

type runner struct {
	pb     *playbook.Playbook
	opts   Options
	now    func() time.Time
	core   *scheduler.Core
	rec    *run.Record
	eng    Engine
	ownEng bool
	masker *mask.Masker
	secret []string
	limit  int64

	byExec  map[string]*attempt // attempts the engine has, by execution id
	dropped map[string]int      // by step: lines missed that no event has reported yet
	timers  map[string]*time.Timer
	started bool // some process started: killEscaped has something to look for
	tmpDir  string
	logDir  string
	// fixModes: the umask takes the owner's read or write bit away, so each outputs file is given
	// mode 0600 explicitly once created.
	fixModes bool

	recordErr error
	failer    run.FailureReporter // the Recorder, when it reports queued failures
	staller   run.Staller         // the Recorder, when its writes may wait for another process's lock
	held      bool                // the core holds starts back: the Recorder's writes are stalled
	stopNote  string              // a Stopping for a record failure, until noteStop reports it
	// The context of the Recorder's writes and when to replace it (recordContext).
	recCtx    context.Context
	recCancel context.CancelFunc
	recRenew  time.Time

	events  chan engine.Event
	retries chan scheduler.RetryDue
	unsub   func()

	queue    []scheduler.Command // commands of the core not carried out yet
	applying bool

	unflushed bool // the observer has been given events since its last Flush

	// progressed holds, per running execution, the byte counts of its last progress record.
	progressed map[string][2]int64
}

func newRunner(pb *playbook.Playbook, opts Options) (*runner, error) {
	r := &runner{pb: pb, opts: opts, now: opts.Now, byExec: map[string]*attempt{}, dropped: map[string]int{},
		timers: map[string]*time.Timer{}}
	r.failer, _ = opts.Recorder.(run.FailureReporter)
	r.staller, _ = opts.Recorder.(run.Staller)
	if r.now == nil {
		r.now = time.Now
	}
	runID := opts.RunID
	if runID == "" {
		runID = NewRunID()
	}
	maxPar := opts.MaxParallel
	if maxPar <= 0 {
		maxPar = pb.MaxParallel
	}
	if maxPar <= 0 {
		maxPar = DefaultMaxParallel(runtime.NumCPU())
	}
	r.limit = opts.OutputLimit
	if r.limit <= 0 {
		r.limit = pb.OutputLimit
	}
	if r.limit <= 0 {
		r.limit = defaultOutputLimit
	}
	var err error
	r.core, err = scheduler.New(pb, scheduler.Config{Params: opts.Params, RunID: runID, MaxParallel: maxPar,
		RetryOf: opts.RetryOf, Reuse: opts.Reuse, Skip: opts.Skip, FingerprintKey: opts.FingerprintKey})
	if err != nil {
		return nil, err
	}
	r.secret = r.core.Secrets()
	r.masker = mask.New(r.secret)
	r.rec = r.core.Record()
	r.rec.User, r.rec.Host = opts.User, opts.Host
	r.rec.ConcurrencyGroup = opts.ConcurrencyGroup

	if r.tmpDir, r.fixModes, err = makeTempDir(runID); err != nil {
		return nil, err
	}
	r.rec.TempDir = r.tmpDir
	if opts.LogDir != "" {
		r.logDir = filepath.Join(opts.LogDir, runID)
		if err := os.MkdirAll(r.logDir, 0o700); err != nil {
			os.RemoveAll(r.tmpDir)
			return nil, fmt.Errorf("create log folder %s: %w", r.logDir, err)
		}
	}

	r.eng = opts.Engine
	if r.eng == nil {
		eng, err := engine.New(engine.Config{
			MaxConcurrent:  maxPar,
			DefaultTimeout: engine.NoTimeout,
			MaxTimeout:     engine.NoTimeout,
			OutputLimit:    r.limit,
			Retention:      time.Nanosecond,
		})
		if err != nil {
			os.RemoveAll(r.tmpDir)
			return nil, fmt.Errorf("start the engine: %w", err)
		}
		r.eng, r.ownEng = eng, true
	}
	// The buffer lets the engine's delivery goroutine run ahead of a busy run loop; the engine itself
	// never blocks a process on this channel.
	r.events = make(chan engine.Event, 256)
	r.retries = make(chan scheduler.RetryDue, len(pb.Steps))
	r.unsub = r.eng.Subscribe(engine.HandlerFunc(func(e engine.Event) {
		// A status change repeats what the started and terminal events say; handing it over would wake
		// the loop two more times a step for nothing.
		if e.Type != engine.EventStatusChanged {
			r.events <- e
		}
	}))
	return r, nil
}

func (r *runner) cleanup() {
	if r.recCancel != nil {
		r.recCancel()
	}
	for _, t := range r.timers {
		t.Stop()
	}
	if r.ownEng {
		r.eng.Close()
	}
	// Unsubscribe after Close: Close delivers the last events, and the subscription goroutine must be
	// able to hand them over, so drain while unsubscribing.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-r.events:
			case <-stop:
				return
			}
		}
	}()
	r.unsub()
	close(stop)
	os.RemoveAll(r.tmpDir)
}

func (r *runner) run(ctx context.Context) (*Summary, error) {
	r.rec.StartedAt = r.now().UTC()
	if err := r.record(func(c context.Context) error { return r.opts.Recorder.RunStarted(c, r.rec) }); err != nil {
		// Nothing ran: the run cannot be audited, so it does not start.
		return nil, fmt.Errorf("%w: %w", ErrRecord, err)
	}
	r.observe(run.Event{Type: run.EventRunStarted, Run: r.runSnapshot()})

	var deadline <-chan time.Time
	if r.pb.Timeout > 0 {
		t := time.NewTimer(r.pb.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	done := ctx.Done()
	kill := r.opts.Kill
	cancel := func() {
		done = nil
		cause := context.Cause(ctx)
		if cause == nil {
			cause = ctx.Err()
		}
		r.feed(scheduler.Cancel{Cause: cause})
	}
	if ctx.Err() != nil { // a signal during loading: start nothing but always()/cancelled() steps
		cancel()
	}
	r.feed(scheduler.Begin{})

	flusher, _ := r.opts.Observer.(run.Flusher)
	var flushed time.Time       // the last Flush
	var flushC <-chan time.Time // set while a Flush is due
	flushTimer := time.NewTimer(time.Hour)
	flushTimer.Stop()
	defer flushTimer.Stop()
	flush := func() {
		flusher.Flush()
		r.unflushed, flushed = false, time.Now()
	}
	progress, progressC, stopProgress := r.progressTicker()
	defer stopProgress()
	holdTimer := time.NewTimer(time.Hour)
	holdTimer.Stop()
	defer holdTimer.Stop()
	var holdC <-chan time.Time // set while the core holds steps back
	for !r.core.Done() {
		if r.held && holdC == nil {
			holdTimer.Reset(holdPoll)
			holdC = holdTimer.C
		}
		select { // more to do at once: do it before flushing what the observer buffered
		case ev := <-r.events:
			r.handle(ev)
			continue
		default:
		}
		if flusher != nil && r.unflushed && flushC == nil {
			if wait := flushLag - time.Since(flushed); wait > 0 {
				flushTimer.Reset(wait)
				flushC = flushTimer.C
			} else {
				flush()
			}
		}
		select {
		case <-flushC:
			flushC = nil
			flush()
		case <-holdC:
			holdC = nil
			r.gate()
		case <-progressC:
			r.recordProgress(progress)
		case ev := <-r.events:
			r.handle(ev)
		case due := <-r.retries:
			delete(r.timers, due.Step)
			r.feed(due)
		case <-done:
			cancel()
		case <-deadline:
			deadline = nil
			r.feed(scheduler.Timeout{})
		case <-kill:
			kill = nil
			r.feed(scheduler.Kill{Cause: context.Cause(ctx)})
		}
	}
	r.killEscaped()
	return r.finish()
}

// gate tells the core what the Recorder says before anything can start: a queued write that failed
// stops the run, and writes that wait for another process's lock hold starts back (the run loop asks
// again every holdPoll) until they are made.
func (r *runner) gate() {
	if r.failer != nil && r.recordErr == nil {
		if err := r.failer.Failed(); err != nil {
			r.recordFailed(err)
		}
	}
	if r.staller != nil {
		if stalled := r.recordErr == nil && r.staller.Stalled(); stalled != r.held {
			r.held = stalled
			r.apply(r.core.Step(r.now(), scheduler.Hold{On: stalled}))
		}
	}
}

// feed hands the core one event and carries out what it says.
func (r *runner) feed(ev scheduler.Event) {
	r.gate()
	r.apply(r.core.Step(r.now(), ev))
}

// apply carries out the core's commands in order. A command can feed the core again (a step that
// could not start, a record that failed): what that says is carried out after the commands before it.
func (r *runner) apply(cmds []scheduler.Command) {
	r.queue = append(r.queue, cmds...)
	if r.applying {
		return
	}
	r.applying = true
	for i := 0; i < len(r.queue); i++ {
		r.do(r.queue[i])
		r.queue[i] = nil
	}
	r.queue = r.queue[:0]
	r.applying = false
}

func (r *runner) do(cmd scheduler.Command) {
	switch c := cmd.(type) {
	case *scheduler.StartAttempt:
		r.start(c)
	case *scheduler.AttemptUnstarted:
		r.unstarted(c.Attempt.StepID, c.Attempt.Attempt, c.Attempt.StartedAt, c.Command)
	case *scheduler.RetryLater:
		dropped := r.dropped[c.Step]
		delete(r.dropped, c.Step)
		r.observe(run.Event{Type: run.EventStepRetrying, StepID: c.Step, Attempt: c.Attempt, Failed: c.Failed, Delay: c.Delay, Dropped: dropped})
		due := scheduler.RetryDue{Step: c.Step, Attempt: c.Attempt}
		r.timers[c.Step] = time.AfterFunc(c.Delay, func() { r.retries <- due })
	case *scheduler.StopSteps:
		for _, a := range r.byExec {
			// An error means the execution has just finished; its terminal event is on the way.
			_ = r.eng.Cancel(a.execID)
		}
	case *scheduler.KillAll:
		r.eng.KillAll()
	case *scheduler.Stopping:
		if c.RecordFailed {
			r.stopNote = c.Reason
			r.noteStop()
			return
		}
		r.observe(run.Event{Type: run.EventRunCancelling, Reason: c.Reason})
	case *scheduler.RecordAttempt:
		r.record(func(ctx context.Context) error { return r.opts.Recorder.AttemptFinished(ctx, c.Attempt) })
	case *scheduler.RecordStep:
		rec := c.Record
		if t := r.timers[rec.StepID]; t != nil { // it gave up waiting for a retry
			t.Stop()
			delete(r.timers, rec.StepID)
		}
		dropped := r.dropped[rec.StepID]
		delete(r.dropped, rec.StepID)
		r.record(func(ctx context.Context) error { return r.opts.Recorder.StepFinished(ctx, rec) })
		r.observe(run.Event{Type: run.EventStepFinished, StepID: rec.StepID, Attempt: rec.Attempts, Step: rec, Dropped: dropped})
		// The bounded output has been recorded; keeping it for every step would make the runner's
		// memory grow with the number of steps.
		rec.Stdout.Data, rec.Stderr.Data = nil, nil
	case *scheduler.RunDone:
		// The run loop ends; finish records it.
	}
}

// DefaultMaxParallel is how many steps a run on a machine with cpus CPUs runs at once when neither
// the playbook nor the command line says: four per CPU, and never fewer than 16. Steps mostly wait (on
// the network, a remote command, a deploy to settle), and a waiting step costs a process and a few
// file descriptors, not a CPU: capping at the number of CPUs serialised six `sleep 2` steps into 6 s on
// a 2-CPU machine. Unbounded would be a fork storm for a playbook of a thousand independent steps. At
// four per CPU, steps that do compute still get a fair share of a CPU each, and the floor keeps small
// machines from serialising the usual fan-outs (a dozen hosts, a few services).
func DefaultMaxParallel(cpus int) int {
	return max(16, 4*cpus)
}

// start hands an attempt to the engine. When it cannot start (its outputs file cannot be made, the
// program does not exist, ...) it is an attempt that failed at once, recorded like any other.
func (r *runner) start(c *scheduler.StartAttempt) {
	now := r.now().UTC()
	a := &attempt{step: c.Step, n: c.Attempt, command: c.Launch.Display}
	req, err := r.request(a, c.Launch)
	if err == nil {
		req.ID = r.rec.ID + "." + a.step.ID + "." + strconv.Itoa(a.n)
		a.execID = req.ID
		r.byExec[req.ID] = a
		// With nothing else running (a chain), fork right here: the run loop has nothing better to do,
		// and the step starts without waiting for a goroutine switch. With steps running, hand the fork
		// to the engine's goroutine and go back to their events.
		start := r.eng.Execute
		if len(r.byExec) == 1 {
			start = r.eng.Start
		}
		if _, err = start(req); err != nil {
			delete(r.byExec, req.ID)
		}
	}
	if err != nil {
		r.unstarted(a.step.ID, a.n, now, a.command)
		att := &run.AttemptRecord{RunID: r.rec.ID, StepID: a.step.ID, Attempt: a.n, Status: run.StatusFailed,
			ExitCode: -1, StartedAt: now, FinishedAt: now, Error: r.masker.String(StartFailure(err))}
		r.feed(scheduler.AttemptFinished{Step: a.step.ID, Attempt: a.n, Result: att, Retryable: isRetryableStartError(err)})
	}
}

// unstarted reports and records the start of an attempt that never had a process (reported first,
// as a step that started is, and marked Unstarted so that a display need not say it started).
func (r *runner) unstarted(stepID string, n int, at time.Time, command string) {
	r.observe(run.Event{Type: run.EventStepStarted, StepID: stepID, Attempt: n, Command: command, Unstarted: true})
	r.record(func(ctx context.Context) error {
		return r.opts.Recorder.AttemptStarted(ctx, &run.AttemptStart{RunID: r.rec.ID, StepID: stepID, Attempt: n, StartedAt: at, Command: command})
	})
}

func isRetryableStartError(err error) bool {
	var ee interface{ IsRetryable() bool }
	if errors.As(err, &ee) {
		return ee.IsRetryable()
	}
	return false
}

// EngineRequest is the engine request of a launch of the scheduling core, with secrets to mask: what
// to run, where, with what environment (added to the engine process's), how long and how to stop it.
// It has no ID, no $PLAYBOOK_OUTPUT and no log files: those are the caller's (it shares Env with l).
func EngineRequest(l *scheduler.Launch, secrets []string) engine.Request {
	req := engine.Request{
		Timeout:   engine.NoTimeout,
		Secrets:   secrets,
		Metadata:  engine.Metadata{Source: "playbook"},
		StopGrace: l.StopGrace,
		Dir:       l.Dir,
		Env:       l.Env,
	}
	if l.Timeout > 0 {
		req.Timeout = l.Timeout
	}
	if l.StopSignal != 0 {
		req.StopSignal = l.StopSignal // an interface: a zero signal in it would be a signal
	}
	switch {
	case l.Argv != nil:
		req.Command = engine.Exec{Program: l.Argv[0], Args: l.Argv[1:]}
	case l.Script != "":
		req.Command = engine.Script{Path: l.Script, Interpreter: l.Interpreter}
	case l.AWS != nil:
		req.Command = engine.AWSCLI{Service: l.AWS.Service, Operation: l.AWS.Operation, Args: l.AWS.Args,
			Profile: l.AWS.Profile, Region: l.AWS.Region}
	default:
		req.Command = engine.Shell{Command: l.Run, Shell: l.Shell}
	}
	return req
}

// request turns the core's launch into an engine request: the outputs file, the log files and the
// secrets to mask are this machine's business.
func (r *runner) request(a *attempt, l *scheduler.Launch) (engine.Request, error) {
	req := EngineRequest(l, r.secret)
	// The file is created here, 0600, rather than left to the step's `>> "$PLAYBOOK_OUTPUT"`: that
	// would create it with the step's umask (0644, typically), and a file that outlives its runner (a
	// kill -9) would hold whatever secret the step wrote for anyone who can reach it.
	a.outputsPath = filepath.Join(r.tmpDir, a.step.ID+"."+strconv.Itoa(a.n)+".out")
	if err := createPrivate(a.outputsPath, r.fixModes); err != nil {
		return req, fmt.Errorf("create the step's $PLAYBOOK_OUTPUT file: %w", err)
	}
	l.Env["PLAYBOOK_OUTPUT"] = a.outputsPath
	if r.logDir != "" {
		base := filepath.Join(r.logDir, a.step.ID)
		if a.n > 1 {
			base += "." + strconv.Itoa(a.n)
		}
		req.StdoutPath = base + ".stdout"
		req.StderrPath = base + ".stderr"
	}
	return req, nil
}

// handle processes one engine event.
func (r *runner) handle(ev engine.Event) {
	if r.stopNote != "" {
		defer r.noteStop()
	}
	a := r.byExec[ev.ExecutionID]
	if a == nil {
		return
	}
	switch ev.Type {
	case engine.EventStarted:
		a.pid = ev.PID
		r.started = true
		start := ev.Time.UTC()
		// Shown before it is recorded: should the record fail, the stop it begins (run_cancelling) comes
		// after this step's start, which was made before anyone knew.
		r.observe(run.Event{Type: run.EventStepStarted, StepID: a.step.ID, Attempt: a.n, PID: ev.PID, Command: a.command})
		r.record(func(c context.Context) error {
			return r.opts.Recorder.AttemptStarted(c, &run.AttemptStart{RunID: r.rec.ID, StepID: a.step.ID, Attempt: a.n,
				StartedAt: start, Command: a.command, PID: ev.PID, PIDStart: ev.StartTicks})
		})
		if a.n == 1 {
			r.feed(scheduler.AttemptStarted{Step: a.step.ID, Attempt: a.n, At: start})
		}
	case engine.EventStdout, engine.EventStderr:
		if r.opts.Observer == nil {
			return
		}
		stream := "stdout"
		if ev.Type == engine.EventStderr {
			stream = "stderr"
		}
		r.observe(run.Event{Type: run.EventStepOutput, StepID: a.step.ID, Attempt: a.n, Stream: stream,
			Line: ev.Line, Partial: ev.Partial, Omitted: ev.Omitted, Dropped: int(ev.Dropped)})
	case engine.EventCompleted, engine.EventFailed, engine.EventTimedOut, engine.EventCancelled:
		if ev.Result == nil {
			return
		}
		delete(r.byExec, ev.ExecutionID)
		if ev.Dropped > 0 { // lines the observer missed at the end of the attempt
			r.dropped[a.step.ID] += int(ev.Dropped)
		}
		att, outputs, retryable := r.classify(a, ev.Result)
		r.feed(scheduler.AttemptFinished{Step: a.step.ID, Attempt: a.n, Result: att, Outputs: outputs, Retryable: retryable})
		if r.ownEng {
			// Forget finished executions: the engine would otherwise keep every step's bounded output
			// in memory for its retention period. After the feed, so the steps it released start first.
			r.eng.Cleanup()
		}
	}
}

// classify turns an engine result into the attempt's record, and reads the outputs of a succeeded one.
func (r *runner) classify(a *attempt, res *engine.Result) (*run.AttemptRecord, map[string]string, bool) {
	return AttemptRecord(res, r.rec.ID, a.step, a.n, a.outputsPath, r.masker, r.now().UTC())
}

// AttemptRecord turns the engine's result of attempt n of step into the attempt's record: its status
// (succeeded for exit 0; failed for another exit, a signal or a start that failed; timed_out;
// cancelled), exit code, signal, times (now when the engine has none), bounded output and an error
// for people, masked. For a succeeded attempt it reads the outputs file; one that cannot be read or
// parsed fails the attempt, and retryable is then false (trying again would not help).
func AttemptRecord(res *engine.Result, runID string, step *playbook.Step, n int, outputsPath string, masker *mask.Masker, now time.Time) (att *run.AttemptRecord, outputs map[string]string, retryable bool) {
	att = &run.AttemptRecord{
		RunID:      runID,
		StepID:     step.ID,
		Attempt:    n,
		ExitCode:   res.ExitCode,
		Signal:     res.Signal,
		StartedAt:  res.StartedAt.UTC(),
		FinishedAt: res.FinishedAt.UTC(),
		Stdout:     run.Output{Data: res.Stdout, Bytes: res.StdoutBytes, Truncated: res.StdoutTruncated},
		Stderr:     run.Output{Data: res.Stderr, Bytes: res.StderrBytes, Truncated: res.StderrTruncated},
		Error:      masker.String(res.Error),
	}
	if att.StartedAt.IsZero() {
		att.StartedAt = now
	}
	if att.FinishedAt.IsZero() {
		att.FinishedAt = now
	}
	switch res.Status {
	case engine.StatusCompleted:
		if res.ExitCode == 0 {
			att.Status = run.StatusSucceeded
		} else {
			att.Status = run.StatusFailed
			if att.Error == "" {
				if res.Signal != 0 {
					att.Error = fmt.Sprintf("killed by %s, signal %d", engine.SignalName(syscall.Signal(res.Signal)), res.Signal)
				} else {
					att.Error = fmt.Sprintf("exit status %d", res.ExitCode)
				}
			}
		}
	case engine.StatusTimedOut:
		att.Status = run.StatusTimedOut
		if att.Error == "" {
			att.Error = fmt.Sprintf("timed out after %s", step.Timeout)
		}
	case engine.StatusCancelled:
		att.Status = run.StatusCancelled
		if att.Error == "" {
			att.Error = "cancelled"
		}
	default:
		att.Status = run.StatusFailed
	}
	if res.Warning != "" {
		w := masker.String(res.Warning)
		if att.Error == "" {
			att.Error = w
		} else {
			att.Error += "; " + w
		}
	}
	retryable = true
	if att.Status == run.StatusSucceeded {
		var err error
		if outputs, err = ReadOutputs(outputsPath); err != nil {
			att.Status = run.StatusFailed
			att.Error = masker.String(err.Error())
			retryable = false
		}
	}
	return att, outputs, retryable
}

// killEscaped ends what the run's steps left running outside their process groups: a process that
// called setsid (a daemon) survives its step's group kill, so nothing started by a run outlives it.
// They carry the run's PLAYBOOK_RUN_ID (a random id no other process has) and are found by it: one
// scan of /proc at the end of the run, none per step. A process meant to outlive the run must be
// started by a service manager (systemd-run), whose processes do not inherit the step's environment.
func (r *runner) killEscaped() {
	if r.started {
		_, _ = proc.KillWithEnv("PLAYBOOK_RUN_ID=" + r.rec.ID)
	}
}

// finish records the end of the run the core settled.
func (r *runner) finish() (*Summary, error) {
	r.noteStop()
	if f, ok := r.opts.Observer.(run.Flusher); ok && r.unflushed {
		// RunFinished waits for the database, which may be locked or full: what happened shows first.
		f.Flush()
		r.unflushed = false
	}
	finErr := r.record(func(c context.Context) error { return r.opts.Recorder.RunFinished(c, r.rec) })
	if finErr != nil {
		// RunFinished reports every earlier failure too, and what was not written: its error is the
		// one to show. The core makes a run whose record is incomplete failed, with exit status 3.
		r.recordErr = finErr
		r.core.Step(r.now(), scheduler.RecordFailed{Err: finErr})
	}
	sum := &Summary{Run: *r.runSnapshot(), Steps: r.core.Steps(), RecordErr: r.recordErr}
	r.observe(run.Event{Type: run.EventRunFinished, Run: &sum.Run})
	if r.recordErr != nil {
		return sum, fmt.Errorf("%w: %w", ErrRecord, r.recordErr)
	}
	return sum, nil
}

// flushLag is how long what a Flusher buffered may wait to be shown while the run goes on: flushing
// whenever the loop was about to wait would cost a chain of short steps two writes a step, and nobody
// watching can tell 10 ms.
const flushLag = 10 * time.Millisecond

// holdPoll is how often a run whose Recorder is stalled (run.Staller) asks again whether it may start
// steps: often enough that a lock let go costs the run little, seldom enough to cost nothing.
const holdPoll = 50 * time.Millisecond

// recordTimeout bounds one write: a stuck database must not hold the run (or its cancellation) forever.
const recordTimeout = 30 * time.Second

// record calls the Recorder with a context that survives the run's cancellation (the final states of
// a cancelled run must still be written). The first failure stops new steps from starting (always()
// steps still run; a step launched before the failure surfaced goes on) and makes the run exit 3.
func (r *runner) record(write func(context.Context) error) error {
	if r.opts.Recorder == nil {
		return nil
	}
	err := write(r.recordContext())
	if err != nil && r.recordErr == nil {
		r.recordFailed(err)
	}
	return err
}

// recordFailed tells the core that recording failed (once).
func (r *runner) recordFailed(err error) {
	r.recordErr = err
	if !r.core.Done() {
		r.apply(r.core.Step(r.now(), scheduler.RecordFailed{Err: err}))
	}
}

// noteStop reports the stop that a record failure began, once no step handed to the engine before it
// is still to report its start: the events then never show a step starting after run_cancelling,
// and every step that starts after the stop was launched before it.
func (r *runner) noteStop() {
	if r.stopNote == "" {
		return
	}
	for _, a := range r.byExec {
		if a.pid == 0 {
			return // its started (or refused) event is on the way
		}
	}
	r.observe(run.Event{Type: run.EventRunCancelling, Reason: r.stopNote})
	r.stopNote = ""
}

// recordContext is the context of one Recorder write: it expires recordTimeout after it was made, and
// the writes of the next second share it, so each has between recordTimeout less a second and
// recordTimeout. A context (and its timer) per write would cost the run loop more than the write's
// own queueing, three writes a step.
func (r *runner) recordContext() context.Context {
	now := time.Now()
	if r.recCtx == nil || now.After(r.recRenew) {
		if r.recCancel != nil {
			r.recCancel()
		}
		r.recCtx, r.recCancel = context.WithTimeout(context.Background(), recordTimeout)
		r.recRenew = now.Add(time.Second)
	}
	return r.recCtx
}

func (r *runner) observe(e run.Event) {
	if r.opts.Observer == nil {
		return
	}
	r.unflushed = true
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	r.opts.Observer.Observe(e)
}

func (r *runner) runSnapshot() *run.Record {
	c := *r.rec
	c.StepIDs = append([]string(nil), r.rec.StepIDs...)
	return &c
}

// NewRunID returns a random 128-bit id in hex. Random ids keep short prefixes unique, the way people
// type them (`playbook show 3fa9`).
func NewRunID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}
