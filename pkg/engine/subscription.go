package engine

import (
	"log"
	"slices"
	"sync"
	"sync/atomic"
)

// subscription queues events for one Handler and delivers them on its own goroutine.
//
// Lifecycle events are queued without bound (an execution produces a handful), so they are never lost.
// Line events count against lineCap and their bytes against byteCap; beyond either they are dropped and
// counted per execution, and the count rides on the next event of that execution that reaches the queue
// (a line or the terminal event). The byte bound is what keeps memory bounded when a step floods long
// lines: 8192 lines of 64 KiB would be 512 MiB.
type subscription struct {
	h       Handler
	report  func(error)
	lineCap int
	byteCap int

	mu        sync.Mutex
	queue     []Event
	lines     int              // line events in queue
	lineBytes int              // their bytes
	dropped   map[string]int64 // per execution, not yet reported
	stop      atomic.Bool      // unsubscribed: discard and exit (written under mu)
	full      atomic.Bool      // the last line offered was dropped and nothing was taken out since (written under mu)
	drain     bool             // engine closing: deliver what is queued, then exit
	wake      chan struct{}
}

func newSubscription(h Handler, lineCap, byteCap int, onErr func(error)) *subscription {
	s := &subscription{h: h, lineCap: lineCap, byteCap: byteCap, wake: make(chan struct{}, 1)}
	s.report = func(err error) {
		if eh, ok := h.(ErrorHandler); ok {
			// An ErrorHandler that panics too must not kill the delivery goroutine.
			func() {
				defer func() { _ = recover() }()
				eh.HandleError(err)
			}()
			return
		}
		if onErr != nil {
			onErr(err)
			return
		}
		log.Print(err)
	}
	return s
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push queues a lifecycle event; it never drops.
func (s *subscription) push(e Event) {
	s.mu.Lock()
	if s.stop.Load() {
		s.mu.Unlock()
		return
	}
	if e.Type.Terminal() {
		if n := s.dropped[e.ExecutionID]; n > 0 {
			e.Dropped = n
			delete(s.dropped, e.ExecutionID)
		}
	}
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	s.signal()
}

// pushLine queues a line event, or drops and counts it when the subscriber is lineCap lines or byteCap
// bytes behind (a line longer than byteCap still goes into an empty queue).
func (s *subscription) pushLine(e Event) {
	s.mu.Lock()
	if s.stop.Load() {
		s.mu.Unlock()
		return
	}
	if s.lines >= s.lineCap || s.lines > 0 && s.lineBytes+len(e.Line) > s.byteCap {
		s.dropLocked(e.ExecutionID, 1)
		s.mu.Unlock()
		return
	}
	if n := s.dropped[e.ExecutionID]; n > 0 {
		e.Dropped = n
		delete(s.dropped, e.ExecutionID)
	}
	s.queue = append(s.queue, e)
	s.lines++
	s.lineBytes += len(e.Line)
	s.mu.Unlock()
	s.signal()
}

// dropLines counts n line events of execution id that were not even built because no subscriber had
// room for them (see hub.lineRoom).
func (s *subscription) dropLines(id string, n int64) {
	s.mu.Lock()
	if !s.stop.Load() {
		s.dropLocked(id, n)
	}
	s.mu.Unlock()
}

func (s *subscription) dropLocked(id string, n int64) {
	if s.dropped == nil {
		s.dropped = make(map[string]int64)
	}
	s.dropped[id] += n
	s.full.Store(true)
}

// run delivers queued events in order until the subscription is stopped, or drained after the engine
// closes. It takes the whole queue at a time so producers rarely contend with delivery.
func (s *subscription) run() {
	var batch []Event
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.stop.Load() && !s.drain {
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		if s.stop.Load() || (s.drain && len(s.queue) == 0) {
			s.queue = nil
			s.mu.Unlock()
			return
		}
		batch, s.queue = s.queue, batch[:0]
		s.lines, s.lineBytes = 0, 0
		s.full.Store(false)
		s.mu.Unlock()

		for i := range batch {
			if s.stop.Load() {
				break
			}
			if err := deliver(s.h, batch[i]); err != nil {
				s.report(err)
			}
			batch[i] = Event{} // release lines and results early
		}
	}
}

// hub holds the subscriptions. Producers read the list through an atomic pointer, so emitting costs one
// atomic load when nobody listens.
type hub struct {
	mu   sync.Mutex
	subs atomic.Pointer[[]*subscription]
	wg   sync.WaitGroup
	shut bool
}

func (h *hub) list() []*subscription {
	if p := h.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// listening reports whether anyone subscribes: without subscribers no event is built and no line split.
func (h *hub) listening() bool { return len(h.list()) > 0 }

func (h *hub) add(s *subscription) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shut {
		return false
	}
	next := append(slices.Clone(h.list()), s)
	h.subs.Store(&next)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s.run()
	}()
	return true
}

func (h *hub) remove(s *subscription) {
	h.mu.Lock()
	next := slices.DeleteFunc(slices.Clone(h.list()), func(x *subscription) bool { return x == s })
	h.subs.Store(&next)
	h.mu.Unlock()
	s.mu.Lock()
	s.stop.Store(true)
	s.queue = nil
	s.mu.Unlock()
	s.signal()
}

func (h *hub) emit(e Event) {
	for _, s := range h.list() {
		s.push(e)
	}
}

func (h *hub) emitLine(e Event) {
	for _, s := range h.list() {
		s.pushLine(e)
	}
}

// lineRoom reports whether some subscriber may take a line event now. When none may, the streams count
// their lines as dropped without copying them into events: a flood then costs little more than its
// capture. It is a hint: a subscriber that drains meanwhile only misses lines it would have taken.
func (h *hub) lineRoom() bool {
	for _, s := range h.list() {
		if !s.full.Load() && !s.stop.Load() {
			return true
		}
	}
	return false
}

// dropLines counts n line events of execution id as dropped for every subscriber.
func (h *hub) dropLines(id string, n int64) {
	for _, s := range h.list() {
		s.dropLines(id, n)
	}
}

// close lets every subscription deliver what it has queued, then waits for their goroutines.
func (h *hub) close() {
	h.mu.Lock()
	h.shut = true
	subs := h.list()
	h.subs.Store(nil)
	h.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.drain = true
		s.mu.Unlock()
		s.signal()
	}
	h.wg.Wait()
}
