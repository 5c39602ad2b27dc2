//go:build unix && !linux

package engine

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// setDeathSignal does nothing: only Linux has a parent-death signal.
func setDeathSignal(*syscall.SysProcAttr) {}

// process is a started child whose output os/exec copies into the streams (see stream.ReadFrom).
type process struct {
	cmd *exec.Cmd
	pid int
}

func startProcess(cmd *exec.Cmd, out, errs *stream) (*process, error) {
	cmd.Stdout, cmd.Stderr = out, errs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &process{cmd: cmd, pid: cmd.Process.Pid}, nil
}

// wait reaps the leader and waits for the output (at most cmd.WaitDelay after the leader exits), then
// calls leaderExited. Without waitid's WNOWAIT here, background jobs holding the pipes delay Wait until
// that delay.
func (p *process) wait(leaderExited func(), _ time.Duration) (exit, error) {
	err := p.cmd.Wait()
	leaderExited()
	var x exit
	if ps := p.cmd.ProcessState; ps != nil {
		x.ws, x.ok = ps.Sys().(syscall.WaitStatus)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return x, errOutputCut
	}
	return x, nil // an *exec.ExitError is in the status
}
