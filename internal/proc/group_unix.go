//go:build unix

package proc

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// KillOutcome says what KillStaleGroup found and did.
type KillOutcome int

const (
	// GroupGone: no live process is left in the group; nothing was sent.
	GroupGone KillOutcome = iota
	// GroupKilled: the group was the recorded one and got SIGKILL.
	GroupKilled
	// GroupReused: the group id now belongs to another process (the pid was reused, or a member
	// predates the recorded leader); nothing was sent.
	GroupReused
)

// String is the outcome as a word: gone, killed, reused.
func (o KillOutcome) String() string {
	switch o {
	case GroupGone:
		return "gone"
	case GroupKilled:
		return "killed"
	case GroupReused:
		return "reused"
	}
	return fmt.Sprintf("KillOutcome(%d)", int(o))
}

// KillStaleGroup sends SIGKILL to process group pgid, which a step process started at leaderStart
// (clock ticks since boot, see StartTicks) created, only when the group is still that one. The caller
// must already know that the machine has not rebooted since (same boot id) and that the owner of the
// group is dead.
//
// The guard against reused pids:
//   - The leader (pid == pgid) is alive: the group is ours only if the leader's start time is the
//     recorded one. A different start time means the number was reused: leave it alone.
//   - The leader is gone (or a zombie) but members remain: while any process has pgid as its process
//     group, Linux does not hand the number pgid to a new process, so the group is the original one
//     unless it emptied completely and a new process with the recycled number made a new group of the
//     same id. That new group's members all started after our leader, like ours, so it cannot be
//     told apart perfectly; as a sanity check, a member that started before the recorded leader proves
//     the group is not ours. This residual risk (a full pid wrap-around while the runner was dead, and
//     the new process of that number creating a group and then exiting first) is accepted.
//
// A leader that left its group is treated like a gone leader. On systems without /proc it returns
// ErrUnsupported and sends nothing.
func KillStaleGroup(pgid int, leaderStart uint64) (KillOutcome, error) {
	if pgid <= 1 {
		return GroupGone, fmt.Errorf("kill group %d: not a step's process group", pgid)
	}
	leader, err := ReadStat(pgid)
	switch {
	case err == nil && !leader.Zombie() && leader.PGID == pgid:
		if leader.StartTicks != leaderStart {
			return GroupReused, nil
		}
		return killGroup(pgid)
	case err == nil && !leader.Zombie() && leader.StartTicks != leaderStart:
		// The number is a new process's, which sits in another group: group pgid cannot exist.
		return GroupReused, nil
	case err != nil && !errors.Is(err, ErrNoProcess):
		return GroupGone, err
	}
	members, err := GroupMembers(pgid)
	if err != nil {
		return GroupGone, err
	}
	if len(members) == 0 {
		return GroupGone, nil
	}
	for _, m := range members {
		if m.StartTicks < leaderStart {
			return GroupReused, nil
		}
	}
	return killGroup(pgid)
}

func killGroup(pgid int) (KillOutcome, error) {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return GroupGone, nil
		}
		return GroupGone, fmt.Errorf("kill group %d: %w", pgid, err)
	}
	return GroupKilled, nil
}

// GroupAlive reports whether process group pgid has a process that has not exited. Zombies (exited,
// not yet reaped) do not count. Without /proc it falls back to kill(-pgid, 0), which counts zombies.
func GroupAlive(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	members, err := GroupMembers(pgid)
	if err == nil {
		return len(members) > 0
	}
	return syscall.Kill(-pgid, 0) == nil
}

// KillWithEnv sends SIGKILL to every live process whose environment holds entry (see WithEnv), and to
// the process group of each one that leads a group (a daemon that called setsid leads its own session
// and group), sparing the calling process and its group. It scans again while a scan finds a process it
// has not killed yet (one may fork during the scan), a few times at most. It returns the number of
// processes it killed; on systems without /proc it returns ErrUnsupported and sends nothing.
func KillWithEnv(entry string) (int, error) {
	self, own := os.Getpid(), syscall.Getpgrp()
	killed := map[int]bool{}
	for round := 0; round < 4; round++ {
		procs, err := WithEnv(entry)
		if err != nil {
			return len(killed), err
		}
		fresh := 0
		for _, p := range procs {
			if p.PID == self || killed[p.PID] {
				continue
			}
			fresh++
			killed[p.PID] = true
			if p.PGID == p.PID && p.PGID > 1 && p.PGID != own {
				_ = syscall.Kill(-p.PGID, syscall.SIGKILL) // its group: what it started before leaving ours
			}
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
		if fresh == 0 {
			break
		}
	}
	return len(killed), nil
}
