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

// TestWithEnvSeesProcessesInTheirExec: while a process is in the middle of execve its environment
// reads as empty for a moment. Processes that exec over and over must still all be found, every time
// (a daemon that ran `setsid -f sh -c '... exec sleep'` outlived its run when the scan met one of its
// execs).
func TestWithEnvSeesProcessesInTheirExec(t *testing.T) {
	entry := fmt.Sprintf("PLAYBOOK_RUN_ID=execwindow-%d-%d", os.Getpid(), time.Now().UnixNano())
	dir := t.TempDir()
	script := filepath.Join(dir, "again.sh")
	// Each instance replaces itself with a fresh shell for ever: the same pid, always near an exec.
	if err := os.WriteFile(script, []byte("exec /bin/sh \"$0\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 4
	var pids []int
	for i := 0; i < n; i++ {
		c := exec.Command("/bin/sh", script)
		c.Env = append(os.Environ(), entry)
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, c.Process.Pid)
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	for round := 0; round < 200; round++ {
		found, err := WithEnv(entry)
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != n {
			t.Fatalf("scan %d found %d of the %d tagged processes (%v); want all of them", round, len(found), n, pids)
		}
	}
}
