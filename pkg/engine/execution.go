package engine

import (
	"container/list"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/playbookhq/playbook/internal/mask"
	"github.com/playbookhq/playbook/internal/proc"
)

// execution is the state of one request. Its status moves pending → running → terminal under mu, and a
// terminal status is set exactly once, after the Result is stored (so whoever sees the status sees the
// Result) and before done is closed.
type execution struct {
	e        *Engine
	id       string
	sp       *spec
	display  string // masked
	masker   *mask.Masker
	metadata Metadata
	seq      uint64
	created  time.Time
	inline   bool // Run executes it on its own goroutine

	status atomic.Pointer[Status]
	result atomic.Pointer[Result]
	done   chan struct{}

	// ready is set, under mu, once the started event has been emitted; output goroutines wait for it so
	// that no line event precedes started.
	ready atomic.Bool

	mu         sync.Mutex
	elem       *list.Element // in Engine.queue while pending and queued (guarded by Engine.mu)
	pid        int
	startTicks uint64 // when pid started, in clock ticks since boot; 0 = unknown
	startedAt  time.Time
	stopReason Status // first of cancelled, timed_out, failed asked while the leader was alive
	stopMsg    string
	stopCode   Code
	signalled  bool // the stop signal was sent
	killed     bool // SIGKILL was sent
	leaderGone bool // the group leader exited: no more signals (its id may be reused once reaped)
	timer      *time.Timer
	graceTimer *time.Timer
	stdout     *stream
	stderr     *stream
}

func newExecution(e *Engine, sp *spec) *execution {
	m := mask.New(sp.secrets)
	ex := &execution{e: e, id: sp.id, sp: sp, masker: m, display: m.String(sp.cmd.display),
		metadata: sp.metadata, created: time.Now(), done: make(chan struct{})}
	st := StatusPending
	ex.status.Store(&st)
	return ex
}

func (ex *execution) state() Status { return *ex.status.Load() }

func (ex *execution) setState(s Status) { ex.status.Store(&s) }

func (ex *execution) event(t EventType) Event {
	return Event{Type: t, ExecutionID: ex.id, Time: time.Now(), Metadata: ex.metadata}
}

// waitStarted blocks an output goroutine until the started event is out. The runner holds mu from before
// the process starts until started is emitted, so taking mu once is enough.
func (ex *execution) waitStarted() {
	if !ex.ready.Load() {
		ex.mu.Lock()
		ex.mu.Unlock() // empty on purpose: returning means the runner has let go
	}
}

// run starts the process and sees it to a terminal state. It is called on a runner goroutine that holds
// a concurrency slot.
func (ex *execution) run() {
	if st, _ := ex.start(); st != nil { // only an inline start returns an error
		ex.monitor(st)
	}
}

// started is a started process and what watching it needs.
type started struct {
	proc  *process
	files []*logFile
}

// start starts the process and emits the started events; it returns nil when the execution ended without
// a process (cancelled while waiting for its slot, or the start failed). The caller must then monitor it.
// When the start failed and the request's files were left unchecked (validate's trust), it checks them;
// if they are the reason, it returns the validation error, having told nobody: the caller unregisters
// the execution and returns the error, as if validation had refused the request.
func (ex *execution) start() (*started, error) {
	cfg := &ex.e.cfg
	ex.mu.Lock()
	if ex.state() != StatusPending { // cancelled while waiting for the slot
		ex.mu.Unlock()
		return nil, nil
	}
	files, outFiles, errFiles, err := outputFiles(ex.sp, cfg.LogDir)
	if err != nil {
		ex.finishUnstarted(StatusFailed, CodeIO, err.Error())
		ex.mu.Unlock()
		return nil, nil
	}
	ex.stdout = newStream(ex, EventStdout, outFiles)
	ex.stderr = newStream(ex, EventStderr, errFiles)
	cmd := &exec.Cmd{
		Path:        ex.sp.cmd.path,
		Args:        ex.sp.cmd.argv,
		Env:         ex.sp.env,
		Dir:         ex.sp.dir,
		SysProcAttr: sysProcAttr(),
		WaitDelay:   cfg.WaitDelay,
	}
	if ex.e.devNull != nil { // a nil *os.File in the interface would not mean "no stdin"
		cmd.Stdin = ex.e.devNull
	}
	// The started event carries the child's start time for crash recovery; the clock around the fork
	// gives it without a /proc read in most cases (proc.ForkClock).
	clock := proc.BeforeFork()
	child, err := startProcess(cmd, ex.stdout, ex.stderr)
	if err != nil {
		for _, f := range files {
			f.close()
		}
		if ex.sp.unchecked != nil {
			if _, verr := ex.e.cfg.validate(*ex.sp.unchecked, false); verr != nil {
				ex.discardLocked(verr)
				ex.mu.Unlock()
				return nil, verr
			}
		}
		ex.finishUnstarted(StatusFailed, CodeSpawnFailed, "start: "+err.Error())
		ex.mu.Unlock()
		return nil, nil
	}
	ex.sp.unchecked = nil // the fork found the files; the request need not be kept
	ex.pid = child.pid
	ex.startTicks, _ = clock.Start(ex.pid)
	ex.startedAt = time.Now()
	ex.e.running.Add(1) // before the status, so whoever sees running is counted by Running
	ex.setState(StatusRunning)
	if ex.sp.timeout > 0 {
		ex.timer = time.AfterFunc(ex.sp.timeout, ex.timedOut)
	}
	if ex.e.hub.listening() {
		ev := ex.event(EventStatusChanged)
		ev.OldStatus, ev.NewStatus = StatusPending, StatusRunning
		ex.e.hub.emit(ev)
		ev = ex.event(EventStarted)
		ev.PID, ev.StartTicks, ev.Command = ex.pid, ex.startTicks, ex.display
		ex.e.hub.emit(ev)
	}
	ex.ready.Store(true)
	ex.mu.Unlock()
	return &started{proc: child, files: files}, nil
}

// monitor reads the started process's output until it has ended, then publishes the Result.
func (ex *execution) monitor(st *started) {
	status, waitErr := st.proc.wait(ex.leaderExited, ex.e.cfg.WaitDelay)
	ex.stdout.finish()
	ex.stderr.finish()
	for _, f := range st.files {
		f.close()
	}
	ex.finish(status, waitErr, st.files)
}

// leaderExited runs when the group leader has exited but is not yet reaped (Linux), or right after it was
// reaped (elsewhere). Killing the group now ends background jobs the command left behind, which would
// otherwise hold the pipes open; while the leader is an unreaped zombie its id, hence the group id, cannot
// be reused, so the signal cannot reach a stranger.
func (ex *execution) leaderExited() {
	ex.mu.Lock()
	ex.leaderGone = true
	if ex.timer != nil {
		ex.timer.Stop()
	}
	if ex.graceTimer != nil {
		ex.graceTimer.Stop()
	}
	pid := ex.pid
	ex.mu.Unlock()
	_ = signalGroup(pid, syscall.SIGKILL)
}

func (ex *execution) timedOut() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.stopLocked(StatusTimedOut, CodeTimeout, "timed out after "+ex.sp.timeout.String(), false)
}

func (ex *execution) outputExceeded(typ EventType) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.stopLocked(StatusFailed, CodeOutputSizeExceeded,
		fmt.Sprintf("%s exceeded the output limit of %d bytes", typ, ex.sp.limit), false)
}

// stopLocked runs the stop ladder on a running execution: the stop signal to the whole group, then SIGKILL
// after the grace (at once with kill or no grace). The first reason asked wins.
func (ex *execution) stopLocked(reason Status, code Code, msg string, kill bool) {
	if ex.state() != StatusRunning || ex.leaderGone {
		return
	}
	if ex.stopReason == "" {
		ex.stopReason, ex.stopCode, ex.stopMsg = reason, code, msg
	}
	if ex.killed {
		return
	}
	if kill || ex.sp.grace == 0 {
		ex.killed = true
		if ex.graceTimer != nil {
			ex.graceTimer.Stop()
		}
		_ = signalGroup(ex.pid, syscall.SIGKILL)
		return
	}
	if ex.signalled {
		return
	}
	ex.signalled = true
	_ = signalGroup(ex.pid, ex.sp.stopSig)
	if !isStopSignal(ex.sp.stopSig) {
		// A stopped process (SIGSTOP, Ctrl-Z) cannot act on the stop signal before it runs again: continue
		// the group (as systemd does), so that it handles the signal within the grace instead of waiting
		// for SIGKILL. The signal is already pending, so it is delivered as soon as the process resumes.
		_ = signalGroup(ex.pid, syscall.SIGCONT)
	}
	ex.graceTimer = time.AfterFunc(ex.sp.grace, ex.graceExpired)
}

// isStopSignal reports whether sig stops a process; a SIGCONT after it would undo it.
func isStopSignal(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
		return true
	}
	return false
}

func (ex *execution) graceExpired() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if !ex.leaderGone && !ex.killed {
		ex.killed = true
		_ = signalGroup(ex.pid, syscall.SIGKILL)
	}
}

// finishUnstarted makes a pending execution terminal without a process (cancelled before start, spawn or
// file failure). Called with mu held.
func (ex *execution) finishUnstarted(st Status, code Code, msg string) {
	now := time.Now().UTC()
	r := &Result{ID: ex.id, Status: st, Command: ex.display, ExitCode: -1, FinishedAt: now,
		Error: ex.masker.String(msg), ErrorCode: code}
	ex.publishLocked(r)
}

// discardLocked ends an execution that start found invalid, without events: nobody was told it started,
// and its caller is about to unregister it. A Wait that looked it up meanwhile gets the failure.
func (ex *execution) discardLocked(err error) {
	ex.result.Store(&Result{ID: ex.id, Status: StatusFailed, Command: ex.display, ExitCode: -1,
		FinishedAt: time.Now().UTC(), Error: ex.masker.String(err.Error()), ErrorCode: CodeValidation})
	ex.setState(StatusFailed)
	close(ex.done)
}

// finish classifies how the process ended and publishes the Result.
func (ex *execution) finish(status exit, waitErr error, files []*logFile) {
	now := time.Now()
	ex.mu.Lock()
	defer ex.mu.Unlock()
	r := &Result{ID: ex.id, Command: ex.display, PID: ex.pid, ExitCode: -1,
		StartedAt: ex.startedAt.UTC(), FinishedAt: now.UTC(), Duration: now.Sub(ex.startedAt)}
	switch ws := status.ws; {
	case !status.ok:
	case ws.Signaled():
		r.Signal = int(ws.Signal())
	case ws.Exited():
		r.ExitCode = ws.ExitStatus()
	}
	out, errs := ex.stdout, ex.stderr
	r.Stdout, r.StdoutBytes, r.StdoutTruncated = out.sink.capture.Bytes(), out.total, out.sink.capture.omitted() > 0
	r.Stderr, r.StderrBytes, r.StderrTruncated = errs.sink.capture.Bytes(), errs.total, errs.sink.capture.omitted() > 0
	if out.sink.file != nil {
		r.StdoutFile = out.sink.file.Name()
	}
	if errs.sink.file != nil {
		r.StderrFile = errs.sink.file.Name()
	}

	var warnings []string
	if errors.Is(waitErr, errOutputCut) || out.cut != nil || errs.cut != nil {
		warnings = append(warnings, "output may be incomplete: a background process kept stdout/stderr open "+
			"after the process group was gone")
	}
	for _, s := range []*stream{out, errs} {
		if s.sink.fileErr != nil {
			warnings = append(warnings, fmt.Sprintf("%s spill file incomplete: %v", s.typ, s.sink.fileErr))
		}
	}
	if w := fileWarnings(files); w != "" {
		warnings = append(warnings, w)
	}
	r.Warning = ex.masker.String(strings.Join(warnings, "; "))

	switch {
	case ex.stopReason != "":
		r.Status, r.ErrorCode, r.Error = ex.stopReason, ex.stopCode, ex.stopMsg
		if r.Signal != 0 {
			// One clause: "timed out after 5s; killed by SIGTERM, signal 15", and a kill says its
			// signal once: "killed by SIGKILL, signal 9", not "killed (killed by ...)".
			if r.Error == "killed" {
				r.Error = exitText(r.ExitCode, r.Signal)
			} else {
				r.Error += "; " + exitText(r.ExitCode, r.Signal)
			}
		}
	case out.exceeded || errs.exceeded:
		// The limit was passed by output read after the leader had exited.
		typ := EventStdout
		if !out.exceeded {
			typ = EventStderr
		}
		r.Status, r.ErrorCode = StatusFailed, CodeOutputSizeExceeded
		r.Error = fmt.Sprintf("%s exceeded the output limit of %d bytes", typ, ex.sp.limit)
	default:
		r.Status = StatusCompleted
		if r.ExitCode != 0 {
			r.ErrorCode, r.Error = CodeCommandFailed, exitText(r.ExitCode, r.Signal)
		}
	}
	r.Error = ex.masker.String(r.Error)
	ex.publishLocked(r)
}

// publishLocked stores the Result, then the terminal status, then releases waiters and emits the final
// events. Called with mu held, exactly once per execution.
func (ex *execution) publishLocked(r *Result) {
	old := ex.state()
	if old.Terminal() {
		panic("engine: execution " + ex.id + " finished twice")
	}
	if old == StatusRunning {
		ex.e.running.Add(-1)
	}
	ex.result.Store(r)
	ex.setState(r.Status)
	close(ex.done)
	if !ex.e.hub.listening() {
		return
	}
	ev := ex.event(EventStatusChanged)
	ev.OldStatus, ev.NewStatus = old, r.Status
	ex.e.hub.emit(ev)
	ev = ex.event(terminalEvent(r.Status))
	ev.Result = r
	ev.Error = r.Error
	if r.Status == StatusTimedOut {
		ev.TimeoutMS = ex.sp.timeout.Milliseconds()
	}
	ex.e.hub.emit(ev)
}

func terminalEvent(s Status) EventType {
	switch s {
	case StatusCompleted:
		return EventCompleted
	case StatusTimedOut:
		return EventTimedOut
	case StatusCancelled:
		return EventCancelled
	}
	return EventFailed
}

// stop asks the execution to end: a pending one becomes terminal at once and never starts; a running one
// gets the stop ladder (or SIGKILL with kill). A finished one is left alone.
func (ex *execution) stop(reason Status, code Code, msg string, kill bool) {
	if ex.state() == StatusPending {
		e := ex.e
		e.mu.Lock()
		ex.mu.Lock()
		if ex.state() == StatusPending {
			if ex.elem != nil {
				e.queue.Remove(ex.elem)
				ex.elem = nil
			}
			// Without elem the runner already holds the slot; it sees the terminal status and moves on.
			ex.finishUnstarted(reason, code, msg+" before it started")
			ex.mu.Unlock()
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
	} else {
		ex.mu.Lock()
	}
	ex.stopLocked(reason, code, msg, kill)
	ex.mu.Unlock()
}
