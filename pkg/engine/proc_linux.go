package engine

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

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

// process is a started child whose stdout and stderr the runner goroutine reads itself: one poll(2) loop
// over the two pipes and a pidfd (which becomes readable when the leader exits), instead of os/exec's
// copying goroutines, its netpoller registrations and a separate waitid. The child is started with
// syscall.ForkExec directly: os/exec and os.StartProcess add a Stat of the folder, a pidfd handle with
// its finalizer and file wrappers, work on every step's launch that buys nothing here (the engine
// validated the request, and owns the pipes and the wait).
type process struct {
	pid    int
	out    [2]*stream
	fds    [2]int // read ends of the stdout and stderr pipes (non-blocking); -1 once closed
	exitFD int    // readable once the leader has exited: the pidfd, or a helper's pipe without pidfds
	pidfd  int
}

// startProcess starts cmd (its Path, Args, Env, Dir, SysProcAttr and Stdin, which must be an *os.File
// or nil) with its stdout and stderr on pipes read into out and errs.
func startProcess(cmd *exec.Cmd, out, errs *stream) (*process, error) {
	p := &process{out: [2]*stream{out, errs}, fds: [2]int{-1, -1}, exitFD: -1, pidfd: -1}
	child := [2]int{-1, -1} // the pipes' write ends, the child's stdout and stderr
	closeChild := func() {
		for i := range 2 {
			if child[i] >= 0 {
				unix.Close(child[i])
				child[i] = -1
			}
		}
	}
	cleanup := func() {
		closeChild()
		for i := range 2 {
			if p.fds[i] >= 0 {
				unix.Close(p.fds[i])
				p.fds[i] = -1
			}
		}
	}
	for i := range 2 {
		var fd [2]int
		if err := unix.Pipe2(fd[:], unix.O_CLOEXEC); err != nil {
			cleanup()
			return nil, fmt.Errorf("pipe: %w", err)
		}
		p.fds[i], child[i] = fd[0], fd[1]
		// Only our end is non-blocking (each end is its own open file description); the child's end
		// is the child's business. A fresh pipe's status flags are empty, so set rather than add.
		if _, err := unix.FcntlInt(uintptr(fd[0]), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
			cleanup()
			return nil, fmt.Errorf("pipe: %w", err)
		}
	}
	stdin := -1
	if f, ok := cmd.Stdin.(*os.File); ok && f != nil {
		stdin = int(f.Fd())
	} else {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
		}
		defer unix.Close(fd)
		stdin = fd
	}
	sys := *cmd.SysProcAttr
	sys.PidFD = &p.pidfd
	pid, err := syscall.ForkExec(cmd.Path, cmd.Args, &syscall.ProcAttr{
		Dir:   cmd.Dir,
		Env:   cmd.Env,
		Files: []uintptr{uintptr(stdin), uintptr(child[0]), uintptr(child[1])},
		Sys:   &sys,
	})
	closeChild() // the child has its copies (or never will)
	if err != nil {
		cleanup()
		return nil, &os.PathError{Op: "fork/exec", Path: cmd.Path, Err: err}
	}
	p.pid = pid
	p.exitFD = p.pidfd
	if p.pidfd < 0 {
		// No pidfds (Linux before 5.3): a goroutine waits for the leader's exit without reaping it
		// (WNOWAIT) and then closes the write end of a pipe the loop polls.
		var fd [2]int
		if err := unix.Pipe2(fd[:], unix.O_CLOEXEC); err != nil {
			// Without it the loop cannot learn of the exit before the pipes close: reap now.
			_, _ = reap(pid)
			cleanup()
			return nil, fmt.Errorf("pipe: %w", err)
		}
		p.exitFD = fd[0]
		go func() {
			var info unix.Siginfo
			for unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
			}
			unix.Close(fd[1])
		}()
	}
	return p, nil
}

// wait reads both pipes to their end while the process runs, calls leaderExited as soon as the group
// leader has exited but is not yet reaped (its id, the group id, cannot be reused while it is a zombie,
// so killing the group then cannot reach a stranger; it ends background jobs that would hold the pipes),
// goes on reading for at most waitDelay after that (only a descendant that escaped the group can hold a
// pipe that long; the streams are then marked cut), then reaps the leader.
func (p *process) wait(leaderExited func(), waitDelay time.Duration) (exit, error) {
	bp := readBufs.Get().(*[]byte)
	buf := *bp
	exited := false
	var deadline time.Time
	var set [3]unix.PollFd
	var which [3]int // index into p.fds, or -1 for exitFD
	for {
		n := 0
		for i, fd := range p.fds {
			if fd >= 0 {
				set[n], which[n] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}, i
				n++
			}
		}
		if n == 0 && exited {
			break
		}
		if !exited {
			set[n], which[n] = unix.PollFd{Fd: int32(p.exitFD), Events: unix.POLLIN}, -1
			n++
		}
		timeout := -1
		if exited {
			left := time.Until(deadline)
			if left <= 0 {
				for i := range p.fds {
					if p.fds[i] >= 0 {
						p.out[i].cut = os.ErrClosed
						unix.Close(p.fds[i])
						p.fds[i] = -1
					}
				}
				break
			}
			timeout = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		if _, err := unix.Poll(set[:n], timeout); err != nil {
			if err != unix.EINTR {
				time.Sleep(time.Millisecond) // ENOMEM: try again, without spinning
			}
			continue
		}
		for k := range n {
			switch {
			case set[k].Revents == 0:
			case which[k] < 0:
				exited = true
				leaderExited()
				deadline = time.Now().Add(waitDelay)
			default:
				p.drain(which[k], buf)
			}
		}
	}
	readBufs.Put(bp)
	ws, err := reap(p.pid)
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
	} else if p.exitFD >= 0 {
		unix.Close(p.exitFD)
	}
	if err != nil {
		return exit{}, fmt.Errorf("wait: %w", err)
	}
	return exit{ws: ws, ok: true}, nil
}

// drain reads what pipe i holds now (a bounded number of reads, so that the other pipe and the exit
// are not starved by a flood) and closes it at its end.
func (p *process) drain(i int, buf []byte) {
	s := p.out[i]
	for range 16 {
		k, err := unix.Read(p.fds[i], buf)
		if k > 0 {
			s.Write(buf[:k])
			continue
		}
		switch err {
		case unix.EAGAIN:
			return
		case unix.EINTR:
			continue
		case nil: // end of the stream
		default:
			s.cut = err
		}
		unix.Close(p.fds[i])
		p.fds[i] = -1
		return
	}
}

// reap waits for the child pid to end and collects its status, retrying on EINTR.
func reap(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			return ws, err
		}
	}
}
