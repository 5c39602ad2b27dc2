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
// copying goroutines, its netpoller registrations and a separate waitid. For the short steps playbooks
// are made of that halves the engine's CPU per execution (about 250 µs to 140 µs here) and removes
// goroutine hand-offs from the path between a step's exit and the next step's start.
type process struct {
	cmd    *exec.Cmd
	out    [2]*stream
	fds    [2]int // read ends of the stdout and stderr pipes (non-blocking); -1 once closed
	exitFD int    // readable once the leader has exited: the pidfd, or a helper's pipe without pidfds
	pidfd  int
}

// startProcess starts cmd with its stdout and stderr on pipes read into out and errs.
func startProcess(cmd *exec.Cmd, out, errs *stream) (*process, error) {
	p := &process{cmd: cmd, out: [2]*stream{out, errs}, fds: [2]int{-1, -1}, exitFD: -1, pidfd: -1}
	var child [2]*os.File
	cleanup := func() {
		for i := range 2 {
			if child[i] != nil {
				child[i].Close()
			}
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
		p.fds[i] = fd[0]
		child[i] = os.NewFile(uintptr(fd[1]), "|1") // blocking: the child's end is the child's business
		// Only our end is non-blocking (each end is its own open file description).
		if err := unix.SetNonblock(fd[0], true); err != nil {
			cleanup()
			return nil, fmt.Errorf("pipe: %w", err)
		}
	}
	cmd.Stdout, cmd.Stderr = child[0], child[1]
	cmd.SysProcAttr.PidFD = &p.pidfd
	err := cmd.Start()
	for i := range 2 {
		child[i].Close() // the child has its copies (or never will)
		child[i] = nil
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	p.exitFD = p.pidfd
	if p.pidfd < 0 {
		// No pidfds (Linux before 5.3): a goroutine waits for the leader's exit without reaping it
		// (WNOWAIT) and then closes the write end of a pipe the loop polls.
		var fd [2]int
		if err := unix.Pipe2(fd[:], unix.O_CLOEXEC); err != nil {
			// Without it the loop cannot learn of the exit before the pipes close: wait as os/exec does.
			cmd.Process.Wait()
			cleanup()
			return nil, fmt.Errorf("pipe: %w", err)
		}
		p.exitFD = fd[0]
		pid := cmd.Process.Pid
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
func (p *process) wait(leaderExited func(), waitDelay time.Duration) error {
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
	// Forget the start time before the leader is reaped: its number may be reused after that.
	forgetStart(p.cmd.Process.Pid)
	err := p.cmd.Wait()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
	} else if p.exitFD >= 0 {
		unix.Close(p.exitFD)
	}
	return err
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
