//go:build !cgo

package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestStubBuild runs only in a CGO_ENABLED=0 build (see TestOpenWithoutCgo): go-sqlite3 is a stub
// there, and Open must say how to fix it.
func TestStubBuild(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if !errors.Is(err, ErrCgoDisabled) || !strings.Contains(err.Error(), "rebuild with CGO_ENABLED=1") {
		t.Fatalf("Open in a CGO_ENABLED=0 build: %v", err)
	}
}
