package store

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMigrationsFreshAndReopen(t *testing.T) {
	migs, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.db")
	s := openAt(t, path)
	if s.migrated != len(migs) {
		t.Errorf("fresh database: applied %d migrations, want %d", s.migrated, len(migs))
	}
	if got := queryString(t, s.w, "PRAGMA user_version"); got != itoa(len(migs)) {
		t.Errorf("user_version = %s, want %d", got, len(migs))
	}
	s.Close()
	s2 := openAt(t, path)
	if s2.migrated != 0 {
		t.Errorf("reopen applied %d migrations, want 0", s2.migrated)
	}
}

// TestFailingMigrationLeavesNothing: a migration that fails half-way leaves nothing behind, neither its
// first statements' tables nor a new schema version.
func TestFailingMigrationLeavesNothing(t *testing.T) {
	migs, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.db")
	openAt(t, path).Close()
	bad := append(append([]migration(nil), migs...), migration{Version: len(migs) + 1, Name: "9999_broken.sql",
		SQL: "CREATE TABLE half_applied (x INTEGER);\nCREATE TABEL oops (y);"})
	_, err = open(context.Background(), path, bad, Options{})
	if err == nil || !strings.Contains(err.Error(), "9999_broken.sql") {
		t.Fatalf("open with a broken migration: %v", err)
	}
	db := rawDB(t, path)
	if got := queryString(t, db, "PRAGMA user_version"); got != itoa(len(migs)) {
		t.Errorf("user_version = %s after a failed migration, want %d", got, len(migs))
	}
	if got := queryString(t, db, "SELECT count(*) FROM sqlite_master WHERE name = 'half_applied'"); got != "0" {
		t.Error("the failed migration's first statement was kept")
	}
}

// TestNewerSchemaRefused: a database from a newer playbook is refused with a typed error, and left as it
// is, rather than used by code that does not know its schema.
func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	openAt(t, path).Close()
	db := rawDB(t, path)
	if _, err := db.Exec("PRAGMA user_version = 10000"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	var ne *NewerSchemaError
	if !errors.As(err, &ne) || ne.Version != 10000 || !strings.Contains(err.Error(), "newer playbook") {
		t.Fatalf("Open = %v, want *NewerSchemaError", err)
	}
	if got := queryString(t, db, "PRAGMA user_version"); got != "10000" {
		t.Errorf("user_version changed to %s", got)
	}
}

// TestMigrationNumbering: the embedded migrations are numbered 1, 2, 3, ... and the checker catches
// mistakes (a gap or a duplicate would skip a migration or apply two as one version).
func TestMigrationNumbering(t *testing.T) {
	names, err := fs.Glob(migrationFiles, "migrations/*")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	for _, n := range names {
		if !migrationName.MatchString(filepath.Base(n)) {
			t.Errorf("%s is not named NNNN_name.sql (only such files belong in migrations/)", n)
		}
	}
	migs, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migs {
		if m.Version != i+1 {
			t.Errorf("migration %d is %s", i+1, m.Name)
		}
	}
	bad := map[string]fstest.MapFS{
		"gap":       {"0001_a.sql": {}, "0003_c.sql": {}},
		"duplicate": {"0001_a.sql": {}, "0001_b.sql": {}},
		"from zero": {"0000_a.sql": {}},
		"bad name":  {"0001_a.sql": {}, "2_b.sql": {}},
	}
	for name, fsys := range bad {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
