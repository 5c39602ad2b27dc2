package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoTemporalSDK: playbook does not link Temporal's SDK, whose initialisation would slow the
// start-up of every local run; playbook-temporal carries out the commands that need it.
func TestNoTemporalSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "go.temporal.io/") || strings.HasPrefix(pkg, "github.com/playbookhq/playbook/pkg/playbook/temporal") {
			t.Errorf("playbook depends on %s", pkg)
		}
	}
}

const pluginPlaybook = "version: 1\nname: p\nsteps:\n  - id: a\n    run: echo a\n"

// TestTemporalCommandsWithoutPlugin: without playbook-temporal next to playbook or in PATH, worker,
// run --temporal and attach fail with exit 2 and say how to install it; their help and a dry run
// with --temporal need nothing.
func TestTemporalCommandsWithoutPlugin(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "playbook")
	copyFile(t, playbookBin(t), bin)
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "p.yaml"), []byte(pluginPlaybook), 0o644)
	env := append(os.Environ(), "PATH="+t.TempDir(), "PLAYBOOK_DB="+filepath.Join(work, "runs.db"))
	for _, args := range [][]string{
		{"run", "--temporal", "127.0.0.1:1", "p.yaml"},
		{"worker", "--temporal", "127.0.0.1:1", "--queue", "db"},
		{"attach", "--temporal", "127.0.0.1:1", "abc"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = work, env
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "playbook-temporal") ||
			!strings.Contains(string(out), "go install ./cmd/...") {
			t.Errorf("playbook %s: exit %d, want 2 with how to install playbook-temporal:\n%s", strings.Join(args, " "), code, out)
		}
	}
	for _, args := range [][]string{
		{"worker", "--help"},
		{"attach", "--help"},
		{"run", "--temporal", "127.0.0.1:1", "--dry-run", "p.yaml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("playbook %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestTemporalCommandsHandedToPlugin: playbook runs the playbook-temporal next to it in its place,
// with the same arguments; its exit status is the command's.
func TestTemporalCommandsHandedToPlugin(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "playbook")
	copyFile(t, playbookBin(t), bin)
	os.WriteFile(filepath.Join(dir, "playbook-temporal"), []byte("#!/bin/sh\necho \"plugin: $*\"\nexit 7\n"), 0o755)
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "p.yaml"), []byte(pluginPlaybook), 0o644)
	for _, args := range [][]string{
		{"run", "--temporal", "h:1", "-p", "a=b c", "--db", "x.db", "p.yaml"},
		{"worker", "--queue", "db,web"},
		{"attach", "--db", "x.db", "abc"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = work, append(os.Environ(), "PATH="+t.TempDir())
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 7 || string(out) != "plugin: "+strings.Join(args, " ")+"\n" {
			t.Errorf("playbook %s: exit %d, output %q: want playbook-temporal run with the same arguments", strings.Join(args, " "), code, out)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
