package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestRetryColumnsRoundTrip: a step's fingerprint and why a retry reused it or ran it again are
// written and read back; a step without them reads back empty (NULL in the table).
func TestRetryColumnsRoundTrip(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r := fixtureRun("r1", "build", "test")
	if err := s.RunStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	fp := strings.Repeat("0f", 32)
	for _, st := range []*run.StepRecord{
		{RunID: "r1", StepID: "build", Status: run.StatusSucceeded, Reason: run.ReasonReused, ReusedFrom: "r0",
			Fingerprint: fp, RetryReason: run.RetryReused},
		{RunID: "r1", StepID: "test", Status: run.StatusSkipped, Reason: run.ReasonDependencyFailed},
		{RunID: "r1", StepID: "added", Status: run.StatusFailed, Attempts: 1, StartedAt: t0, FinishedAt: t0,
			Fingerprint: fp, RetryReason: run.RetryNeedNotReused, RetryDetail: "build"},
	} {
		if err := s.StepFinished(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	finishRun(t, s, r, run.StatusFailed, 1, t0)
	d, err := s.RunDetail(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range d.Steps {
		got = append(got, st.StepID+"|"+st.Fingerprint+"|"+st.RetryReason+"|"+st.RetryDetail)
	}
	want := []string{"build|" + fp + "|reused|", "test|||", "added|" + fp + "|need_not_reused|build"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := queryString(t, s.r, `SELECT count(*) FROM steps WHERE fingerprint IS NULL AND retry_reason IS NULL AND retry_detail IS NULL`); n != "1" {
		t.Errorf("%s steps with NULL fingerprint and retry columns, want 1 (test)", n)
	}
}

// TestFingerprintKey: the key is made once (0600, beside the database, not in it) and read back the
// same by every Store of the folder; a key file others can read, or a symlink, is refused.
func TestFingerprintKey(t *testing.T) {
	dir := t.TempDir()
	a := openAt(t, filepath.Join(dir, "a.db"))
	k1, err := a.FingerprintKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key of %d bytes, want 32", len(k1))
	}
	path := filepath.Join(dir, "locks", "fingerprint.key")
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	b := openAt(t, filepath.Join(dir, "b.db"))
	k2, err := b.FingerprintKey()
	if err != nil || string(k2) != string(k1) {
		t.Fatalf("second Store: key %x, %v; want the same key", k2, err)
	}

	os.Chmod(path, 0o644)
	if _, err := a.FingerprintKey(); err == nil || !strings.Contains(err.Error(), "other users") {
		t.Errorf("key readable by others: err = %v, want a refusal", err)
	}
	os.Remove(path)
	other := filepath.Join(dir, "planted")
	os.WriteFile(other, k1, 0o600)
	if err := os.Symlink(other, path); err != nil {
		t.Fatal(err)
	}
	if _, err := a.FingerprintKey(); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("key file is a symlink: err = %v, want a refusal", err)
	}
	os.Remove(path)
	k3, err := a.FingerprintKey()
	if err != nil || string(k3) == string(k1) {
		t.Errorf("after removal: key %x, %v; want a new key", k3, err)
	}
}
