//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEscapedProcessesEndWithTheRun: what a step starts with setsid leaves the step's process group,
// so the group kill at the step's end may or may not reach it (a race with the child's setsid when it
// is the step's last command). Whatever happened at the step's end, nothing the run started outlives
// the run: every run, ten times each way, ends with no process carrying its PLAYBOOK_RUN_ID. A daemon
// that has left the group lives on for the later steps of the run.
func TestEscapedProcessesEndWithTheRun(t *testing.T) {
	// The pause ends once the daemon has left the group and said so, however loaded the machine.
	const waitPID = "until [ -s daemon.pid ]; do sleep 0.01; done"
	for _, tc := range []struct {
		name, run string
		alive     bool // the next step sees the daemon
	}{
		{name: "setsid as the last command", run: `setsid sh -c 'echo $$ > daemon.pid; exec sleep 300' &`},
		{name: "setsid -f as the last command", run: `setsid -f sh -c 'echo $$ > daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1`},
		{name: "setsid, then a pause", run: "setsid sh -c 'echo $$ > daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &\n      " + waitPID, alive: true},
		{name: "setsid -f, then a pause", run: "setsid -f sh -c 'echo $$ > daemon.pid; exec sleep 300' </dev/null >/dev/null 2>&1\n      " + waitPID, alive: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "pb.db")
			writeFile(t, filepath.Join(dir, "d.yaml"), fmt.Sprintf(`version: 1
name: daemon
steps:
  - id: start
    run: |
      rm -f daemon.pid
      %s
  - id: next
    needs: [start]
    run: |
      if [ -s daemon.pid ] && kill -0 "$(cat daemon.pid)" 2>/dev/null; then echo "daemon alive"; fi
`, tc.run))
			for i := 0; i < 10; i++ {
				r := pbRun(t, dir, db, pbOpts{limit: time.Minute}, "run", "d.yaml")
				if r.code != 0 {
					t.Fatalf("run %d: exit status %d:\n%s", i, r.code, r.out)
				}
				ids := queryDB(t, db, `SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1`)
				if len(ids) != 1 {
					t.Fatalf("no run recorded")
				}
				if tc.alive && !strings.Contains(r.out, "[next] daemon alive") {
					t.Errorf("run %d: a daemon that left the step's group before it ended is gone for the next step:\n%s", i, r.out)
				}
				// SIGKILL takes effect asynchronously: waitNoTagged allows a few seconds.
				waitNoTagged(t, "PLAYBOOK_RUN_ID="+ids[0])
			}
		})
	}
}
