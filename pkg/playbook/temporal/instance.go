package temporal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/playbookhq/playbook/internal/proc"
)

// InstanceEnv names the environment variable every step process a worker starts carries, with the
// worker process's random instance id: what finds the processes a dead worker left behind.
const InstanceEnv = "PLAYBOOK_WORKER_INSTANCE"

// Instance is one worker process's claim on the step processes it starts. A step's group leader dies
// with its worker (the engine's death signal), but what it started in the background, or the other
// commands of a pipeline, would go on running after a kill -9 of the worker, while the step's retry
// runs elsewhere: a half-done step running twice. So each worker process holds a lock file named for
// its instance id while it lives, and its steps carry the id in their environment (InstanceEnv); any
// worker on the machine that finds a lock file nobody holds kills the processes of that instance
// (Sweep).
type Instance struct {
	ID   string
	lock *proc.FileLock
}

// NewInstance creates the lock file of a new instance in dir (created 0700 if missing) and holds it
// until Close.
func NewInstance(dir string) (*Instance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("worker instance: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("worker instance: %w", err)
	}
	id := hex.EncodeToString(b[:])
	lock, err := proc.CreateLock(filepath.Join(dir, id+".lock"))
	if err != nil {
		return nil, fmt.Errorf("worker instance: %w", err)
	}
	return &Instance{ID: id, lock: lock}, nil
}

// Close releases and removes the instance's lock file: a worker that exits normally has stopped its
// steps already (it drains), so nothing is left to sweep.
func (i *Instance) Close() error { return i.lock.Release(true) }

// Sweep finds, in dir, the lock files of worker instances that died (their lock can be taken) and
// kills the process groups their steps left, found by InstanceEnv; then it removes the lock file. A
// live instance's file (its lock held) is never touched, nor is this process's own group. It returns
// the number of groups killed; a failure to read dir is an error, one to inspect or kill a process is
// not (the file stays for the next sweep when a kill fails).
func Sweep(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep dead workers' processes: %w", err)
	}
	own := syscall.Getpgrp()
	killed := 0
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || strings.HasPrefix(e.Name(), proc.TempPrefix) {
			continue
		}
		lock, err := proc.TryLock(filepath.Join(dir, e.Name()), false)
		if err != nil {
			continue // held (alive), or gone meanwhile
		}
		procs, err := proc.WithEnv(InstanceEnv + "=" + id)
		clean := err == nil
		groups := map[int]bool{}
		for _, p := range procs {
			if p.PGID <= 1 || p.PGID == own || groups[p.PGID] {
				continue
			}
			if kerr := syscall.Kill(-p.PGID, syscall.SIGKILL); kerr == nil || errors.Is(kerr, syscall.ESRCH) {
				groups[p.PGID] = true
			} else {
				clean = false
			}
		}
		killed += len(groups)
		_ = lock.Release(clean)
	}
	return killed, nil
}
