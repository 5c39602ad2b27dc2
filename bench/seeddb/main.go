// Command seeddb grows a playbook database for the store benchmark: it copies the runs already recorded
// in it (real runs, made by `playbook run`) under new ids and older start times until the database holds
// the number of runs asked for, and it reports a database's size per run and per step.
//
//	seeddb -db FILE -runs 100000   # copy the recorded runs (with their steps and attempts) up to 100,000 runs
//	seeddb -db FILE -stats         # JSON: runs, steps, attempts, bytes in use, file bytes
//
// The copies are made with INSERT ... SELECT over every column of the runs, steps and attempts tables,
// so they are whatever the recorder writes, whatever the schema version.
package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

const timeFormat = "2006-01-02T15:04:05.000Z" // internal/store.TimeFormat

func main() {
	path := flag.String("db", "", "database file (required)")
	runs := flag.Int("runs", 0, "copy the recorded runs until the database holds this many")
	stats := flag.Bool("stats", false, "print the database's counts and sizes as JSON")
	flag.Parse()
	if *path == "" || (*runs == 0) == !*stats {
		fmt.Fprintln(os.Stderr, "usage: seeddb -db FILE (-runs N | -stats)")
		os.Exit(2)
	}
	if _, err := os.Stat(*path); err != nil {
		fail(err)
	}
	dsn := "file:" + (&url.URL{Path: *path}).EscapedPath() + "?_foreign_keys=1&_journal_mode=WAL&_busy_timeout=5000"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		fail(err)
	}
	db.SetMaxOpenConns(1)
	defer db.Close()
	if *stats {
		printStats(db, *path)
		return
	}
	if err := grow(db, *runs); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "seeddb:", err)
	os.Exit(1)
}

func columns(db *sql.DB, table string) ([]string, error) {
	rows, err := db.Query("SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no table %s: is this a playbook database?", table)
	}
	return cols, rows.Err()
}

// copyStmt is INSERT INTO table (cols) SELECT cols FROM table WHERE key = ?2, with the columns in
// replace given by parameters instead.
func copyStmt(db *sql.DB, table, key string, replace map[string]string) (string, error) {
	cols, err := columns(db, table)
	if err != nil {
		return "", err
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = `"` + c + `"`
		if r, ok := replace[c]; ok {
			exprs[i] = r
		}
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	return fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s = ?2", table, strings.Join(quoted, ", "),
		strings.Join(exprs, ", "), table, key), nil
}

func grow(db *sql.DB, want int) error {
	var templates []string
	var oldest string
	rows, err := db.Query("SELECT id, started_at FROM runs WHERE status != 'running' ORDER BY started_at")
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, at string
		if err := rows.Scan(&id, &at); err != nil {
			return err
		}
		if oldest == "" {
			oldest = at
		}
		templates = append(templates, id)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if len(templates) == 0 {
		return fmt.Errorf("no finished run to copy: record some with playbook run first")
	}
	var have int
	if err := db.QueryRow("SELECT count(*) FROM runs").Scan(&have); err != nil {
		return err
	}
	base, err := time.Parse(timeFormat, oldest)
	if err != nil {
		return fmt.Errorf("start time %q: %w", oldest, err)
	}
	runSQL, err := copyStmt(db, "runs", "id", map[string]string{"id": "?1", "started_at": "?3", "finished_at": "?4", "retry_of": "NULL"})
	if err != nil {
		return err
	}
	stepSQL, err := copyStmt(db, "steps", "run_id", map[string]string{"run_id": "?1"})
	if err != nil {
		return err
	}
	attSQL, err := copyStmt(db, "attempts", "run_id", map[string]string{"run_id": "?1"})
	if err != nil {
		return err
	}
	const chunk = 5000
	for made := 0; have+made < want; {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		stmts := make([]*sql.Stmt, 3)
		for i, q := range []string{runSQL, stepSQL, attSQL} {
			if stmts[i], err = tx.Prepare(q); err != nil {
				tx.Rollback()
				return err
			}
		}
		for k := 0; k < chunk && have+made < want; k++ {
			made++
			tmpl := templates[made%len(templates)]
			start := base.Add(-time.Duration(made) * time.Minute) // older than every real run
			var b [16]byte
			rand.Read(b[:])
			id := hex.EncodeToString(b[:])
			args := []any{id, tmpl, start.Format(timeFormat), start.Add(1500 * time.Millisecond).Format(timeFormat)}
			if _, err := stmts[0].Exec(args...); err != nil {
				tx.Rollback()
				return fmt.Errorf("copy run: %w", err)
			}
			for _, s := range stmts[1:] {
				if _, err := s.Exec(id, tmpl); err != nil {
					tx.Rollback()
					return fmt.Errorf("copy steps: %w", err)
				}
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

func printStats(db *sql.DB, path string) {
	var st struct {
		Runs, Steps, Attempts int64
		UsedBytes, FileBytes  int64
	}
	var pages, free, size int64
	for q, dst := range map[string]*int64{
		"SELECT count(*) FROM runs": &st.Runs, "SELECT count(*) FROM steps": &st.Steps,
		"SELECT count(*) FROM attempts": &st.Attempts, "PRAGMA page_count": &pages,
		"PRAGMA freelist_count": &free, "PRAGMA page_size": &size,
	} {
		if err := db.QueryRow(q).Scan(dst); err != nil {
			fail(err)
		}
	}
	st.UsedBytes = (pages - free) * size
	for _, suf := range []string{"", "-wal"} {
		if fi, err := os.Stat(path + suf); err == nil {
			st.FileBytes += fi.Size()
		}
	}
	json.NewEncoder(os.Stdout).Encode(st)
}
