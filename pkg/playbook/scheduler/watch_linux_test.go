//go:build linux

package scheduler

import (
	"os"
	"path/filepath"
	"testing"
)

// The watch reports names created, moved in or linked into the folder, once each, and nothing else.
func TestOutputsWatch(t *testing.T) {
	dir := t.TempDir()
	w := watchOutputs(dir)
	if w == nil {
		t.Skip("no inotify here")
	}
	defer w.close()
	if w.mayExist("a.1.out") {
		t.Error("a name nobody created may exist")
	}
	write := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("k=v\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.1.out")
	write("tmp")
	if err := os.Rename(filepath.Join(dir, "tmp"), filepath.Join(dir, "b.1.out")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "c")
	if err := os.WriteFile(outside, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(outside, filepath.Join(dir, "c.1.out")); err != nil {
		t.Logf("no hard link across these folders (%v): its case is not checked", err)
	} else if !w.mayExist("c.1.out") {
		t.Error("a hard link made into the folder is not reported")
	}
	for _, name := range []string{"a.1.out", "b.1.out"} {
		if !w.mayExist(name) {
			t.Errorf("%s was created (or moved in) and is not reported", name)
		}
		if w.mayExist(name) {
			t.Errorf("%s is reported twice", name)
		}
	}
	if w.mayExist("d.1.out") {
		t.Error("a name nobody created may exist")
	}
	// A step removes the folder (and might make a new one at its path): the watch gives up.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if !w.mayExist("d.1.out") || !w.lost {
		t.Error("after the folder went, every name must be looked up")
	}
}

// A nil watch (no inotify) rules nothing out.
func TestNilOutputsWatch(t *testing.T) {
	var w *outputsWatch
	if !w.mayExist("x") {
		t.Error("a nil watch ruled a name out")
	}
	w.close()
}
