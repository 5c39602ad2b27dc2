//go:build linux

package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	l, err := CreateLock(path)
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

// A sweeper that takes any unheld lock file and deletes it (the store's removal of stale locks) runs
// against a creator making fresh locks. A lock made by CreateLock must never be taken by the sweeper
// while its creator holds it: with TryLock(path, true) the creator's file exists, briefly unlocked,
// and the sweeper wins now and then (the creator then sees its own new file "locked by a live
// process", or holds a file the sweeper has unlinked). The sweeper may still take a file in the moment
// its holder releases it (Release unlinks, then closes); that is the holder's choice and harmless.
func TestCreateLockIsNeverSeenUnlocked(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	passes := make(chan int)
	go func() {
		n := 0
		defer func() { passes <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n++
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), TempPrefix) {
					continue // a creator's, between its steps (CreateLock's contract)
				}
				if l, err := TryLock(filepath.Join(dir, e.Name()), false); err == nil {
					_ = l.Release(true)
				}
			}
		}
	}()
	const rounds = 3000
	var errs []error
	for i := range rounds {
		path := filepath.Join(dir, fmt.Sprintf("run%d.lock", i))
		l, err := CreateLock(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := TryLock(path, false); !errors.Is(err, ErrLocked) {
			errs = append(errs, fmt.Errorf("%s right after CreateLock: %v, want ErrLocked", path, err))
		}
		held, err1 := l.f.Stat()
		named, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(held, named) {
			errs = append(errs, fmt.Errorf("%s is not the file its lock holds (%v, %v)", path, err1, err2))
		}
		if err := l.Release(true); err != nil {
			errs = append(errs, err)
		}
	}
	close(stop)
	if n := <-passes; n == 0 {
		t.Error("the sweeper never ran")
	}
	if len(errs) > 0 {
		t.Errorf("%d of %d fresh locks went wrong", len(errs), rounds)
	}
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files left, want none (temporary names removed, locks released with remove)", len(entries))
	}
}

func TestCreateLockRefusesAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.lock")
	if err := os.WriteFile(path, []byte("group 1 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateLock(path); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateLock over an existing file: %v, want os.ErrExist", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "group 1 2\n" {
		t.Errorf("existing file changed to %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the folder, want only the existing one", len(entries))
	}
	l, err := CreateLock(filepath.Join(dir, "new.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(true)
	if err := l.Append([]byte("group 3 4\n")); err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]byte("group 5 6\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Contents(); string(got) != "group 3 4\ngroup 5 6\n" {
		t.Errorf("contents %q", got)
	}
	fi, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}
