package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// While a run goes on, the writer copies the WAL back into the database file when it is idle, so
// that closing the Store (the command's last moment, which the user waits for) has little left to
// sync. Observable in the main database file itself: what was recorded is in its bytes before Close.
func TestWriterCheckpointsWhileIdle(t *testing.T) {
	record := func(t *testing.T, every time.Duration, marker string) (path string, hook chan struct{}) {
		checkpointEvery = every
		hook = make(chan struct{}, 100)
		checkpointed = func() { hook <- struct{}{} }
		t.Cleanup(func() { checkpointEvery, checkpointed = 200*time.Millisecond, nil })
		path = filepath.Join(t.TempDir(), "playbook.db")
		s := openAt(t, path)
		checkpointEvery, checkpointed = 200*time.Millisecond, nil // read by Open: the Store keeps its own
		r := fixtureRun("ckpt-"+marker, "build")
		if err := s.RunStarted(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		recordStep(t, s, r.ID, "build", "succeeded", 0, t0, time.Second, strings.Repeat(marker+"\n", 4096), "")
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		return path, hook
	}
	inFile := func(path, marker string) bool {
		data, err := os.ReadFile(path) // the database file alone, not its -wal
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(data, []byte(marker))
	}

	t.Run("checkpointed", func(t *testing.T) {
		path, hook := record(t, 0, "MARKER-checkpointed")
		// The writer checkpoints after every batch here; the output is in the file after the
		// checkpoint that follows its batch (an earlier one may still be signalled first).
		for !inFile(path, "MARKER-checkpointed") {
			select {
			case <-hook:
			case <-time.After(10 * time.Second): // a hang guard, not a synchronisation
				t.Fatal("the recorded output is not in the database file, and the writer checkpoints no more")
			}
		}
	})
	t.Run("control", func(t *testing.T) {
		// The same without the writer's checkpoints: the output is only in the WAL until Close.
		path, hook := record(t, time.Hour, "MARKER-control")
		select {
		case <-hook:
			t.Fatal("the writer checkpointed although its interval had not passed")
		default:
		}
		if inFile(path, "MARKER-control") {
			t.Error("the output reached the database file without a checkpoint: this test cannot tell")
		}
	})
}
