//go:build linux

package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func init() {
	// read: OpenForReading and list the runs, printing "ok readonly=B runs=N statuses=S".
	helpers["read"] = func(path string) error {
		s, err := OpenForReading(context.Background(), path, Options{})
		if err != nil {
			fmt.Println("error:", err)
			return nil
		}
		defer s.Close()
		runs, err := s.ListRuns(context.Background(), RunFilter{})
		if err != nil {
			fmt.Println("error:", err)
			return nil
		}
		var st []string
		for _, r := range runs {
			st = append(st, string(r.Status))
		}
		slices.Sort(st)
		fmt.Printf("ok readonly=%v runs=%d statuses=%s\n", s.ReadOnly(), len(runs), strings.Join(st, ","))
		return nil
	}
}

// foreignDB makes another application's database at path: a table of its own, a rollback journal
// (DELETE), no schema version. It returns the file's bytes.
func foreignDB(t *testing.T, path string, stmts ...string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=DELETE")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// untouched fails unless path still holds want, in rollback-journal mode (the header's read and
// write format bytes are 1; WAL makes them 2), with no -wal or -shm beside it.
func untouched(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed (%d bytes, was %d)", path, len(got), len(want))
	}
	if len(got) > 19 && (got[18] != 1 || got[19] != 1) {
		t.Errorf("%s: file format bytes %d,%d: switched to WAL", path, got[18], got[19])
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Lstat(path + suffix); err == nil {
			t.Errorf("%s%s was left behind", path, suffix)
		}
	}
}

// A database that another process is creating at that moment is ours, whatever moment the ownership
// check reads it at: eight runners started at once on a new database once had one refuse it as
// another application's, because the check read its tables before the first migration committed and
// its schema version after.
func TestOwnershipCheckDuringCreation(t *testing.T) {
	dir := t.TempDir()
	checks := 0
	for i := range 40 {
		path := filepath.Join(dir, fmt.Sprintf("new%d.db", i))
		created := make(chan error, 1)
		go func() {
			s, err := Open(context.Background(), path)
			if err == nil {
				err = s.Close()
			}
			created <- err
		}()
		for done := false; !done; {
			select {
			case err := <-created:
				if err != nil {
					t.Fatal(err)
				}
				done = true
				continue
			default:
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				continue // not begun: an empty file is not checked
			}
			checks++
			var foreign *ForeignDatabaseError
			if err := checkOurs(context.Background(), path); errors.As(err, &foreign) {
				<-created
				t.Fatalf("database %d, check %d, during its creation: %v", i, checks, err)
			}
		}
	}
	t.Logf("%d checks while a database was being created", checks)
}

// Another application's SQLite database given as --db is refused and left exactly as it was; a
// database without tables is ours to initialise.
func TestOpenRefusesForeignDatabase(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]string{
		"tables of its own": {"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "INSERT INTO notes (body) VALUES ('keep me')"},
		// Not ours either: a runs table, but not our schema version.
		"a runs table of its own": {"CREATE TABLE runs (x)", "PRAGMA user_version = 0"},
		"a schema version only":   {"PRAGMA user_version = 7", "CREATE TABLE t (x)", "DROP TABLE t"},
		"an index and a view":     {"CREATE TABLE a (x)", "CREATE INDEX ax ON a (x)", "CREATE VIEW v AS SELECT 1"},
	}
	for name, stmts := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".sqlite")
			want := foreignDB(t, path, stmts...)
			for _, open := range []struct {
				name string
				fn   func(context.Context, string) (*Store, error)
			}{{"Open", Open}, {"OpenForReading", openForReadingDefault}} {
				s, err := open.fn(context.Background(), path)
				if err == nil {
					s.Close()
					t.Fatalf("%s accepted another application's database", open.name)
				}
				var fe *ForeignDatabaseError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), path) ||
					!strings.Contains(err.Error(), "belongs to something else") || !strings.Contains(err.Error(), "--db") {
					t.Errorf("%s: error %q: want a ForeignDatabaseError naming the file and what to do", open.name, err)
				}
				untouched(t, path, want)
			}
		})
	}

	t.Run("no tables is ours to initialise", func(t *testing.T) {
		path := filepath.Join(dir, "blank.db")
		foreignDB(t, path, "CREATE TABLE t (x)", "DROP TABLE t")
		s := openAt(t, path)
		if s.migrated == 0 {
			t.Error("no migration applied")
		}
	})
	t.Run("ours is opened again", func(t *testing.T) {
		path := filepath.Join(dir, "ours.db")
		s := openAt(t, path)
		s.Close()
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}

// chownNobody gives path to uid/gid 65534, or skips the test when this process may not (not root).
func chownNobody(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user (os.Chown to 65534)")
	}
	if err := os.Lchown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// A database file or folder that another user could have planted or changed is refused, by writers
// and readers alike, before SQLite opens it; nothing is written through it.
func TestOpenRefusesUnsafeFiles(t *testing.T) {
	type setup func(t *testing.T, dir, db string)
	ours := func(t *testing.T, db string) {
		s, err := Open(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		setup    setup
		at       string // the path the error names: "db", "dir", "wal", "shm"
		want     string // in the error
		existing bool   // the database exists (OpenForReading must refuse it too)
	}{
		{"pre-created 0666 by another user", func(t *testing.T, dir, db string) {
			if err := os.WriteFile(db, nil, 0o666); err != nil {
				t.Fatal(err)
			}
			os.Chmod(db, 0o666)
			chownNobody(t, db)
		}, "db", "owned by uid 65534", true},
		{"owned by another user", func(t *testing.T, dir, db string) {
			ours(t, db)
			chownNobody(t, db)
		}, "db", "owned by uid 65534", true},
		{"writable by others", func(t *testing.T, dir, db string) {
			ours(t, db)
			os.Chmod(db, 0o666)
		}, "db", "chmod go-w " + "DB", true},
		{"writable by group", func(t *testing.T, dir, db string) {
			ours(t, db)
			os.Chmod(db, 0o620)
		}, "db", "writable by group or others (mode 0620)", true},
		{"folder writable by others", func(t *testing.T, dir, db string) {
			ours(t, db)
			os.Chmod(dir, 0o777)
		}, "dir", "chmod go-w DIR", true},
		{"sticky shared folder like /tmp", func(t *testing.T, dir, db string) {
			os.Chmod(dir, 0o1777)
		}, "dir", "mkdir -m 700", false},
		{"folder owned by another user", func(t *testing.T, dir, db string) {
			chownNobody(t, dir)
		}, "dir", "owned by uid 65534", false},
		{"symlink to a file", func(t *testing.T, dir, db string) {
			victim := filepath.Join(filepath.Dir(dir), "victim")
			os.WriteFile(victim, []byte("precious"), 0o600)
			if err := os.Symlink(victim, db); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if b, _ := os.ReadFile(victim); string(b) != "precious" {
					t.Errorf("the symlink's target was written: %q", b)
				}
			})
		}, "db", "symbolic link", true},
		{"dangling symlink", func(t *testing.T, dir, db string) {
			target := filepath.Join(filepath.Dir(dir), "created-through-link")
			if err := os.Symlink(target, db); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, err := os.Lstat(target); err == nil {
					t.Error("a file was created through the symlink")
				}
			})
		}, "db", "symbolic link", true},
		{"planted -wal symlink", func(t *testing.T, dir, db string) {
			ours(t, db)
			if err := os.Symlink(filepath.Join(filepath.Dir(dir), "elsewhere"), db+"-wal"); err != nil {
				t.Fatal(err)
			}
		}, "wal", "symbolic link", true},
		{"-shm owned by another user", func(t *testing.T, dir, db string) {
			ours(t, db)
			if err := os.WriteFile(db+"-shm", nil, 0o600); err != nil {
				t.Fatal(err)
			}
			chownNobody(t, db+"-shm")
		}, "shm", "owned by uid 65534", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(dir, "playbook.db")
			c.setup(t, dir, db)
			at := map[string]string{"db": db, "dir": dir, "wal": db + "-wal", "shm": db + "-shm"}[c.at]
			want := strings.NewReplacer("DB", db, "DIR", dir).Replace(c.want)
			before, _ := os.ReadFile(db)
			opens := []func(context.Context, string) (*Store, error){Open}
			if c.existing {
				opens = append(opens, openForReadingDefault)
			}
			for i, open := range opens {
				s, err := open(context.Background(), db)
				if err == nil {
					s.Close()
					t.Fatalf("open #%d accepted it", i)
				}
				var ue *UnsafeFileError
				if !errors.As(err, &ue) || ue.Path != at || !strings.Contains(err.Error(), want) ||
					!strings.Contains(err.Error(), "--db") {
					t.Errorf("open #%d: error %q: want an UnsafeFileError on %s saying %q and what to do", i, err, at, want)
				}
			}
			after, _ := os.ReadFile(db)
			if !bytes.Equal(before, after) {
				t.Error("the database file was written")
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if n := e.Name(); n == "locks" || (n != "playbook.db" && !slices.Contains([]string{"playbook.db-wal", "playbook.db-shm"}, n)) {
					t.Errorf("%s was created", n)
				}
			}
		})
	}
}

// Commands that only read create nothing where there is no database, and say so.
func TestOpenForReadingCreatesNothing(t *testing.T) {
	base := t.TempDir()
	for _, p := range []string{filepath.Join(base, "missing", "state", "playbook.db"), filepath.Join(base, "playbook.db")} {
		s, err := OpenForReading(context.Background(), p, Options{})
		if err == nil {
			s.Close()
			t.Fatalf("OpenForReading(%s) succeeded", p)
		}
		var ne *NoDatabaseError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), "no database at "+p) {
			t.Errorf("error %q: want a NoDatabaseError naming %s", err, p)
		}
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("created %v", entries)
	}
}

// A database this user can read but not write is opened read-only: it can be listed, crash recovery
// does not run (a run whose runner is gone stays running), and nothing is written or created.
func TestOpenForReadingUnwritable(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "state")
	db := filepath.Join(dir, "playbook.db")
	s := openAt(t, db)
	r := fixtureRun("done", "a")
	if err := s.RunStarted(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	finishRun(t, s, r, "succeeded", 0, t0.Add(2))
	if err := s.RunStarted(context.Background(), fixtureRun("dead", "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // the run's lock is released: its runner is gone
		t.Fatal(err)
	}
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	listing := func() []string {
		var names []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			names = append(names, p)
			return nil
		})
		return names
	}
	beforeList := listing()
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}

	var got string
	if os.Geteuid() == 0 {
		got = runAsNobody(t, "read", db, base)
	} else {
		got = runInProcess(t, db)
	}
	if want := "ok readonly=true runs=2 statuses=running,succeeded"; got != want {
		t.Errorf("read as a user who cannot write: %q, want %q", got, want)
	}
	after, _ := os.ReadFile(db)
	if !bytes.Equal(before, after) {
		t.Error("the database file changed")
	}
	if afterList := listing(); !slices.Equal(beforeList, afterList) {
		t.Errorf("files changed: %v, then %v", beforeList, afterList)
	}
}

func runInProcess(t *testing.T, db string) string {
	t.Helper()
	s, err := OpenForReading(context.Background(), db, Options{})
	if err != nil {
		return "error: " + err.Error()
	}
	defer s.Close()
	runs, err := s.ListRuns(context.Background(), RunFilter{})
	if err != nil {
		return "error: " + err.Error()
	}
	var st []string
	for _, r := range runs {
		st = append(st, string(r.Status))
	}
	slices.Sort(st)
	return fmt.Sprintf("ok readonly=%v runs=%d statuses=%s", s.ReadOnly(), len(runs), strings.Join(st, ","))
}

// openForReadingDefault is OpenForReading with the default options, in the shape of Open.
func openForReadingDefault(ctx context.Context, path string) (*Store, error) {
	return OpenForReading(ctx, path, Options{})
}
