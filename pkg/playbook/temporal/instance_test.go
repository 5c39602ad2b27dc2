package temporal

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startTagged starts `sleep 300` in a process group of its own, carrying instance id in InstanceEnv,
// as a worker's step (or what it left in the background) would.
func startTagged(t *testing.T, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.Env = append(os.Environ(), InstanceEnv+"="+id)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd
}

// TestSweepKillsWhatADeadWorkerLeft: the processes of a worker instance whose lock is free (the
// worker died) are killed and its lock file removed; a live instance's processes and file stay.
func TestSweepKillsWhatADeadWorkerLeft(t *testing.T) {
	dir := t.TempDir()
	dead, err := NewInstance(dir)
	if err != nil {
		t.Fatal(err)
	}
	live, err := NewInstance(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	orphan, kept := startTagged(t, dead.ID), startTagged(t, live.ID)
	// The dead worker: its lock drops with it, its file stays (kill -9 removes nothing).
	if err := dead.lock.Release(false); err != nil {
		t.Fatal(err)
	}

	n, err := Sweep(dir)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v: want the dead instance's one group killed", n, err)
	}
	done := make(chan error, 1)
	go func() { done <- orphan.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("the dead worker's process ended with %v, want SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dead worker's process is still running after the sweep")
	}
	if err := syscall.Kill(kept.Process.Pid, 0); err != nil {
		t.Errorf("the live worker's process was killed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, dead.ID+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead instance's lock file is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, live.ID+".lock")); err != nil {
		t.Errorf("the live instance's lock file: %v", err)
	}
}
