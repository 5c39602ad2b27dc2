//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Security, end to end: secrets never leave the process unmasked, files are private, params cannot
// become shell code, expressions cannot read the machine.

// Three secrets: plain, holding characters that quoting escapes (a Go %q or JSON form would differ from
// the value), and long (beyond any truncation of a message).
const (
	secretPlain  = "s3cr3t-plain-4711"
	secretQuoted = `pa"ss\wo'rd<&>`
	secretLong   = "LONG-0123456789abcdefghijklmnopqrstuvwxyz-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-end"
)

// secretMultiLine is a secret of several lines, like a key file: each of its lines is a secret too.
const secretMultiLine = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nZm9vYmFyYmF6cXV4\n-----END KEY-----"

// secretForms are the texts that must appear nowhere: each secret, its %q, JSON and shell-quoted
// (bash's set -x) forms, the 16-byte head of the long one (a truncated message would keep a head), and
// the inner lines of the multi-line one.
func secretForms() []string {
	var forms []string
	for _, s := range []string{secretPlain, secretQuoted, secretLong, secretMultiLine} {
		q := strconv.Quote(s)
		j, _ := json.Marshal(s)
		forms = append(forms, s, q[1:len(q)-1], string(j[1:len(j)-1]), strings.ReplaceAll(s, "'", `'\''`))
	}
	lines := strings.Split(secretMultiLine, "\n")
	return append(forms, secretLong[:16], lines[1], lines[2])
}

// assertNoSecret fails when data holds any form of a secret.
func assertNoSecret(t *testing.T, where string, data []byte) {
	t.Helper()
	for _, f := range secretForms() {
		if i := bytes.Index(data, []byte(f)); i >= 0 {
			lo, hi := max(0, i-80), min(len(data), i+len(f)+80)
			t.Errorf("%s holds the secret form %q: ...%q...", where, f, data[lo:hi])
		}
	}
}

const secretsPlaybook = `version: 1
name: secrets
fail_fast: false
params:
  token: {secret: true}
  quoted: {secret: true}
  long: {secret: true}
steps:
  - id: prints
    run: |
      echo "token is $PLAYBOOK_PARAM_TOKEN, quoted is $PLAYBOOK_PARAM_QUOTED, long is $PLAYBOOK_PARAM_LONG"
      printf 'split %s' "${PLAYBOOK_PARAM_TOKEN%%-*}"; sleep 0.1; printf -- '-%s\n' "${PLAYBOOK_PARAM_TOKEN#*-}"
      echo "to stderr $PLAYBOOK_PARAM_QUOTED" >&2
      echo "out=$PLAYBOOK_PARAM_LONG" >> "$PLAYBOOK_OUTPUT"
      printf '%s' "$PLAYBOOK_PARAM_TOKEN" | sha256sum | cut -c1-16 > token.sha
  - id: fails-with-secret-in-command
    run: 'echo "${{ params.token }} ${{ params.quoted }}" && exit 3'
  - id: secret-alone-in-outputs
    run: echo "$PLAYBOOK_PARAM_LONG" >> "$PLAYBOOK_OUTPUT"
  - id: secret-as-program
    exec: ["${{ params.quoted }}", "${{ params.long }}"]
  - id: secret-as-folder
    dir: "${{ params.long }}"
    run: echo never
  - id: secret-in-condition
    if: int(params.quoted) > 0
    run: echo never
  - id: secret-in-template
    run: echo ${{ int(params.long) }}
  - id: secret-in-json
    run: |
      printf '{"token": "%s"}\n' "$PLAYBOOK_PARAM_QUOTED"
`

// TestSecretsNeverWritten runs steps that put secrets everywhere they can go (output, stderr, split
// writes, outputs, a failing command, a program name, a folder, a condition's and a template's
// evaluation error, JSON they print) and checks every place playbook writes: the terminal, --output
// json, the log files, every byte of the database and its -wal and -shm files, runs/show/logs, and the
// error messages. The steps did get the real values (a hash proves it).
func TestSecretsNeverWritten(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state", "pb.db")
	writeFile(t, filepath.Join(dir, "s.yaml"), secretsPlaybook)
	params := []string{"-p", "token=" + secretPlain, "-p", "quoted=" + secretQuoted, "-p", "long=" + secretLong}
	// Create the database and keep a connection to it open, so that its -wal file keeps every frame
	// the runs write (the last connection to close would checkpoint and delete it).
	// (A run of another playbook: runs, show, logs and prune create nothing.)
	writeFile(t, filepath.Join(dir, "first.yaml"), "version: 1\nname: first\nsteps:\n  - id: a\n    run: \"true\"\n")
	if r := pbRun(t, dir, db, pbOpts{}, "run", "first.yaml"); r.code != 0 {
		t.Fatalf("playbook run: %d\n%s", r.code, r.out)
	}
	keep, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	if _, err := keep.Exec(`SELECT count(*) FROM runs`); err != nil {
		t.Fatal(err)
	}

	text := pbRun(t, dir, db, pbOpts{}, append([]string{"run", "s.yaml", "--log-dir", "logs"}, params...)...)
	if text.code != 1 {
		t.Fatalf("exit status %d, want 1:\n%s", text.code, text.out)
	}
	assertNoSecret(t, "the terminal", []byte(text.out))
	if !strings.Contains(text.out, "token is ***, quoted is ***, long is ***") || !strings.Contains(text.out, "split ***") {
		t.Errorf("the masked lines are missing:\n%s", text.out)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "token.sha"))
	if want := fmt.Sprintf("%x", sha256.Sum256([]byte(secretPlain)))[:16]; err != nil || strings.TrimSpace(string(sum)) != want {
		t.Fatalf("the step did not get the secret's value: hash %q, %v; want %s", sum, err, want)
	}
	js := pbRun(t, dir, db, pbOpts{}, append([]string{"run", "s.yaml", "--output", "json"}, params...)...)
	assertNoSecret(t, "--output json", []byte(js.out))
	for _, line := range strings.Split(strings.TrimSpace(js.out), "\n") {
		if !json.Valid([]byte(line)) && strings.HasPrefix(line, "{") {
			t.Errorf("invalid JSON line: %q", line)
		}
	}

	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*", "*"))
	if len(logs) == 0 {
		t.Fatal("no log files")
	}
	for _, f := range logs {
		data, _ := os.ReadFile(f)
		assertNoSecret(t, f, data)
	}
	for _, cmd := range [][]string{{"runs", "--json"}, {"show", "last", "--json"}, {"show", "last"},
		{"logs", "last"}, {"logs", "last", "--stderr"}, {"logs", "last", "prints", "--raw"}} {
		r := pbRun(t, dir, db, pbOpts{}, cmd...)
		assertNoSecret(t, "playbook "+strings.Join(cmd, " "), []byte(r.out))
	}
	// The database files, byte by byte, while a reader keeps the WAL alive.
	files, _ := filepath.Glob(db + "*")
	if len(files) != 3 {
		t.Errorf("database files %v, want the database, its -wal and -shm", files)
	}
	var all []byte
	for _, f := range files {
		data, _ := os.ReadFile(f)
		all = append(all, data...)
		assertNoSecret(t, f, data)
	}
	// The scan saw the runs' writes: their masked output is in the files. (How much of it is in the WAL
	// rather than the database depends on when the writer's timed checkpoints fell.)
	if !bytes.Contains(all, []byte("token is ***, quoted is ***")) {
		t.Errorf("the database files %v do not hold the runs' masked output: the scan missed their writes", files)
	}
	if got := queryDB(t, db, `SELECT count(*) FROM steps WHERE error LIKE '%***%' OR CAST(stdout AS TEXT) LIKE '%***%'
		OR CAST(stderr AS TEXT) LIKE '%***%' OR command LIKE '%***%' OR outputs LIKE '%***%'`); got[0] == "0" {
		t.Error("no masked value in the database: the steps never saw the secrets?")
	}
	// Each step that failed because of its secret says why, masked.
	errs := queryDB(t, db, `SELECT step_id, coalesce(error, '') FROM steps WHERE run_id = (SELECT id FROM runs WHERE playbook != 'first' ORDER BY started_at LIMIT 1) ORDER BY step_id`)
	t.Logf("step errors: %q", errs)
	for _, want := range []string{"secret-alone-in-outputs|PLAYBOOK_OUTPUT line 1", "secret-as-program|", "secret-as-folder|",
		"secret-in-condition|", "secret-in-template|"} {
		found := false
		for _, e := range errs {
			if strings.HasPrefix(e, want) && len(e) > len(want)+3 {
				found = true
			}
		}
		if !found {
			t.Errorf("no error recorded for %q: %v", want, errs)
		}
	}
}

// TestSecretParamErrorsDoNotShowTheValue: a -p value refused for a secret param (wrong type, not in
// the enum) is not repeated in the error.
func TestSecretParamErrorsDoNotShowTheValue(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.yaml"), `version: 1
name: p
params:
  pin: {type: int, secret: true, default: 1}
  level: {secret: true, enum: [low, high], default: low}
steps:
  - {id: a, run: echo}
`)
	r := pbRun(t, dir, filepath.Join(dir, "pb.db"), pbOpts{}, "run", "p.yaml", "-p", "pin="+secretPlain, "-p", "level="+secretQuoted)
	if r.code != 2 {
		t.Fatalf("exit status %d, want 2:\n%s", r.code, r.out)
	}
	assertNoSecret(t, "the error", []byte(r.out))
	if !strings.Contains(r.out, `param "pin"`) || !strings.Contains(r.out, `param "level"`) {
		t.Errorf("the error does not name the params:\n%s", r.out)
	}
}

// TestSecretWithEqualsInOutputs: a base64 token (ending in =) written alone to $PLAYBOOK_OUTPUT reads
// as name=value with most of the token as the name; output names are recorded unmasked.
func TestSecretWithEqualsInOutputs(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	const token = "dGhpcyBpcyBhIHZlcnkgc2VjcmV0IHRva2Vu=="
	writeFile(t, filepath.Join(dir, "p.yaml"), `version: 1
name: p
params:
  token: {secret: true}
steps:
  - id: a
    run: echo "$PLAYBOOK_PARAM_TOKEN" >> "$PLAYBOOK_OUTPUT"
`)
	r := pbRun(t, dir, db, pbOpts{}, "run", "p.yaml", "-p", "token="+token)
	leaked := strings.Contains(r.out, token[:20])
	files, _ := filepath.Glob(db + "*")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		leaked = leaked || bytes.Contains(data, []byte(token[:20]))
	}
	t.Logf("exit %d, outputs %v", r.code, queryDB(t, db, `SELECT outputs FROM steps`))
	failIf(t, leaked, "a secret holding = written alone to $PLAYBOOK_OUTPUT becomes an output *name* holding most "+
		"of the secret, recorded unmasked (scheduler masks output values, not names)")
}

// TestFilesArePrivate: with umask 000, the database's folders, the database, its -wal and -shm, the
// lock folder and files, the log folders and files, the folder of $PLAYBOOK_OUTPUT and that file (made
// by the runner before the step starts) are created for their owner only: folders 0700, files 0600.
func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "new", "state", "pb.db")
	writeFile(t, filepath.Join(dir, "p.yaml"), `version: 1
name: modes
steps:
  - id: look
    run: |
      d=$(dirname "$PLAYBOOK_DB")
      stat -c '%a|%F|%n' "$(dirname "$d")" "$d" "$PLAYBOOK_DB" "$PLAYBOOK_DB-wal" "$PLAYBOOK_DB-shm" "$d/locks" \
        "$d"/locks/*.lock "$(dirname "$PLAYBOOK_OUTPUT")" "$PLAYBOOK_OUTPUT"
`)
	r := pbRun(t, dir, db, pbOpts{bin: "/bin/sh"}, "-c", `umask 000; exec "$0" "$@"`, playbookBin(t),
		"run", "p.yaml", "--log-dir", "logs/a/b")
	if r.code != 0 {
		t.Fatalf("exit status %d:\n%s", r.code, r.out)
	}
	out := queryDB(t, db, `SELECT CAST(stdout AS TEXT) FROM steps`)
	lines := strings.Split(strings.TrimSpace(out[0]), "\n")
	if len(lines) != 9 {
		t.Fatalf("the step saw %d files, want 9:\n%s", len(lines), out[0])
	}
	check := func(name string, mode os.FileMode, isDir bool) {
		t.Helper()
		want := os.FileMode(0o600)
		if isDir {
			want = 0o700
		}
		if mode != want {
			t.Errorf("%s has mode %o, want %o", name, mode, want)
		}
	}
	for _, l := range lines {
		f := strings.SplitN(l, "|", 3)
		mode, _ := strconv.ParseUint(f[0], 8, 32)
		check(f[2], os.FileMode(mode), f[1] == "directory")
	}
	entries := 0
	filepath.Walk(filepath.Join(dir, "logs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			entries++
			check(p, fi.Mode().Perm(), fi.IsDir())
		}
		return err
	})
	if entries != 6 { // logs, a, b, <run id>, look.stdout, look.stderr
		t.Errorf("%d entries under logs, want 6", entries)
	}
}

// TestParamsCannotInjectShell: values that would be shell code if pasted into a command are passed
// through $PLAYBOOK_PARAM_<NAME>, exec arguments and env values as plain text: nothing they say runs.
func TestParamsCannotInjectShell(t *testing.T) {
	values := []string{
		`$(touch pwned1); rm -rf keep`,
		"`touch pwned2`",
		`"; touch pwned3; echo "`,
		`'; touch pwned4; echo '`,
		"line one\ntouch pwned5",
		`* ? [a-z] ~ $HOME ${PLAYBOOK_RUN_ID} \ %s%n && || ; | > pwned6 <`,
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "p.yaml"), `version: 1
name: inject
params:
  x: {}
steps:
  - id: via-env-var
    run: printf '%s\n' "$PLAYBOOK_PARAM_X" > got-run.txt
  - id: via-exec
    exec: [sh, -c, 'printf "%s\n" "$1" > got-exec.txt', sh, "${{ params.x }}"]
  - id: via-step-env
    env: {V: "${{ params.x }}"}
    run: printf '%s\n' "$V" > got-env.txt
`)
	for i, v := range values {
		if err := os.MkdirAll(filepath.Join(dir, "keep"), 0o755); err != nil {
			t.Fatal(err)
		}
		r := pbRun(t, dir, db, pbOpts{}, "run", "p.yaml", "-p", "x="+v)
		if r.code != 0 {
			t.Fatalf("value %d %q: exit %d\n%s", i, v, r.code, r.out)
		}
		for _, f := range []string{"got-run.txt", "got-exec.txt", "got-env.txt"} {
			got, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || string(got) != v+"\n" {
				t.Errorf("value %q: %s = %q, %v; want the value as given", v, f, got, err)
			}
		}
		if pwned, _ := filepath.Glob(filepath.Join(dir, "pwned*")); len(pwned) > 0 {
			t.Fatalf("value %q ran as shell code: %v", v, pwned)
		}
		if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
			t.Fatalf("value %q removed a folder", v)
		}
	}
	// The unsafe form is pointed out before anything runs: validate warns where ${{ params.x }} is put
	// into a shell command, and says what to write instead.
	writeFile(t, filepath.Join(dir, "unsafe.yaml"), "version: 1\nname: unsafe\nparams:\n  x: {}\n  token: {secret: true}\nsteps:\n  - id: a\n    run: echo ${{ params.x }} ${{ params.token }}\n")
	r := pbRun(t, dir, db, pbOpts{}, "validate", "unsafe.yaml")
	if r.code != 0 {
		t.Fatalf("validate: exit %d (warnings do not fail validation)\n%s", r.code, r.out)
	}
	for _, want := range []string{`unsafe.yaml:8:26: warning: `, `"$PLAYBOOK_PARAM_X"`, `unsafe.yaml:8:42: warning: `, `secret param "token"`} {
		if !strings.Contains(r.out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.out)
		}
	}
}

// TestExpressionsCannotReadTheMachine: an expression that tries to read the runner's environment or a
// file is refused when the playbook is loaded, with the line and what to use instead; nothing runs.
func TestExpressionsCannotReadTheMachine(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PB_TEST_MACHINE_SECRET", "machine-secret")
	writeFile(t, filepath.Join(dir, "p.yaml"), `version: 1
name: machine
steps:
  - id: a
    if: env.PB_TEST_MACHINE_SECRET != ""
    run: touch ran
  - id: b
    run: echo ${{ $env.PB_TEST_MACHINE_SECRET }} ${{ readFile("/etc/passwd") }}
`)
	r := pbRun(t, dir, filepath.Join(dir, "pb.db"), pbOpts{}, "run", "p.yaml")
	if r.code != 2 {
		t.Fatalf("exit status %d, want 2:\n%s", r.code, r.out)
	}
	for _, want := range []string{"p.yaml:5:13:", "never the runner's environment", "p.yaml:8:", "$env is not available", "readFile() is not available"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "machine-secret") {
		t.Error("the machine's environment reached the output")
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a step ran")
	}
}

// TestOutputsFileOfKilledRunner: the $PLAYBOOK_OUTPUT file is created 0600 before the step runs, even
// under umask 000, and when the runner is killed (kill -9) while the step runs, the next playbook
// command's crash recovery removes the run's temporary folder with the secret the step wrote in it,
// and leaves another run's folder and what a symlink in the folder points to alone.
func TestOutputsFileOfKilledRunner(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	db := filepath.Join(dir, "pb.db")
	outside := filepath.Join(dir, "outside.txt")
	writeFile(t, outside, "keep me\n")
	writeFile(t, filepath.Join(dir, "k.yaml"), `version: 1
name: killed
params:
  token: {secret: true}
steps:
  - id: holds
    run: |
      echo "token=$PLAYBOOK_PARAM_TOKEN" >> "$PLAYBOOK_OUTPUT"
      ln -s "`+outside+`" "$(dirname "$PLAYBOOK_OUTPUT")/link"
      echo "ready $(stat -c %a "$PLAYBOOK_OUTPUT")"
      sleep 60
`)
	// Another run's folder, in the same place: recovery must not take it for the dead run's.
	other := filepath.Join(tmp, "playbook-run-0123456789abcdef0123456789abcdef-1")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}

	old := syscall.Umask(0)
	p := startPlaybook(t, dir, db, "run", "k.yaml", "-p", "token="+secretPlain)
	syscall.Umask(old)
	p.waitLine(`ready \d+`)
	if !strings.Contains(p.output(), "ready 600") {
		t.Errorf("the step saw its $PLAYBOOK_OUTPUT with another mode than 600:\n%s", p.output())
	}
	files, _ := filepath.Glob(filepath.Join(tmp, "playbook-run-*", "*.out"))
	if len(files) != 1 {
		t.Fatalf("outputs files %v, want one", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("outputs file %s: %v, %v; want mode 0600", files[0], fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(files[0])); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("outputs folder: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(files[0]); !strings.Contains(string(data), secretPlain) {
		t.Fatalf("outputs file holds %q, not the secret: the test does not test what it says", data)
	}

	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	p.wait(10 * time.Second)
	if _, err := os.Stat(files[0]); err != nil {
		t.Fatalf("the outputs file is gone before any recovery (%v): nothing left to test", err)
	}
	if r := pbRun(t, dir, db, pbOpts{}, "runs"); r.code != 0 {
		t.Fatalf("playbook runs: %d\n%s", r.code, r.out)
	}
	if got := queryDB(t, db, `SELECT status FROM runs`); len(got) != 1 || got[0] != "interrupted" {
		t.Fatalf("runs %v, want one interrupted", got)
	}
	if _, err := os.Lstat(filepath.Dir(files[0])); !os.IsNotExist(err) {
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(files[0]), "*"))
		t.Errorf("the dead run's temporary folder is still there after recovery (%v): %v", err, left)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another run's folder was removed: %v", err)
	}
	if data, err := os.ReadFile(outside); err != nil || string(data) != "keep me\n" {
		t.Errorf("the file a symlink in the folder pointed to: %q, %v", data, err)
	}
}

// TestSecretErrorPathsMasked goes through the paths that can carry a param's value into a message or
// an output and checks that a secret never shows there: the dry run's plan (a condition's and the
// playbook env's evaluation errors), the real run's, a -p without a name, a secret default refused by
// validate, a param's type and enum errors, a template's error in --output json, a step that prints one
// line of a multi-line secret, and bash's set -x trace of a secret holding a quote.
func TestSecretErrorPathsMasked(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "cond.yaml"), `version: 1
name: cond
params:
  token: {secret: true}
steps:
  - id: a
    if: int(params.token) > 0
    run: echo never
`)
	writeFile(t, filepath.Join(dir, "env.yaml"), `version: 1
name: env
params:
  token: {secret: true}
env:
  E: ${{ int(params.token) }}
steps:
  - {id: a, run: echo never}
`)
	writeFile(t, filepath.Join(dir, "typed.yaml"), `version: 1
name: typed
params:
  pin: {type: int, secret: true, default: 1}
  level: {secret: true, enum: [low, high], default: low}
steps:
  - {id: a, run: echo}
`)
	writeFile(t, filepath.Join(dir, "defaults.yaml"), `version: 1
name: defaults
params:
  pin: {type: int, secret: true, default: `+secretPlain+`}
  level: {secret: true, enum: [low, high], default: `+secretPlain+`}
steps:
  - {id: a, run: echo}
`)
	writeFile(t, filepath.Join(dir, "tmpl.yaml"), `version: 1
name: tmpl
params:
  long: {secret: true}
steps:
  - id: a
    run: echo ${{ int(params.long) }}
`)
	writeFile(t, filepath.Join(dir, "print.yaml"), `version: 1
name: print
params:
  key: {secret: true}
  quoted: {secret: true}
steps:
  - id: line2
    run: printf '%s\n' "$PLAYBOOK_PARAM_KEY" | sed -n 2p
  - id: trace
    shell: bash
    run: |
      set -x
      : "$PLAYBOOK_PARAM_QUOTED"
`)
	cases := []struct {
		name string
		args []string
		code int
		want string // a part of the output that shows the path was taken
	}{
		{"dry-run condition error", []string{"run", "cond.yaml", "--dry-run", "-p", "token=" + secretPlain}, 0, "int(***)"},
		{"dry-run env error", []string{"run", "env.yaml", "--dry-run", "-p", "token=" + secretPlain}, 2, "int(***)"},
		{"run condition error", []string{"run", "cond.yaml", "-p", "token=" + secretPlain}, 1, "int(***)"},
		{"run env error", []string{"run", "env.yaml", "-p", "token=" + secretPlain}, 1, "int(***)"},
		{"run env error, json", []string{"run", "env.yaml", "-o", "json", "-p", "token=" + secretPlain}, 1, "int(***)"},
		{"-p without a name", []string{"run", "cond.yaml", "-p", secretPlain}, 2, "want name=value"},
		{"-p with an empty name", []string{"run", "cond.yaml", "-p", "=" + secretPlain}, 2, "want name=value"},
		{"param type and enum", []string{"run", "typed.yaml", "-p", "pin=" + secretPlain, "-p", "level=" + secretQuoted}, 2, `param "level"`},
		{"validate secret defaults", []string{"validate", "defaults.yaml"}, 2, `default of param "level"`},
		{"template error, json", []string{"run", "tmpl.yaml", "-o", "json", "-p", "long=" + secretLong}, 1, "step_finished"},
		{"one line of a multi-line secret", []string{"run", "print.yaml", "-p", "key=" + secretMultiLine, "-p", "quoted=" + secretQuoted}, 0, "+ : '***'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := pbRun(t, dir, db, pbOpts{}, c.args...)
			if r.code != c.code || !strings.Contains(r.out, c.want) {
				t.Errorf("exit %d, want %d, with %q in the output:\n%s", r.code, c.code, c.want, r.out)
			}
			assertNoSecret(t, "the output", []byte(r.out))
		})
	}
	for _, cmd := range [][]string{{"show", "last", "--json"}, {"logs", "last"}, {"logs", "last", "--stderr"}} {
		r := pbRun(t, dir, db, pbOpts{}, cmd...)
		assertNoSecret(t, "playbook "+strings.Join(cmd, " "), []byte(r.out))
	}
}
