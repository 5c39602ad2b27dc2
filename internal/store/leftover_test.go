//go:build linux

package store

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/playbookhq/playbook/internal/proc"
	"github.com/playbookhq/playbook/pkg/run"
)

// startTagged starts sh -c script with PLAYBOOK_RUN_ID=runID, as a step of that run would be: in a
// process group of its own (or, with setsid, a session of its own), and waits for it in the background.
// It returns the process id once the script has written it to its ready file.
func startTagged(t *testing.T, runID, script string, setsid bool) int {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	// Only builtins after the fork (echo writes the pid in one write; an empty file is read again):
	// an external command such as mv would itself carry the tag while it exits, a third process for
	// the scans of the tests to find.
	cmd := exec.Command("sh", "-c", script+" & echo $! > "+ready+"; wait")
	cmd.Env = append(os.Environ(), "PLAYBOOK_RUN_ID="+runID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !setsid, Setsid: setsid}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, err := os.ReadFile(ready); err == nil {
			if _, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the tagged process did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A runner can die between forking a step and writing the step's group to its lock file; if the
// step's shell has already started a background child, neither the database nor the lock file names
// that group. Recovery finds it by PLAYBOOK_RUN_ID in the processes' environment and kills it, and a
// daemon that left the session (setsid) with it: nothing a run started outlives the run. Another
// run's process is left alone.
func TestRecoveryKillsGroupsKnownOnlyByEnvironment(t *testing.T) {
	s := openTest(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	const runID = "0123456789abcdef0123456789abcdef"
	insertOwnedRun(t, s, runID, dead.Process.Pid, 12345, s.host, s.bootID)
	step := startTagged(t, runID, "sleep 300", false)
	daemon := startTagged(t, runID, "sleep 300", true)
	other := startTagged(t, "fedcba9876543210fedcba9876543210", "sleep 300", false)

	rec, err := s.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 1 || rec[0].ID != runID || rec[0].Killed != 2 {
		t.Fatalf("recovered %+v, want the run with 2 groups killed (the step's and the daemon's)", rec)
	}
	if got, _ := s.Run(context.Background(), runID); got.Status != run.StatusInterrupted {
		t.Errorf("run status %s, want interrupted", got.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for proc.GroupAlive(step) || proc.GroupAlive(daemon) {
		if time.Now().After(deadline) {
			t.Fatalf("the unrecorded step group %d (alive: %v) or the setsid daemon %d (alive: %v) survived recovery",
				step, proc.GroupAlive(step), daemon, proc.GroupAlive(daemon))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !proc.GroupAlive(other) {
		t.Errorf("another run's group %d was killed", other)
	}
}

func TestWithEnv(t *testing.T) {
	const runID = "aaaabbbbccccddddaaaabbbbccccdddd"
	pgid := startTagged(t, runID, "sleep 300", false)
	found, err := proc.WithEnv("PLAYBOOK_RUN_ID=" + runID)
	if err != nil {
		t.Fatal(err)
	}
	// The shell and its sleep, both in the shell's group, in this process's session.
	if len(found) != 2 {
		t.Fatalf("found %+v, want the shell and its child", found)
	}
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		if p.PGID != pgid || p.SID != sid {
			t.Errorf("process %+v: want group %d and this session", p, pgid)
		}
	}
	if found, _ := proc.WithEnv("PLAYBOOK_RUN_ID=" + runID[:31]); len(found) != 0 {
		t.Errorf("a prefix of the value matched: %+v", found)
	}
	if _, err := proc.WithEnv("no-equals-sign"); err == nil {
		t.Error("an entry without = was accepted")
	}
}
