package cli

import (
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

func TestPruneCommand(t *testing.T) {
	usage := []cliCase{
		{name: "no flag", args: []string{"prune"}, code: run.ExitUsage, stderr: []string{"exactly one of --older-than DUR and --keep N"}},
		{name: "both flags", args: []string{"prune", "--keep", "1", "--older-than", "1d"}, code: run.ExitUsage},
		{name: "keep zero", args: []string{"prune", "--keep", "0"}, code: run.ExitUsage, stderr: []string{"--keep must be 1 or more"}},
		{name: "bad duration", args: []string{"prune", "--older-than", "soon"}, code: run.ExitUsage, stderr: []string{"invalid duration"}},
		{name: "argument", args: []string{"prune", "x", "--keep", "1"}, code: run.ExitUsage},
	}
	runCases(t, seedDB(t), usage)

	db := seedDB(t)
	seedRunning(t, db)
	runCases(t, db, []cliCase{
		{name: "older than", args: []string{"prune", "--older-than", "150m"}, stdout: []string{"Removed 1 run(s), 2 step(s), 2 attempt(s); database "}},
		{name: "gone", args: []string{"show", runOK}, code: run.ExitUsage},
		{name: "keep", args: []string{"prune", "--keep", "1"}, stdout: []string{"Removed 2 run(s), 4 step(s), 4 attempt(s)"}},
		{name: "running run kept", args: []string{"runs"}, stdout: []string{"backup", "running"}, notStdout: []string{"diag", "deploy-web"}},
		{name: "nothing left to prune", args: []string{"prune", "--keep", "1"}, stdout: []string{"Removed 0 run(s)"}},
	})
	r := runCLI(t, nil, "prune", "--db", db, "--older-than", "0s")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Removed 0 run(s)") {
		t.Fatalf("a running run must never be pruned: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
}
