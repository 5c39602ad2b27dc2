//go:build linux

package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKillWithEnv: a process that left its group (setsid) and the child it started are killed by
// their environment entry; a process without the entry is not.
func TestKillWithEnv(t *testing.T) {
	// Unique to this test process: another test binary running this test at the same time (another
	// checkout's) must not see its processes counted here, nor have them killed.
	entry := fmt.Sprintf("PLAYBOOK_RUN_ID=killwithenv-%d-%d", os.Getpid(), time.Now().UnixNano())
	dir := t.TempDir()
	daemon := exec.Command("sh", "-c", `sleep 300 & echo $! > child; exec sleep 300`)
	daemon.Dir = dir
	daemon.Env = append(os.Environ(), entry)
	daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	other := exec.Command("sleep", "300")
	other.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	for _, c := range []*exec.Cmd{daemon, other} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		c := c
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	var child int
	for deadline := time.Now().Add(10 * time.Second); child == 0; time.Sleep(5 * time.Millisecond) {
		if data, err := os.ReadFile(filepath.Join(dir, "child")); err == nil && len(data) > 1 {
			if _, err := fmt.Sscan(string(data), &child); err != nil {
				child = 0
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not start its child")
		}
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })

	n, err := KillWithEnv(entry)
	if err != nil {
		t.Fatal(err)
	}
	// Both carry the entry, and the scan sees the child even in the middle of its exec.
	if n != 2 {
		t.Errorf("killed %d processes, want the daemon and its child", n)
	}
	if err := daemon.Wait(); err == nil {
		t.Error("the daemon exited by itself")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, err := ReadStat(child)
		if err != nil || st.Zombie() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's child %d survived", child)
		}
	}
	if st, err := ReadStat(other.Process.Pid); err != nil || st.Zombie() {
		t.Errorf("a process without the entry was killed: %v", err)
	}
}
