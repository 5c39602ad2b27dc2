package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestStoreOpens(t *testing.T) {
	s := openTest(t)
	var v string
	if err := s.r.QueryRowContext(context.Background(), "SELECT sqlite_version()").Scan(&v); err != nil {
		t.Fatalf("sqlite_version: %v (a CGO_ENABLED=0 build fails here)", err)
	}
	t.Logf("SQLite %s", v)
}

func TestDefaultPath(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
		err  bool
	}{
		{"PLAYBOOK_DB wins", map[string]string{"PLAYBOOK_DB": "/x/p.db", "XDG_STATE_HOME": "/s", "HOME": "/h"}, "/x/p.db", false},
		{"XDG_STATE_HOME", map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"}, "/s/playbook/playbook.db", false},
		{"relative XDG ignored", map[string]string{"XDG_STATE_HOME": "rel", "HOME": "/h"}, "/h/.local/state/playbook/playbook.db", false},
		{"HOME", map[string]string{"HOME": "/h"}, "/h/.local/state/playbook/playbook.db", false},
		{"nothing", map[string]string{}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DefaultPath(func(k string) string { return c.env[k] })
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("DefaultPath = %q, %v; want %q (error %v)", got, err, c.want, c.err)
			}
		})
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "playbook.db")
	s := openAt(t, path)
	// Write something so that the WAL exists.
	r := fixtureRun("r1", "a")
	if err := s.RunStarted(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if got := queryString(t, s.w, "PRAGMA auto_vacuum"); got != "2" {
		t.Errorf("auto_vacuum = %s, want 2 (incremental)", got)
	}
}

// TestPragmasOnEveryConn: every pooled connection has every per-connection setting, because they are in
// the DSN (a PRAGMA run with Exec would set one connection of the pool only).
func TestPragmasOnEveryConn(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	type conn struct {
		c      *sql.Conn
		reader bool
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []conn
	)
	for i := 0; i < 5; i++ { // five at once: five distinct connections of the read pool
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.r.Conn(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			conns = append(conns, conn{c, true})
			mu.Unlock()
		}()
	}
	wg.Wait()
	wc, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, conn{wc, false})
	if len(conns) != 6 {
		t.Fatalf("got %d connections, want 6", len(conns))
	}
	for i, c := range conns {
		// The writer waits one BusyTimeout in SQLite, then in waitLock; readers wait in SQLite.
		want := map[string]string{"foreign_keys": "1", "busy_timeout": fmt.Sprint(BusyTimeout.Milliseconds()), "journal_mode": "wal", "synchronous": "1", "query_only": "0"}
		if c.reader {
			want["query_only"] = "1"
			want["busy_timeout"] = fmt.Sprint(LockWait.Milliseconds())
		}
		for pragma, w := range want {
			var got string
			if err := c.c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("connection %d (reader %v): PRAGMA %s = %s, want %s", i, c.reader, pragma, got, w)
			}
		}
	}
	for _, c := range conns {
		c.c.Close()
	}
}

func TestCgoStubErrorRecognised(t *testing.T) {
	stub := errors.New("Binary was compiled with 'CGO_ENABLED=0', go-sqlite3 requires cgo to work. This is a stub")
	err := wrapDriverError(stub)
	if !errors.Is(err, ErrCgoDisabled) {
		t.Fatalf("not recognised: %v", err)
	}
	if !containsAll(err.Error(), "rebuild with CGO_ENABLED=1") {
		t.Fatalf("message: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
