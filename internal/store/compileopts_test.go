//go:build sqlite_omit_load_extension

package store

import (
	"context"
	"testing"
)

// TestCompileOptionsOmitLoadExtension: built with -tags sqlite_omit_load_extension, SQLite cannot load
// extensions.
// Run: go test -tags sqlite_omit_load_extension -run TestCompileOptions ./internal/store
func TestCompileOptionsOmitLoadExtension(t *testing.T) {
	s := openTest(t)
	rows, err := s.r.QueryContext(context.Background(), "PRAGMA compile_options")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var opts []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		if o == "OMIT_LOAD_EXTENSION" {
			return
		}
		opts = append(opts, o)
	}
	t.Fatalf("OMIT_LOAD_EXTENSION not in compile_options: %v", opts)
}
