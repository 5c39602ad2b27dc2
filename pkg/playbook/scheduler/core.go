package scheduler

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/playbookhq/playbook/internal/mask"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// Config configures a Core. The zero value runs the playbook with its own settings and the params'
// defaults.
type Config struct {
	// Params are the resolved params (playbook.ResolveParams). Nil is the same as no -p values, which
	// only works when every param has a default or is optional.
	Params playbook.Params
	// RunID names the run: steps see it as run.id and $PLAYBOOK_RUN_ID. The Core never makes one up
	// (that would need randomness); "" is allowed and stays "".
	RunID string
	// MaxParallel caps the attempts in flight at once. 0 takes the playbook's max_parallel; when that
	// is 0 too there is no cap (a driver that wants one, such as the number of CPUs, says so here).
	MaxParallel int
	// RetryOf is the run this run retries; Reuse holds that run's steps by step id (any status). A
	// step is taken over from it instead of running again only when it succeeded there, no step after
	// it (direct or transitive dependent) whose if calls failure(), always() or cancelled() ran there
	// (it may have undone the step), every step it needs was taken over too, its recorded outputs hold
	// no masked secret, and its fingerprint is the same. Each step that runs or is taken over records
	// why (run.StepRecord.RetryReason). Nil: not a retry.
	RetryOf string
	Reuse   map[string]*run.StepRecord
	// FingerprintKey keys the fingerprint of each step's inputs (HMAC-SHA256): without the key, a
	// recorded fingerprint cannot be used to guess a short secret param by trying values. Fingerprints
	// made with different keys never match, so a step is then run again rather than reused. Nil is
	// the empty key (only fit for runs that are not recorded).
	FingerprintKey []byte

	// Skip holds the steps the user chose not to run (playbook.Select: --only, --skip), each with why
	// in words (for Plan). Such a step is recorded skipped with reason skipped_by_user when its needs
	// have finished, and its dependents follow the usual rules for a skipped need. Nil: every step.
	Skip map[string]string

	// Distributed renders each step's runs_on into its Launch's Queue (a runs_on that cannot be
	// rendered, or names no valid queue, fails the attempt at once). A local run leaves it false and
	// ignores runs_on.
	Distributed bool

	// dry: Plan's run, where a condition that reads what only a real run knows is not evaluated.
	dry bool
}

// Core is the state of one run's decisions. It is not safe for concurrent use: one driver goroutine
// (or one workflow) calls Step, and nothing else.
//
// A run goes: New, then Step(now, Begin{}) (after Cancel{} when the run is already cancelled before
// it starts), then Step for every event until a RunDone command comes out. Step returns the commands
// the event leads to, in the order they are to be carried out: the stop and retry commands the event
// caused, then the starts of the steps it released, then the records of what finished (so that the
// next step of a chain starts without waiting for the previous one's records).
type Core struct {
	pb     *playbook.Playbook
	cfg    Config
	maxPar int // 0 = no cap
	masker *mask.Masker
	secret []string

	steps []*step
	byID  map[string]*step
	ready readyQueue

	running int // attempts started and not finished
	done    int // steps finished
	begun   bool
	hold    bool // Hold{On: true}: start nothing until Hold{On: false}

	state   playbook.State
	baseEnv map[string]string // the playbook's env, PLAYBOOK_RUN_ID and PLAYBOOK_PARAM_*
	fp      *fingerprinter
	rec     run.Record
	now     time.Time

	// Why the run stops early; at most one of cancelled/timedOut is set, killed may come on top.
	cancelled bool
	timedOut  bool
	killed    bool
	failFast  bool  // a step failed and fail_fast holds
	stopping  bool  // recording failed: behave as if cancelled, but let running steps finish
	recordErr error // the first record that could not be written
	cause     error
	finished  bool // RunDone was given

	out, later []Command // this Step's commands: now, and once the released steps have been started
}

// stepState is a step's progress through one run.
type stepState int

const (
	stateWaiting  stepState = iota // needs not finished yet
	stateReady                     // in the ready queue
	stateRunning                   // an attempt was handed to the driver and has not finished
	stateBackoff                   // waiting before its next attempt
	stateFinished                  // its record is made
)

type step struct {
	st         *playbook.Step
	index      int // file order
	needs      []*step
	dependents []*step
	unfinished int // needs not finished yet
	state      stepState

	attempt   int
	startedAt time.Time // of the first attempt
	display   string    // the last attempt's command, masked
	last      *run.AttemptRecord
	record    *run.StepRecord

	// failedUpstream: a direct or transitive dependency failed or timed out (failure()).
	failedUpstream bool

	fingerprint string // of the first attempt's inputs
	// In a retry: the dependent that ran in the retried run and may have undone this step, and why
	// this step runs again or is reused (run.StepRecord.RetryReason, RetryDetail).
	undoneBy                 string
	retryReason, retryDetail string

	why       string // Plan: what decided the step, for people
	undecided bool   // Plan: its if was not evaluated
}

// ok reports whether a finished step counts as succeeded for its dependents.
func (s *step) ok() bool {
	if s.record == nil {
		return false
	}
	switch s.record.Status {
	case run.StatusSucceeded:
		return true
	case run.StatusFailed, run.StatusTimedOut:
		return s.record.ContinueOnError
	}
	return false
}

// failed reports whether a finished step failed in a way that counts (not continue_on_error).
func (s *step) failed() bool {
	if s.record == nil {
		return false
	}
	return (s.record.Status == run.StatusFailed || s.record.Status == run.StatusTimedOut) && !s.record.ContinueOnError
}

// New prepares the decisions of one run of pb. It fails when the playbook's env cannot be rendered
// with the params (the error is masked) or the params cannot be resolved; nothing has happened then.
func New(pb *playbook.Playbook, cfg Config) (*Core, error) {
	c := &Core{pb: pb, cfg: cfg, fp: newFingerprinter(cfg.FingerprintKey)}
	c.maxPar = cfg.MaxParallel
	if c.maxPar <= 0 {
		c.maxPar = pb.MaxParallel
	}
	params := cfg.Params
	if params == nil {
		var err error
		if params, err = pb.ResolveParams(nil); err != nil {
			return nil, err
		}
	}
	c.secret = SecretValues(pb, params)
	c.masker = mask.New(c.secret)

	c.state = playbook.State{
		Run:    playbook.RunState{ID: cfg.RunID, Name: pb.Name, Status: string(run.StatusSucceeded)},
		Params: params,
		Env:    map[string]string{},
		Steps:  make(map[string]playbook.StepState, len(pb.Steps)),
	}
	c.baseEnv = map[string]string{"PLAYBOOK_RUN_ID": cfg.RunID}
	for _, p := range pb.Params {
		if v, ok := params[p.Name]; ok {
			c.baseEnv[playbook.ParamEnvName(p.Name)] = playbook.ParamText(v)
		}
	}
	for _, ev := range pb.Env {
		v, err := ev.Value.Render(&c.state)
		if err != nil {
			return nil, fmt.Errorf("env %s: %s", ev.Name, c.masker.String(err.Error()))
		}
		c.state.Env[ev.Name] = v
		c.baseEnv[ev.Name] = v
	}

	c.byID = make(map[string]*step, len(pb.Steps))
	for i, st := range pb.Steps {
		s := &step{st: st, index: i}
		c.steps = append(c.steps, s)
		c.byID[st.ID] = s
	}
	for _, s := range c.steps {
		for _, n := range s.st.Needs {
			dep := c.byID[n]
			if dep == nil {
				return nil, fmt.Errorf("step %q needs unknown step %q", s.st.ID, n)
			}
			s.needs = append(s.needs, dep)
			dep.dependents = append(dep.dependents, s)
		}
		s.unfinished = len(s.needs)
	}
	if cfg.Reuse != nil {
		c.findUndone()
	}

	paramsJSON, err := maskedParamsJSON(pb, params)
	if err != nil {
		return nil, err
	}
	c.rec = run.Record{ID: cfg.RunID, Playbook: pb.Name, File: pb.File, FileSHA256: pb.SHA256,
		Params: paramsJSON, RetryOf: cfg.RetryOf, Status: run.StatusRunning}
	for _, s := range c.steps {
		c.rec.StepIDs = append(c.rec.StepIDs, s.st.ID)
	}
	return c, nil
}

// Record is the run's record: as of New (status running) until RunDone, complete after. The driver
// fills in what only it knows (StartedAt, User, Host, TempDir) before it records the start; the Core
// fills FinishedAt, Status, ExitCode and Error when the run is done.
func (c *Core) Record() *run.Record { return &c.rec }

// Steps returns each step's final record in file order; nil for a step that has not finished.
func (c *Core) Steps() []*run.StepRecord {
	out := make([]*run.StepRecord, len(c.steps))
	for i, s := range c.steps {
		out[i] = s.record
	}
	return out
}

// Secrets are the values of the run's secret params, as steps get them: what every message, output
// and record of the run masks.
func (c *Core) Secrets() []string { return c.secret }

// Running is the number of attempts in flight: started (StartAttempt) and not yet finished.
func (c *Core) Running() int { return c.running }

// Done reports whether every step has finished and RunDone was given.
func (c *Core) Done() bool { return c.finished }

// Step applies one event that happened at now and returns the commands it leads to. The slice is the
// Core's own and is reused by the next call: carry it out (or copy it) first. Events about steps or
// attempts that are not (or no longer) in the state the event assumes are ignored: a retry timer
// that fires after its step gave up, a finish reported twice. After RunDone, only RecordFailed still
// changes anything (the run's record).
func (c *Core) Step(now time.Time, ev Event) []Command {
	c.out, c.later = c.out[:0], c.later[:0]
	c.now = now.UTC()
	if c.finished {
		// The run is over: a stop that comes now (a Ctrl-C while its end is written) stops nothing,
		// and must not turn what it was into cancelled or timed_out.
		if e, ok := ev.(RecordFailed); ok {
			c.recordFailed(e.Err)
		}
		return c.out
	}
	switch e := ev.(type) {
	case Begin:
		if !c.begun {
			c.begun = true
			for _, s := range c.steps {
				if s.unfinished == 0 {
					c.makeReady(s)
				}
			}
		}
	case AttemptStarted:
		if s := c.byID[e.Step]; s != nil && s.state == stateRunning && s.attempt == e.Attempt && e.Attempt == 1 && !e.At.IsZero() {
			s.startedAt = e.At.UTC()
		}
	case AttemptFinished:
		if s := c.byID[e.Step]; s != nil && s.state == stateRunning && s.attempt == e.Attempt && e.Result != nil {
			c.running--
			c.attemptDone(s, e.Result, e.Outputs, e.Retryable)
		}
	case RetryDue:
		if s := c.byID[e.Step]; s != nil && s.state == stateBackoff && s.attempt == e.Attempt {
			c.makeReady(s)
		}
	case Cancel:
		var intr *run.Interrupt
		if errors.As(e.Cause, &intr) && intr.Kill {
			c.forceKill(e.Cause)
		} else {
			c.stop(false, e.Cause)
		}
	case Kill:
		c.forceKill(e.Cause)
	case Timeout:
		c.stop(true, fmt.Errorf("the run's timeout of %s expired", c.pb.Timeout))
	case RecordFailed:
		c.recordFailed(e.Err)
	case Hold:
		c.hold = e.On
	}
	if c.begun {
		c.launch()
		if c.done == len(c.steps) {
			c.finish()
		}
	}
	c.out = append(c.out, c.later...)
	return c.out
}

func (c *Core) makeReady(s *step) {
	s.state = stateReady
	heap.Push(&c.ready, s)
}

// launch starts or skips ready steps while slots are free. Skipping a step can make others ready, so
// it loops until nothing more can happen without an event.
func (c *Core) launch() {
	// A killed run starts nothing (every decision is a skip), so a hold has nothing to hold back.
	for c.ready.Len() > 0 && (!c.hold || c.killed) {
		s := c.ready[0]
		full := c.maxPar > 0 && c.running >= c.maxPar
		if s.attempt > 0 {
			// A retry: its decision was made at the first attempt.
			if full {
				return
			}
			heap.Pop(&c.ready)
			if c.stoppedAny() {
				c.finishStep(s, s.last.Status, "", s.last.Error, nil)
				continue
			}
			c.startAttempt(s, c.prepare(s))
			continue
		}
		d := c.decide(s)
		if d.start && full {
			return
		}
		heap.Pop(&c.ready)
		s.why, s.undecided = d.why, d.undecided
		if !d.start {
			c.finishStep(s, d.status, d.reason, d.err, nil)
			continue
		}
		l := c.prepare(s)
		if c.cfg.Reuse != nil {
			if prev := c.retryVerdict(s, l); prev != nil {
				s.attempt, s.display = 0, ""
				c.reuse(s, prev)
				continue
			}
		}
		c.startAttempt(s, l)
	}
}

// stoppedAny reports whether the run is stopping for any reason: nothing starts but always() and
// cancelled() steps.
func (c *Core) stoppedAny() bool { return c.cancelled || c.timedOut || c.killed || c.stopping }

// prepare renders the step's next attempt; the first attempt's inputs give the step its fingerprint.
func (c *Core) prepare(s *step) *Launch {
	s.attempt++
	s.state = stateRunning
	if s.attempt == 1 {
		s.startedAt = c.now
	}
	if c.cfg.dry {
		// A dry run starts nothing: what the command would be (it may read outputs a dry run does not
		// have) is no part of its decisions.
		return &Launch{}
	}
	l := c.render(s)
	if s.attempt == 1 && l.err == nil {
		s.fingerprint = c.fp.fingerprint(l)
	}
	return l
}

// startAttempt hands a prepared attempt to the driver, or, when it could not be rendered, fails it at
// once (an attempt that never started, recorded like any other).
func (c *Core) startAttempt(s *step, l *Launch) {
	c.running++
	if l.err == nil {
		c.out = append(c.out, &StartAttempt{Step: s.st, Attempt: s.attempt, Launch: l})
		return
	}
	att := &run.AttemptRecord{RunID: c.rec.ID, StepID: s.st.ID, Attempt: s.attempt, Status: run.StatusFailed,
		ExitCode: -1, StartedAt: c.now, FinishedAt: c.now, Error: c.masker.String(l.err.Error())}
	c.out = append(c.out, &AttemptUnstarted{Attempt: att, Command: s.display})
	c.running--
	c.attemptDone(s, att, nil, false)
}

// attemptDone takes a finished attempt: the step is retried or finishes.
func (c *Core) attemptDone(s *step, att *run.AttemptRecord, outputs map[string]string, retryable bool) {
	s.last = att
	c.later = append(c.later, &RecordAttempt{Attempt: att})
	if c.shouldRetry(s, att, retryable) {
		s.state = stateBackoff
		c.out = append(c.out, &RetryLater{Step: s.st.ID, Attempt: s.attempt, Delay: retryDelay(s.st.Retry, s.attempt), Failed: att})
		return
	}
	c.finishStep(s, att.Status, "", att.Error, outputs)
}

// stop begins a graceful stop: nothing new starts but always()/cancelled() steps, running steps get
// their stop signal, and steps waiting to retry give up.
func (c *Core) stop(timedOut bool, cause error) {
	if c.cancelled || c.timedOut {
		return
	}
	if timedOut {
		c.timedOut = true
		c.state.Run.Status = string(run.StatusTimedOut)
	} else {
		c.cancelled = true
		c.state.Run.Status = string(run.StatusCancelled)
	}
	if cause == nil {
		cause = errors.New("cancelled")
	}
	c.cause = cause
	c.out = append(c.out, &Stopping{Reason: c.masker.String(cause.Error())})
	c.abandonBackoff()
	if stop := c.runningSteps(); len(stop) > 0 {
		c.out = append(c.out, &StopSteps{Steps: stop})
	}
}

// forceKill is the second Ctrl-C: SIGKILL to every running group, nothing else starts. cause, when the
// run was not already stopping, is why (nil: "killed").
func (c *Core) forceKill(cause error) {
	if c.killed {
		return
	}
	if !c.cancelled && !c.timedOut {
		c.cancelled = true
		c.state.Run.Status = string(run.StatusCancelled)
		if c.cause == nil {
			c.cause = cause
		}
		if c.cause == nil {
			c.cause = errors.New("killed")
		}
	}
	c.killed = true
	c.out = append(c.out, &Stopping{Reason: "killed: every running step's process group gets SIGKILL"}, &KillAll{})
	c.abandonBackoff()
}

// recordFailed stops the run after the first recording failure: nothing new starts but always()
// steps, steps waiting to retry give up, running steps finish (and are recorded if the driver can).
func (c *Core) recordFailed(err error) {
	if err == nil || c.recordErr != nil {
		return
	}
	c.recordErr = err
	if c.finished {
		c.settle()
		return
	}
	if c.stopping || c.cancelled || c.timedOut {
		return
	}
	c.stopping = true
	c.out = append(c.out, &Stopping{Reason: "recording failed: " + c.masker.String(err.Error()), RecordFailed: true})
	c.abandonBackoff()
}

// runningSteps lists the attempts in flight, in file order.
func (c *Core) runningSteps() []StepAttempt {
	var out []StepAttempt
	for _, s := range c.steps {
		if s.state == stateRunning {
			out = append(out, StepAttempt{Step: s.st.ID, Attempt: s.attempt})
		}
	}
	return out
}

// abandonBackoff ends steps waiting for a retry: a stopping run never retries.
func (c *Core) abandonBackoff() {
	for _, s := range c.steps {
		if s.state == stateBackoff {
			c.finishStep(s, s.last.Status, "", s.last.Error, nil)
		}
	}
}

// finishStep makes the step's final record, updates what expressions see and releases its
// dependents. outputs are the real values (expressions see them); the record keeps them masked.
func (c *Core) finishStep(s *step, status run.Status, reason, errMsg string, outputs map[string]string) {
	if status == run.StatusCancelled && c.timedOut && reason == "" {
		reason = run.ReasonRunTimedOut
	}
	rec := &run.StepRecord{
		RunID:           c.rec.ID,
		StepID:          s.st.ID,
		Name:            s.st.Name,
		Status:          status,
		Reason:          reason,
		Error:           errMsg,
		ExitCode:        -1,
		Attempts:        s.attempt,
		Command:         s.display,
		ContinueOnError: s.st.ContinueOnError && (status == run.StatusFailed || status == run.StatusTimedOut),
		Fingerprint:     s.fingerprint,
		RetryReason:     s.retryReason,
		RetryDetail:     s.retryDetail,
	}
	if s.attempt > 0 {
		rec.StartedAt = s.startedAt
		rec.FinishedAt = c.now
	}
	if a := s.last; a != nil {
		rec.ExitCode = a.ExitCode
		rec.Signal = a.Signal
		rec.Stdout = a.Stdout
		rec.Stderr = a.Stderr
		rec.FinishedAt = a.FinishedAt
		rec.Worker = a.Worker
	}
	if len(outputs) > 0 {
		rec.Outputs = make(map[string]string, len(outputs))
		for k, v := range outputs {
			// A secret can straddle the = (a base64 token ending in =, written alone): then the name
			// itself gives the secret away and is masked too.
			mv := c.masker.String(v)
			if c.masker.String(k+"="+v) != k+"="+mv {
				k = mask.Replacement
			}
			rec.Outputs[k] = mv
		}
	}
	c.complete(s, rec)
	if len(outputs) > 0 { // expressions see the real values, the record the masked ones
		st := c.state.Steps[s.st.ID]
		st.Outputs = outputs
		c.state.Steps[s.st.ID] = st
	}
}

// complete takes a finished step's record and releases its dependents.
func (c *Core) complete(s *step, rec *run.StepRecord) {
	s.record = rec
	s.state = stateFinished
	s.last = nil
	c.done++
	c.state.Steps[s.st.ID] = playbook.StepState{Status: string(rec.Status), ExitCode: rec.ExitCode,
		Outputs: rec.Outputs, Attempts: rec.Attempts}
	if s.failed() {
		if c.pb.FailFast {
			c.failFast = true
		}
		if c.state.Run.Status == string(run.StatusSucceeded) {
			c.state.Run.Status = string(run.StatusFailed)
		}
	}
	c.later = append(c.later, &RecordStep{Record: rec})
	for _, d := range s.dependents {
		d.unfinished--
		if d.unfinished == 0 {
			c.makeReady(d)
		}
	}
}

// finish settles the run's status once every step has finished.
func (c *Core) finish() {
	c.finished = true
	c.rec.FinishedAt = c.now
	c.settle()
	c.later = append(c.later, &RunDone{Record: &c.rec})
}

// settle decides the run's status, exit status and error from its steps, its stop and its records.
func (c *Core) settle() {
	var failed []string
	for _, s := range c.steps {
		if s.failed() {
			failed = append(failed, s.st.ID)
		}
	}
	sort.Strings(failed)
	var signal syscall.Signal
	c.rec.Error = ""
	switch {
	case c.timedOut:
		c.rec.Status = run.StatusTimedOut
		c.rec.Error = c.cause.Error()
	case c.cancelled:
		c.rec.Status = run.StatusCancelled
		var intr *run.Interrupt
		if errors.As(c.cause, &intr) {
			signal = intr.Signal
		}
		if c.cause != nil {
			c.rec.Error = c.cause.Error()
		}
	case len(failed) > 0:
		c.rec.Status = run.StatusFailed
		c.rec.Error = "failed steps: " + strings.Join(failed, ", ")
	default:
		c.rec.Status = run.StatusSucceeded
	}
	c.rec.ExitCode = run.ExitStatus(c.rec.Status, signal)
	if c.recordErr != nil {
		c.rec.Unrecorded(c.recordErr)
	}
	c.rec.Error = c.masker.String(c.rec.Error)
}

// maskedParamsJSON is the params as recorded: secrets replaced by "***", keys sorted.
func maskedParamsJSON(pb *playbook.Playbook, params playbook.Params) (string, error) {
	out := make(map[string]any, len(params))
	secret := map[string]bool{}
	for _, p := range pb.Params {
		secret[p.Name] = p.Secret
	}
	for k, v := range params {
		if secret[k] {
			out[k] = mask.Replacement
		} else {
			out[k] = v
		}
	}
	b, err := json.Marshal(out) // encoding/json sorts map keys
	if err != nil {
		return "", fmt.Errorf("encode params: %w", err)
	}
	return string(b), nil
}

// SecretValues returns the values of the secret params among params, as steps get them
// (playbook.ParamText): what every message, output and record of the run masks.
func SecretValues(pb *playbook.Playbook, params playbook.Params) []string {
	var secrets []string
	for _, p := range pb.Params {
		if v, ok := params[p.Name]; ok && p.Secret {
			if s := playbook.ParamText(v); s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	return secrets
}

// readyQueue orders ready steps by file position, so that the run is deterministic and follows the
// order the author wrote when there is a choice; retries go first.
type readyQueue []*step

func (q readyQueue) Len() int { return len(q) }
func (q readyQueue) Less(i, j int) bool {
	if (q[i].attempt > 0) != (q[j].attempt > 0) {
		return q[i].attempt > 0
	}
	return q[i].index < q[j].index
}
func (q readyQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *readyQueue) Push(x any)   { *q = append(*q, x.(*step)) }
func (q *readyQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	*q = old[:len(old)-1]
	return s
}
