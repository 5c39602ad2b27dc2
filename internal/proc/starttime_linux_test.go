//go:build linux

package proc

import (
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// startSleeper starts `sleep 300` with a ForkClock around the fork and returns its pid and what the
// clock says of it. The child is killed and reaped when the test ends.
func startSleeper(t *testing.T) (pid int, ticks uint64, ok bool) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	c := BeforeFork()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ticks, ok = c.Start(cmd.Process.Pid)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid, ticks, ok
}

// uncheckedClock forgets the outcome of the clock's check against /proc for the test, and restores it
// after.
func uncheckedClock(t *testing.T) {
	was := clockCheck.Load()
	clockCheck.Store(clockUnchecked)
	t.Cleanup(func() { clockCheck.Store(was) })
}

// The start time a ForkClock gives is the one /proc gives, and the clock passes its check.
func TestForkClockMatchesProc(t *testing.T) {
	uncheckedClock(t)
	for range 20 {
		pid, got, ok := startSleeper(t)
		want, err := StartTicks(pid)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || got != want {
			t.Errorf("pid %d: the fork's clock says %d, %v; /proc says %d", pid, got, ok, want)
		}
	}
	if clockCheck.Load() == clockWrong {
		t.Error("the fork's clock failed its check against /proc")
	}
}

// A fork whose clock readings fall in two ticks cannot tell from them which tick the child started in:
// the time then comes from /proc, read before the child can have been reaped.
func TestForkClockAcrossATick(t *testing.T) {
	pid, _, _ := startSleeper(t)
	want, err := StartTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ForkClock{before: bootNanos() - 2*nsPerTick}.Start(pid)
	if !ok || got != want {
		t.Errorf("across a tick: %d, %v; /proc says %d", got, ok, want)
	}
	if got, ok := (ForkClock{}).Start(pid); !ok || got != want {
		t.Errorf("zero ForkClock: %d, %v; /proc says %d", got, ok, want)
	}
}

// A clock that disagrees with /proc on its first check is never trusted again: every start time then
// comes from /proc. The disagreement is staged by reading the clock a tick after the child started.
func TestForkClockThatFailsItsCheckIsNotTrusted(t *testing.T) {
	pid, _, _ := startSleeper(t)
	want, err := StartTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Time is the behaviour here: the clock must be read in a later tick than the child's.
	deadline := time.Now().Add(5 * time.Second)
	for uint64(bootNanos()/nsPerTick) <= want {
		if time.Now().After(deadline) {
			t.Fatalf("CLOCK_BOOTTIME stays at tick %d, not past the child's %d", bootNanos()/nsPerTick, want)
		}
		runtime.Gosched()
	}
	uncheckedClock(t)
	for range 5 {
		if got, ok := BeforeFork().Start(pid); !ok || got != want {
			t.Errorf("a stale clock reading gave %d, %v; /proc says %d", got, ok, want)
		}
	}
	if got := clockCheck.Load(); got != clockWrong {
		t.Errorf("after a reading that disagrees with /proc the check is %d, want %d (wrong)", got, clockWrong)
	}
}
