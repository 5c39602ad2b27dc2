package local

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/playbookhq/playbook/internal/mask"
	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook"
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
	// MaxParallel caps the steps running at once. 0 takes the playbook's max_parallel, else the number
	// of CPUs.
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
	// RetryOf is the run this run retries; Reuse holds that run's steps by step id (any status). A
	// step is taken over from it instead of running again only when it succeeded there, no step after
	// it (direct or transitive dependent) whose if calls failure(), always() or cancelled() ran there
	// (it may have undone the step), every step it needs was taken over too, and its fingerprint is the
	// same. Each step that runs or is taken over records why (StepRecord.RetryReason). Nil: not a retry.
	RetryOf string
	Reuse   map[string]*run.StepRecord
	// FingerprintKey keys the fingerprint of each step's inputs (HMAC-SHA256): without the key, a
	// recorded fingerprint cannot be used to guess a short secret param by trying values. Fingerprints
	// made with different keys never match, so a step is then run again rather than reused. Nil is
	// the empty key (only fit for runs that are not recorded).
	FingerprintKey []byte
	// Kill, when closed, stops the run at once: every running step's process group gets SIGKILL and no
	// other step starts, not even always() ones. It is the runner's second Ctrl-C.
	Kill <-chan struct{}
	// Engine runs the steps. Nil creates one for this run (closed when Run returns) whose concurrency
	// is MaxParallel and whose steps have no timeout but their own.
	Engine *engine.Engine
	// Now is the clock; nil means time.Now.
	Now func() time.Time
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

// Exit statuses of a run, the same as the playbook command's.
const (
	exitSucceeded = 0
	exitFailed    = 1
	exitRecord    = 3
	exitTimedOut  = 124
	exitInterrupt = 130
)

// defaultOutputLimit is the per-stream bound when neither the options nor the playbook set one.
const defaultOutputLimit = 1 << 20

// Run runs the playbook's steps: each step starts when every step in its needs has finished and its if
// holds, at most MaxParallel at once. It returns when every step has finished or been skipped.
//
// Cancelling ctx is the graceful stop (the first Ctrl-C): no new step starts except those whose if calls
// always() or cancelled(), and every running step gets its stop signal, then SIGKILL after its grace.
// Give the cause with context.WithCancelCause and an *Interrupt to choose the exit status. Closing
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

// stepState is a step's progress through one run.
type stepState int

const (
	stateWaiting  stepState = iota // needs not finished yet
	stateReady                     // in the ready queue
	stateRunning                   // an attempt is pending or running in the engine
	stateBackoff                   // waiting before its next attempt
	stateFinished                  // final record written
)

type stepRun struct {
	step       *playbook.Step
	index      int // file order
	needs      []*stepRun
	dependents []*stepRun
	unfinished int // needs not finished yet
	state      stepState

	attempt     int
	execID      string
	startedAt   time.Time // of the first attempt
	outputsPath string
	command     string // of the last attempt, masked
	pid         int
	last        *run.AttemptRecord
	retryTimer  *time.Timer
	dropped     int // output lines the observer missed and has not been told of
	record      *run.StepRecord

	// failedUpstream: a direct or transitive dependency failed or timed out (failure()).
	failedUpstream bool

	fingerprint string // of the first attempt's inputs
	// In a retry: the dependent that ran in the retried run and may have undone this step, and why
	// this step runs again or is reused (StepRecord.RetryReason, RetryDetail).
	undoneBy                 string
	retryReason, retryDetail string
}

// ok reports whether a finished step counts as succeeded for its dependents.
func (s *stepRun) ok() bool {
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
func (s *stepRun) failed() bool {
	if s.record == nil {
		return false
	}
	return (s.record.Status == run.StatusFailed || s.record.Status == run.StatusTimedOut) && !s.record.ContinueOnError
}

type runner struct {
	pb     *playbook.Playbook
	opts   Options
	now    func() time.Time
	eng    *engine.Engine
	ownEng bool
	masker *mask.Masker
	secret []string

	steps   []*stepRun
	byID    map[string]*stepRun
	byExec  map[string]*stepRun
	ready   readyQueue
	running int
	done    int
	maxPar  int
	limit   int64

	state   playbook.State
	baseEnv map[string]string // playbook env, PLAYBOOK_RUN_ID and PLAYBOOK_PARAM_*
	tmpDir  string
	logDir  string
	// fixModes: the umask takes the owner's read or write bit away, so each outputs file is given
	// mode 0600 explicitly once created.
	fixModes bool

	fp *fingerprinter

	rec       run.Record
	recordErr error
	failer    run.FailureReporter // the run.Recorder, when it reports queued failures
	staller   run.Staller         // the run.Recorder, when its writes may wait for another process's lock
	held      bool                // launch held steps back: the run.Recorder's writes are stalled
	// The context of the Recorder's writes and when to replace it (recordContext).
	recCtx    context.Context
	recCancel context.CancelFunc
	recRenew  time.Time

	// Why the run stops early; at most one of cancelled/timedOut is set, killed may come on top.
	cancelled bool
	timedOut  bool
	killed    bool
	failFast  bool   // a step failed and fail_fast holds
	stopping  bool   // recording failed: behave as if cancelled, but let running steps finish
	stopNote  string // the run_cancelling reason of a stopping run, until noteStop reports it
	cause     error

	events  chan engine.Event
	retries chan *stepRun
	unsub   func()

	unflushed bool // the observer has been given events since its last Flush

	// progressed holds, per running execution, the byte counts of its last progress record.
	progressed map[string][2]int64

	// later holds the recording and reporting of finished attempts and steps, done once the steps
	// they released have been launched: the next step of a chain starts without waiting for them.
	later []func()
}

func newRunner(pb *playbook.Playbook, opts Options) (*runner, error) {
	r := &runner{pb: pb, opts: opts, now: opts.Now, fp: newFingerprinter(opts.FingerprintKey)}
	r.failer, _ = opts.Recorder.(run.FailureReporter)
	r.staller, _ = opts.Recorder.(run.Staller)
	if r.now == nil {
		r.now = time.Now
	}
	r.rec.ID = opts.RunID
	if r.rec.ID == "" {
		r.rec.ID = NewRunID()
	}
	r.maxPar = opts.MaxParallel
	if r.maxPar <= 0 {
		r.maxPar = pb.MaxParallel
	}
	if r.maxPar <= 0 {
		r.maxPar = runtime.NumCPU()
	}
	r.limit = opts.OutputLimit
	if r.limit <= 0 {
		r.limit = pb.OutputLimit
	}
	if r.limit <= 0 {
		r.limit = defaultOutputLimit
	}

	params := opts.Params
	if params == nil {
		var err error
		if params, err = pb.ResolveParams(nil); err != nil {
			return nil, err
		}
	}
	r.secret = SecretValues(pb, params)
	r.masker = mask.New(r.secret)

	r.state = playbook.State{
		Run:    playbook.RunState{ID: r.rec.ID, Name: pb.Name, Status: string(run.StatusSucceeded)},
		Params: params,
		Env:    map[string]string{},
		Steps:  make(map[string]playbook.StepState, len(pb.Steps)),
	}
	r.baseEnv = map[string]string{"PLAYBOOK_RUN_ID": r.rec.ID}
	for _, p := range pb.Params {
		if v, ok := params[p.Name]; ok {
			r.baseEnv[playbook.ParamEnvName(p.Name)] = playbook.ParamText(v)
		}
	}
	for _, ev := range pb.Env {
		v, err := ev.Value.Render(&r.state)
		if err != nil {
			return nil, fmt.Errorf("env %s: %s", ev.Name, r.masker.String(err.Error()))
		}
		r.state.Env[ev.Name] = v
		r.baseEnv[ev.Name] = v
	}

	r.byID = make(map[string]*stepRun, len(pb.Steps))
	r.byExec = make(map[string]*stepRun)
	for i, st := range pb.Steps {
		s := &stepRun{step: st, index: i}
		r.steps = append(r.steps, s)
		r.byID[st.ID] = s
	}
	for _, s := range r.steps {
		for _, n := range s.step.Needs {
			dep := r.byID[n]
			if dep == nil {
				return nil, fmt.Errorf("step %q needs unknown step %q", s.step.ID, n)
			}
			s.needs = append(s.needs, dep)
			dep.dependents = append(dep.dependents, s)
		}
		s.unfinished = len(s.needs)
	}

	if opts.Reuse != nil {
		r.findUndone()
	}

	paramsJSON, err := maskedParamsJSON(pb, params)
	if err != nil {
		return nil, err
	}
	r.rec.Playbook = pb.Name
	r.rec.File = pb.File
	r.rec.FileSHA256 = pb.SHA256
	r.rec.Params = paramsJSON
	r.rec.User = opts.User
	r.rec.Host = opts.Host
	r.rec.RetryOf = opts.RetryOf
	r.rec.Status = run.StatusRunning
	for _, s := range r.steps {
		r.rec.StepIDs = append(r.rec.StepIDs, s.step.ID)
	}

	if r.tmpDir, r.fixModes, err = makeTempDir(r.rec.ID); err != nil {
		return nil, err
	}
	r.rec.TempDir = r.tmpDir
	if opts.LogDir != "" {
		r.logDir = filepath.Join(opts.LogDir, r.rec.ID)
		if err := os.MkdirAll(r.logDir, 0o700); err != nil {
			os.RemoveAll(r.tmpDir)
			return nil, fmt.Errorf("create log folder %s: %w", r.logDir, err)
		}
	}

	r.eng = opts.Engine
	if r.eng == nil {
		r.eng, err = engine.New(engine.Config{
			MaxConcurrent:  r.maxPar,
			DefaultTimeout: engine.NoTimeout,
			MaxTimeout:     engine.NoTimeout,
			OutputLimit:    r.limit,
			Retention:      time.Nanosecond,
		})
		if err != nil {
			os.RemoveAll(r.tmpDir)
			return nil, fmt.Errorf("start the engine: %w", err)
		}
		r.ownEng = true
	}
	// The buffer lets the engine's delivery goroutine run ahead of a busy scheduler loop; the engine
	// itself never blocks a process on this channel.
	r.events = make(chan engine.Event, 256)
	r.retries = make(chan *stepRun, len(r.steps))
	r.unsub = r.eng.Subscribe(engine.HandlerFunc(func(e engine.Event) {
		// A status change repeats what the started and terminal events say; handing it over would wake
		// the loop two more times a step for nothing.
		if e.Type != engine.EventStatusChanged {
			r.events <- e
		}
	}))
	return r, nil
}

// tempBases lists where a run's temporary folder may go, best first. Every attempt gets a new
// $PLAYBOOK_OUTPUT file there, created 0600 before its step starts, and on a journalled disk creating
// a file costs a chain of short steps about as much as launching it: a memory file system (tmpfs)
// does not journal. So: $TMPDIR when the user set it (their choice wins); else $XDG_RUNTIME_DIR, the
// user's private tmpfs where the system provides one; else /dev/shm, the shared tmpfs, where a
// folder of mode 0700 is as private as in /tmp; else os.TempDir().
func tempBases(getenv func(string) string) []string {
	if d := getenv("TMPDIR"); d != "" {
		return []string{d}
	}
	var bases []string
	if d := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		bases = append(bases, d)
	}
	return append(bases, "/dev/shm", os.TempDir())
}

// makeTempDir creates the run's private temporary folder, mode 0700 whatever the umask. fixModes
// reports that the umask removes the owner's read or write bit, so that files created in the folder
// need an explicit chmod.
func makeTempDir(runID string) (dir string, fixModes bool, err error) {
	pattern := run.TempDirPrefix + runID + "-"
	if strings.ContainsAny(runID, "/\x00") {
		pattern = run.TempDirPrefix // the id cannot be part of a file name; recovery will not claim the folder
	}
	for _, base := range tempBases(os.Getenv) {
		if dir, err = os.MkdirTemp(base, pattern); err == nil {
			break
		}
	}
	if err != nil {
		return "", false, fmt.Errorf("create the run's temporary folder in %s: %w (set TMPDIR to a writable folder)", os.TempDir(), err)
	}
	fi, err := os.Lstat(dir)
	if err == nil && fi.Mode().Perm() != 0o700 {
		fixModes = fi.Mode().Perm()&0o600 != 0o600
		err = os.Chmod(dir, 0o700)
	}
	if err != nil {
		os.Remove(dir)
		return "", false, fmt.Errorf("make the run's temporary folder %s private: %w", dir, err)
	}
	return dir, fixModes, nil
}

// createPrivate creates an empty file of mode 0600 that no one else can have prepared: a file left in
// its place (by an earlier attempt's step, say) is removed first, and a symlink is never followed. It
// runs before every attempt, so it uses the system calls directly: an os.File would cost a chain of
// steps several more calls each (descriptor flags, the poller) for a file it only creates.
func createPrivate(path string, fixMode bool) error {
	const flags = syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	fd, err := syscall.Open(path, flags, 0o600)
	if err == syscall.EEXIST {
		if err = syscall.Unlink(path); err == nil {
			fd, err = syscall.Open(path, flags, 0o600)
		}
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	if fixMode {
		err = syscall.Fchmod(fd, 0o600)
	}
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	return nil
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

func (r *runner) cleanup() {
	if r.recCancel != nil {
		r.recCancel()
	}
	for _, s := range r.steps {
		if s.retryTimer != nil {
			s.retryTimer.Stop()
		}
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
	if err := r.record(func(c context.Context) error { return r.opts.Recorder.RunStarted(c, &r.rec) }); err != nil {
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

	for _, s := range r.steps {
		if s.unfinished == 0 {
			r.makeReady(s)
		}
	}
	cancel := func() {
		done = nil
		cause := context.Cause(ctx)
		if cause == nil {
			cause = ctx.Err()
		}
		if intr := (*run.Interrupt)(nil); errors.As(cause, &intr) && intr.Kill {
			r.forceKill(cause)
			return
		}
		r.stop(false, cause)
	}
	if ctx.Err() != nil { // a signal during loading: start nothing but always()/cancelled() steps
		cancel()
	}
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
	var holdC <-chan time.Time // set while launch holds steps back
	for {
		r.launch()
		r.runLater()
		if r.done == len(r.steps) {
			break
		}
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
		case <-progressC:
			r.recordProgress(progress)
		case ev := <-r.events:
			r.handle(ev)
		case s := <-r.retries:
			if s.state == stateBackoff {
				s.retryTimer = nil
				r.makeReady(s)
			}
		case <-done:
			cancel()
		case <-deadline:
			deadline = nil
			r.stop(true, fmt.Errorf("the run's timeout of %s expired", r.pb.Timeout))
		case <-kill:
			kill = nil
			r.forceKill(context.Cause(ctx))
		}
	}
	r.killEscaped()
	return r.finish()
}

// killEscaped ends what the run's steps left running outside their process groups: a process that
// called setsid (a daemon) survives its step's group kill, so nothing started by a run outlives it.
// They carry the run's PLAYBOOK_RUN_ID (a random id no other process has) and are found by it: one
// scan of /proc at the end of the run, none per step. A process meant to outlive the run must be
// started by a service manager (systemd-run), whose processes do not inherit the step's environment.
func (r *runner) killEscaped() {
	for _, s := range r.steps {
		if s.attempt > 0 { // some process ran
			_, _ = proc.KillWithEnv("PLAYBOOK_RUN_ID=" + r.rec.ID)
			return
		}
	}
}

// stop begins a graceful stop: nothing new starts but always()/cancelled() steps, running steps get
// their stop signal, and steps waiting to retry give up.
func (r *runner) stop(timedOut bool, cause error) {
	if r.cancelled || r.timedOut {
		return
	}
	if timedOut {
		r.timedOut = true
		r.state.Run.Status = string(run.StatusTimedOut)
	} else {
		r.cancelled = true
		r.state.Run.Status = string(run.StatusCancelled)
	}
	r.cause = cause
	r.observe(run.Event{Type: run.EventRunCancelling, Reason: r.masker.String(cause.Error())})
	r.abandonBackoff()
	for _, s := range r.steps {
		if s.state == stateRunning && s.execID != "" {
			// An error means the execution has just finished; its terminal event is on the way.
			_ = r.eng.Cancel(s.execID)
		}
	}
}

// forceKill is the second Ctrl-C: SIGKILL to every running group, nothing else starts. cause, when the
// run was not already stopping, is why (nil: "killed").
func (r *runner) forceKill(cause error) {
	if r.killed {
		return
	}
	if !r.cancelled && !r.timedOut {
		r.cancelled = true
		r.state.Run.Status = string(run.StatusCancelled)
		if r.cause == nil {
			r.cause = cause
		}
		if r.cause == nil {
			r.cause = errors.New("killed")
		}
	}
	r.killed = true
	r.observe(run.Event{Type: run.EventRunCancelling, Reason: "killed: every running step's process group gets SIGKILL"})
	r.abandonBackoff()
	r.eng.KillAll()
}

// abandonBackoff ends steps waiting for a retry: a stopping run never retries.
func (r *runner) abandonBackoff() {
	for _, s := range r.steps {
		if s.state == stateBackoff {
			s.retryTimer.Stop()
			s.retryTimer = nil
			r.finishStep(s, s.last.Status, "", s.last.Error)
		}
	}
}

// runLater runs the work put off by later, in order.
func (r *runner) runLater() {
	for i := 0; i < len(r.later); i++ { // a func may add more
		r.later[i]()
		r.later[i] = nil
	}
	r.later = r.later[:0]
}

func (r *runner) makeReady(s *stepRun) {
	s.state = stateReady
	heap.Push(&r.ready, s)
}

// launch starts or skips ready steps while slots are free. Skipping a step can make others ready, so
// it loops until nothing more can happen without an event.
//
// Before each step it asks the Recorder whether a queued write failed: a step must not start once the
// run is stopping, even when the failure has not come back through a Recorder call yet (the records of
// the step that just finished are made after the steps it released are launched).
func (r *runner) launch() {
	r.held = false
	for r.ready.Len() > 0 {
		if r.failer != nil && r.recordErr == nil {
			if err := r.failer.Failed(); err != nil {
				r.recordFailed(err)
			}
		}
		if r.staller != nil && r.recordErr == nil && r.staller.Stalled() {
			r.held = true // the run loop calls launch again every holdPoll
			return
		}
		s := r.ready[0]
		if s.attempt > 0 {
			// A retry: its decision was made at the first attempt.
			if r.running >= r.maxPar {
				return
			}
			heap.Pop(&r.ready)
			if r.cancelled || r.timedOut || r.killed || r.stopping {
				r.finishStep(s, s.last.Status, "", s.last.Error)
				continue
			}
			r.startAttempt(s)
			continue
		}
		start, status, reason, errMsg := r.decide(s)
		if start && r.running >= r.maxPar {
			return
		}
		heap.Pop(&r.ready)
		if !start {
			r.finishStep(s, status, reason, errMsg)
			continue
		}
		if r.opts.Reuse != nil {
			p := r.prepare(s)
			if prev := r.retryVerdict(s, p); prev != nil {
				s.attempt, s.command = 0, ""
				r.reuse(s, prev)
				continue
			}
			r.launchPrepared(s, p)
			continue
		}
		r.startAttempt(s)
	}
}

// findUndone marks, in a retry, each step that succeeded in the retried run but may have been undone
// there: a step after it (transitively) whose if calls failure(), always() or cancelled() ran. Such a
// step is how a playbook releases a lock or rolls back a deploy, so the success no longer stands.
func (r *runner) findUndone() {
	undoer := func(d *stepRun) bool {
		prev := r.opts.Reuse[d.step.ID]
		if prev == nil || prev.Attempts == 0 || prev.ReusedFrom != "" {
			return false // it did not run in that run
		}
		c := d.step.If
		return c.Calls("failure") || c.Calls("always") || c.Calls("cancelled")
	}
	seen := make([]bool, len(r.steps))
	var stack []*stepRun
	for _, s := range r.steps {
		if prev := r.opts.Reuse[s.step.ID]; prev == nil || prev.Status != run.StatusSucceeded {
			continue
		}
		clear(seen)
		stack = append(stack[:0], s.dependents...)
		var first *stepRun
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[d.index] {
				continue
			}
			seen[d.index] = true
			if undoer(d) && (first == nil || d.index < first.index) {
				first = d
			}
			stack = append(stack, d.dependents...)
		}
		if first != nil {
			s.undoneBy = first.step.ID
		}
	}
}

// outputsMasked reports whether recorded outputs had a secret masked out of them (finishStepWith).
func outputsMasked(outputs map[string]string) bool {
	for k, v := range outputs {
		if k == mask.Replacement || strings.Contains(v, mask.Replacement) {
			return true
		}
	}
	return false
}

// retryVerdict decides, in a retry, whether a step that is to run is taken over from the retried run
// instead: it returns that run's record when so, and notes why either way.
func (r *runner) retryVerdict(s *stepRun, p prepared) *run.StepRecord {
	prev := r.opts.Reuse[s.step.ID]
	s.retryDetail = ""
	switch {
	case prev == nil:
		s.retryReason = run.RetryNewStep
	case prev.Status != run.StatusSucceeded:
		s.retryReason, s.retryDetail = run.RetryNotSucceeded, string(prev.Status)
	case s.undoneBy != "":
		s.retryReason, s.retryDetail = run.RetryUndone, s.undoneBy
	case outputsMasked(prev.Outputs):
		// The record keeps "***" where a secret was: reused, the step would hand that to later steps.
		s.retryReason = run.RetryOutputsMasked
	default:
		for _, n := range s.needs {
			if n.record == nil || n.record.Reason != run.ReasonReused {
				s.retryReason, s.retryDetail = run.RetryNeedNotReused, n.step.ID
				return nil
			}
		}
		switch {
		case prev.Fingerprint == "":
			s.retryReason = run.RetryNoFingerprint
		case p.err != nil || s.fingerprint != prev.Fingerprint:
			s.retryReason = run.RetryChanged
		default:
			s.retryReason = run.RetryReused
			return prev
		}
	}
	return nil
}

// decide applies the step's if and the run's stop rules. When the step does not run it returns the
// status and reason to record.
func (r *runner) decide(s *stepRun) (start bool, status run.Status, reason, errMsg string) {
	cond := s.step.If
	for _, n := range s.needs {
		if n.failed() || n.failedUpstream {
			s.failedUpstream = true
		}
	}
	if r.killed {
		return false, run.StatusSkipped, r.stopReason(), ""
	}
	if r.cancelled || r.timedOut || r.stopping {
		if !cond.Calls("always") && !cond.Calls("cancelled") {
			return false, run.StatusSkipped, r.stopReason(), ""
		}
	}
	funcs := playbook.StatusFuncs{Success: true, Cancelled: r.cancelled || r.timedOut, Failure: s.failedUpstream}
	// Which way did the needs go? A skipped need makes the step skipped "dependency_skipped" unless a
	// need also failed.
	depReason := run.ReasonDependencySkipped
	for _, n := range s.needs {
		if !n.ok() {
			funcs.Success = false
			if n.record == nil || n.record.Status != run.StatusSkipped {
				depReason = run.ReasonDependencyFailed
			}
		}
	}
	callsStatus := cond.CallsStatus()
	onlySuccess := !cond.Calls("failure") && !cond.Calls("always") && !cond.Calls("cancelled")
	// The condition needs success() (implicitly when it calls no status function), which is false:
	// a skip then says which way a dependency went rather than "condition false". An explicit
	// `success() || ...` may still hold, so it is evaluated, before fail_fast is applied.
	depSkip := onlySuccess && !funcs.Success
	if depSkip && !callsStatus {
		return false, run.StatusSkipped, depReason, ""
	}
	failFast := r.failFast && !cond.Calls("always") && !cond.Calls("failure")
	if failFast && !depSkip {
		return false, run.StatusSkipped, run.ReasonFailFast, ""
	}
	ok, err := cond.Eval(&r.state, funcs)
	switch {
	case err != nil:
		return false, run.StatusFailed, run.ReasonConditionError, r.masker.String(err.Error()) // the error names the if
	case !ok && depSkip:
		return false, run.StatusSkipped, depReason, ""
	case !ok:
		return false, run.StatusSkipped, run.ReasonConditionFalse, ""
	case failFast:
		return false, run.StatusSkipped, run.ReasonFailFast, ""
	}
	return true, "", "", ""
}

func (r *runner) stopReason() string {
	switch {
	case r.timedOut:
		return run.ReasonRunTimedOut
	case r.stopping && !r.cancelled:
		return run.ReasonRecordError
	}
	return run.ReasonRunCancelled
}

// reuse takes a step's result from the run being retried.
func (r *runner) reuse(s *stepRun, prev *run.StepRecord) {
	now := r.now().UTC()
	rec := &run.StepRecord{
		RunID:      r.rec.ID,
		StepID:     s.step.ID,
		Name:       s.step.Name,
		Status:     run.StatusSucceeded,
		Reason:     run.ReasonReused,
		ExitCode:   prev.ExitCode,
		Attempts:   prev.Attempts,
		StartedAt:  now,
		FinishedAt: now,
		Command:    prev.Command,
		Outputs:    prev.Outputs,
		ReusedFrom: r.opts.RetryOf,

		Fingerprint: s.fingerprint,
		RetryReason: s.retryReason,
	}
	if prev.ReusedFrom != "" {
		rec.ReusedFrom = prev.ReusedFrom
	}
	r.complete(s, rec)
}

// startAttempt renders the step and hands it to the engine.
func (r *runner) startAttempt(s *stepRun) {
	r.launchPrepared(s, r.prepare(s))
}

// prepared is a step's next attempt, rendered but not started.
type prepared struct {
	req engine.Request
	now time.Time
	err error // rendering failed: the attempt fails at once
}

// prepare renders the step's next attempt; the first attempt's inputs give the step its fingerprint.
func (r *runner) prepare(s *stepRun) prepared {
	s.attempt++
	s.state = stateRunning
	now := r.now().UTC()
	if s.attempt == 1 {
		s.startedAt = now
	}
	s.pid = 0
	s.command = ""
	req, err := r.request(s)
	if s.attempt == 1 && err == nil {
		s.fingerprint = r.fp.fingerprint(req)
	}
	return prepared{req: req, now: now, err: err}
}

// launchPrepared hands a prepared attempt to the engine, or records it failed when it cannot start.
func (r *runner) launchPrepared(s *stepRun, p prepared) {
	req, now, err := p.req, p.now, p.err
	if err == nil {
		req.ID = fmt.Sprintf("%s.%s.%d", r.rec.ID, s.step.ID, s.attempt)
		s.execID = req.ID
		r.byExec[req.ID] = s
		// With nothing else running (a chain), fork right here: the scheduler has nothing better to do,
		// and the step starts without waiting for a goroutine switch. With steps running, hand the fork
		// to the engine's goroutine and go back to their events.
		start := r.eng.Execute
		if r.running == 0 {
			start = r.eng.Start
		}
		r.running++
		if _, err = start(req); err != nil {
			r.running--
			delete(r.byExec, req.ID)
			s.execID = ""
		}
	}
	if err != nil {
		// The step could not start (a template failed, the program does not exist, ...): an attempt
		// that failed at once, recorded like any other.
		msg := r.masker.String(err.Error())
		r.record(func(c context.Context) error {
			return r.opts.Recorder.AttemptStarted(c, &run.AttemptStart{RunID: r.rec.ID, StepID: s.step.ID, Attempt: s.attempt, StartedAt: now, Command: s.command})
		})
		r.observe(run.Event{Type: run.EventStepStarted, StepID: s.step.ID, Attempt: s.attempt, Command: s.command})
		att := &run.AttemptRecord{RunID: r.rec.ID, StepID: s.step.ID, Attempt: s.attempt, Status: run.StatusFailed,
			ExitCode: -1, StartedAt: now, FinishedAt: now, Error: msg}
		r.attemptDone(s, att, isRetryableStartError(err))
	}
}

func isRetryableStartError(err error) bool {
	var ee interface{ IsRetryable() bool }
	if errors.As(err, &ee) {
		return ee.IsRetryable()
	}
	return false
}

// request builds the engine request of the step's next attempt.
func (r *runner) request(s *stepRun) (engine.Request, error) {
	st := s.step
	req := engine.Request{
		Timeout:  engine.NoTimeout,
		Secrets:  r.secret,
		Metadata: engine.Metadata{Source: "playbook"},
	}
	if st.Timeout > 0 {
		req.Timeout = st.Timeout
	}
	if st.StopSignal != 0 {
		req.StopSignal = st.StopSignal
	}
	if st.StopGrace > 0 {
		req.StopGrace = st.StopGrace
	}
	switch {
	case st.Run != nil:
		cmd, err := st.Run.Render(&r.state)
		if err != nil {
			return req, fmt.Errorf("run: %w", err)
		}
		req.Command = engine.Shell{Command: cmd, Shell: st.Shell}
		s.command = r.masker.String(cmd)
	case len(st.Exec) > 0:
		argv, err := r.renderAll(st.Exec, "exec")
		if err != nil {
			return req, err
		}
		req.Command = engine.Exec{Program: argv[0], Args: argv[1:]}
		s.command = r.masker.String(engine.QuoteArgs(argv))
	case st.Script != "":
		req.Command = engine.Script{Path: st.Script, Interpreter: st.Interpreter}
		if st.Interpreter != "" {
			s.command = st.Interpreter + " " + st.Script
		} else {
			s.command = st.Script
		}
	case st.AWS != nil:
		args, err := r.renderAll(st.AWS.Args, "aws args")
		if err != nil {
			return req, err
		}
		req.Command = engine.AWSCLI{Service: st.AWS.Service, Operation: st.AWS.Operation, Args: args,
			Profile: st.AWS.Profile, Region: st.AWS.Region}
		s.command = r.masker.String(engine.QuoteArgs(append([]string{"aws", st.AWS.Service, st.AWS.Operation}, args...)))
	default:
		return req, fmt.Errorf("step %q has nothing to run", st.ID)
	}

	env := make(map[string]string, len(r.baseEnv)+len(st.Env)+3)
	for k, v := range r.baseEnv {
		env[k] = v
	}
	for _, ev := range st.Env {
		v, err := ev.Value.Render(&r.state)
		if err != nil {
			return req, fmt.Errorf("env %s: %w", ev.Name, err)
		}
		env[ev.Name] = v
	}
	env["PLAYBOOK_STEP_ID"] = st.ID
	// The file is created here, 0600, rather than left to the step's `>> "$PLAYBOOK_OUTPUT"`: that
	// would create it with the step's umask (0644, typically), and a file that outlives its runner (a
	// kill -9) would hold whatever secret the step wrote for anyone who can reach it.
	s.outputsPath = filepath.Join(r.tmpDir, fmt.Sprintf("%s.%d.out", st.ID, s.attempt))
	if err := createPrivate(s.outputsPath, r.fixModes); err != nil {
		return req, fmt.Errorf("create the step's $PLAYBOOK_OUTPUT file: %w", err)
	}
	env["PLAYBOOK_OUTPUT"] = s.outputsPath
	req.Env = env

	req.Dir = r.pb.Dir
	if st.Dir != nil {
		d, err := st.Dir.Render(&r.state)
		if err != nil {
			return req, fmt.Errorf("dir: %w", err)
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.pb.Dir, d)
		}
		req.Dir = d
	}
	if r.logDir != "" {
		base := filepath.Join(r.logDir, st.ID)
		if s.attempt > 1 {
			base += "." + strconv.Itoa(s.attempt)
		}
		req.StdoutPath = base + ".stdout"
		req.StderrPath = base + ".stderr"
	}
	return req, nil
}

// renderAll renders a list of templates; an error names the item ("exec[2]: ...").
func (r *runner) renderAll(ts []*playbook.Template, what string) ([]string, error) {
	out := make([]string, len(ts))
	for i, t := range ts {
		v, err := t.Render(&r.state)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", what, i, err)
		}
		out[i] = v
	}
	return out, nil
}

// handle processes one engine event.
func (r *runner) handle(ev engine.Event) {
	if r.stopNote != "" {
		defer r.noteStop()
	}
	s := r.byExec[ev.ExecutionID]
	if s == nil {
		return
	}
	switch ev.Type {
	case engine.EventStarted:
		s.pid = ev.PID
		if ev.Command != "" && s.command == "" {
			s.command = ev.Command
		}
		start := ev.Time.UTC()
		if s.attempt == 1 {
			s.startedAt = start
		}
		r.record(func(c context.Context) error {
			return r.opts.Recorder.AttemptStarted(c, &run.AttemptStart{RunID: r.rec.ID, StepID: s.step.ID, Attempt: s.attempt,
				StartedAt: start, Command: s.command, PID: ev.PID, PIDStart: ev.StartTicks})
		})
		r.observe(run.Event{Type: run.EventStepStarted, StepID: s.step.ID, Attempt: s.attempt, PID: ev.PID, Command: s.command})
	case engine.EventStdout, engine.EventStderr:
		if r.opts.Observer == nil {
			return
		}
		stream := "stdout"
		if ev.Type == engine.EventStderr {
			stream = "stderr"
		}
		r.observe(run.Event{Type: run.EventStepOutput, StepID: s.step.ID, Attempt: s.attempt, Stream: stream,
			Line: ev.Line, Partial: ev.Partial, Omitted: ev.Omitted, Dropped: int(ev.Dropped)})
	case engine.EventCompleted, engine.EventFailed, engine.EventTimedOut, engine.EventCancelled:
		if ev.Result == nil {
			return
		}
		delete(r.byExec, ev.ExecutionID)
		s.execID = ""
		s.dropped += int(ev.Dropped) // lines the observer missed at the end of the attempt
		r.running--
		if r.ownEng {
			// Forget finished executions: the engine would otherwise keep every step's bounded output
			// in memory for its retention period.
			r.later = append(r.later, func() { r.eng.Cleanup() })
		}
		r.attemptFinished(s, ev.Result)
	}
}

// attemptFinished classifies an engine result and reads the step's outputs.
func (r *runner) attemptFinished(s *stepRun, res *engine.Result) {
	if s.pid == 0 && res.PID != 0 {
		s.pid = res.PID
	}
	if s.command == "" {
		s.command = res.Command
	}
	att := &run.AttemptRecord{
		RunID:      r.rec.ID,
		StepID:     s.step.ID,
		Attempt:    s.attempt,
		ExitCode:   res.ExitCode,
		Signal:     res.Signal,
		StartedAt:  res.StartedAt.UTC(),
		FinishedAt: res.FinishedAt.UTC(),
		Stdout:     run.Output{Data: res.Stdout, Bytes: res.StdoutBytes, Truncated: res.StdoutTruncated},
		Stderr:     run.Output{Data: res.Stderr, Bytes: res.StderrBytes, Truncated: res.StderrTruncated},
		Error:      r.masker.String(res.Error),
	}
	if att.StartedAt.IsZero() {
		att.StartedAt = r.now().UTC()
	}
	if att.FinishedAt.IsZero() {
		att.FinishedAt = r.now().UTC()
	}
	switch res.Status {
	case engine.StatusCompleted:
		if res.ExitCode == 0 {
			att.Status = run.StatusSucceeded
		} else {
			att.Status = run.StatusFailed
			if att.Error == "" {
				if res.Signal != 0 {
					att.Error = "killed by " + engine.SignalName(syscall.Signal(res.Signal))
				} else {
					att.Error = fmt.Sprintf("exit status %d", res.ExitCode)
				}
			}
		}
	case engine.StatusTimedOut:
		att.Status = run.StatusTimedOut
		if att.Error == "" {
			att.Error = fmt.Sprintf("timed out after %s", s.step.Timeout)
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
		w := r.masker.String(res.Warning)
		if att.Error == "" {
			att.Error = w
		} else {
			att.Error += "; " + w
		}
	}
	r.attemptDone(s, att, true)
}

// attemptDone records an attempt, then retries the step or finishes it.
func (r *runner) attemptDone(s *stepRun, att *run.AttemptRecord, retryable bool) {
	var outputs map[string]string
	if att.Status == run.StatusSucceeded {
		var err error
		outputs, err = ReadOutputs(s.outputsPath)
		if err != nil {
			att.Status = run.StatusFailed
			att.Error = r.masker.String(err.Error())
			retryable = false
		}
	}
	s.last = att
	r.later = append(r.later, func() {
		r.record(func(c context.Context) error { return r.opts.Recorder.AttemptFinished(c, att) })
	})

	if r.shouldRetry(s, att, retryable) {
		delay := retryDelay(s.step.Retry, s.attempt)
		s.state = stateBackoff
		r.observe(run.Event{Type: run.EventStepRetrying, StepID: s.step.ID, Attempt: s.attempt, Failed: att, Delay: delay, Dropped: s.dropped})
		s.dropped = 0
		s.retryTimer = time.AfterFunc(delay, func() { r.retries <- s })
		return
	}
	r.finishStepWith(s, att.Status, "", att.Error, outputs)
}

func (r *runner) shouldRetry(s *stepRun, att *run.AttemptRecord, retryable bool) bool {
	p := s.step.Retry
	if !retryable || s.attempt >= p.Attempts || r.cancelled || r.timedOut || r.killed || r.stopping {
		return false
	}
	switch att.Status {
	case run.StatusFailed:
		if len(p.OnExitCodes) == 0 {
			return true
		}
		for _, c := range p.OnExitCodes {
			if att.ExitCode == c && att.Signal == 0 {
				return true
			}
		}
		return false
	case run.StatusTimedOut:
		return len(p.OnExitCodes) == 0
	}
	return false
}

// retryDelay is the wait after the given (failed) attempt: delay × backoff^(attempt-1), capped by
// max_delay.
func retryDelay(p playbook.Retry, attempt int) time.Duration {
	d := float64(p.Delay)
	if p.Backoff > 1 {
		for i := 1; i < attempt; i++ {
			d *= p.Backoff
			if p.MaxDelay > 0 && d >= float64(p.MaxDelay) {
				break
			}
		}
	}
	if p.MaxDelay > 0 && d > float64(p.MaxDelay) {
		d = float64(p.MaxDelay)
	}
	if d > float64(1<<62) {
		d = float64(1 << 62)
	}
	return time.Duration(d)
}

func (r *runner) finishStep(s *stepRun, status run.Status, reason, errMsg string) {
	r.finishStepWith(s, status, reason, errMsg, nil)
}

// finishStepWith writes the step's final record and releases its dependents.
func (r *runner) finishStepWith(s *stepRun, status run.Status, reason, errMsg string, outputs map[string]string) {
	if status == run.StatusCancelled && r.timedOut && reason == "" {
		reason = run.ReasonRunTimedOut
	}
	rec := &run.StepRecord{
		RunID:           r.rec.ID,
		StepID:          s.step.ID,
		Name:            s.step.Name,
		Status:          status,
		Reason:          reason,
		Error:           errMsg,
		ExitCode:        -1,
		Attempts:        s.attempt,
		Command:         s.command,
		ContinueOnError: s.step.ContinueOnError && (status == run.StatusFailed || status == run.StatusTimedOut),
		Fingerprint:     s.fingerprint,
		RetryReason:     s.retryReason,
		RetryDetail:     s.retryDetail,
	}
	if s.attempt > 0 {
		rec.StartedAt = s.startedAt
		rec.FinishedAt = r.now().UTC()
	}
	if a := s.last; a != nil {
		rec.ExitCode = a.ExitCode
		rec.Signal = a.Signal
		rec.Stdout = a.Stdout
		rec.Stderr = a.Stderr
		rec.FinishedAt = a.FinishedAt
	}
	if len(outputs) > 0 {
		rec.Outputs = make(map[string]string, len(outputs))
		for k, v := range outputs {
			// A secret can straddle the = (a base64 token ending in =, written alone): then the name
			// itself gives the secret away and is masked too.
			mv := r.masker.String(v)
			if r.masker.String(k+"="+v) != k+"="+mv {
				k = "***"
			}
			rec.Outputs[k] = mv
		}
	}
	r.complete(s, rec)
	// Expressions see the real values, the record the masked ones.
	if len(outputs) > 0 {
		st := r.state.Steps[s.step.ID]
		st.Outputs = outputs
		r.state.Steps[s.step.ID] = st
	}
}

// complete records a finished step, updates what expressions see and releases its dependents.
func (r *runner) complete(s *stepRun, rec *run.StepRecord) {
	s.record = rec
	s.state = stateFinished
	s.last = nil
	r.done++
	r.state.Steps[s.step.ID] = playbook.StepState{Status: string(rec.Status), ExitCode: rec.ExitCode,
		Outputs: rec.Outputs, Attempts: rec.Attempts}
	if s.failed() {
		if r.pb.FailFast {
			r.failFast = true
		}
		if r.state.Run.Status == string(run.StatusSucceeded) {
			r.state.Run.Status = string(run.StatusFailed)
		}
	}
	dropped := s.dropped
	s.dropped = 0
	r.later = append(r.later, func() {
		r.record(func(c context.Context) error { return r.opts.Recorder.StepFinished(c, rec) })
		r.observe(run.Event{Type: run.EventStepFinished, StepID: s.step.ID, Attempt: rec.Attempts, Step: rec, Dropped: dropped})
		// The bounded output has been recorded; keeping it for every step would make the runner's
		// memory grow with the number of steps.
		rec.Stdout.Data, rec.Stderr.Data = nil, nil
	})
	for _, d := range s.dependents {
		d.unfinished--
		if d.unfinished == 0 {
			r.makeReady(d)
		}
	}
}

// finish settles the run's status and records it.
func (r *runner) finish() (*Summary, error) {
	r.rec.FinishedAt = r.now().UTC()
	var failed []string
	for _, s := range r.steps {
		if s.failed() {
			failed = append(failed, s.step.ID)
		}
	}
	sort.Strings(failed)
	var intr *run.Interrupt
	switch {
	case r.timedOut:
		r.rec.Status, r.rec.ExitCode = run.StatusTimedOut, exitTimedOut
		r.rec.Error = r.cause.Error()
	case r.cancelled:
		r.rec.Status, r.rec.ExitCode = run.StatusCancelled, exitInterrupt
		if errors.As(r.cause, &intr) {
			r.rec.ExitCode = intr.ExitCode()
		}
		if r.cause != nil {
			r.rec.Error = r.cause.Error()
		}
	case len(failed) > 0:
		r.rec.Status, r.rec.ExitCode = run.StatusFailed, exitFailed
		r.rec.Error = "failed steps: " + strings.Join(failed, ", ")
	default:
		r.rec.Status, r.rec.ExitCode = run.StatusSucceeded, exitSucceeded
	}
	if r.recordErr != nil {
		r.rec.ExitCode = exitRecord
		if r.rec.Status == run.StatusSucceeded {
			// Its steps may all have succeeded, but a run whose record is incomplete has not.
			r.rec.Status = run.StatusFailed
			r.rec.Error = "the run could not be recorded: " + r.recordErr.Error()
		}
	}
	r.rec.Error = r.masker.String(r.rec.Error)
	r.noteStop()
	if f, ok := r.opts.Observer.(run.Flusher); ok && r.unflushed {
		// RunFinished waits for the database, which may be locked or full: what happened shows first.
		f.Flush()
		r.unflushed = false
	}
	finErr := r.record(func(c context.Context) error { return r.opts.Recorder.RunFinished(c, &r.rec) })
	if finErr != nil {
		// RunFinished reports every earlier failure too, and what was not written: its error is the
		// one to show. A run whose record is incomplete has not succeeded, whatever its steps did.
		r.recordErr = finErr
		if r.rec.Status == run.StatusSucceeded {
			r.rec.Status = run.StatusFailed
			r.rec.Error = r.masker.String("the run could not be recorded: " + finErr.Error())
		}
	}
	if r.recordErr != nil {
		r.rec.ExitCode = exitRecord
	}
	sum := &Summary{Run: *r.runSnapshot(), RecordErr: r.recordErr}
	for _, s := range r.steps {
		sum.Steps = append(sum.Steps, s.record)
	}
	r.observe(run.Event{Type: run.EventRunFinished, Run: &sum.Run})
	if r.recordErr != nil {
		return sum, fmt.Errorf("%w: %w", ErrRecord, r.recordErr)
	}
	return sum, nil
}

// flushLag is how long what a Flusher buffered may wait to be shown while the run goes on. Flushing
// whenever the loop was about to wait cost a chain of short steps two writes a step (one after the
// step started, one after it ended); with the lag, one write carries the lines of a dozen such steps,
// and nobody watching can tell 10 ms.
const flushLag = 10 * time.Millisecond

// holdPoll is how often a run whose Recorder is stalled (Staller) asks again whether it may start
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

// recordFailed stops the run after the first recording failure: nothing new starts but always()
// steps, steps waiting to retry give up, running steps finish (and are recorded if the Recorder can).
func (r *runner) recordFailed(err error) {
	r.recordErr = err
	if r.stopping || r.cancelled || r.timedOut {
		return
	}
	r.stopping = true
	if r.rec.StartedAt.IsZero() || r.done < len(r.steps) {
		r.stopNote = "recording failed: " + r.masker.String(err.Error())
		r.noteStop()
	}
	r.abandonBackoff()
}

// noteStop reports the stop that recordFailed began, once no step handed to the engine before it
// is still to report its start: the events then never show a step starting after run_cancelling,
// and every step that starts after the stop was launched before it.
func (r *runner) noteStop() {
	if r.stopNote == "" {
		return
	}
	for _, s := range r.steps {
		if s.state == stateRunning && s.execID != "" && s.pid == 0 {
			return // its started (or refused) event is on the way
		}
	}
	r.observe(run.Event{Type: run.EventRunCancelling, Reason: r.stopNote})
	r.stopNote = ""
}

// recordContext is the context of one Recorder write: it expires recordTimeout after it was made, and
// the writes of the next second share it, so each has between recordTimeout less a second and
// recordTimeout. A context (and its timer) per write cost 2 us on the run loop, three writes a step.
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
	c := r.rec
	c.StepIDs = append([]string(nil), r.rec.StepIDs...)
	return &c
}

// readyQueue orders ready steps by file position, so that the run is deterministic and follows the
// order the author wrote when there is a choice; retries go first.
type readyQueue []*stepRun

func (q readyQueue) Len() int { return len(q) }
func (q readyQueue) Less(i, j int) bool {
	if (q[i].attempt > 0) != (q[j].attempt > 0) {
		return q[i].attempt > 0
	}
	return q[i].index < q[j].index
}
func (q readyQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *readyQueue) Push(x any)   { *q = append(*q, x.(*stepRun)) }
func (q *readyQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	*q = old[:len(old)-1]
	return s
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

// maskedParamsJSON is the params as recorded: secrets replaced by "***", keys sorted.
func maskedParamsJSON(pb *playbook.Playbook, params playbook.Params) (string, error) {
	out := make(map[string]any, len(params))
	secret := map[string]bool{}
	for _, p := range pb.Params {
		secret[p.Name] = p.Secret
	}
	for k, v := range params {
		if secret[k] {
			out[k] = "***"
		} else {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode params: %w", err)
	}
	return string(b), nil
}
