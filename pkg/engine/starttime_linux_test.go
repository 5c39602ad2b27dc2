//go:build linux

package engine

import (
	"context"
	"testing"

	"github.com/playbookhq/playbook/internal/proc"
)

// StartTicks gives the start time /proc gives, from the fork alone, while the child lives; it forgets
// the child once the execution is over (its number may be reused).
func TestStartTicksMatchesProc(t *testing.T) {
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	known := 0
	for range 20 {
		id := mustExecute(t, e, helperReq("sleep"))
		started := rec.waitFor(t, id, func(ev Event) bool { return ev.Type == EventStarted })
		if ticks, ok := StartTicks(started.PID); ok {
			known++
			want, err := proc.StartTicks(started.PID)
			if err != nil {
				t.Fatal(err)
			}
			if ticks != want {
				t.Errorf("pid %d: StartTicks %d, /proc says %d", started.PID, ticks, want)
			}
		}
		if err := e.Kill(id); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Wait(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if _, ok := StartTicks(started.PID); ok {
			t.Errorf("pid %d still known after the execution ended", started.PID)
		}
	}
	t.Logf("%d of 20 start times known from the fork", known)
	// A fork straddles a tick (10 ms) rarely; most must be known, or the fast path is broken.
	if known < 10 {
		t.Errorf("only %d of 20 start times known", known)
	}
}
