//go:build unix

package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// FileLock is an exclusive advisory lock (flock(2)) on a file. The kernel releases it when the
// process that holds it dies in any way (kill -9 included), so a lock that can be taken proves that
// its previous holder is gone, with no pid-reuse ambiguity. Go opens files close-on-exec, so child
// processes never inherit the lock and cannot keep a dead runner looking alive.
//
// A FileLock is not safe for concurrent use. Locks are per open file: opening the same path twice in
// one process gives two locks that exclude each other, like two processes.
type FileLock struct {
	f    *os.File
	path string
}

// TryLock takes the lock on path without waiting. With create, a missing file is created with mode
// 0600; without it, a missing file gives an error matching os.ErrNotExist. A lock held elsewhere gives
// ErrLocked.
func TryLock(path string, create bool) (*FileLock, error) {
	flags := os.O_RDWR | os.O_APPEND // Append is then one write(2), with no seek
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &FileLock{f: f, path: path}, nil
}

// Append writes b at the end of the locked file. It is one write(2) into the page cache, without
// fsync: what it records must survive the holder's death, not the machine's (a reboot ends every process
// the record could name anyway), so it costs microseconds where a database commit costs a hundred.
func (l *FileLock) Append(b []byte) error {
	if l == nil || l.f == nil {
		return fmt.Errorf("append to lock: %w", os.ErrClosed)
	}
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("append to lock %s: %w", l.path, err)
	}
	return nil
}

// Contents reads the whole locked file.
func (l *FileLock) Contents() ([]byte, error) {
	if l == nil || l.f == nil {
		return nil, fmt.Errorf("read lock: %w", os.ErrClosed)
	}
	data, err := io.ReadAll(io.NewSectionReader(l.f, 0, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("read lock %s: %w", l.path, err)
	}
	return data, nil
}

// Path is the locked file's path.
func (l *FileLock) Path() string { return l.path }

// Release drops the lock. With remove, the file is deleted first (while still locked, so that nobody
// takes a lock on a file that is about to disappear and mistakes it for the live one). Release on a
// nil or already released lock does nothing.
func (l *FileLock) Release(remove bool) error {
	if l == nil || l.f == nil {
		return nil
	}
	var errs []error
	if remove {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := l.f.Close(); err != nil { // closing the only descriptor releases the flock
		errs = append(errs, err)
	}
	l.f = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	return nil
}
