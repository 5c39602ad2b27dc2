//go:build linux

package proc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

func TestParseStat(t *testing.T) {
	// The command name may contain spaces and parentheses: fields are counted from the last ')'.
	line := "4242 (a (weird) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != 4242 || st.PGID != 4240 || st.State != 'S' || st.StartTicks != 987654 {
		t.Fatalf("parsed %+v", st)
	}
	for _, bad := range []string{"", "12 (x) S 1", "x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestStartTicksOfSelfIsStable(t *testing.T) {
	a, err := StartTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := StartTicks(os.Getpid())
	if a == 0 || a != b {
		t.Fatalf("start ticks %d then %d", a, b)
	}
	if _, err := StartTicks(0); !errors.Is(err, ErrNoProcess) {
		t.Errorf("pid 0: %v", err)
	}
	if id, err := BootID(); err != nil || len(id) < 32 {
		t.Errorf("BootID = %q, %v", id, err)
	}
}

// sleepGroup starts `sh -c 'sleep 300 & sleep 300; wait'` as the leader of its own process group.
func sleepGroup(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

func TestKillStaleGroup(t *testing.T) {
	t.Run("recorded leader: killed", func(t *testing.T) {
		cmd := sleepGroup(t)
		pgid := cmd.Process.Pid
		start, err := StartTicks(pgid)
		if err != nil {
			t.Fatal(err)
		}
		out, err := KillStaleGroup(pgid, start)
		if err != nil || out != GroupKilled {
			t.Fatalf("KillStaleGroup = %v, %v", out, err)
		}
		cmd.Wait() // reap the leader; its children are orphans killed with it
		if GroupAlive(pgid) {
			t.Fatal("group still alive")
		}
	})
	t.Run("reused pid: spared", func(t *testing.T) {
		cmd := sleepGroup(t)
		pgid := cmd.Process.Pid
		start, _ := StartTicks(pgid)
		out, err := KillStaleGroup(pgid, start-1) // as if the recorded process started earlier
		if err != nil || out != GroupReused {
			t.Fatalf("KillStaleGroup = %v, %v; want reused", out, err)
		}
		if !GroupAlive(pgid) {
			t.Fatal("a group that is not ours was killed")
		}
	})
	t.Run("gone: nothing sent", func(t *testing.T) {
		cmd := exec.Command("true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		out, err := KillStaleGroup(cmd.Process.Pid, 1)
		if err != nil || out != GroupGone {
			t.Fatalf("KillStaleGroup = %v, %v; want gone", out, err)
		}
	})
	t.Run("leader gone, members left: killed", func(t *testing.T) {
		// The leader exits at once, leaving a sleep in its group.
		cmd := exec.Command("sh", "-c", "sleep 300 & echo started")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		start := uint64(0)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pgid := cmd.Process.Pid
		start, _ = StartTicks(pgid)
		t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		cmd.Wait()
		if !GroupAlive(pgid) {
			t.Fatal("the background sleep is not there")
		}
		out, err := KillStaleGroup(pgid, start)
		if err != nil || out != GroupKilled {
			t.Fatalf("KillStaleGroup = %v, %v", out, err)
		}
	})
	if _, err := KillStaleGroup(1, 0); err == nil {
		t.Error("group 1 accepted")
	}
}

func TestFileLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.lock")
	if _, err := TryLock(path, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file without create: %v", err)
	}
	l, err := TryLock(path, true)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file, even in this process, is excluded: like another process.
	if _, err := TryLock(path, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	// Another process sees it held too.
	if err := exec.Command("flock", "-n", path, "true").Run(); err == nil {
		t.Error("flock(1) took a held lock")
	}
	if err := l.Release(false); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(path, false)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := l2.Release(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Release(true) kept the file: %v", err)
	}
	if err := l2.Release(true); err != nil {
		t.Errorf("second Release: %v", err)
	}
}
