//go:build unix && !linux

package engine

import (
	"os/exec"
	"syscall"
)

// setDeathSignal does nothing: only Linux has a parent-death signal.
func setDeathSignal(*syscall.SysProcAttr) {}

// waitProcess reaps the leader and waits for the output, then calls leaderExited. Without waitid's
// WNOWAIT here, background jobs holding the pipes delay Wait until Config.WaitDelay.
func waitProcess(cmd *exec.Cmd, leaderExited func()) error {
	err := cmd.Wait()
	leaderExited()
	return err
}
