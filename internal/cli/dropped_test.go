package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/run"
)

// TestDroppedLinesSayWhereTheyAre: when the display skips lines, it says what holds them. Without
// --log-dir that is only the database's head and tail (a stream over the output limit loses its
// middle), so it must not claim that all of it is recorded; with --log-dir it names the files.
func TestDroppedLinesSayWhereTheyAre(t *testing.T) {
	const runID = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, logDir string
		attempt      int
		want         []string
	}{
		{name: "database only", attempt: 1, want: []string{"[flood] ... 42 lines not shown: output came faster than the terminal took it",
			"the database keeps the head and tail of each stream: playbook logs " + idPrefix(runID) + " flood; only --log-dir keeps all of it"}},
		{name: "log dir", logDir: "logs", attempt: 1, want: []string{"all of it is in " + filepath.Join("logs", runID, "flood") + ".stdout and .stderr"}},
		{name: "log dir, second attempt", logDir: "logs", attempt: 2, want: []string{"all of it is in " + filepath.Join("logs", runID, "flood.2") + ".stdout and .stderr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := newTextProgress(&out, &out, 1, 5, false, false, time.Now, tc.logDir)
			now := time.Now()
			p.Observe(run.Event{Type: run.EventRunStarted, Time: now, Run: &run.Record{ID: runID, Playbook: "flood", StepIDs: []string{"flood"}}})
			p.Observe(run.Event{Type: run.EventStepStarted, Time: now, StepID: "flood", Attempt: tc.attempt, PID: 1})
			p.Observe(run.Event{Type: run.EventStepOutput, Time: now, StepID: "flood", Attempt: tc.attempt, Stream: "stdout", Line: []byte("line"), Dropped: 42})
			p.Close()
			got := out.String()
			if strings.Contains(got, "all of it is recorded") {
				t.Errorf("claims everything is recorded:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %q in:\n%s", w, got)
				}
			}
		})
	}
}
