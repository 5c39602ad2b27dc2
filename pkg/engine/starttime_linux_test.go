//go:build linux

package engine

import (
	"context"
	"testing"

	"github.com/playbookhq/playbook/internal/proc"
)

// Every started event carries the start time /proc gives for its PID: crash recovery keeps it to tell
// the step's process group from a later process that reuses the number.
func TestStartedEventCarriesTheStartTime(t *testing.T) {
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
		if err := e.Kill(id); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Wait(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
}
