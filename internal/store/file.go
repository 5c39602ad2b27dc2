package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// The checks of this file run before SQLite sees the path. SQLite resolves symbolic links itself and
// turns a database to WAL just by being opened with our settings, so whatever must be refused has to
// be refused here: a file another user could have planted or changed, and another application's
// database.

// NoDatabaseError is returned by OpenForReading when there is no database at Path (no file, or an
// empty one that cannot be initialised): nothing was created.
type NoDatabaseError struct {
	Path string
}

// Error says that nothing is there and what to check.
func (e *NoDatabaseError) Error() string {
	return fmt.Sprintf("no database at %s: nothing has been run with it yet; check --db (or PLAYBOOK_DB), or run a playbook with it first", e.Path)
}

// ForeignDatabaseError is returned by Open and OpenForReading when Path is an SQLite database that
// has tables and was not made by playbook: it belongs to another application and was not changed.
type ForeignDatabaseError struct {
	Path string
}

// Error names the file and what to do.
func (e *ForeignDatabaseError) Error() string {
	return fmt.Sprintf("%s is an SQLite database that belongs to something else (it has tables playbook did not create): playbook leaves it untouched; use --db with another path", e.Path)
}

// UnsafeFileError is returned by Open and OpenForReading when the database file, its folder or the
// -wal and -shm files beside it could have been planted or changed by another user: owned by someone
// other than the current user or root, writable by group or others, or a symbolic link. As ssh does
// with key files, playbook refuses them rather than trusting or repairing them.
type UnsafeFileError struct {
	Path    string // the file or folder at fault
	Problem string // what is wrong with it
	Fix     string // what to do
}

// Error says what is wrong, where, and what to do.
func (e *UnsafeFileError) Error() string {
	return fmt.Sprintf("refusing database path %s: %s; %s", e.Path, e.Problem, e.Fix)
}

// useOther is the advice common to every refusal.
const useOther = "use --db with a path in a folder only you can write (e.g. mkdir -m 700 ~/pb)"

// ownerName is "uid N (name)" for messages.
func ownerName(uid uint32) string {
	s := "uid " + strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}

// checkTrusted refuses fi (the file or folder at path, not a symbolic link) when it is owned by
// someone other than the current user or root, or writable by group or others. Root owning it is
// accepted because root can change anything anyway.
func checkTrusted(path string, fi fs.FileInfo, what string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil // not a Unix file system: nothing to compare
	}
	if uid := uint32(os.Geteuid()); st.Uid != uid && st.Uid != 0 {
		return &UnsafeFileError{Path: path,
			Problem: fmt.Sprintf("the %s is owned by %s, another user, who could have planted or changed it", what, ownerName(st.Uid)),
			Fix:     fmt.Sprintf("if it is yours, chown %d %s, or %s", uid, path, useOther)}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		p := &UnsafeFileError{Path: path,
			Problem: fmt.Sprintf("the %s is writable by group or others (mode %04o), who could have planted or changed it", what, perm),
			Fix:     fmt.Sprintf("chmod go-w %s, or %s", path, useOther)}
		if fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 {
			// A shared folder like /tmp: its mode is not the user's to change.
			p.Problem = fmt.Sprintf("the %s is shared: anyone can create files in it (mode %04o, like /tmp), so another user could plant the database or its -wal and -shm files, or a symbolic link in their place", what, perm)
			p.Fix = fmt.Sprintf("make a folder of your own in it (mkdir -m 700 %s) and give --db a path inside that folder", filepath.Join(path, "NAME"))
		}
		return p
	}
	return nil
}

// checkFolder checks the folder the database is in (following symbolic links: it is the folder's
// owner and mode that say who can plant files in it).
func checkFolder(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return checkTrusted(dir, fi, "database's folder")
}

// checkRegular refuses a symbolic link or anything but a regular file at path (fi from Lstat or
// Fstat), then checks its owner and mode.
func checkRegular(path string, fi fs.FileInfo, what string) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &UnsafeFileError{Path: path,
			Problem: "the " + what + " is a symbolic link; playbook does not follow one, as it may have been planted to make it write elsewhere",
			Fix:     "give --db the path it points to if you trust it, or " + useOther}
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: the %s is not a regular file (%s)", path, what, fi.Mode().Type())
	}
	return checkTrusted(path, fi, what)
}

// checkSidecars checks the -wal and -shm files SQLite keeps beside the database, where they exist:
// SQLite would open whatever is there.
func checkSidecars(abs string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		p := abs + suffix
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := checkRegular(p, fi, "database's "+suffix+" file"); err != nil {
			return err
		}
	}
	return nil
}

// openFile opens (creating it when missing, with mode 0600) the database file for writing without
// following a symbolic link, checks it, and returns its size. Opening it read-write also turns a
// read-only file into a clear error here instead of "attempt to write a readonly database" in the
// middle of a run.
func openFile(abs string) (int64, error) {
	var f *os.File
	var err error
	for range 2 { // a second time when another process creates the file between the two opens
		f, err = os.OpenFile(abs, os.O_RDWR|syscall.O_NOFOLLOW, 0)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
		// O_EXCL: the file is the one made here, never something planted meanwhile.
		f, err = os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if errors.Is(err, syscall.ELOOP) {
		if fi, lerr := os.Lstat(abs); lerr == nil {
			return 0, checkRegular(abs, fi, "database file")
		}
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := checkRegular(abs, fi, "database file"); err != nil {
		return 0, err
	}
	return fi.Size(), f.Close()
}

// readOnlyDSN opens a database without changing it: read-only, and without the journal mode and the
// other settings of dsn, which write the file. When there is no WAL to read (no -wal file, or an
// empty one), the file is also opened immutable: otherwise SQLite would create the -wal and -shm files
// to read a WAL database (leaving them beside another application's database), and fail where it
// cannot create them (a folder this user cannot write). Immutable means SQLite takes no locks: a
// writer starting meanwhile could make a read fail, not change the file.
func readOnlyDSN(abs string) string {
	u := lockedReadOnlyDSN(abs)
	if fi, err := os.Lstat(abs + "-wal"); err != nil || fi.Size() == 0 {
		u += "&immutable=1"
	}
	return u
}

// lockedReadOnlyDSN is readOnlyDSN without immutable: SQLite takes its locks (and creates the -wal
// and -shm files of a WAL database where it can).
func lockedReadOnlyDSN(abs string) string {
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?mode=ro&_query_only=1&_txlock=deferred&_busy_timeout=" +
		strconv.FormatInt(busyTimeout.Milliseconds(), 10)
}

// checkOurs refuses a database that has tables (or a schema version) and is not playbook's: ours
// have the runs table and a schema version of 1 or more. A database without any of its own objects
// is ours to initialise. It reads the file through a read-only connection, closed before it returns,
// so that another application's database is left exactly as it was (journal mode included).
//
// A read that fails is tried once more with SQLite's locks (not immutable): an immutable read takes
// none, so a playbook process creating the same database at that moment could make it fail. The first
// error is the one returned (a file that is not a database fails both times).
func checkOurs(ctx context.Context, abs string) error {
	err := inspect(ctx, readOnlyDSN(abs), abs)
	var foreign *ForeignDatabaseError
	if err == nil || errors.As(err, &foreign) || errors.Is(err, ErrCgoDisabled) {
		return err
	}
	if err2 := inspect(ctx, lockedReadOnlyDSN(abs), abs); err2 == nil || errors.As(err2, &foreign) {
		return err2
	}
	return err
}

// inspect is one look of checkOurs at the database through dsn.
func inspect(ctx context.Context, dsn, abs string) error {
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return wrapDriverError(err)
	}
	defer db.Close()
	// One read transaction, so one snapshot: read apart, the tables could be counted before another
	// process creating this database commits its first migration and the version read after it, which
	// looks like a schema version without our tables.
	var objects, runs, version int
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		err = tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\'),
			(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs')`).Scan(&objects, &runs)
		if err == nil {
			err = tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version)
		}
		_ = tx.Rollback() // read only: nothing to keep
	}
	if err != nil {
		return wrapDriverError(err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	if (objects > 0 || version != 0) && !(runs == 1 && version >= 1) {
		return &ForeignDatabaseError{Path: abs}
	}
	return nil
}

// writable says whether this process can write the database file and create files beside it
// (SQLite's -wal and -shm, the runs' locks): what a writing Open needs.
func writable(abs string) bool {
	return syscall.Access(abs, 2) == nil && syscall.Access(filepath.Dir(abs), 2|1) == nil // W_OK, X_OK
}
