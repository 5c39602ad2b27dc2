package engine

import (
	"cmp"
	"container/list"
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Engine runs executions: each Request becomes one child process in its own process group, watched until
// it ends, with its output captured within bounds and its lifecycle published as events. Its methods are
// safe for concurrent use. Create it with New and release it with Close. Between executions it keeps
// the goroutines that ran them, at most one per slot used at once, for a second (or until Close).
type Engine struct {
	cfg settings
	hub hub

	mu     sync.Mutex
	execs  map[string]*execution
	queue  list.List // executions waiting for a slot, FIFO
	active int       // slots in use (running, or about to start)
	seq    uint64
	closed bool

	running atomic.Int64
	runners sync.WaitGroup // goroutines that run executions
	pool    sync.Mutex     // guards idlers and live
	idlers  []*worker      // workers waiting for a job, most recently idle last
	live    int            // worker goroutines alive
	quit    chan struct{}  // closed by Close: idle workers end
	workers sync.WaitGroup
	idle    time.Duration // workerIdle; tests change it before the first execution
	devNull *os.File      // every child's stdin, opened once instead of once per child; nil: os/exec's own

	closeOnce   sync.Once
	closeDone   chan struct{}
	cleanupStop chan struct{}
	cleanupDone chan struct{}
}

// New returns an Engine configured by cfg (zero fields take their defaults). An invalid cfg gives a
// CodeInvalidConfig error. With cfg.AutoCleanup it starts the cleanup goroutine, which Close stops.
func New(cfg Config) (*Engine, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: s, execs: make(map[string]*execution), closeDone: make(chan struct{}),
		quit: make(chan struct{}), idle: workerIdle}
	if f, err := os.Open(os.DevNull); err == nil {
		e.devNull = f
	}
	if s.AutoCleanup {
		e.cleanupStop = make(chan struct{})
		e.cleanupDone = make(chan struct{})
		go e.cleanupLoop()
	}
	return e, nil
}

// Execute validates req and registers it, and returns its id at once; the process runs in the background.
// Nothing is started when validation fails (a CodeValidation error with a *ValidationError inside).
//
// When fewer than Config.MaxConcurrent executions are running, the process starts right away on a new
// goroutine; otherwise the execution waits, pending, in a FIFO queue, and starts when a slot frees. A full
// queue (Config.MaxPending) gives CodeConcurrencyLimit and registers nothing. After Close, Execute gives
// CodeClosed.
func (e *Engine) Execute(req Request) (string, error) {
	ex, err := e.execute(req, false, false)
	if err != nil {
		return "", err
	}
	return ex.id, nil
}

// Start is Execute, except that when a slot is free the process is started on the calling goroutine
// before Start returns (a fork takes a fraction of a millisecond); only watching it is left to a new
// goroutine. A caller that launches one step as soon as another ends (a chain) so saves the latency of
// a goroutine switch before every fork; forks are serialised in the process anyway, so nothing runs
// less in parallel. When no slot is free the execution waits, pending, as with Execute. Start returns the
// same validation errors as Execute, but for one that starts at once and writes no files it lets the
// fork find a missing working directory or program path and only then checks why (saving two stats a
// start); such a refused request is unregistered and emits no event.
func (e *Engine) Start(req Request) (string, error) {
	ex, err := e.execute(req, false, true)
	if err != nil {
		return "", err
	}
	if ex.inline {
		st, err := e.startInline(ex)
		if err != nil {
			return "", err
		}
		e.spawn(func() {
			if st != nil {
				ex.monitor(st)
			}
			e.passSlot()
		})
	}
	return ex.id, nil
}

// execute validates and registers req. With cancelled, the execution is registered already cancelled
// and never queued or started. With inline, an execution that gets a slot at once is not started: the
// caller must start it (ex.start) and, unless that fails, monitor it.
func (e *Engine) execute(req Request, cancelled, inline bool) (*execution, error) {
	// An execution started on the caller's goroutine may leave its files to the fork (validate's
	// trust): a failed start is then checked before Start or Run returns.
	sp, err := e.cfg.validate(req, inline && !cancelled)
	if err != nil {
		return nil, err
	}
	ex := newExecution(e, sp)
	var start bool
	for {
		e.mu.Lock()
		switch {
		case e.closed:
			e.mu.Unlock()
			return nil, &Error{Code: CodeClosed, ID: ex.id, Msg: "engine closed"}
		case e.execs[ex.id] != nil:
			e.mu.Unlock()
			return nil, invalid(InvalidID, "id", ex.id, "an execution with this id exists")
		}
		start = e.active < e.cfg.MaxConcurrent && e.queue.Len() == 0 && !cancelled
		if sp.unchecked == nil || start {
			break
		}
		// It waits for a slot and will start elsewhere, after this returns: check its files now,
		// as Execute does, outside the lock (they are stats).
		e.mu.Unlock()
		if _, err := e.cfg.validate(*sp.unchecked, false); err != nil {
			return nil, err
		}
		sp.unchecked = nil
	}
	switch {
	case cancelled:
		ex.mu.Lock()
		ex.finishUnstarted(StatusCancelled, CodeCancelled, "cancelled before it started")
		ex.mu.Unlock()
	case start:
		e.active++
		e.runners.Add(1)
	case e.cfg.MaxPending > 0 && e.queue.Len() >= e.cfg.MaxPending:
		e.mu.Unlock()
		return nil, &Error{Code: CodeConcurrencyLimit, ID: ex.id, Limit: int64(e.cfg.MaxPending),
			Msg: "pending queue full"}
	default:
		ex.elem = e.queue.PushBack(ex)
	}
	e.seq++
	ex.seq = e.seq
	e.execs[ex.id] = ex
	e.mu.Unlock()
	switch {
	case start && inline:
		ex.inline = true
	case start:
		e.spawn(func() { e.runFrom(ex) })
	}
	return ex, nil
}

// runFrom runs ex, then keeps the slot and goroutine for the next queued execution, until the queue is
// empty.
func (e *Engine) runFrom(ex *execution) {
	defer e.runners.Done()
	for ex != nil {
		ex.run()
		ex = e.next()
	}
}

// next hands the caller's slot to the first queued execution, or frees the slot.
func (e *Engine) next() *execution {
	e.mu.Lock()
	defer e.mu.Unlock()
	if front := e.queue.Front(); front != nil {
		ex := e.queue.Remove(front).(*execution)
		ex.elem = nil
		return ex
	}
	e.active--
	return nil
}

// passSlot ends an inline execution's hold on its slot: it goes to a new runner goroutine for the next
// queued execution, or is freed.
func (e *Engine) passSlot() {
	if next := e.next(); next != nil {
		e.spawn(func() { e.runFrom(next) }) // keeps the runners count taken for the inline execution
		return
	}
	e.runners.Done()
}

// workerIdle is how long a worker goroutine waits for its next job before it ends.
const workerIdle = time.Second

// worker is a goroutine that runs executions one after another; job hands it the next (capacity 1,
// so spawn never blocks on it).
type worker struct{ job chan func() }

// spawn runs job on an idle worker goroutine, else on a new one. A worker waits for its next job for
// workerIdle (until Close) before it ends: a run of many short executions would otherwise create a
// goroutine for each, and grow its stack from the minimum to what a fork and a poll loop need (stack
// copying showed in a profile of 1,000 parallel steps). Idle workers are a stack under a mutex rather
// than receivers on a shared channel, so that a worker counts as idle from the moment it says so: the
// number of workers is then bounded by the executions that ran at once, which a channel receiver still
// on its way back to the select would not guarantee.
func (e *Engine) spawn(job func()) {
	e.pool.Lock()
	if n := len(e.idlers); n > 0 {
		w := e.idlers[n-1]
		e.idlers[n-1] = nil
		e.idlers = e.idlers[:n-1]
		e.pool.Unlock()
		w.job <- job
		return
	}
	e.live++
	e.pool.Unlock()
	e.workers.Add(1)
	go e.work(&worker{job: make(chan func(), 1)}, job)
}

func (e *Engine) work(w *worker, job func()) {
	defer e.workers.Done()
	idle := time.NewTimer(e.idle)
	defer idle.Stop()
	for {
		job()
		e.pool.Lock()
		e.idlers = append(e.idlers, w)
		e.pool.Unlock()
		idle.Reset(e.idle)
		select {
		case job = <-w.job:
			continue
		case <-idle.C:
		case <-e.quit:
		}
		if e.retire(w) {
			return
		}
		job = <-w.job // spawn took w off the stack before it could retire: its job is on the way
	}
}

// retire takes w off the idle stack and reports true, or reports false when spawn already took it.
func (e *Engine) retire(w *worker) bool {
	e.pool.Lock()
	defer e.pool.Unlock()
	for i, x := range e.idlers {
		if x == w {
			last := len(e.idlers) - 1
			copy(e.idlers[i:], e.idlers[i+1:])
			e.idlers[last] = nil
			e.idlers = e.idlers[:last]
			e.live--
			return true
		}
	}
	return false
}

// poolCounts reports the live workers and how many of them wait for a job (for tests).
func (e *Engine) poolCounts() (live, idle int) {
	e.pool.Lock()
	defer e.pool.Unlock()
	return e.live, len(e.idlers)
}

// startInline starts an execution that got its slot in Start or Run. When the start found the request
// invalid (validate's trust), it unregisters the execution, so that, as for a request refused up
// front, its id is free and List omits it, and gives its slot on.
func (e *Engine) startInline(ex *execution) (*started, error) {
	st, err := ex.start()
	if err != nil {
		e.mu.Lock()
		if e.execs[ex.id] == ex {
			delete(e.execs, ex.id)
		}
		e.mu.Unlock()
		e.passSlot()
	}
	return st, err
}

func (e *Engine) lookup(id string) (*execution, error) {
	e.mu.Lock()
	ex := e.execs[id]
	e.mu.Unlock()
	if ex == nil {
		return nil, &Error{Code: CodeNotFound, ID: id, Msg: "execution not found"}
	}
	return ex, nil
}

// Wait blocks until the execution is terminal and returns its Result. It does not poll: it waits on the
// execution's completion. ctx only bounds the wait (its expiry returns ctx.Err() and leaves the execution
// alone). An unknown id gives CodeNotFound. A non-zero exit, timeout or cancellation is not an error of
// Wait: read Result.Status, or Result.Err.
func (e *Engine) Wait(ctx context.Context, id string) (*Result, error) {
	ex, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-ex.done:
		return ex.result.Load(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run is Execute followed by Wait. If ctx is done before the execution ends, Run cancels it (a pending
// execution never starts; a running one gets the stop ladder: stop signal, grace, SIGKILL) and returns
// the cancelled Result once the process is gone. With ctx already done, the request is validated and
// registered as cancelled without starting. The error is non-nil only when no execution could be
// registered (validation, closed engine, full queue).
func (e *Engine) Run(ctx context.Context, req Request) (*Result, error) {
	ex, err := e.execute(req, ctx.Err() != nil, true)
	if err != nil {
		return nil, err
	}
	if ex.inline {
		st, err := e.startInline(ex)
		if err != nil {
			return nil, err
		}
		// Registered after the start: a ctx done meanwhile calls it at once, which stops the process.
		stop := context.AfterFunc(ctx, func() {
			ex.stop(StatusCancelled, CodeCancelled, "cancelled: "+context.Cause(ctx).Error(), false)
		})
		if st != nil {
			ex.monitor(st)
		}
		e.passSlot()
		stop()
		return ex.result.Load(), nil
	}
	select {
	case <-ex.done:
	case <-ctx.Done():
		ex.stop(StatusCancelled, CodeCancelled, "cancelled: "+context.Cause(ctx).Error(), false)
		<-ex.done
	}
	return ex.result.Load(), nil
}

// Status returns the current status of an execution, or CodeNotFound.
func (e *Engine) Status(id string) (Status, error) {
	ex, err := e.lookup(id)
	if err != nil {
		return "", err
	}
	return ex.state(), nil
}

// Result returns the Result of a terminal execution. While the execution is pending or running it gives a
// CodeNotFinished error; use Wait to block. An unknown id gives CodeNotFound.
func (e *Engine) Result(id string) (*Result, error) {
	ex, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	if !ex.state().Terminal() {
		return nil, &Error{Code: CodeNotFinished, ID: id, Msg: "execution is " + string(ex.state())}
	}
	return ex.result.Load(), nil
}

// Cancel stops an execution. A pending one becomes cancelled at once and never starts (PID 0). A running
// one gets its stop signal (Request.StopSignal, else Config.StopSignal, default SIGTERM) on its whole
// process group, then SIGKILL to the group after the grace; it becomes cancelled when its process is gone,
// keeping its partial output. Cancel does not wait for that (use Wait). Cancelling a finished execution,
// or one already being stopped, changes nothing and returns nil. An unknown id gives CodeNotFound.
func (e *Engine) Cancel(id string) error {
	ex, err := e.lookup(id)
	if err != nil {
		return err
	}
	ex.stop(StatusCancelled, CodeCancelled, "cancelled", false)
	return nil
}

// Kill is Cancel without the grace: SIGKILL to the whole process group now (a pending execution never
// starts). It is the runner's answer to a second Ctrl-C. If the execution was already being stopped for
// a timeout, it keeps that status.
func (e *Engine) Kill(id string) error {
	ex, err := e.lookup(id)
	if err != nil {
		return err
	}
	ex.stop(StatusCancelled, CodeCancelled, "killed", true)
	return nil
}

// KillAll kills every execution the engine holds: SIGKILL to each running process group now; pending
// executions become cancelled and never start. It returns without waiting for the processes to be reaped.
// The engine stays usable.
func (e *Engine) KillAll() {
	e.dropQueue("killed")
	for _, ex := range e.snapshot() {
		ex.stop(StatusCancelled, CodeCancelled, "killed", true)
	}
}

// dropQueue cancels every queued execution at once. Doing it before stopping the running ones matters:
// a killed execution frees its slot, and the next queued one would start.
func (e *Engine) dropQueue(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for front := e.queue.Front(); front != nil; front = e.queue.Front() {
		ex := e.queue.Remove(front).(*execution)
		ex.mu.Lock()
		ex.elem = nil
		if ex.state() == StatusPending {
			ex.finishUnstarted(StatusCancelled, CodeCancelled, msg+" before it started")
		}
		ex.mu.Unlock()
	}
}

func (e *Engine) snapshot() []*execution {
	e.mu.Lock()
	defer e.mu.Unlock()
	all := make([]*execution, 0, len(e.execs))
	for _, ex := range e.execs {
		all = append(all, ex)
	}
	slices.SortFunc(all, func(a, b *execution) int { return cmp.Compare(a.seq, b.seq) })
	return all
}

// Subscribe registers h to receive the events of every execution from now on, delivered on a goroutine of
// its own (see Event for the order guarantees and the drop policy). The returned function unsubscribes:
// events still queued are discarded and h is called no more once any call in progress returns. It may be
// called from inside h, and more than once. After Close, Subscribe does nothing.
func (e *Engine) Subscribe(h Handler) (unsubscribe func()) {
	s := newSubscription(h, e.cfg.EventBuffer, e.cfg.EventBufferBytes, e.cfg.OnHandlerError)
	if !e.hub.add(s) {
		return func() {}
	}
	return sync.OnceFunc(func() { e.hub.remove(s) })
}

// List returns a summary of every execution the engine holds (pending, running and finished ones not
// yet cleaned up), in submission order.
func (e *Engine) List() []Summary {
	all := e.snapshot()
	out := make([]Summary, 0, len(all))
	now := time.Now()
	for _, ex := range all {
		s := Summary{ID: ex.id, Status: ex.state(), Command: ex.display, SubmittedAt: ex.created.UTC(),
			Metadata: ex.metadata}
		if r := ex.result.Load(); r != nil {
			s.Status, s.StartedAt, s.Duration = r.Status, r.StartedAt, r.Duration
		} else if s.Status == StatusRunning {
			ex.mu.Lock()
			s.StartedAt, s.Duration = ex.startedAt.UTC(), now.Sub(ex.startedAt)
			ex.mu.Unlock()
		}
		out = append(out, s)
	}
	return out
}

// Running returns how many executions are running (have a live process) now.
func (e *Engine) Running() int { return int(e.running.Load()) }

// Close stops the engine: Execute then gives CodeClosed; pending executions become cancelled without
// starting; running ones get the stop ladder (stop signal, grace, SIGKILL to the group). Close returns when
// every execution is terminal, every subscriber has been handed the events queued for it, and every
// goroutine of the engine has ended; it waits at most about the longest grace plus Config.WaitDelay for the
// processes (longer only if a handler blocks). Status, Result, Wait and List keep working afterwards.
// Calling Close again waits for the first call and returns nil.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		defer close(e.closeDone)
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		e.dropQueue("cancelled: engine closed")
		for _, ex := range e.snapshot() {
			ex.stop(StatusCancelled, CodeCancelled, "cancelled: engine closed", false)
		}
		e.runners.Wait()
		close(e.quit)
		e.workers.Wait()
		if e.devNull != nil {
			e.devNull.Close()
		}
		if e.cleanupStop != nil {
			close(e.cleanupStop)
			<-e.cleanupDone
		}
		e.hub.close()
	})
	<-e.closeDone
	return nil
}
