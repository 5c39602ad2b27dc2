package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3" (cgo)

	"github.com/playbookhq/playbook/internal/proc"
)

// BusyTimeout is how long a connection waits for another one's write lock before failing with
// "database is locked". Write transactions are short (no process I/O inside), so reaching it means
// something is badly wrong, not that the database is busy.
const BusyTimeout = 5 * time.Second

// ErrCgoDisabled is returned by Open when the binary was built with CGO_ENABLED=0: go-sqlite3 then
// compiles to a stub that fails at run time.
var ErrCgoDisabled = errors.New("this playbook binary was built without cgo (CGO_ENABLED=0) and cannot use SQLite: rebuild with CGO_ENABLED=1 and a C compiler")

// NewerSchemaError is returned by Open when the database's schema version (PRAGMA user_version) is
// higher than the last migration this binary knows: a newer playbook wrote it, and this one must not
// guess at its meaning. Nothing was changed.
type NewerSchemaError struct {
	Path    string
	Version int // the database's
	Known   int // the highest this binary knows
}

// Error says which versions differ and what to do.
func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("database %s has schema version %d but this playbook knows versions up to %d: it was written by a newer playbook; upgrade playbook, or use another database with --db",
		e.Path, e.Version, e.Known)
}

// Store is the run database. It implements scheduler.Recorder. Its methods are safe for concurrent use,
// but a run's Recorder calls must come in order (RunStarted first, RunFinished last), as the scheduler
// makes them. Close it when done: that also releases the locks of runs still being recorded.
type Store struct {
	path string
	w    *sql.DB // writes; one connection, every transaction BEGIN IMMEDIATE
	r    *sql.DB // reads; deferred transactions, query_only

	host     string // os.Hostname, to recognise the runs this machine owns
	bootID   string // "" where unknown (not Linux)
	pid      int
	pidStart uint64 // 0 where unknown

	migrated int  // migrations applied by this Open, for tests
	readOnly bool // opened by OpenForReading without write access: w is nil

	mu         sync.Mutex
	locks      map[string]*proc.FileLock // run id → its lock, while this Store records the run
	recovered  []RecoveredRun
	recoverErr error // Open's recovery could not record every run it found dead (RecoveryErr)

	// The background writer of the Recorder (writer.go).
	queue         writeQueue
	writerStarted bool
	// The writer's checkpoints (checkpointWhenIdle); the writer goroutine's alone.
	lastCheckpoint  time.Time
	checkpointEvery time.Duration
	checkpointed    func()
	errMu           sync.Mutex
	writeErr        error // the first write that failed
}

// DefaultPath returns where the database lives when --db is not given: $PLAYBOOK_DB, else
// $XDG_STATE_HOME/playbook/playbook.db, else $HOME/.local/state/playbook/playbook.db. getenv reads the
// environment (os.Getenv, or a map in tests). A relative XDG_STATE_HOME is ignored, as the XDG spec
// asks. It fails only when none of the variables is set.
func DefaultPath(getenv func(string) string) (string, error) {
	if p := getenv("PLAYBOOK_DB"); p != "" {
		return p, nil
	}
	if x := getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "playbook", "playbook.db"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "playbook", "playbook.db"), nil
	}
	return "", errors.New("cannot find the database: set --db, PLAYBOOK_DB, XDG_STATE_HOME or HOME")
}

// dsn builds the go-sqlite3 connection string. Every per-connection setting is here, not in an Exec
// after opening: database/sql opens connections as it needs them and each must have them all.
// The path goes in a file: URI, escaped, so that a '?' or '#' in a folder name cannot be read as the
// start of the parameters.
func dsn(path string, readOnly bool) string {
	u := "file:" + (&url.URL{Path: path}).EscapedPath()
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL") // safe against application crashes in WAL mode; see README
	// The recorder runs the same few statements for every step: keep them prepared.
	q.Set("_stmt_cache_size", "32")
	if readOnly {
		q.Set("_query_only", "1")
		q.Set("_txlock", "deferred")
	} else {
		q.Set("_txlock", "immediate")
	}
	return u + "?" + q.Encode()
}

// Open opens the database at path for writing, creating it (folder mode 0700, file mode 0600) when
// missing, brings its schema up to date and runs crash recovery (see Recover). ctx bounds the opening
// work only; the Store does not keep it.
//
// Before SQLite touches the file, Open refuses a database file or folder another user could have
// planted or changed (*UnsafeFileError: owned by another user than the current one or root, writable
// by group or others, a symbolic link; the same for existing -wal and -shm files) and another
// application's database (*ForeignDatabaseError); a new file is created without following a symbolic
// link. Other errors: *NewerSchemaError when a newer playbook wrote the database, ErrCgoDisabled for
// a binary built without cgo, and otherwise an error naming path and what failed (folder not
// writable, file read-only, not a database, ...).
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, nil)
}

// open is Open with the migrations given (nil = the embedded ones), for tests.
func open(ctx context.Context, path string, migs []migration) (_ *Store, err error) {
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if migs == nil {
		if migs, err = embeddedMigrations(); err != nil {
			return nil, fmt.Errorf("open store %s: %w", abs, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: create its folder: %w", abs, err)
	}
	// Everything is checked before SQLite opens the file: opening it with dsn's settings writes it.
	if err := checkFolder(filepath.Dir(abs)); err != nil {
		return nil, wrapOpenError(abs, err)
	}
	// openFile creates the file itself so that it gets mode 0600 (SQLite would use 0644); SQLite
	// gives the -wal and -shm files the same mode.
	size, err := openFile(abs)
	if err != nil {
		return nil, wrapOpenError(abs, err)
	}
	if err := checkSidecars(abs); err != nil {
		return nil, wrapOpenError(abs, err)
	}
	if size > 0 {
		if err := checkOurs(ctx, abs); err != nil {
			return nil, wrapOpenError(abs, err)
		}
	}
	writer := dsn(abs, false)
	if size == 0 {
		// A new, empty database: incremental auto_vacuum lets prune give pages back to the file
		// system without rewriting the whole database (VACUUM). It must be set before the first
		// table exists, and only then: on an existing database the pragma writes the header again at
		// every connection, which fails on a full disk and would keep the database from being read.
		writer += "&_auto_vacuum=incremental"
	}

	s := &Store{path: abs, locks: map[string]*proc.FileLock{}, pid: os.Getpid()}
	defer func() {
		if err != nil {
			s.closeDBs()
		}
	}()
	if s.w, err = sql.Open("sqlite3", writer); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, wrapDriverError(err))
	}
	// One writer connection: this process's writes queue in database/sql instead of spinning in
	// SQLite's busy handler against each other. Other processes still wait in the busy handler.
	s.w.SetMaxOpenConns(1)
	if err := connect(ctx, s.w); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, wrapDriverError(err))
	}
	if s.migrated, err = migrate(ctx, s.w, abs, migs); err != nil {
		return nil, err
	}
	if s.r, err = sql.Open("sqlite3", dsn(abs, true)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, wrapDriverError(err))
	}
	s.r.SetMaxOpenConns(8)

	s.host, _ = os.Hostname()
	s.bootID, _ = proc.BootID()            // "" off Linux: recovery then only trusts the lock
	s.pidStart, _ = proc.StartTicks(s.pid) // 0 off Linux
	if _, err := s.Recover(ctx); err != nil {
		var rerr *RecoveryError
		if !errors.As(err, &rerr) {
			return nil, err
		}
		s.mu.Lock()
		s.recoverErr = err
		s.mu.Unlock()
	}
	s.startWriter()
	return s, nil
}

// wrapOpenError adds the database's path to err, unless err already says it.
func wrapOpenError(abs string, err error) error {
	var unsafe *UnsafeFileError
	var foreign *ForeignDatabaseError
	if errors.As(err, &unsafe) || errors.As(err, &foreign) || errors.Is(err, ErrCgoDisabled) {
		return err
	}
	return fmt.Errorf("open store %s: %w", abs, err)
}

// OpenForReading opens an existing database for commands that only read it (runs, show, logs). It
// creates nothing: a missing (or empty, unwritable) file is a *NoDatabaseError. The file goes
// through the checks of Open. When this process can write the file and its folder, it is Open (the
// schema is brought up to date and crash recovery runs). Otherwise the database is opened read-only:
// no recovery, no lock files, nothing written; ReadOnly then reports true. A read-only database whose
// schema is older than this binary's cannot be brought up to date and is an error.
func OpenForReading(ctx context.Context, path string) (_ *Store, err error) {
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NoDatabaseError{Path: abs}
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := checkFolder(filepath.Dir(abs)); err != nil {
		return nil, wrapOpenError(abs, err)
	}
	if err := checkRegular(abs, fi, "database file"); err != nil {
		return nil, wrapOpenError(abs, err)
	}
	if writable(abs) {
		return Open(ctx, abs)
	}
	if fi.Size() == 0 {
		return nil, &NoDatabaseError{Path: abs}
	}
	if err := checkSidecars(abs); err != nil {
		return nil, wrapOpenError(abs, err)
	}
	if err := checkOurs(ctx, abs); err != nil {
		return nil, wrapOpenError(abs, err)
	}
	migs, err := embeddedMigrations()
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	s := &Store{path: abs, locks: map[string]*proc.FileLock{}, pid: os.Getpid(), readOnly: true}
	defer func() {
		if err != nil {
			s.closeDBs()
		}
	}()
	if s.r, err = sql.Open("sqlite3", readOnlyDSN(abs)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, wrapDriverError(err))
	}
	s.r.SetMaxOpenConns(8)
	var version int
	if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("open store %s: read schema version: %w", abs, wrapDriverError(err))
	}
	if version > len(migs) {
		return nil, &NewerSchemaError{Path: abs, Version: version, Known: len(migs)}
	}
	if version == 0 {
		return nil, &NoDatabaseError{Path: abs} // an SQLite file without tables: nothing recorded
	}
	if version < len(migs) {
		return nil, fmt.Errorf("open store %s: its schema version %d is older than this playbook's (%d) and this user cannot write the database to bring it up to date: run playbook on it once as a user who can write it", abs, version, len(migs))
	}
	s.host, _ = os.Hostname()
	return s, nil
}

// ReadOnly reports whether the Store was opened read-only by OpenForReading: it cannot record, and
// crash recovery did not run.
func (s *Store) ReadOnly() bool { return s.readOnly }

// busyTimeout is BusyTimeout; tests shorten it.
var busyTimeout = BusyTimeout

// connectRetried, when set (tests), is called each time connect retries.
var connectRetried func()

// openWait bounds how long Open keeps trying to set up its first connection.
const openWait = 30 * time.Second

// connect opens the writer's connection, which sets the DSN's pragmas. While several processes create
// the database at the same moment, setting journal_mode=WAL waits for the file's lock, and on a loaded
// machine the process creating the schema can hold it longer than the busy timeout (seen with eight
// runners starting together under the race detector); SQLite also gives up at once where waiting could
// deadlock. "Database is locked" is therefore retried here for up to openWait: a database that is being
// created is worth waiting for, and every later statement gets the usual busy timeout.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(openWait)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		if connectRetried != nil {
			connectRetried()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// wrapDriverError recognises go-sqlite3's CGO_ENABLED=0 stub.
func wrapDriverError(err error) error {
	if err != nil && strings.Contains(err.Error(), "CGO_ENABLED=0") {
		return fmt.Errorf("%w (%v)", ErrCgoDisabled, err)
	}
	return err
}

// Path is the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close waits for the queued writes, releases the locks of runs this Store still records (the next
// Open, here or in another process, will then find them interrupted, since their runner stopped
// recording them) and closes the database. It returns the first write that failed, if any, so that
// no failure goes unreported. Close on a nil Store does nothing; Recorder calls after Close fail.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	if s.writerStarted {
		s.stopWriter()
	}
	errs := []error{s.failed()}
	s.mu.Lock()
	for id, l := range s.locks {
		// Keep the file: an unlocked lock file is how the next Open knows the run lost its runner
		// (without it, recovery would fall back to the pid, and this process may live on).
		errs = append(errs, l.Release(false))
		delete(s.locks, id)
	}
	s.mu.Unlock()
	errs = append(errs, s.closeDBs())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// lockDir is where runs' lock files live: next to the database, so that every process using the
// database finds them.
func (s *Store) lockDir() string { return filepath.Join(filepath.Dir(s.path), "locks") }

func (s *Store) lockPath(runID string) string {
	return filepath.Join(s.lockDir(), runID+".lock")
}

// writeTx runs fn in one write transaction (BEGIN IMMEDIATE), committed when fn returns nil. fn must
// not do process or network I/O: other processes wait for the lock meanwhile.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.w == nil {
		return fmt.Errorf("database %s was opened read-only", s.path)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// readTx runs fn in one read transaction, so that its queries see one snapshot of the database.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(tx)
}
