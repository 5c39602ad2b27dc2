package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadCommandsOnUnwritableDatabase: runs, show and logs work on a database the user can read but
// not write (as nobody when the tests run as root, else with the modes alone). They open it read-only:
// the file does not change and nothing is created beside it (no -wal, -shm, lock).
func TestReadCommandsOnUnwritableDatabase(t *testing.T) {
	base := t.TempDir()
	bin, cred := asNobody(t, base)
	work := filepath.Join(base, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "p.yaml"), "version: 1\nname: ro\nsteps:\n  - id: a\n    run: echo hello from a\n")
	db := filepath.Join(base, "state", "pb.db")
	if r := pbRun(t, work, db, pbOpts{}, "run", "p.yaml"); r.code != 0 {
		t.Fatalf("first run: %d\n%s", r.code, r.out)
	}
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(db)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	before := fileHash(t, db)
	entries := func() []string {
		var names []string
		filepath.WalkDir(dir, func(p string, _ os.DirEntry, _ error) error {
			names = append(names, p)
			return nil
		})
		return names
	}
	listed := entries()

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"runs"}, "succeeded"},
		{[]string{"show", "last"}, "a"},
		{[]string{"logs", "last", "a"}, "hello from a"},
	} {
		r := pbRun(t, work, db, pbOpts{bin: bin, cred: cred}, c.args...)
		if r.code != 0 || !strings.Contains(r.out, c.want) {
			t.Errorf("%v on a read-only database: exit %d, want 0 and %q:\n%s", c.args, r.code, c.want, r.out)
		}
	}
	if fileHash(t, db) != before {
		t.Error("the database file changed")
	}
	if now := entries(); !slices.Equal(listed, now) {
		t.Errorf("files beside the database changed: %v, now %v", listed, now)
	}
}
