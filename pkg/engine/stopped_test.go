//go:build linux

package engine

import (
	"syscall"
	"testing"
	"time"
)

// waitStopped waits until process pid is stopped (state T in /proc): the step has really stopped itself
// before the test asks the engine to stop it.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if state, _, ok := procStat(pid); ok && state == "T" {
			return
		}
		if time.Now().After(deadline) {
			state, _, _ := procStat(pid)
			t.Fatalf("process %d never stopped (state %q)", pid, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A step that stops itself (SIGSTOP, or a Ctrl-Z'd job) cannot run its handler for the stop signal
// until it is continued. The stop ladder therefore follows the stop signal with SIGCONT, so a stopped
// step cleans up within the grace instead of waiting for SIGKILL; both on cancel and on timeout.
func TestStoppedProcessGetsStopSignalAndContinue(t *testing.T) {
	const grace = 20 * time.Second
	const script = `trap 'echo got TERM; exit 0' TERM; echo ready; kill -STOP $$; echo continued by itself`
	for _, how := range []string{"cancel", "timeout"} {
		t.Run(how, func(t *testing.T) {
			e := newEngine(t, Config{StopGrace: grace})
			rec := newRecorder(e)
			req := shReq(script)
			if how == "timeout" {
				req.Timeout = 2 * time.Second // long enough for the step to reach its STOP on a loaded machine
			}
			id := mustExecute(t, e, req)
			rec.waitLine(t, id, "ready")
			started := rec.waitFor(t, id, func(ev Event) bool { return ev.Type == EventStarted })
			waitStopped(t, started.PID)
			start := time.Now()
			if how == "cancel" {
				if err := e.Cancel(id); err != nil {
					t.Fatal(err)
				}
			}
			r := mustWait(t, e, id)
			want := StatusCancelled
			if how == "timeout" {
				want = StatusTimedOut
			}
			assertStatus(t, r, want)
			if !contains(r.Stdout, "got TERM") {
				t.Errorf("the stopped step never ran its TERM handler (signal %d): stdout %q", r.Signal, r.Stdout)
			}
			if contains(r.Stdout, "continued by itself") {
				t.Errorf("the step went on after its handler: %q", r.Stdout)
			}
			if r.Signal == int(syscall.SIGKILL) {
				t.Errorf("the step was killed after the grace instead of stopping on TERM")
			}
			if d := time.Since(start); d > grace/2 {
				t.Errorf("stopping a stopped step took %s; the grace is %s", d, grace)
			}
			waitGroupGone(t, r.PID, 5*time.Second)
		})
	}
}

// A stopped step whose stop signal is SIGKILL, or that is killed at once (no grace), dies: SIGKILL
// works on stopped processes.
func TestStoppedProcessKilled(t *testing.T) {
	e := newEngine(t, Config{StopGrace: NoGrace})
	rec := newRecorder(e)
	id := mustExecute(t, e, shReq(`echo ready; kill -STOP $$; echo continued`))
	rec.waitLine(t, id, "ready")
	started := rec.waitFor(t, id, func(ev Event) bool { return ev.Type == EventStarted })
	waitStopped(t, started.PID)
	if err := e.Cancel(id); err != nil {
		t.Fatal(err)
	}
	r := mustWait(t, e, id)
	assertStatus(t, r, StatusCancelled)
	if r.Signal != int(syscall.SIGKILL) {
		t.Errorf("signal %d, want SIGKILL", r.Signal)
	}
	waitGroupGone(t, r.PID, 5*time.Second)
}
