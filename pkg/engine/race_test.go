package engine

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// Cancel racing completion (and the start of pending executions) never yields a terminal status without
// its result, never changes a terminal status, and gives exactly one terminal event, last.
func TestCancelRacingCompletion(t *testing.T) {
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	e := newEngine(t, Config{MaxConcurrent: 4})
	type seen struct {
		events   int
		terminal int
		lastTerm bool
	}
	var mu sync.Mutex
	byID := map[string]*seen{}
	e.Subscribe(HandlerFunc(func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		s := byID[ev.ExecutionID]
		if s == nil {
			s = &seen{}
			byID[ev.ExecutionID] = s
		}
		s.events++
		s.lastTerm = ev.Type.Terminal()
		if s.lastTerm {
			s.terminal++
			if ev.Result == nil || terminalEvent(ev.Result.Status) != ev.Type {
				t.Errorf("%s: terminal event without a matching result", ev.ExecutionID)
			}
		}
	}))

	var ids []string
	const batch = 64
	for start := 0; start < iterations; start += batch {
		var wg sync.WaitGroup
		for i := start; i < min(start+batch, iterations); i++ {
			id := mustExecute(t, e, Request{Command: Exec{Program: "/bin/true"}})
			ids = append(ids, id)
			r := rand.IntN(4)
			wg.Add(2)
			go func() {
				defer wg.Done()
				for range r {
					runtime.Gosched()
				}
				if r == 0 {
					e.Kill(id)
				} else {
					e.Cancel(id)
				}
			}()
			go func() {
				defer wg.Done()
				var terminal Status
				for {
					st, err := e.Status(id)
					if err != nil {
						t.Errorf("Status: %v", err)
						return
					}
					if terminal != "" && st != terminal {
						t.Errorf("%s: terminal status moved %s -> %s", id, terminal, st)
						return
					}
					if st.Terminal() {
						res, err := e.Result(id)
						if err != nil || res == nil || res.Status != st {
							t.Errorf("%s: status %s but Result %v, %v", id, st, res, err)
							return
						}
						if terminal != "" {
							return
						}
						terminal = st
					}
					runtime.Gosched()
				}
			}()
		}
		wg.Wait()
	}
	outcomes := map[string]int{}
	for _, id := range ids {
		r := mustWait(t, e, id)
		if !r.Status.Terminal() {
			t.Fatalf("%s: %s", id, r.Status)
		}
		k := string(r.Status)
		if r.PID == 0 {
			k += " before start"
		}
		outcomes[k]++
	}
	t.Logf("outcomes: %v", outcomes)
	e.Close() // delivers every queued event
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		s := byID[id]
		if s == nil || s.terminal != 1 || !s.lastTerm {
			t.Fatalf("%s: events %+v, want exactly one terminal event, last", id, s)
		}
	}
}
