//go:build !linux

package proc

import "fmt"

// Stat is what the system says about one process. Only Linux provides it.
type Stat struct {
	PID, PGID  int
	SID        int
	State      byte
	StartTicks uint64
}

// Zombie reports whether the process has exited and only waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat is not available on this system: it returns ErrUnsupported.
func ReadStat(pid int) (Stat, error) {
	return Stat{}, fmt.Errorf("read stat of pid %d: %w", pid, ErrUnsupported)
}

// StartTicks is not available on this system: it returns ErrUnsupported.
func StartTicks(pid int) (uint64, error) {
	return 0, fmt.Errorf("start time of pid %d: %w", pid, ErrUnsupported)
}

// GroupMembers is not available on this system: it returns ErrUnsupported.
func GroupMembers(pgid int) ([]Stat, error) {
	return nil, fmt.Errorf("list group %d: %w", pgid, ErrUnsupported)
}

// WithEnv is not available on this system: it returns ErrUnsupported.
func WithEnv(entry string) ([]Stat, error) {
	return nil, fmt.Errorf("find processes by environment: %w", ErrUnsupported)
}

// BootID is not available on this system: it returns ErrUnsupported.
func BootID() (string, error) { return "", fmt.Errorf("read boot id: %w", ErrUnsupported) }
