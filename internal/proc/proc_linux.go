//go:build linux

package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stat is what /proc/<pid>/stat says about one process.
type Stat struct {
	PID int
	// PGID is the process group the process belongs to.
	PGID int
	// SID is its session. A process that left its session with setsid (a daemon) leads a session of
	// its own and, with it, a group of the same id: PGID == SID.
	SID int
	// State is the one-letter state: R, S, D, Z (zombie: dead, not yet reaped), T, ...
	State byte
	// StartTicks is when the process started, in clock ticks since the machine booted. Together with
	// the boot id it names one process for the machine's lifetime: a later process that gets the same
	// pid has a larger StartTicks.
	StartTicks uint64

	kernel bool // a kernel thread (PF_KTHREAD): it has no environment and is never a step's
}

// Zombie reports whether the process has exited and only waits to be reaped. A zombie runs nothing and
// holds nothing: recovery treats it as gone.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/<pid>/stat. A process that does not exist gives an error matching ErrNoProcess.
func ReadStat(pid int) (Stat, error) {
	if pid <= 0 {
		return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, ErrNoProcess)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, ErrNoProcess)
		}
		return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	st, err := parseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return st, nil
}

// parseStat parses the contents of /proc/<pid>/stat. The second field is the command name in
// parentheses and may itself contain spaces and parentheses, so the fixed fields are counted from the
// last ')' (proc(5)).
func parseStat(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, errors.New("malformed stat line")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("malformed pid: %w", err)
	}
	// After ")": field 3 (state) is rest[0], field 5 (pgrp) rest[2], field 6 (session) rest[3], field 9
	// (flags) rest[6], field 22
	// (starttime) rest[19].
	rest := strings.Fields(string(b[end+1:]))
	if len(rest) < 20 || len(rest[0]) != 1 {
		return Stat{}, errors.New("malformed stat line: too few fields")
	}
	pgid, err := strconv.Atoi(rest[2])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed pgrp: %w", err)
	}
	sid, err := strconv.Atoi(rest[3])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed session: %w", err)
	}
	start, err := strconv.ParseUint(rest[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed starttime: %w", err)
	}
	flags, err := strconv.ParseUint(rest[6], 10, 64) // field 9
	if err != nil {
		return Stat{}, fmt.Errorf("malformed flags: %w", err)
	}
	const pfKthread = 0x00200000
	return Stat{PID: pid, PGID: pgid, SID: sid, State: rest[0][0], StartTicks: start, kernel: flags&pfKthread != 0}, nil
}

// StartTicks returns when process pid started, in clock ticks since boot (see Stat.StartTicks).
func StartTicks(pid int) (uint64, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return 0, err
	}
	return st.StartTicks, nil
}

// GroupMembers lists the live (not zombie) processes whose process group is pgid, by scanning /proc.
// Processes that exit during the scan are skipped.
func GroupMembers(pgid int) ([]Stat, error) {
	if pgid <= 1 {
		return nil, fmt.Errorf("list group %d: not a process group a step can own", pgid)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list group %d: %w", pgid, err)
	}
	var out []Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil {
			continue // gone meanwhile, or not readable: not ours to judge
		}
		if st.PGID == pgid && !st.Zombie() {
			out = append(out, st)
		}
	}
	return out, nil
}

// WithEnv lists the live (not zombie) processes whose environment, as they were started, holds the
// entry name=value exactly, by scanning /proc. Processes whose environment cannot be read (another
// user's) and processes that exit during the scan are skipped. A child inherits its parent's
// environment, so a variable with a unique value set for a process finds it and its descendants,
// whatever process group they are in, unless they removed it.
//
// A process in the middle of execve shows an empty environment and an empty command line for a
// moment (the kernel has swapped in the new memory but not yet laid out its arguments). Such processes
// are read again, for at most execWait, until their environment shows: a daemon that execs as the
// scan passes is found like any other.
func WithEnv(entry string) ([]Stat, error) {
	if !strings.Contains(entry, "=") {
		return nil, fmt.Errorf("find processes by environment: %q is not name=value", entry)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("find processes by environment: %w", err)
	}
	want := []byte(entry)
	var out []Stat
	var execing []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		switch st, state := matchEnv(pid, want); state {
		case envMatch:
			out = append(out, st)
		case envInExec:
			execing = append(execing, pid)
		}
	}
	for wait, deadline := time.Millisecond, time.Now().Add(execWait); len(execing) > 0 && time.Now().Before(deadline); wait *= 2 {
		time.Sleep(wait)
		still := execing[:0]
		for _, pid := range execing {
			switch st, state := matchEnv(pid, want); state {
			case envMatch:
				out = append(out, st)
			case envInExec:
				still = append(still, pid)
			}
		}
		execing = still
	}
	return out, nil
}

// execWait bounds how long WithEnv waits for processes in the middle of an exec to show their
// environment: an exec takes far less, and a process that shows nothing for this long (one stopped
// inside its exec) is left out rather than holding up the end of every run.
const execWait = time.Second

type envState int

const (
	envOther  envState = iota // gone, a zombie, a kernel thread, unreadable, or without the entry
	envMatch                  // live and its environment holds the entry
	envInExec                 // live, and both its environment and command line read empty: in an exec
)

// matchEnv reads one process's environment and says whether it holds want.
func matchEnv(pid int, want []byte) (Stat, envState) {
	dir := "/proc/" + strconv.Itoa(pid)
	env, err := os.ReadFile(dir + "/environ")
	if err != nil {
		return Stat{}, envOther
	}
	if len(env) == 0 {
		// Kernel threads and zombies have no memory to read, and a process started with an empty
		// environment still has its command line. The kernel lays out both at once, so a command line
		// that shows now means the exec may have finished since the first read: read again.
		cmd, err := os.ReadFile(dir + "/cmdline")
		if err != nil {
			return Stat{}, envOther
		}
		if len(cmd) == 0 {
			st, err := ReadStat(pid)
			if err != nil || st.Zombie() || st.kernel {
				return Stat{}, envOther
			}
			return st, envInExec
		}
		if env, err = os.ReadFile(dir + "/environ"); err != nil {
			return Stat{}, envOther
		}
	}
	if !hasEntry(env, want) {
		return Stat{}, envOther
	}
	st, err := ReadStat(pid)
	if err != nil || st.Zombie() {
		return Stat{}, envOther
	}
	return st, envMatch
}

// hasEntry reports whether the NUL-separated environment env holds entry exactly.
func hasEntry(env, entry []byte) bool {
	for len(env) > 0 {
		i := bytes.IndexByte(env, 0)
		if i < 0 {
			i = len(env)
		}
		if bytes.Equal(env[:i], entry) {
			return true
		}
		env = env[min(i+1, len(env)):]
	}
	return false
}

// BootID returns the kernel's random id of the current boot. Two different values mean the machine
// restarted in between: every process of the earlier boot is gone.
func BootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
