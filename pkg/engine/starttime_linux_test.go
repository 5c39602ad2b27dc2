//go:build linux

package engine

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

func procStartTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

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
			if want := procStartTicks(t, started.PID); ticks != want {
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
