//go:build linux

package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// mountSmall mounts a small tmpfs, or skips when this process may not mount.
func mountSmall(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fill writes to path until the file system is full, and returns how to free the space.
func fill(t *testing.T, path string) (free func()) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			break
		}
	}
	f.Close()
	return func() { os.Remove(path) }
}

// Opening an existing database writes nothing: before, every Open set auto_vacuum again, which
// appends a page to the WAL; on a full disk that failed and kept every command from reading.
func TestOpenExistingDatabaseWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pb.db")
	s := openAt(t, path)
	r := fixtureRun("r1", "a")
	if err := s.RunStarted(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	recordStep(t, s, "r1", "a", run.StatusSucceeded, 0, t0, 1, "out", "")
	finishRun(t, s, r, run.StatusSucceeded, 0, t0.Add(2))
	// Keep a reader open so that the WAL is not checkpointed away between the two looks.
	keep := rawDB(t, path)
	if _, err := keep.Exec("SELECT count(*) FROM runs"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, path)
	if got := queryString(t, s2.w, "PRAGMA auto_vacuum"); got != "2" {
		t.Errorf("auto_vacuum = %s, want 2 (incremental, set when the database was created)", got)
	}
	after, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() {
		t.Errorf("opening the database wrote %d bytes to its WAL", after.Size()-before.Size())
	}
}

// A full disk: recovery cannot mark a dead runner's run interrupted. Open still succeeds, so the
// database can be read; the run stays running and RecoveryErr says why; once space is back, the next
// Open marks it.
func TestOpenOnFullDisk(t *testing.T) {
	dir := mountSmall(t, "1m")
	path := filepath.Join(dir, "pb.db")
	s := openAt(t, path)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	insertOwnedRun(t, s, "dead-runner", dead.Process.Pid, 12345, s.host, s.bootID)
	// Keep the WAL and its index alive: a reader needs them, and on a full disk they could not be
	// created again.
	keep := rawDB(t, path)
	if _, err := keep.Exec("SELECT count(*) FROM runs"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	free := fill(t, filepath.Join(dir, "filler"))

	full, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	var rerr *RecoveryError
	if err := full.RecoveryErr(); !errors.As(err, &rerr) {
		t.Errorf("RecoveryErr = %v, want a *RecoveryError", err)
	}
	if got, err := full.Run(context.Background(), "dead-runner"); err != nil || got.Status != run.StatusRunning {
		t.Errorf("run on a full disk: %+v, %v; want it readable and still running", got, err)
	}
	full.Close()

	free()
	s3 := openAt(t, path)
	if err := s3.RecoveryErr(); err != nil {
		t.Errorf("RecoveryErr with space: %v", err)
	}
	if got, err := s3.Run(context.Background(), "dead-runner"); err != nil || got.Status != run.StatusInterrupted {
		t.Errorf("run once space is back: %+v, %v; want interrupted", got, err)
	}
	integrityOK(t, path)
}
