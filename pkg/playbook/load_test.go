package playbook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadFull checks what the loader makes of a file using every key.
func TestLoadFull(t *testing.T) {
	full := corpus + "/valid/full.yaml"
	pb, err := Load(full)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(full)
	if pb.File != abs || pb.Dir != filepath.Dir(abs) {
		t.Errorf("File %q Dir %q", pb.File, pb.Dir)
	}
	data, _ := os.ReadFile(full)
	again, err := Parse(full, data)
	if err != nil || len(pb.SHA256) != 64 || pb.SHA256 != again.SHA256 {
		t.Errorf("SHA256 %q", pb.SHA256)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("Version", pb.Version, 1)
	check("Name", pb.Name, "full_example-1")
	check("Description", pb.Description, "Every key of format version 1")
	check("MaxParallel", pb.MaxParallel, 4)
	check("Timeout", pb.Timeout, 30*time.Minute)
	check("FailFast", pb.FailFast, false)
	check("OutputLimit", pb.OutputLimit, int64(512<<10))
	check("params", len(pb.Params), 7)
	check("env", len(pb.Env), 2)
	check("env[1]", pb.Env[1].Name+"="+pb.Env[1].Value.Raw(), "TARGET=${{ params.env }}")

	build, test, deploy, list, notify := pb.Step("build"), pb.Step("test"), pb.Step("deploy"), pb.Step("list"), pb.Step("notify")
	check("build.Name", build.Name, "Build the release")
	check("build.Shell (own value wins)", build.Shell, "bash")
	check("build.Timeout (default)", build.Timeout, 10*time.Minute)
	check("build.Retry (default)", build.Retry.Attempts, 2)
	check("build.Retry.Delay (default)", build.Retry.Delay, time.Second)
	check("build.StopSignal (default)", build.StopSignal, syscall.SIGTERM)
	check("build.StopGrace (default)", build.StopGrace, 3*time.Second)
	check("build position", [2]int{build.Line, build.Col}, [2]int{42, 5})
	check("build.If", build.If.Source(), "success()")

	check("test.Exec", len(test.Exec), 4)
	check("test.Exec[3]", test.Exec[3].Raw(), "-count=${{ params.replicas }}")
	check("test.Timeout", test.Timeout, 5*time.Minute)
	check("test.Retry", test.Retry.Attempts*1000+int(test.Retry.Backoff), 3002)
	check("test.Retry.MaxDelay", test.Retry.MaxDelay, 30*time.Second)
	check("test.Retry.OnExitCodes", len(test.Retry.OnExitCodes), 2)
	check("test.Shell (defaults.shell applies to run steps only)", test.Shell, "")

	check("deploy.Script", deploy.Script, filepath.Join(pb.Dir, "scripts", "deploy.sh"))
	check("deploy.Interpreter", deploy.Interpreter, "sh")
	check("deploy.Dir", deploy.Dir.Raw(), "./web")
	check("deploy.ContinueOnError", deploy.ContinueOnError, true)
	check("deploy.StopSignal", deploy.StopSignal, syscall.SIGINT)
	check("deploy.StopGrace", deploy.StopGrace, 5*time.Second)
	check("deploy.Env", deploy.Env[0].Name, "TAG")
	check("deploy.If.Static", deploy.If.Static(), false)

	check("list.Needs", strings.Join(list.Needs, ","), "build")
	check("list.AWS", list.AWS.Service+" "+list.AWS.Operation+" "+list.AWS.Profile+" "+list.AWS.Region, "s3 ls ops eu-west-1")
	check("list.AWS.Args", len(list.AWS.Args), 2)

	check("notify.If", notify.If.Source(), "always()")
	check("notify.Needs", strings.Join(notify.Needs, ","), "deploy,list")
	check("order", ids(pb.Order), "build test deploy list notify")
	check("levels", levels(pb), "build | test list | deploy | notify")
	check("Step(missing)", pb.Step("missing") == nil, true)
}

// TestDefaultsDoNotLeak: without defaults a step has one attempt and no limits.
func TestDefaultsDoNotLeak(t *testing.T) {
	pb := mustParse(t, "version: 1\nname: x\nsteps:\n  - {id: a, run: x}\n")
	s := pb.Steps[0]
	if s.Retry.Attempts != 1 || s.Timeout != 0 || s.Shell != "" || s.StopSignal != 0 || s.StopGrace != 0 || s.ContinueOnError || s.Dir != nil {
		t.Errorf("%+v", s)
	}
	if s.Name != "a" {
		t.Errorf("Name defaults to the id: %q", s.Name)
	}
	if pb.MaxParallel != 0 || pb.Timeout != 0 || pb.OutputLimit != 0 || !pb.FailFast {
		t.Errorf("%+v", pb)
	}
}

// TestStepRules is a table of the checks on steps.
func TestStepRules(t *testing.T) {
	cases := []struct {
		name, step string
		msg        string
	}{
		{"nothing to run", "{id: a}", `step "a" has nothing to run`},
		{"two kinds", "{id: a, run: x, exec: [x]}", `step "a" has both run and exec`},
		{"shell without run", "{id: a, exec: [x], shell: sh}", "shell in step \"a\" only applies to run"},
		{"interpreter without script", "{id: a, run: x, interpreter: sh}", "interpreter in step \"a\" only applies to script"},
		{"empty exec", "{id: a, exec: []}", "exec in step \"a\" must not be empty"},
		{"exec as string", "{id: a, exec: go test}", "exec in step \"a\" must be a list"},
		{"missing script", "{id: a, script: nope.sh}", `script file "nope.sh" of step "a" does not exist`},
		{"aws without operation", "{id: a, aws: {service: s3}}", `missing required key "operation" in aws of step "a"`},
		{"aws bad service", "{id: a, aws: {service: S3, operation: ls}}", "service in aws of step \"a\" may only hold lower-case letters"},
		{"negative timeout", "{id: a, run: x, timeout: -1s}", "must not be negative"},
		{"zero timeout", "{id: a, run: x, timeout: 0s}", "must be longer than zero"},
		{"int timeout", "{id: a, run: x, timeout: 30}", "needs a unit: write 30s"},
		{"signal number", "{id: a, run: x, stop_signal: 9}", "must be a signal name"},
		{"unknown signal", "{id: a, run: x, stop_signal: SIGTEM}", `did you mean "SIGTERM"?`},
		{"retry without attempts", "{id: a, run: x, retry: {delay: 1s}}", `missing required key "attempts"`},
		{"retry attempts 0", "{id: a, run: x, retry: {attempts: 0}}", "must be between 1 and 100"},
		{"exit code 0", "{id: a, run: x, retry: {attempts: 2, on_exit_codes: [0]}}", "must be between 1 and 255"},
		{"max_delay < delay", "{id: a, run: x, retry: {attempts: 2, delay: 5s, max_delay: 1s}}", "is shorter than delay"},
		{"reserved env", "{id: a, run: x, env: {PLAYBOOK_STEP_ID: x}}", "names starting with PLAYBOOK_ are set by playbook"},
		{"shell with options", "{id: a, run: x, shell: bash -e}", "must be a program"},
		{"needs itself", "{id: a, run: x, needs: a}", "needs itself"},
		{"id pattern", "{id: a.b, run: x}", "may only hold letters, digits, - and _"},
		{"script with expression", "{id: a, script: '${{ params.x }}'}", "cannot hold ${{ }}"},
		{"runs_on with a space", "{id: a, run: x, runs_on: web hosts}", `runs_on of step "a": task queue "web hosts" may hold only letters`},
		{"runs_on empty", "{id: a, run: x, runs_on: ''}", `runs_on in step "a" is empty`},
		{"runs_on reads a step", "{id: a, run: x, runs_on: '${{ steps.a.outputs.q }}'}", `runs_on of step "a": only params can be read here`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list := parseErr(t, "version: 1\nname: x\nsteps:\n  - "+c.step+"\n")
			if !strings.Contains(list.Error(), c.msg) {
				t.Errorf("got:\n%v\nwant %q", list, c.msg)
			}
			for _, e := range list {
				if e.Line != 4 {
					t.Errorf("error not on the step's line: %v", e)
				}
			}
		})
	}
}

// TestOutputLimit: bytes or sizes with units, from 1 byte to 1GiB; a size that overflows is refused, not
// wrapped around.
func TestOutputLimit(t *testing.T) {
	for in, want := range map[string]int64{"1000": 1000, "512KiB": 512 << 10, "1MiB": 1 << 20, "1 GiB": 1 << 30, "2MB": 2_000_000, "10B": 10} {
		pb := mustParse(t, "version: 1\nname: x\noutput_limit: "+in+"\nsteps:\n  - {id: a, run: x}\n")
		if pb.OutputLimit != want {
			t.Errorf("%s = %d, want %d", in, pb.OutputLimit, want)
		}
	}
	for _, in := range []string{"0", "-1", "2GiB", "1.5MiB", "1TB", "lots", "1 KB KB"} {
		list := parseErr(t, "version: 1\nname: x\noutput_limit: "+in+"\nsteps:\n  - {id: a, run: x}\n")
		if !strings.Contains(list.Error(), "output_limit") {
			t.Errorf("%s: %v", in, list)
		}
	}
	// Too large for an int64 is out of range, not wrapped around to a size that fits.
	for _, in := range []string{"17179869185GiB", "9223372036854775808", "9223372036854775808B"} {
		list := parseErr(t, "version: 1\nname: x\noutput_limit: "+in+"\nsteps:\n  - {id: a, run: x}\n")
		if want := "output_limit must be between 1 byte and 1GiB, not " + in; !strings.Contains(list.Error(), want) {
			t.Errorf("%s: %v, want %q", in, list, want)
		}
	}
}

// TestWarnings: a secret or a free-form string param put into run with ${{ }} is warned about, with
// the safe alternative; enum params, exec and env are not.
func TestWarnings(t *testing.T) {
	y := `version: 1
name: w
params:
  token: {secret: true, default: x}
  version: {default: "1.0"}
  env: {default: a, enum: [a, b]}
  n: {type: int, default: 1}
steps:
  - id: a
    run: deploy --token ${{ params.token }} --version ${{ params.version }} --env ${{ params.env }} -n ${{ params.n }}
  - id: b
    exec: [deploy, "${{ params.version }}"]
    env: {V: "${{ params.token }}"}
`
	pb := mustParse(t, y)
	if len(pb.Warnings) != 2 {
		t.Fatalf("%d warnings, want 2: %v", len(pb.Warnings), pb.Warnings)
	}
	w0, w1 := pb.Warnings[0], pb.Warnings[1]
	if w0.Line != 10 || w0.Col != 36 || !strings.Contains(w0.Msg, `secret param "token"`) || !strings.Contains(w0.Msg, `"$PLAYBOOK_PARAM_TOKEN"`) {
		t.Errorf("warning 0: %v", w0)
	}
	if w1.Line != 10 || w1.Col != 66 || !strings.Contains(w1.Msg, `free-form string param "version"`) || !strings.Contains(w1.Msg, `"$PLAYBOOK_PARAM_VERSION"`) {
		t.Errorf("warning 1: %v", w1)
	}
}

// TestLoadFileErrors: unreadable paths are errors naming the file as given.
func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "no-such-file.yaml"), dir} {
		_, err := Load(path)
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 || list[0].File != path || list[0].Line != 0 {
			t.Errorf("%s: %v", path, err)
		}
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "playbook too large") {
		t.Errorf("3 MiB: %v", err)
	}
}

// TestParse10000Steps: a 10,000-step playbook loads, in an order that respects every need. How fast is
// not a test's to judge on a shared machine: BenchmarkParse10000Steps gives the figure,
// and bench/run.sh checks `playbook validate` of a 10,000-step tree against its goal.
func TestParse10000Steps(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 steps")
	}
	data := bigPlaybook(10000)
	pb, err := Parse("big.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.Order) != 10000 {
		t.Fatalf("order has %d steps", len(pb.Order))
	}
	done := make(map[string]bool, len(pb.Order))
	for _, s := range pb.Order {
		for _, n := range s.Needs {
			if !done[n] {
				t.Fatalf("%s comes before its need %s", s.ID, n)
			}
		}
		done[s.ID] = true
	}
}

// TestRunsOn: runs_on is the step's own, else defaults', else the top level's, else none (the
// default queue); it may be a template over params, and a literal one is checked when loaded.
func TestRunsOn(t *testing.T) {
	pb, err := Parse("x.yaml", []byte(`version: 1
name: x
params:
  env: {default: prod}
runs_on: "${{ params.env }}-web"
defaults:
  runs_on: batch
steps:
  - {id: own, run: x, runs_on: db.primary}
  - {id: dflt, run: x}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Params: Params{"env": "prod"}}
	for id, want := range map[string]string{"own": "db.primary", "dflt": "batch"} {
		got, err := pb.Step(id).RunsOn.Render(st)
		if err != nil || got != want {
			t.Errorf("%s runs on %q (%v), want %q", id, got, err, want)
		}
	}
	pb, err = Parse("x.yaml", []byte("version: 1\nname: x\nparams:\n  env: {default: prod}\nruns_on: \"${{ params.env }}-web\"\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x, runs_on: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pb.Step("a").RunsOn.Render(st); got != "prod-web" {
		t.Errorf("a runs on %q, want the top level's prod-web", got)
	}
	pb, err = Parse("x.yaml", []byte("version: 1\nname: x\nsteps:\n  - {id: a, run: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pb.Step("a").RunsOn != nil {
		t.Errorf("a step with no runs_on anywhere has one")
	}
	for _, bad := range []string{"", "a b", "q/1", strings.Repeat("q", MaxQueueLen+1)} {
		if CheckQueue(bad) == nil {
			t.Errorf("CheckQueue(%q) accepted it", bad)
		}
	}
	for _, good := range []string{"playbook", "db-1.eu_west", strings.Repeat("q", MaxQueueLen)} {
		if err := CheckQueue(good); err != nil {
			t.Errorf("CheckQueue(%q): %v", good, err)
		}
	}
}

// TestParseScripts: a playbook parsed with its scripts given reads no file: a script that exists only
// in the map is found, its digest is that of the given content, and one missing from the map is an
// error at its position; ReadScripts gathers them from the disk, with a size limit.
func TestParseScripts(t *testing.T) {
	src := []byte("version: 1\nname: x\nsteps:\n  - {id: a, script: deploy.sh}\n")
	pb, err := ParseScripts("/nowhere/pb.yaml", src, Scripts{"/nowhere/deploy.sh": []byte("echo hi\n")})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("echo hi\n"))
	if s := pb.Step("a"); s.Script != "/nowhere/deploy.sh" || s.ScriptSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("step a: script %s digest %s", s.Script, s.ScriptSHA256)
	}
	if _, err := ParseScripts("/nowhere/pb.yaml", src, nil); err == nil || !strings.Contains(err.Error(), `pb.yaml:4:21: script file "deploy.sh" of step "a" was not sent with the playbook`) {
		t.Errorf("missing script: %v", err)
	}
	if _, err := ParseScripts("pb.yaml", src, nil); err == nil {
		t.Errorf("a relative name was accepted")
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "deploy.sh"), []byte("echo hi\n"), 0o755)
	pb, err = Parse(filepath.Join(dir, "pb.yaml"), src)
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := pb.ReadScripts(1 << 10)
	if err != nil || string(scripts[filepath.Join(dir, "deploy.sh")]) != "echo hi\n" {
		t.Fatalf("ReadScripts: %v %q", err, scripts)
	}
	if _, err := pb.ReadScripts(4); err == nil || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Errorf("a script over the limit: %v", err)
	}
	again, err := ParseScripts(filepath.Join(dir, "pb.yaml"), src, scripts)
	if err != nil || again.Step("a").ScriptSHA256 != pb.Step("a").ScriptSHA256 {
		t.Errorf("parsed with its scripts, the digest differs: %v", err)
	}
}
