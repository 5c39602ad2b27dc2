package engine

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// setDeathSignal asks the kernel to SIGKILL the child when the engine dies (kill -9, OOM), so a crashed
// runner does not leave its steps running.
//
// Pdeathsig fires when the thread that forked the child exits, not only when the process does. The Go
// runtime ends a thread only when a goroutine locked to it (runtime.LockOSThread) returns without
// unlocking. Run forks on the caller's goroutine, which cannot return before the child is reaped; other
// executions fork on the engine's own goroutines, which never lock. The remaining risk: the forking thread
// later runs some other goroutine of the program that locks it and exits while the child still runs.
// Programs that let locked goroutines exit should know their steps may then be killed early; no
// LockOSThread is taken here, because pinning a thread per running child costs more than that risk.
//
// It reaches only the group leader: background members of the group survive a crash of the engine, which
// is why callers record Result.PID (the group id) and kill leftover groups when they recover (see
// PRODUCT.md, interrupted runs).
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// waitProcess waits for the group leader to exit without reaping it (waitid with WNOWAIT), calls
// leaderExited while the leader is a zombie (so its pid, the group id, cannot be reused yet), then reaps it
// and waits for the output with cmd.Wait.
func waitProcess(cmd *exec.Cmd, leaderExited func()) error {
	var info unix.Siginfo
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	}
	if err != nil {
		// The leader's state is unknown (say, SIGCHLD is ignored and the kernel reaps children): never
		// signal a group that may be alive for another reason, or whose id may be reused. Wait first.
		werr := cmd.Wait()
		leaderExited()
		return werr
	}
	leaderExited()
	return cmd.Wait()
}
