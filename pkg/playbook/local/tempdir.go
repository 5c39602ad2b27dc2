package local

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/playbookhq/playbook/pkg/run"
)

// tempBases lists where a run's temporary folder may go, best first. Every attempt gets a new
// $PLAYBOOK_OUTPUT file there, created 0600 before its step starts, and on a journalled disk creating
// a file costs a chain of short steps about as much as launching it: a memory file system (tmpfs)
// does not journal. So: $TMPDIR when the user set it (their choice wins); else $XDG_RUNTIME_DIR, the
// user's private tmpfs where the system provides one; else /dev/shm, the shared tmpfs, where a
// folder of mode 0700 is as private as in /tmp; else os.TempDir().
func tempBases(getenv func(string) string) []string {
	if d := getenv("TMPDIR"); d != "" {
		return []string{d}
	}
	var bases []string
	if d := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		bases = append(bases, d)
	}
	return append(bases, "/dev/shm", os.TempDir())
}

// makeTempDir creates the run's private temporary folder, mode 0700 whatever the umask. fixModes
// reports that the umask removes the owner's read or write bit, so that files created in the folder
// need an explicit chmod.
func makeTempDir(runID string) (dir string, fixModes bool, err error) {
	pattern := run.TempDirPrefix + runID + "-"
	if strings.ContainsAny(runID, "/\x00") {
		pattern = run.TempDirPrefix // the id cannot be part of a file name; recovery will not claim the folder
	}
	for _, base := range tempBases(os.Getenv) {
		if dir, err = os.MkdirTemp(base, pattern); err == nil {
			break
		}
	}
	if err != nil {
		return "", false, fmt.Errorf("create the run's temporary folder in %s: %w (set TMPDIR to a writable folder)", os.TempDir(), err)
	}
	fi, err := os.Lstat(dir)
	if err == nil && fi.Mode().Perm() != 0o700 {
		fixModes = fi.Mode().Perm()&0o600 != 0o600
		err = os.Chmod(dir, 0o700)
	}
	if err != nil {
		os.Remove(dir)
		return "", false, fmt.Errorf("make the run's temporary folder %s private: %w", dir, err)
	}
	return dir, fixModes, nil
}

// createPrivate creates an empty file of mode 0600 that no one else can have prepared: a file left in
// its place (by an earlier attempt's step, say) is removed first, and a symlink is never followed. It
// runs before every attempt, so it uses the system calls directly: an os.File would cost a chain of
// steps several more calls each (descriptor flags, the poller) for a file it only creates.
func createPrivate(path string, fixMode bool) error {
	const flags = syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	fd, err := syscall.Open(path, flags, 0o600)
	if err == syscall.EEXIST {
		if err = syscall.Unlink(path); err == nil {
			fd, err = syscall.Open(path, flags, 0o600)
		}
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	if fixMode {
		err = syscall.Fchmod(fd, 0o600)
	}
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	return nil
}
