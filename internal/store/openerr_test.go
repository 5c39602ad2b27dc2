//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func init() {
	helpers["open"] = func(path string) error {
		s, err := Open(context.Background(), path)
		if err != nil {
			fmt.Println("error:", err)
			return nil
		}
		fmt.Println("ok")
		return s.Close()
	}
}

// openUnprivileged opens path as a user who does not own it and returns Open's error ("" if it
// succeeded). Root ignores file modes, so as root the test binary is re-executed as nobody.
func openUnprivileged(t *testing.T, path, exeDir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		s, err := Open(context.Background(), path)
		if err != nil {
			return err.Error()
		}
		s.Close()
		return ""
	}
	got := runAsNobody(t, "open", path, exeDir)
	if got == "ok" {
		return ""
	}
	return strings.TrimPrefix(got, "error: ")
}

// runAsNobody runs the helper named with arg as uid/gid 65534 and returns what it printed. The test
// binary is copied to exeDir first, where that user can run it.
func runAsNobody(t *testing.T, helper, arg, exeDir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(exeDir, "store.test")
	if _, err := os.Stat(exe); err != nil {
		src, err := os.Open(self)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		dst.Close()
	}
	cmd := exec.Command(exe, "-test.run=^$", arg)
	cmd.Env = []string{"STORE_TEST_HELPER=" + helper, "HOME=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s as nobody: %v: %s", helper, err, b)
	}
	return strings.TrimSpace(string(b))
}

// A database file or folder that cannot be written is a clear error at Open, not a failure in the
// middle of a run.
func TestOpenUnwritable(t *testing.T) {
	base := t.TempDir()
	// Let an unprivileged user reach base (t.TempDir's folders are 0700).
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	roDir := filepath.Join(base, "ro")
	dbPath := filepath.Join(roDir, "playbook.db")
	s := openAt(t, dbPath)
	s.Close()
	os.Remove(dbPath + "-wal")
	os.Remove(dbPath + "-shm")
	if err := os.Chmod(dbPath, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(roDir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(roDir, 0o755) })

	cases := map[string]string{
		"read-only database file": dbPath,
		"unwritable folder":       filepath.Join(roDir, "new.db"),
		"folder cannot be made":   filepath.Join(roDir, "sub", "new.db"),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			msg := openUnprivileged(t, p, base)
			if !strings.Contains(msg, "permission denied") || !strings.Contains(msg, "open store "+p) {
				t.Fatalf("Open(%s) error = %q, want a permission error naming the database", p, msg)
			}
		})
	}
}

func TestOpenBadPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "regular")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ path, want string }{
		"folder is a file": {filepath.Join(file, "p.db"), "not a directory"},
		"not a database":   {notDB, "not a database"},
		"empty path":       {"", "empty database path"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Open(context.Background(), c.path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestOpenWithoutCgo: a CGO_ENABLED=0 build, which compiles go-sqlite3's stub, fails with a message that
// says how to fix it. The inner test
// (nocgo_test.go) runs in a copy of this package built without cgo.
func TestOpenWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package with CGO_ENABLED=0")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command(goBin, "test", "-count=1", "-run", "^TestStubBuild$", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(b), "build failed") || strings.Contains(string(b), "setup failed") {
			t.Skipf("cannot build without cgo here (the package under change elsewhere?): %s", b)
		}
		t.Fatalf("CGO_ENABLED=0 go test: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "ok") {
		t.Fatalf("unexpected output: %s", b)
	}
	_ = errors.New
}
