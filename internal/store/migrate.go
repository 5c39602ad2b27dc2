package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"unicode/utf8"
)

// migrationFiles holds the schema, one numbered file per change: migrations/NNNN_name.sql, numbered
// from 0001 without gaps. A released file is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change: its number becomes PRAGMA user_version once it is applied.
type migration struct {
	Version int
	Name    string
	SQL     string
	// Code, when set, runs in the migration's transaction after SQL: the part of a change that SQL
	// cannot say (SQLite has no function that checks UTF-8).
	Code func(context.Context, *sql.Tx) error
}

// migrationCode is the Go part of the embedded migrations that have one, by number.
var migrationCode = map[int]func(context.Context, *sql.Tx) error{
	6: textOutput,
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// embeddedMigrations returns the embedded migrations in order.
func embeddedMigrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	migs, err := loadMigrations(sub)
	for i := range migs {
		migs[i].Code = migrationCode[migs[i].Version]
	}
	return migs, err
}

// loadMigrations reads every *.sql file of fsys and checks the numbering: names NNNN_name.sql,
// numbers 1, 2, 3, ... with no gap and no duplicate.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	migs := make([]migration, 0, len(names))
	for _, name := range names {
		m := migrationName.FindStringSubmatch(path.Base(name))
		if m == nil {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", name)
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		migs = append(migs, migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].Version < migs[j].Version })
	for i, m := range migs {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: number %d, want %d (numbers start at 1, without gaps or duplicates)", m.Name, m.Version, i+1)
		}
	}
	return migs, nil
}

// migrate brings the database up to the last of migs and returns how many it applied. Each migration
// runs in its own write transaction together with PRAGMA user_version = N (the pragma writes the
// database header, so it commits or rolls back with the rest): a failure leaves the database at the
// previous version with nothing half-applied. The version is read again inside each transaction
// because another process may be migrating the same file at the same moment.
// begin starts each migration's write transaction (Store.beginWrite: it waits for the write lock).
func migrate(ctx context.Context, db *sql.DB, dbPath string, migs []migration,
	begin func(context.Context, *sql.DB) (*sql.Tx, error)) (int, error) {
	known := len(migs)
	var current int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return 0, fmt.Errorf("open store %s: read schema version: %w", dbPath, wrapDriverError(err))
	}
	if current > known {
		return 0, &NewerSchemaError{Path: dbPath, Version: current, Known: known}
	}
	applied := 0
	for _, m := range migs {
		if m.Version <= current {
			continue
		}
		err := func() error {
			tx, err := begin(ctx, db)
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
			var v int
			if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
				return err
			}
			if v > known {
				return &NewerSchemaError{Path: dbPath, Version: v, Known: known}
			}
			if v >= m.Version {
				current = v // another process applied it meanwhile
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			if m.Code != nil {
				if err := m.Code(ctx, tx); err != nil {
					return err
				}
			}
			// PRAGMA takes no parameters; the number comes from our own file name.
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			applied++
			current = m.Version
			return nil
		}()
		if err != nil {
			var newer *NewerSchemaError
			if errors.As(err, &newer) {
				return applied, err
			}
			return applied, fmt.Errorf("open store %s: apply migration %s: %w", dbPath, m.Name, err)
		}
	}
	return applied, nil
}

// textOutput is migration 6's Go part: the output that releases before it stored as BLOB becomes TEXT
// where it is valid UTF-8 (see outputValue), so that a plain LIKE finds it in sqlite3 builds with
// LIKE_DOESNT_MATCH_BLOBS. The bytes stay the same (CAST to TEXT keeps them in a UTF-8 database);
// other output stays BLOB. One row is read at a time: each value is up to the output limit.
func textOutput(ctx context.Context, tx *sql.Tx) error {
	for _, table := range []string{"steps", "attempts"} {
		for _, col := range []string{"stdout", "stderr"} {
			rows, err := tx.QueryContext(ctx, fmt.Sprintf("SELECT rowid FROM %s WHERE typeof(%s) = 'blob'", table, col))
			if err != nil {
				return fmt.Errorf("%s.%s: %w", table, col, err)
			}
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return fmt.Errorf("%s.%s: %w", table, col, err)
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("%s.%s: %w", table, col, err)
			}
			read := fmt.Sprintf("SELECT %s FROM %s WHERE rowid = ?", col, table)
			update := fmt.Sprintf("UPDATE %s SET %s = CAST(%s AS TEXT) WHERE rowid = ?", table, col, col)
			for _, id := range ids {
				var b []byte
				if err := tx.QueryRowContext(ctx, read, id).Scan(&b); err != nil {
					return fmt.Errorf("%s.%s of row %d: %w", table, col, id, err)
				}
				if !utf8.Valid(b) {
					continue
				}
				if _, err := tx.ExecContext(ctx, update, id); err != nil {
					return fmt.Errorf("%s.%s of row %d: %w", table, col, id, err)
				}
			}
		}
	}
	return nil
}
