package engine

import (
	"slices"
	"time"
)

// Cleanup removes finished executions from memory and returns how many it removed: first those that
// finished more than Config.Retention ago, then the oldest finished ones beyond Config.MaxKept. Pending
// and running executions are never removed. Removed ids give CodeNotFound afterwards; files the
// executions wrote are left alone.
//
// A pass never blocks other calls for long: it copies the execution list under the engine lock, decides
// without it (reading each execution's published Result, which needs no lock), then deletes under the
// lock again.
func (e *Engine) Cleanup() int {
	type done struct {
		ex       *execution
		finished time.Time
	}
	var finished []done
	for _, ex := range e.snapshot() {
		if r := ex.result.Load(); r != nil {
			finished = append(finished, done{ex, r.FinishedAt})
		}
	}
	if len(finished) == 0 {
		return 0
	}
	slices.SortStableFunc(finished, func(a, b done) int { return a.finished.Compare(b.finished) })

	cut := 0 // finished[:cut] are removed
	if e.cfg.Retention != NoTimeout {
		deadline := time.Now().Add(-e.cfg.Retention)
		for cut < len(finished) && finished[cut].finished.Before(deadline) {
			cut++
		}
	}
	if keep := len(finished) - cut; keep > e.cfg.MaxKept {
		cut += keep - e.cfg.MaxKept
	}
	if cut == 0 {
		return 0
	}

	removed := 0
	e.mu.Lock()
	for _, d := range finished[:cut] {
		if e.execs[d.ex.id] == d.ex {
			delete(e.execs, d.ex.id)
			removed++
		}
	}
	e.mu.Unlock()
	return removed
}

func (e *Engine) cleanupLoop() {
	defer close(e.cleanupDone)
	t := time.NewTicker(e.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.Cleanup()
		case <-e.cleanupStop:
			return
		}
	}
}
