package cli

import (
	"testing"
	"unicode/utf8"

	"github.com/playbookhq/playbook/pkg/run"
)

func TestLogsCommand(t *testing.T) {
	db := seedDB(t)
	seedRunning(t, db)
	runCases(t, db, []cliCase{
		{name: "one step, both streams", args: []string{"logs", runFailed, "test"},
			stdout: []string{"[stdout] try 2\n", "[stderr] FAIL start\n", "[stderr] [... 9000 bytes omitted ...]\n", "[stderr] FAIL end\n"}},
		{name: "one step, one stream, as written", args: []string{"logs", runFailed, "build", "--stdout"}, stdoutIs: "built v2\n"},
		{name: "both flags, both streams", args: []string{"logs", runFailed, "test", "--stdout", "--stderr"},
			stdout: []string{"[stdout] try 2\n", "[stderr] FAIL start\n"}},
		{name: "last attempt by default", args: []string{"logs", runFailed, "test"}, stdout: []string{"try 2\n"}, notStdout: []string{"try 1"}},
		{name: "earlier attempt", args: []string{"logs", runFailed, "test", "--attempt", "1"}, stdout: []string{"try 1\n"}, notStdout: []string{"try 2"}},
		{name: "last attempt by number", args: []string{"logs", runFailed, "test", "--attempt", "2"}, stdout: []string{"try 2\n"}},
		{name: "stderr with truncation", args: []string{"logs", runFailed, "test", "--stderr"},
			stdout: []string{"FAIL start\n", "[... 9000 bytes omitted ...]", "FAIL end\n"},
			stderr: []string{"stderr of step test was truncated: 9050 bytes produced", "--log-dir"}},
		{name: "whole run", args: []string{"logs", runFailed},
			stdout: []string{"[build stdout] built v2\n", "[test stdout, attempt 2] try 2\n", "[test stderr, attempt 2] FAIL start\n",
				"[test stderr, attempt 2] FAIL end\n"}, notStdout: []string{"notify"}},
		{name: "whole run, one stream", args: []string{"logs", runFailed, "--stdout"},
			stdoutIs: "[build] built v2\n[test, attempt 2] try 2\n"},
		{name: "last run", args: []string{"logs", "last", "dump"}, stderr: []string{"still running"}},
		{name: "skipped step", args: []string{"logs", runFailed, "notify"}, stderr: []string{"did not run (skipped: a step it needs did not succeed)"}},
		{name: "unknown step", args: []string{"logs", runFailed, "nope"}, code: run.ExitUsage, stderr: []string{`has no step "nope" (steps: build, test, notify)`}},
		{name: "unknown attempt", args: []string{"logs", runFailed, "test", "--attempt", "3"}, code: run.ExitUsage, stderr: []string{"has no attempt 3 (it has 2)"}},
		{name: "attempt without step", args: []string{"logs", runFailed, "--attempt", "1"}, code: run.ExitUsage},
		{name: "unknown run", args: []string{"logs", "zzz"}, code: run.ExitUsage, stderr: []string{`no run matches "zzz"`}},
		{name: "too many arguments", args: []string{"logs", "a", "b", "c"}, code: run.ExitUsage},
	})
}

// TestLogsBinaryOutput: binary output is shown as valid UTF-8, and --raw gives the stored bytes back.
func TestLogsBinaryOutput(t *testing.T) {
	db := seedDB(t)
	r := runCLI(t, nil, "logs", "--db", db, runBinary, "dump", "--stdout")
	if r.Code != 0 || !utf8.ValidString(r.Stdout) || r.Stdout != "\uFFFD\x00ok\uFFFD" {
		t.Fatalf("logs: %d %q", r.Code, r.Stdout)
	}
	// Both streams: labelled lines, the last one ended.
	r = runCLI(t, nil, "logs", "--db", db, runBinary, "dump")
	if r.Code != 0 || r.Stdout != "[stdout] \uFFFD\x00ok\uFFFD\n" {
		t.Fatalf("logs: %d %q", r.Code, r.Stdout)
	}
	r = runCLI(t, nil, "logs", "--db", db, runBinary, "dump", "--stdout", "--raw")
	if r.Stdout != "\xff\xfe\x00ok\xe2\x82" {
		t.Fatalf("logs --raw: %q", r.Stdout)
	}
}
