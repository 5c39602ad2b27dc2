package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/playbookhq/playbook/internal/cli"
)

func TestMain(m *testing.M) {
	// testscript runs `playbook` in scripts by re-executing this test binary as the real command.
	testscript.Main(cleanupM{m}, map[string]func(){
		"playbook": func() { os.Exit(cli.Main(os.Args[1:], cli.OS())) },
	})
}

// cleanupM removes the binary the Go end-to-end tests built once the tests are over (testscript.Main
// exits the process, so it cannot be done after it returns).
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	return code
}

// TestScripts runs testdata/script/*.txtar: each is a scenario of real playbooks run by the real
// command, with its output, exit status and database rows checked.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PLAYBOOK_DB", filepath.Join(env.WorkDir, "state", "playbook.db"))
			env.Setenv("NO_COLOR", "1")
			env.Setenv("EXAMPLES", examplesDir(t))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sql":     cmdSQL,
			"waitfor": cmdWaitFor,
			"pb":      cmdPB,
			"jsonl":   cmdJSONL,
			"gone":    cmdGroupGone,
		},
	})
}

func examplesDir(t *testing.T) string {
	dir, err := filepath.Abs("../../examples/playbooks")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// cmdSQL runs a query against $PLAYBOOK_DB and prints the rows, one per line, columns separated by |,
// NULL as NULL; so scripts check the audit trail with `stdout`. `sql -w QUERY` may write (to make a
// database look as an older playbook left it).
func cmdSQL(ts *testscript.TestScript, neg bool, args []string) {
	mode := "ro"
	if len(args) == 2 && args[0] == "-w" {
		mode, args = "rw", args[1:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: sql [-w] QUERY")
	}
	db, err := sql.Open("sqlite3", "file:"+ts.Getenv("PLAYBOOK_DB")+"?mode="+mode+"&_busy_timeout=5000")
	ts.Check(err)
	defer db.Close()
	rows, err := db.Query(args[0])
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("sql: %v", err)
	}
	lines, err := rowsText(rows)
	ts.Check(err)
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l + "\n")
	}
	ts.Stdout().Write([]byte(out.String()))
	// testscript compares `stdout` against the last command's output, which for a builtin is what it
	// wrote to ts.Stdout().
}

// cmdWaitFor waits (up to 30 s) until a file exists: a step says it is ready by creating it.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfor FILE")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear within 30s", args[0])
}

// cmdPB runs the playbook command and checks its exit status: `pb 2 validate bad.yaml`. Its stdout and
// stderr are then checked with the usual stdout/stderr commands.
func cmdPB(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: pb EXIT-STATUS ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec("playbook", args[1:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("playbook: %v", err)
	}
	if got != want {
		ts.Fatalf("playbook %s: exit status %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}

// cmdJSONL checks that every line of a file (or of the last command's stdout: `jsonl stdout`) is one
// valid JSON object.
func cmdJSONL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: jsonl FILE")
	}
	text := ts.ReadFile(args[0])
	if text == "" {
		ts.Fatalf("%s is empty", args[0])
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			ts.Fatalf("%s line %d is not a JSON object: %v: %q", args[0], i+1, err, line)
		}
	}
}

// cmdGroupGone checks that no process of the group whose id is in FILE is still running (zombies do
// not count; see groupAlive), waiting a little since SIGKILL is asynchronous.
func cmdGroupGone(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gone PGID-FILE")
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(ts.ReadFile(args[0])))
	ts.Check(err)
	deadline := time.Now().Add(10 * time.Second)
	for processGroupRunning(pgid) {
		if time.Now().After(deadline) {
			ts.Fatalf("process group %d still has running members after 10 s", pgid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
