//go:build linux

package engine

import (
	"context"
	"testing"

	"github.com/playbookhq/playbook/internal/proc"
)

// Every started event carries the start time /proc gives, and StartTicks gives it while the child
// lives; it forgets the child once the execution is over (its number may be reused).
func TestStartTicksMatchesProc(t *testing.T) {
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	for range 20 {
		id := mustExecute(t, e, helperReq("sleep"))
		started := rec.waitFor(t, id, func(ev Event) bool { return ev.Type == EventStarted })
		want, err := proc.StartTicks(started.PID)
		if err != nil {
			t.Fatal(err)
		}
		if started.StartTicks != want {
			t.Errorf("pid %d: the started event says %d, /proc says %d", started.PID, started.StartTicks, want)
		}
		if ticks, ok := StartTicks(started.PID); !ok || ticks != want {
			t.Errorf("pid %d: StartTicks %d, %v; /proc says %d", started.PID, ticks, ok, want)
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
}

// A fork whose clock readings fall in two ticks cannot tell from them which tick the child started in:
// the time then comes from /proc, read before the child can have been reaped.
func TestStartTicksOfAForkAcrossATick(t *testing.T) {
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	id := mustExecute(t, e, helperReq("sleep"))
	started := rec.waitFor(t, id, func(ev Event) bool { return ev.Type == EventStarted })
	defer func() {
		_ = e.Kill(id)
		_, _ = e.Wait(context.Background(), id)
	}()
	want, err := proc.StartTicks(started.PID)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := clockFrom(bootNanos() - 2*nsPerTick)(started.PID)
	if !ok || got != want {
		t.Errorf("across a tick: %d, %v; /proc says %d", got, ok, want)
	}
}
