package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/playbookhq/playbook/pkg/run"
)

func TestShowCommand(t *testing.T) {
	db := seedDB(t)
	seedRunning(t, db)
	runCases(t, db, []cliCase{
		{name: "failed run", args: []string{"show", runFailed},
			stdout: []string{"Run:", runFailed, "Playbook:", "deploy-web (/srv/deploy-web.yaml)", "Status:", "failed (exit 1)",
				"by bob@web2", "Duration:", "5.0s", `Params:`, `{"env":"prod"}`, "Error:", "step test failed",
				"STEP", "STATUS", "EXIT", "DURATION", "ATTEMPTS", "NOTE",
				"build", "succeeded", "0", "500ms", "1",
				"test", "failed", "2", "1.5s", "2", "output truncated",
				"notify", "skipped", "-", "-", "0", "dependency_failed"}},
		{name: "unique prefix", args: []string{"show", "b1n"}, stdout: []string{runBinary, "diag"}},
		{name: "last", args: []string{"show", "last"}, stdout: []string{runRunning, "running", "running for", "dump", "running"}},
		{name: "ambiguous prefix", args: []string{"show", "a1b2"}, code: run.ExitUsage,
			stderr: []string{`run prefix "a1b2" is ambiguous`, runOK, runFailed}},
		{name: "unknown", args: []string{"show", "zzz"}, code: run.ExitUsage, stderr: []string{`no run matches "zzz"`}},
		{name: "no argument", args: []string{"show"}, code: run.ExitUsage},
		{name: "json", args: []string{"show", runFailed, "--json"}, jsonOutput: true,
			stdout: []string{`"id": "a1b2c3d4e5f60002"`, `"status": "failed"`, `"steps": [`,
				`"step_id": "build"`, `"step_id": "test"`, `"exit_code": 2`, `"attempts": 2`, `"stderr_truncated": true`,
				`"attempt_history": [`, `"attempt": 1`, `"attempt": 2`,
				`"step_id": "notify"`, `"status": "skipped"`, `"reason": "dependency_failed"`, `"exit_code": null`}},
	})
}

// TestShowJSONDecodes: show --json stays valid JSON (and UTF-8) whatever bytes the run recorded: output
// is stored as raw bytes, and invalid UTF-8 copied into JSON text would break every consumer.
func TestShowJSONDecodes(t *testing.T) {
	db := seedDB(t)
	for _, args := range [][]string{{"runs", "--json"}, {"show", runBinary, "--json"}} {
		r := runCLI(t, nil, append(args, "--db", db)...)
		if r.Code != 0 || !json.Valid([]byte(r.Stdout)) || !utf8.ValidString(r.Stdout) {
			t.Fatalf("%v: exit %d, output not valid UTF-8 JSON:\n%q", args, r.Code, r.Stdout)
		}
	}
	r := runCLI(t, nil, "show", runBinary, "--db", db)
	if !utf8.ValidString(r.Stdout) || !strings.Contains(r.Stdout, "warning: bad byte \uFFFD") {
		t.Fatalf("show text: %q", r.Stdout)
	}
	r = runCLI(t, nil, "show", "--db", db, runBinary, "--json")
	var v struct {
		ID    string `json:"id"`
		Steps []struct {
			StepID      string `json:"step_id"`
			StdoutBytes int    `json:"stdout_bytes"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil || v.ID != runBinary || len(v.Steps) != 1 || v.Steps[0].StdoutBytes != 7 {
		t.Fatalf("%v %+v\n%s", err, v, r.Stdout)
	}
}

// A status in the retry note is a sentence's word: "timed out", not timed_out.
func TestRetryNoteSaysStatusInWords(t *testing.T) {
	s := &run.StepRecord{RetryReason: run.RetryNotSucceeded, RetryDetail: string(run.StatusTimedOut)}
	if got, want := retryNote(s, "a1b2c3d4e5f6a7b8", nil), "ran again: timed out in run a1b2c3d4e5f6"; got != want {
		t.Errorf("retryNote = %q, want %q", got, want)
	}
}
