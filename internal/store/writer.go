package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// The recorder's writes go through one background writer, in the order they were made. Each
// Recorder call checks and prepares its data, hands a write to the writer and returns at once; the
// writer commits whatever has accumulated in one short transaction (one savepoint per write, so that
// a failing write does not take the others with it). RunStarted and RunFinished wait for their write.
//
// Why: a step makes three writes, and a commit is not cheap next to a short step, least of all on a
// slow disk; were the runner to wait for a transaction each, every step of a chain would pay for
// three commits. With the writer, recording overlaps the next step, and when steps end faster than
// the database can commit, one transaction carries many of them.
//
// The queue is a slice under a mutex rather than a channel: during the gathering window the writer
// sleeps on a timer, so the calls that queue writes meanwhile wake nobody: a wake-up per write would
// switch to the writer and back only to add the write to a batch that is not due yet.
//
// The price: a state change is on disk a moment (one transaction) after the call returned, so a
// runner killed in that moment loses it; crash recovery then marks the step interrupted, as it
// would if the kill had come just before the call. A write that fails is never dropped silently: its
// error is returned by the next Recorder call, by Failed, RunFinished, Flush and Close, and RunFinished
// names every write that was not made. A batch whose transaction failed as a whole (the lock could not
// be had within LockWait, the disk is full) is not dropped: its writes stay first in the queue and are
// tried again with the next batch, so that the steps a stopping run still finishes are recorded
// whole once the database takes writes again.

// batchWindow is how long the writer gathers writes before it commits them, when nobody waits: the
// delay with which a state change reaches the disk, traded for far fewer transactions. Longer is not
// better: a longer window made a chain of short steps slower, although it used less CPU, because a
// longer batch holds one of the runtime's threads for longer at a time, and on a machine with few
// CPUs the run needs that thread (bench/README.md has the measurement).
const batchWindow = 2 * time.Millisecond

// maxBatch bounds how many writes one transaction carries, so that the write lock is held briefly.
const maxBatch = 256

// queueSize is how many writes may wait. When the database is slower than the run, a full queue
// makes the Recorder calls wait: memory stays bounded (each write holds at most the bounded output
// of one attempt).
const queueSize = 512

type writeOp struct {
	what   func() string                               // for errors: "record step build of run 3f2a"
	fn     func(ctx context.Context, tx *sql.Tx) error // nil for a barrier
	result chan error                                  // buffered; nil when nobody waits
	kept   bool                                        // its batch failed: it is being tried again
	// bestEffort: a failure is neither kept for the next calls nor tried again (RunProgress: a later
	// write replaces it).
	bestEffort bool

	// At most one of these, for coalesce.
	start    *attemptStart  // AttemptStarted's write
	finish   *attemptFinish // AttemptFinished's write
	stepDone *stepFinish    // StepFinished's write
}

// attemptKey names one attempt of one step of one run.
type attemptKey struct {
	run, step string
	attempt   int
}

// attemptStart is what AttemptStarted writes: the step row's running state (stepRow) and the attempt's
// row (attemptRow). coalesce clears either when a later write of the same transaction writes it whole.
type attemptStart struct {
	key                             attemptKey
	started, command, pid, pidStart any
	stepRow, attemptRow             bool
}

// attemptFinish is AttemptFinished's write; start, when coalesce set it, is the same attempt's start,
// whose values the attempt's row then takes at once. outputMoved: the step's final write follows in
// the batch with the same output, which the step row keeps; the attempt row is written without it.
type attemptFinish struct {
	key         attemptKey
	output      outputSizes
	start       *attemptStart
	outputMoved bool
}

// stepFinish is StepFinished's write; when setPID, the step row takes pid (the last attempt's, from a
// start whose step write coalesce removed). outputMoved: the last attempt's row was written without
// the output (no UPDATE to clear it).
type stepFinish struct {
	run, step   string
	attempts    int
	output      outputSizes
	setPID      bool
	pid         any
	outputMoved bool
}

// outputSizes are the sizes of the stdout and stderr a write carries: bytes kept and bytes written.
type outputSizes struct {
	kept  [2]int
	total [2]int64
}

func outputSize(stdout, stderr run.Output) outputSizes {
	return outputSizes{kept: [2]int{len(stdout.Data), len(stderr.Data)}, total: [2]int64{stdout.Bytes, stderr.Bytes}}
}

// coalesce removes the writes of a batch that a later write of the same batch overwrites: an attempt's
// start is written by its finish (one INSERT instead of an INSERT and an UPDATE); the running state
// a start gives the step row is overwritten by the step's finish (which also takes the pid); and the
// last attempt's output, which the step's finish keeps in the step row and then clears from the
// attempt row, is not written to the attempt row at all. The batch is one transaction, so no reader
// could have seen what is left out, and the rows end the same as when every write runs
// (TestCoalescedBatchWritesTheSameRows). A short step costs two statements instead of four or five,
// and its output is written once.
func coalesce(batch []writeOp) {
	starts := map[attemptKey]*attemptStart{}
	ofStep := map[[2]string][]*attemptStart{} // the starts of each step, while its final write is to come
	finishes := map[attemptKey]*attemptFinish{}
	for _, op := range batch {
		switch {
		case op.start != nil:
			starts[op.start.key] = op.start
			k := [2]string{op.start.key.run, op.start.key.step}
			ofStep[k] = append(ofStep[k], op.start)
		case op.finish != nil:
			if st := starts[op.finish.key]; st != nil && st.attemptRow {
				st.attemptRow = false
				op.finish.start = st
			}
			finishes[op.finish.key] = op.finish
		case op.stepDone != nil:
			d := op.stepDone
			// StepFinished clears the attempt row's output only when it carries the same (and some).
			if f := finishes[attemptKey{d.run, d.step, d.attempts}]; f != nil && !f.outputMoved &&
				f.output == d.output && d.output.kept[0]+d.output.kept[1] > 0 {
				f.outputMoved, d.outputMoved = true, true
			}
			k := [2]string{d.run, d.step}
			list := ofStep[k]
			if len(list) == 0 {
				continue
			}
			for _, st := range list {
				st.stepRow = false
			}
			d.setPID, d.pid = true, list[len(list)-1].pid
			delete(ofStep, k)
		}
	}
}

// errClosed is returned by Recorder calls after Close.
var errClosed = errors.New("store is closed")

// writeQueue is what the Recorder calls and the writer share.
type writeQueue struct {
	mu      sync.Mutex
	space   *sync.Cond // signalled when the writer takes writes out
	ops     []writeOp
	waiters int           // queued writes somebody waits for: commit them without gathering more
	closed  bool          // no more writes; the writer ends when the queue is empty
	held    bool          // tests: the writer leaves the queue alone (one batch takes what gathers)
	wake    chan struct{} // capacity 1: something was queued
	urgent  chan struct{} // capacity 1: a waiter or Close: stop gathering
	done    chan struct{} // closed when the writer has ended
}

func (s *Store) startWriter() {
	q := &s.queue
	q.space = sync.NewCond(&q.mu)
	q.wake = make(chan struct{}, 1)
	q.urgent = make(chan struct{}, 1)
	q.done = make(chan struct{})
	s.writerStarted = true
	s.lastCheckpoint = time.Now()
	s.checkpointEvery, s.checkpointed = checkpointEvery, checkpointed
	go s.writeLoop()
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // already signalled
	}
}

// push queues op, waiting while the queue is full. It fails only after Close.
func (s *Store) push(op writeOp) error {
	q := &s.queue
	q.mu.Lock()
	for len(q.ops) >= queueSize && !q.closed {
		q.space.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return errClosed
	}
	q.ops = append(q.ops, op)
	if op.result != nil {
		q.waiters++
	}
	q.mu.Unlock()
	signal(q.wake)
	if op.result != nil {
		signal(q.urgent)
	}
	return nil
}

func (s *Store) writeLoop() {
	q := &s.queue
	defer close(q.done)
	for {
		q.mu.Lock()
		for (len(q.ops) == 0 || q.held) && !q.closed {
			q.mu.Unlock()
			select {
			case <-q.wake:
			case <-q.urgent:
			}
			q.mu.Lock()
		}
		if len(q.ops) == 0 { // closed and drained
			q.mu.Unlock()
			return
		}
		hurry := q.waiters > 0 || q.closed || len(q.ops) >= maxBatch
		q.mu.Unlock()
		if !hurry {
			// Gather what arrives within batchWindow: one transaction then carries the three
			// writes of a step, or of several short steps.
			t := time.NewTimer(batchWindow)
			select {
			case <-t.C:
			case <-q.urgent:
			}
			t.Stop()
		}
		q.mu.Lock()
		n := min(len(q.ops), maxBatch)
		batch := make([]writeOp, n)
		copy(batch, q.ops)
		q.ops = append(q.ops[:0:0], q.ops[n:]...) // a new array: the old one is released
		for _, op := range batch {
			if op.result != nil {
				q.waiters--
			}
		}
		q.space.Broadcast()
		q.mu.Unlock()
		if s.runBatch(batch) {
			// The batch is back in the queue: try again after a pause (a full disk fails at once), or
			// at once when somebody waits or the Store closes.
			t := time.NewTimer(retryPause)
			select {
			case <-t.C:
			case <-q.urgent:
			}
			t.Stop()
			continue
		}
		s.checkpointWhenIdle()
	}
}

// retryPause is how long the writer waits before it tries a failed batch again, unless a write is
// waited for.
const retryPause = 250 * time.Millisecond

// checkpointEvery is how often, at most, the writer copies the WAL back into the database while a run
// goes on. A Store reads it when it opens (tests change it).
var checkpointEvery = 200 * time.Millisecond

// checkpointed, when set (tests), is called by the writer after each of its checkpoints.
var checkpointed func()

// checkpointWhenIdle runs a passive checkpoint when nothing is queued and the last one is older than
// checkpointEvery.
//
// Why: with synchronous=NORMAL, commits do not sync the WAL; the checkpoint does, and SQLite runs one
// when the last connection closes. Left to Close, that checkpoint syncs everything the run wrote
// while the user waits, which on a slow disk is a pause the user sees at the end of every run. Done here, between batches, it overlaps the steps, and Close only syncs the last moments.
// PASSIVE never waits for other connections: what it cannot copy now, a later one or Close will.
// Its errors are not the run's: the records are committed, and a failed checkpoint loses nothing.
func (s *Store) checkpointWhenIdle() {
	if time.Since(s.lastCheckpoint) < s.checkpointEvery {
		return
	}
	q := &s.queue
	q.mu.Lock()
	idle := len(q.ops) == 0 && !q.closed
	q.mu.Unlock()
	if !idle {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	_, _ = s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	s.lastCheckpoint = time.Now()
	if s.checkpointed != nil {
		s.checkpointed()
	}
}

// errIsolate aborts a batch's first transaction when one of its writes fails, so that the batch is
// replayed with one savepoint per write.
var errIsolate = errors.New("a write of the batch failed")

// runBatch commits a batch in one transaction and reports each write's outcome. Writes fail only
// through a bug (an unknown step, say), so the batch first runs as one plain transaction; if a write
// fails, it is rolled back and replayed with a savepoint around each write, so that only the failing
// writes are lost. (Savepoints on every batch would cost two statements per write.)
//
// It returns whether the batch's transaction failed as a whole and its writes that nobody waits for
// were put back at the head of the queue, to be tried again (never once the Store is closing).
func (s *Store) runBatch(batch []writeOp) (kept bool) {
	coalesce(batch)
	ctx, cancel := context.WithTimeout(context.Background(), s.batchTimeout())
	defer cancel()
	errs := make([]error, len(batch))
	n := 0
	for _, op := range batch {
		if op.fn != nil {
			n++
		}
	}
	var err error
	if n > 0 {
		err = s.writeTx(ctx, func(tx *sql.Tx) error {
			for i, op := range batch {
				if op.fn == nil {
					continue
				}
				if err := op.fn(ctx, tx); err != nil {
					if n == 1 {
						errs[i] = err // its own failure, not the transaction's: nothing to replay
					}
					return errIsolate
				}
			}
			return nil
		})
	}
	if errors.Is(err, errIsolate) && n == 1 {
		err = nil
	} else if errors.Is(err, errIsolate) {
		err = s.writeTx(ctx, func(tx *sql.Tx) error {
			for i, op := range batch {
				if op.fn == nil {
					continue
				}
				if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
					return err
				}
				if errs[i] = op.fn(ctx, tx); errs[i] != nil {
					if _, err := tx.ExecContext(ctx, "ROLLBACK TO op"); err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(ctx, "RELEASE op"); err != nil {
					return err
				}
			}
			return nil
		})
	}
	q := &s.queue
	q.mu.Lock()
	closing := q.closed
	q.mu.Unlock()
	var again []writeOp
	for i, op := range batch {
		e := errs[i]
		whole := err != nil && op.fn != nil
		if whole {
			e = err // the transaction failed: nothing of the batch was written
		}
		if e != nil {
			e = fmt.Errorf("%s: %w", op.what(), e)
		}
		if op.result != nil {
			op.result <- e
			continue
		}
		if e == nil || op.bestEffort {
			continue
		}
		s.fail(e) // nobody waits for this write: report it with the next call
		if whole && !closing {
			op.kept = true
			again = append(again, op)
			continue
		}
		s.lose(op.what())
	}
	if len(again) == 0 {
		return false
	}
	q.mu.Lock()
	q.ops = append(again, q.ops...)
	q.mu.Unlock()
	return true
}

// batchTimeout bounds one batch: the wait for the lock, and a margin for the writes themselves.
func (s *Store) batchTimeout() time.Duration { return s.lockWait + 30*time.Second }

// maxLostNames is how many of the writes that were not made RunFinished's error names one by one.
const maxLostNames = 20

// lose counts a write that will not be made.
func (s *Store) lose(what string) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.lostCount++
	if len(s.lost) < maxLostNames {
		s.lost = append(s.lost, what)
	}
}

// unwritten lists the writes that were not made: lost ones, then those still waiting to be tried
// again, at most maxLostNames of them, and how many there are in all.
func (s *Store) unwritten() ([]string, int) {
	s.errMu.Lock()
	names, n := append([]string(nil), s.lost...), s.lostCount
	s.errMu.Unlock()
	q := &s.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, op := range q.ops {
		if op.kept {
			n++
			if len(names) < maxLostNames {
				names = append(names, op.what())
			}
		}
	}
	return names, n
}

// fail keeps the first write error, for the calls that come after it.
func (s *Store) fail(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.writeErr == nil {
		s.writeErr = err
		s.hasFailed.Store(true)
	}
}

// failed returns the first write error, or nil.
func (s *Store) failed() error {
	if !s.hasFailed.Load() {
		return nil // the common case, without the mutex: the runner asks before every step
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.writeErr
}

// Failed returns the first queued write that failed, or nil. The runner asks before it starts a
// step (run.FailureReporter), so that no step starts once the run cannot be recorded; a write
// that failed is reported here as soon as its batch did, before any later Recorder call returns it.
func (s *Store) Failed() error { return s.failed() }

// Stalled reports whether a write has been waiting for another process's lock for about a second
// (the moment Options.Waiting is told) and still waits (run.Staller): the run then starts no
// step until the write is made, or fails at Options.LockWait, so that nothing runs that could go
// unrecorded.
func (s *Store) Stalled() bool { return s.stalled.Load() }

// enqueue queues op for the writer and returns at once. It returns the error of an earlier write
// that failed, if any: op is queued all the same, since a stopping run still records what it does. It
// returns errClosed after Close.
func (s *Store) enqueue(op writeOp) error {
	if err := s.push(op); err != nil {
		return err
	}
	if err := s.failed(); err != nil {
		return fmt.Errorf("an earlier write failed: %w", err)
	}
	return nil
}

// write queues op and waits until it is committed, returning its own error.
func (s *Store) write(what string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	op := writeOp{what: func() string { return what }, fn: fn, result: make(chan error, 1)}
	if err := s.push(op); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return <-op.result
}

// Flush waits until every write queued so far is committed and returns the first write error of
// this Store, if any. ctx is not used: the writes are bounded by their own timeout, and a cancelled
// run must still be able to wait for its records.
func (s *Store) Flush(ctx context.Context) error {
	if !s.writerStarted {
		return nil // still opening: nothing queued
	}
	op := writeOp{result: make(chan error, 1)}
	if err := s.push(op); err == nil {
		<-op.result
	}
	return s.failed()
}

// stopWriter lets the writer commit what is queued and stops it. Later pushes get errClosed.
func (s *Store) stopWriter() {
	q := &s.queue
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.done
		return
	}
	q.closed = true
	q.space.Broadcast()
	q.mu.Unlock()
	signal(q.urgent)
	<-q.done
}
