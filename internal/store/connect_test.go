package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Several processes creating the database at once: one of them turning it to WAL while another holds
// its lock used to fail Open at once with "database is locked" (seen with eight runners starting
// together). Open now retries; here another connection holds an exclusive lock on the new, empty file
// and lets go at Open's first retry, and Open succeeds.
func TestOpenWaitsForADatabaseBeingCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	other, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=DELETE&_txlock=exclusive")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin() // BEGIN EXCLUSIVE: nobody else may even read
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("CREATE TABLE IF NOT EXISTS held (x)"); err != nil {
		t.Fatal(err)
	}
	busyTimeout = 50 * time.Millisecond // each attempt waits this long in SQLite's busy handler
	defer func() { busyTimeout = BusyTimeout }()
	var once sync.Once
	retried := false
	connectRetried = func() {
		retried = true
		once.Do(func() {
			if err := tx.Commit(); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() { connectRetried = nil }()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open while another connection creates the database: %v", err)
	}
	defer s.Close()
	if !retried {
		t.Error("Open never had to retry: the test did not hold the lock it meant to")
	}
	var mode string
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}
