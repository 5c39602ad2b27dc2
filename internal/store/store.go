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
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3" (cgo)

	"github.com/playbookhq/playbook/internal/proc"
)

// BusyTimeout is how long one attempt to take the database's write lock waits in SQLite's busy
// handler. A write that did not get the lock by then tells Options.Waiting that it waits (once per
// Store) and tries again, until LockWait.
const BusyTimeout = time.Second

// LockWait is how long, unless Options.LockWait says otherwise, a write waits for the database's write
// lock while other connections (other playbook processes) hold it, before it fails with a *LockError.
// Each of their transactions is short, so waiting that long means something is wrong (a process stuck
// holding the lock, a sqlite3 shell left in a transaction), not that the database is busy: sixteen
// runners recording short steps at once on a loaded machine wait for seconds at most.
const LockWait = 3 * time.Minute

// Options are the less common settings of OpenWith. The zero value is Open's behaviour.
type Options struct {
	// LockWait bounds how long a write waits for the write lock another connection holds; 0 means
	// the package's LockWait. Once a write has given up, later writes of the Store try for one
	// BusyTimeout only, so that a run whose database stays locked ends instead of waiting again for
	// every write; a write that succeeds restores the full wait.
	LockWait time.Duration
	// Waiting, when set, is called once per Store, the first time a write has waited about a second
	// (BusyTimeout) for the lock, with the database's path: a runner tells its user why it seems
	// stuck. It is called from the goroutine that waits (the Store's writer, or Open's).
	Waiting func(path string)
	// ReadOnly makes OpenForReading open the database read-only even when this process could write
	// it: no migration, no crash recovery, no file created. A database whose schema is older than this
	// playbook's is then an error. Shell completion reads the database this way.
	ReadOnly bool
}

// LockError is the error of a write that gave up waiting for the database's write lock.
type LockError struct {
	Path   string
	Waited time.Duration
	Err    error // SQLite's "database is locked"
}

// Error says which database stayed locked for how long and what to do.
func (e *LockError) Error() string {
	return fmt.Sprintf("database %s stayed locked by another connection for %s (%v): another playbook process, or a sqlite3 shell left in a transaction, holds its write lock; find it with fuser or lsof on the file",
		e.Path, e.Waited.Round(time.Millisecond), e.Err)
}

// Unwrap returns SQLite's error.
func (e *LockError) Unwrap() error { return e.Err }

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

// Store is the run database. It implements run.Recorder. Its methods are safe for concurrent use,
// but a run's Recorder calls must come in order (RunStarted first, RunFinished last), as a runner
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

	lockWait   time.Duration // Options.LockWait, defaulted
	waiting    func(path string)
	waitTold   atomic.Bool // waiting has been called
	lockGaveUp atomic.Bool // the last write that waited for the lock gave up (beginWrite)
	stalled    atomic.Bool // a write has waited noticeAfter or more for the lock, and waits still

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
	writeErr        error       // the first write that failed
	hasFailed       atomic.Bool // writeErr is set
	lost            []string    // what the writes that will not be made were, the first maxLostNames
	lostCount       int
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
// The reader waits in SQLite's busy handler for as long as lockWait: readers only wait in the rare
// moments a WAL is being reset or recovered, and those end.
func dsn(path string, readOnly bool, lockWait time.Duration) string {
	u := "file:" + (&url.URL{Path: path}).EscapedPath()
	q := url.Values{}
	busy := busyTimeout
	if readOnly {
		busy = max(busy, lockWait)
	}
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
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
	return open(ctx, path, nil, Options{})
}

// OpenWith is Open with options. Open waits for the write lock (to migrate, to recover) as every
// write does: up to o.LockWait, calling o.Waiting after a second.
func OpenWith(ctx context.Context, path string, o Options) (*Store, error) {
	return open(ctx, path, nil, o)
}

// open is OpenWith with the migrations given (nil = the embedded ones), for tests.
func open(ctx context.Context, path string, migs []migration, o Options) (_ *Store, err error) {
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
	if o.LockWait <= 0 {
		o.LockWait = LockWait
	}
	writer := dsn(abs, false, o.LockWait)
	if size == 0 {
		// A new, empty database: incremental auto_vacuum lets prune give pages back to the file
		// system without rewriting the whole database (VACUUM). It must be set before the first
		// table exists, and only then: on an existing database the pragma writes the header again at
		// every connection, which fails on a full disk and would keep the database from being read.
		writer += "&_auto_vacuum=incremental"
	}

	s := &Store{path: abs, locks: map[string]*proc.FileLock{}, pid: os.Getpid(), lockWait: o.LockWait, waiting: o.Waiting}
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
	if err := s.connect(ctx, s.w); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, wrapDriverError(err))
	}
	if s.migrated, err = migrate(ctx, s.w, abs, migs, s.beginWrite); err != nil {
		return nil, err
	}
	if s.r, err = sql.Open("sqlite3", dsn(abs, true, o.LockWait)); err != nil {
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
// through the checks of Open. When this process can write the file and its folder, and o.ReadOnly is
// not set, it is Open (the schema is brought up to date and crash recovery runs). Otherwise the database is opened read-only:
// no recovery, no lock files, nothing written; ReadOnly then reports true. A read-only database whose
// schema is older than this binary's cannot be brought up to date and is an error.
func OpenForReading(ctx context.Context, path string, o Options) (_ *Store, err error) {
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
	if !o.ReadOnly && writable(abs) {
		return OpenWith(ctx, abs, o)
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

// connect opens the writer's connection, which sets the DSN's pragmas. While several processes create
// the database at the same moment, setting journal_mode=WAL waits for the file's lock, and on a loaded
// machine the process creating the schema can hold it longer than the busy timeout (seen with eight
// runners starting together under the race detector); SQLite also gives up at once where waiting could
// deadlock. "Database is locked" is therefore retried here as every write is (waitLock).
func (s *Store) connect(ctx context.Context, db *sql.DB) error {
	return s.waitLock(ctx, func() error {
		err := db.PingContext(ctx)
		if err != nil && isBusy(err) && connectRetried != nil {
			connectRetried()
		}
		return err
	})
}

// waitLock runs try until it does not fail with "database is locked", for up to s.lockWait (one try
// only after a write gave up, see Options.LockWait). try must be safe to repeat: a failed BEGIN, say.
// After about a second of waiting it tells s.waiting, once per Store. Giving up returns a *LockError.
func (s *Store) waitLock(ctx context.Context, try func() error) error {
	start := time.Now()
	bound := s.lockWait
	if s.lockGaveUp.Load() {
		bound = 0
	}
	defer s.stalled.Store(false)
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		err := try()
		if err == nil || !isBusy(err) {
			if err == nil {
				s.lockGaveUp.Store(false)
			}
			return err
		}
		waited := time.Since(start)
		if waited >= noticeAfter {
			s.stalled.Store(true)
			if s.waiting != nil && s.waitTold.CompareAndSwap(false, true) {
				s.waiting(s.path)
			}
		}
		if waited >= bound || ctx.Err() != nil {
			s.lockGaveUp.Store(true)
			return &LockError{Path: s.path, Waited: waited, Err: err}
		}
		// SQLite gives up at once where waiting could deadlock, without its busy handler's sleeps.
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// noticeAfter is how long a write waits for the lock before the Store says so (Options.Waiting).
const noticeAfter = 900 * time.Millisecond

// beginWrite starts a write transaction (BEGIN IMMEDIATE), waiting for the write lock (waitLock).
func (s *Store) beginWrite(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	var tx *sql.Tx
	err := s.waitLock(ctx, func() (err error) {
		tx, err = db.BeginTx(ctx, nil)
		return err
	})
	return tx, err
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
	tx, err := s.beginWrite(ctx, s.w)
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
