package store

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveTempDirOnlyTheRunsOwn: recovery removes a dead run's temporary folder only when the path
// recorded is that run's folder: absolute and clean, named for the run, a real folder and not a symlink
// to one. Whatever else the database says is left alone, and a symlink inside the folder is removed,
// not followed.
func TestRemoveTempDirOnlyTheRunsOwn(t *testing.T) {
	base := t.TempDir()
	const id = "0123456789abcdef0123456789abcdef"
	mk := func(name string) string {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "keep"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	target := mk("target")
	otherRun := mk("playbook-run-fedcba9876543210fedcba9876543210-1")
	noPrefix := mk(id + "-1")
	link := filepath.Join(base, "playbook-run-"+id+"-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	own := mk("playbook-run-" + id + "-2")
	if err := os.Symlink(target, filepath.Join(own, "to-target")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "relative/playbook-run-" + id + "-2", otherRun, noPrefix, link,
		base + "/x/../playbook-run-" + id + "-2", target} {
		if removeTempDir(id, p) {
			t.Errorf("removed %q", p)
		}
	}
	for _, p := range []string{otherRun, noPrefix, own, filepath.Join(target, "keep")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("the symlink was removed: %v", err)
	}
	if !removeTempDir(id, own) {
		t.Fatal("the run's own folder was not removed")
	}
	if _, err := os.Lstat(own); !os.IsNotExist(err) {
		t.Errorf("the run's folder is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "keep")); err != nil {
		t.Errorf("a symlink in the folder was followed: %v", err)
	}
}
