//go:build unix

package proc

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	if err := flockNB(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &FileLock{f: f, path: path}, nil
}

// CreateLock creates the file at path and returns it locked. The file appears at path already locked:
// it is created under a temporary name in the same folder (TempPrefix, then the base name), locked
// there, then hard-linked to path. So a process sweeping stale lock files, which takes an unheld lock and
// deletes the file, can never take the new file in the moment between its creation and its locking (the
// race TryLock(path, true) has with such a sweeper: the creator then finds its own fresh file locked, or
// locks a file the sweeper has just unlinked). A file already at path gives an error matching
// os.ErrExist and is left alone. A process killed between the two steps leaves a temporary file that
// nobody holds; sweepers may remove such files once they are older than a few seconds (a younger one may
// be a creator's between its steps).
func CreateLock(path string) (*FileLock, error) {
	dir, base := filepath.Split(path)
	var f *os.File
	var tmp string
	for {
		tmp = filepath.Join(dir, fmt.Sprintf("%s%s.%016x", TempPrefix, base, rand.Uint64()))
		var err error
		f, err = os.OpenFile(tmp, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	fail := func(err error) (*FileLock, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flockNB(f); err != nil {
		return fail(err) // nobody else knows the fresh name: nothing should hold it
	}
	if err := os.Link(tmp, path); err != nil {
		return fail(err)
	}
	// The temporary name was only the way in; the lock lives on the inode, now reachable at path.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		l := &FileLock{f: f, path: path}
		_ = l.Release(true)
		return nil, fmt.Errorf("lock %s: remove temporary %s: %w", path, tmp, err)
	}
	return &FileLock{f: f, path: path}, nil
}

// TempPrefix starts the name of the temporary file CreateLock makes beside the lock file.
const TempPrefix = ".creating."

// flockNB takes an exclusive flock on f without waiting, retrying on EINTR. A lock held elsewhere gives
// ErrLocked.
func flockNB(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return ErrLocked
		default:
			return err
		}
	}
}

// Append writes b at the end of the locked file. It is one write(2) into the page cache, without
// fsync: what it records must survive the holder's death, not the machine's (a reboot ends every process
// the record could name anyway), so it is far cheaper than a database commit.
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
