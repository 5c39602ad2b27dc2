package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

func TestRunsCommand(t *testing.T) {
	db := seedDB(t)
	seedRunning(t, db)
	runCases(t, db, []cliCase{
		{name: "table newest first", args: []string{"runs"},
			stdout: []string{"ID", "PLAYBOOK", "STATUS", "STARTED", "DURATION", "USER@HOST",
				"ffee00000000", "backup", "running", "alice@db1",
				"b1n000000000", "diag", "succeeded", "1.0s", "carol@db1",
				"a1b2c3d4e5f6", "deploy-web", "failed", "5.0s", "bob@web2",
				"a1b2c3d4e5f6", "deploy-web", "succeeded", "3.0s", "alice@web1"}},
		{name: "status", args: []string{"runs", "--status", "failed"}, stdout: []string{"bob@web2"}, notStdout: []string{"alice", "carol"}},
		{name: "playbook", args: []string{"runs", "--playbook", "deploy-web"}, stdout: []string{"bob@web2", "alice@web1"}, notStdout: []string{"backup", "diag"}},
		{name: "since duration", args: []string{"runs", "--since", "90m"}, stdout: []string{"backup", "diag"}, notStdout: []string{"deploy-web"}},
		{name: "since days", args: []string{"runs", "--since", "1d"}, stdout: []string{"backup", "diag", "deploy-web", "deploy-web"}},
		{name: "since time", args: []string{"runs", "--since", "2000-01-01"}, stdout: []string{"backup", "diag"}},
		{name: "limit", args: []string{"runs", "--limit", "1"}, stdout: []string{"backup"}, notStdout: []string{"diag"}},
		{name: "json", args: []string{"runs", "--json", "--status", "succeeded"}, jsonOutput: true,
			stdout: []string{`"id": "b1n0000000000004"`, `"params": {`, `"exit_code": 0`, `"id": "a1b2c3d4e5f60001"`, `"duration_ms": 3000`, `"retry_of": null`}},
		{name: "bad status", args: []string{"runs", "--status", "done"}, code: run.ExitUsage, stderr: []string{`"done" is not a run status`}},
		{name: "bad since", args: []string{"runs", "--since", "yesterday"}, code: run.ExitUsage, stderr: []string{"--since"}},
		{name: "negative limit", args: []string{"runs", "--limit", "-1"}, code: run.ExitUsage},
		{name: "argument", args: []string{"runs", "extra"}, code: run.ExitUsage},
	})
}

func TestRunsJSONShape(t *testing.T) {
	db := seedDB(t)
	r := runCLI(t, nil, "runs", "--db", db, "--json")
	var runs []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &runs); err != nil || len(runs) != 3 {
		t.Fatalf("runs --json: %v\n%s", err, r.Stdout)
	}
	for _, k := range []string{"id", "playbook", "file", "file_sha256", "params", "status", "exit_code", "started_at", "finished_at", "duration_ms", "user", "host", "error", "retry_of"} {
		if _, ok := runs[0][k]; !ok {
			t.Errorf("run object lacks %q", k)
		}
	}
	if runs[1]["error"] != "step test failed" || runs[1]["params"].(map[string]any)["env"] != "prod" {
		t.Errorf("failed run: %v", runs[1])
	}
	if !utf8.ValidString(r.Stdout) {
		t.Error("output is not UTF-8")
	}
}

func TestRunsEmpty(t *testing.T) {
	db := filepath.Join(t.TempDir(), "empty.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	runCases(t, db, []cliCase{
		{name: "table", args: []string{"runs"}, stderr: []string{"No runs recorded."}},
		{name: "json", args: []string{"runs", "--json"}, stdout: []string{"[]"}, jsonOutput: true},
	})
}
