package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	s, err := Config{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"MaxConcurrent", s.MaxConcurrent, 100},
		{"MaxPending", s.MaxPending, 0},
		{"DefaultTimeout", s.DefaultTimeout, 2 * time.Minute},
		{"MaxTimeout", s.MaxTimeout, 10 * time.Minute},
		{"OutputLimit", s.OutputLimit, int64(1 << 20)},
		{"Oversized", s.Oversized, KeepHeadTail},
		{"SpillDir", s.SpillDir, os.TempDir()},
		{"LogDir", s.LogDir, ""},
		{"Retention", s.Retention, time.Hour},
		{"MaxKept", s.MaxKept, 1000},
		{"AutoCleanup", s.AutoCleanup, false},
		{"CleanupInterval", s.CleanupInterval, time.Minute},
		{"StopSignal", s.stopSignal, syscall.SIGTERM},
		{"StopGrace", s.StopGrace, 5 * time.Second},
		{"WaitDelay", s.WaitDelay, 2 * time.Second},
		{"MaxLineBytes", s.MaxLineBytes, 64 << 10},
		{"EventBuffer", s.EventBuffer, 8192},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
}

type fakeSignal struct{}

func (fakeSignal) String() string { return "fake" }
func (fakeSignal) Signal()        {}

func TestConfigInvalid(t *testing.T) {
	cases := map[string]Config{
		"negative MaxConcurrent":       {MaxConcurrent: -1},
		"negative MaxPending":          {MaxPending: -1},
		"negative OutputLimit":         {OutputLimit: -5},
		"negative MaxKept":             {MaxKept: -1},
		"negative WaitDelay":           {WaitDelay: -1},
		"negative EventBuffer":         {EventBuffer: -1},
		"negative timeout":             {DefaultTimeout: -2 * time.Second},
		"negative grace":               {StopGrace: -time.Second},
		"default above max":            {DefaultTimeout: 700 * time.Second, MaxTimeout: 600 * time.Second},
		"default above default max":    {DefaultTimeout: time.Hour},
		"no default timeout, with max": {DefaultTimeout: NoTimeout},
		"unknown strategy":             {Oversized: OversizedStrategy(7)},
		"not a syscall.Signal":         {StopSignal: fakeSignal{}},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := New(cfg)
			if e != nil || !errors.Is(err, ErrInvalidConfig) || CodeOf(err) != CodeInvalidConfig || IsRetryable(err) {
				t.Fatalf("New: %v", err)
			}
		})
	}
	for name, cfg := range map[string]Config{
		"no timeouts at all": {DefaultTimeout: NoTimeout, MaxTimeout: NoTimeout},
		"no grace":           {StopGrace: NoGrace},
		"keep forever":       {Retention: NoTimeout},
		"serial":             {MaxConcurrent: 1},
	} {
		if _, err := cfg.resolve(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Validation happens before anything is spawned; each problem is a typed error.
func TestRequestValidation(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	plain := filepath.Join(dir, "plain.sh")
	os.WriteFile(plain, []byte("touch "+marker+"\n"), 0o644)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	touch := "touch " + marker

	e := newEngine(t, Config{DefaultTimeout: 30 * time.Second, MaxTimeout: time.Minute})
	cases := []struct {
		name string
		req  Request
		kind ValidationKind
	}{
		{"no command", Request{}, EmptyCommand},
		{"empty shell command", Request{Command: Shell{Command: "  "}}, EmptyCommand},
		{"empty program", Request{Command: Exec{}}, EmptyCommand},
		{"program not found", Request{Command: Exec{Program: "no-such-program-xyz"}}, ProgramNotFound},
		{"program path not executable", Request{Command: Exec{Program: plain}}, ProgramNotFound},
		{"shell not found", Request{Command: Shell{Command: touch, Shell: "no-such-shell"}}, ProgramNotFound},
		{"missing script", Request{Command: Script{Path: filepath.Join(dir, "nope.sh")}}, ScriptNotFound},
		{"script is a folder", Request{Command: Script{Path: dir}}, ScriptNotExecutable},
		{"non-executable script without #! or interpreter", Request{Command: Script{Path: plain}}, ScriptNotExecutable},
		{"interpreter not found", Request{Command: Script{Path: plain, Interpreter: "no-such-interp"}}, ProgramNotFound},
		{"missing working dir", Request{Command: Shell{Command: touch}, Dir: filepath.Join(dir, "nope")}, WorkingDirNotFound},
		{"working dir is a file", Request{Command: Shell{Command: touch}, Dir: file}, InvalidWorkingDir},
		{"timeout above max", Request{Command: Shell{Command: touch}, Timeout: 2 * time.Minute}, TimeoutTooLarge},
		{"no timeout with a max", Request{Command: Shell{Command: touch}, Timeout: NoTimeout}, TimeoutTooLarge},
		{"negative timeout", Request{Command: Shell{Command: touch}, Timeout: -5}, InvalidValue},
		{"negative grace", Request{Command: Shell{Command: touch}, StopGrace: -5}, InvalidValue},
		{"bad stop signal", Request{Command: Shell{Command: touch}, StopSignal: fakeSignal{}}, InvalidValue},
		{"aws without service", Request{Command: AWSCLI{Operation: "ls"}}, MissingField},
		{"aws without operation", Request{Command: AWSCLI{Service: "s3"}}, MissingField},
		{"env key with =", Request{Command: Shell{Command: touch}, Env: map[string]string{"A=B": "x"}}, InvalidEnv},
		{"id with slash", Request{ID: "a/b", Command: Shell{Command: touch}}, InvalidID},
		{"id dot dot", Request{ID: "..", Command: Shell{Command: touch}}, InvalidID},
		{"NUL in argument", Request{Command: Exec{Program: "/bin/sh", Args: []string{"a\x00b"}}}, InvalidCommand},
		{"PATH from Env is used", Request{Command: Exec{Program: "sh"}, Env: map[string]string{"PATH": dir}}, ProgramNotFound},
		// Start and Run check these only when the fork fails (validate's trust): same errors.
		{"missing program path", Request{Command: Exec{Program: filepath.Join(dir, "nope")}}, ProgramNotFound},
		{"program path is a folder", Request{Command: Exec{Program: dir}}, ProgramNotFound},
		{"shell path not executable", Request{Command: Shell{Command: touch, Shell: plain}}, ProgramNotFound},
		{"program fine, working dir missing", Request{Command: Exec{Program: "/bin/sh"}, Dir: filepath.Join(dir, "nope")}, WorkingDirNotFound},
		{"program fine, working dir a file", Request{Command: Exec{Program: "/bin/sh"}, Dir: file}, InvalidWorkingDir},
		{"both missing: the folder is named", Request{Command: Exec{Program: filepath.Join(dir, "nope")}, Dir: filepath.Join(dir, "nope")}, WorkingDirNotFound},
	}
	events := newRecorder(e)
	starts := []struct {
		name  string
		start func(Request) (string, error)
	}{
		{"Execute", e.Execute},
		{"Start", e.Start},
		{"Run", func(req Request) (string, error) {
			r, err := e.Run(ctxT(t), req)
			if r != nil {
				return r.ID, err
			}
			return "", err
		}},
	}
	for _, tc := range cases {
		for _, st := range starts {
			t.Run(tc.name+"/"+st.name, func(t *testing.T) {
				id, err := st.start(tc.req)
				var ve *ValidationError
				if id != "" || !errors.Is(err, ErrValidation) || !errors.As(err, &ve) || ve.Kind != tc.kind {
					t.Fatalf("%s = %q, %v; want a %s validation error", st.name, id, err, tc.kind)
				}
				if !errors.Is(err, &ValidationError{Kind: tc.kind}) || IsRetryable(err) {
					t.Errorf("errors.Is by kind or IsRetryable wrong for %v", err)
				}
			})
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a rejected request ran")
	}
	if n := len(e.List()); n != 0 {
		t.Fatalf("rejected requests were registered: %d", n)
	}
	// Events come in order: once a valid request's last event is in, any event of a refused one
	// would be too.
	ok := mustRun(t, e, Request{Command: Exec{Program: "/bin/sh", Args: []string{"-c", "exit 0"}}})
	events.waitFor(t, ok.ID, func(ev Event) bool { return ev.Type == EventCompleted })
	events.mu.Lock()
	for _, ev := range events.events {
		if ev.ExecutionID != ok.ID {
			t.Errorf("a refused request emitted %s (%s)", ev.Type, ev.Error)
		}
	}
	events.mu.Unlock()
	var ve *ValidationError
	_, err := e.Execute(Request{Command: Shell{Command: touch}, Timeout: 2 * time.Minute})
	if errors.As(err, &ve); ve.Requested != 2*time.Minute || ve.Max != time.Minute ||
		!strings.Contains(err.Error(), "timeout exceeds maximum allowed: 2m0s > 1m0s") {
		t.Errorf("TimeoutTooLarge details: %+v %v", ve, err)
	}
}

// A Start that has to wait for a slot checks its files before it returns, as Execute does: the start
// happens later, elsewhere, with nobody to return the error to.
func TestStartQueuedChecksFilesFirst(t *testing.T) {
	e := newEngine(t, Config{MaxConcurrent: 1})
	events := newRecorder(e)
	blocker, err := e.Start(helperReq("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	events.waitFor(t, blocker, func(ev Event) bool { return ev.Type == EventStarted })
	missing := filepath.Join(t.TempDir(), "nope")
	for _, req := range []Request{{Command: Exec{Program: missing}}, {Command: Exec{Program: "/bin/sh"}, Dir: missing}} {
		if id, err := e.Start(req); id != "" || !errors.Is(err, ErrValidation) {
			t.Errorf("Start while the slot is taken = %q, %v; want a validation error", id, err)
		}
	}
	if n := len(e.List()); n != 1 {
		t.Errorf("%d executions registered, want only the blocker", n)
	}
	if err := e.Kill(blocker); err != nil {
		t.Fatal(err)
	}
	mustWait(t, e, blocker)
}

// Where an execution writes files, its program and folder are checked before they are created: a
// refused request leaves no log behind (and does not truncate an existing one).
func TestRefusedRequestLeavesLogsAlone(t *testing.T) {
	dir := t.TempDir()
	missing := Exec{Program: filepath.Join(dir, "nope")}
	kept := filepath.Join(dir, "kept.log")
	if err := os.WriteFile(kept, []byte("earlier run\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Config{})
	for _, req := range []Request{{Command: missing, LogPath: kept}, {Command: missing, StdoutPath: kept},
		{Command: missing, StderrPath: kept}} {
		if r, err := e.Run(ctxT(t), req); !errors.Is(err, ErrValidation) {
			t.Fatalf("Run = %+v, %v; want a validation error", r, err)
		}
		if b, _ := os.ReadFile(kept); string(b) != "earlier run\n" {
			t.Fatalf("%+v: the file holds %q after a refused request", req, b)
		}
	}
	logDir := filepath.Join(dir, "logs")
	e = newEngine(t, Config{LogDir: logDir})
	if r, err := e.Run(ctxT(t), Request{Command: missing}); !errors.Is(err, ErrValidation) {
		t.Fatalf("Run = %+v, %v; want a validation error", r, err)
	}
	if _, err := os.Stat(logDir); !os.IsNotExist(err) {
		t.Errorf("LogDir created for a refused request: %v", err)
	}
}

func TestDuplicateID(t *testing.T) {
	e := newEngine(t, Config{})
	req := helperReq("echo", "x")
	req.ID = "fixed-id"
	mustRun(t, e, req)
	_, err := e.Execute(req)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Kind != InvalidID {
		t.Fatalf("duplicate id: %v", err)
	}
}

func TestShellCommand(t *testing.T) {
	e := newEngine(t, Config{})
	r := mustRun(t, e, Request{Command: Shell{Command: "echo hi", Shell: "/bin/bash"}})
	if string(r.Stdout) != "hi\n" || r.ExitCode != 0 || !r.Success() {
		t.Fatalf("%+v", r)
	}
	r = mustRun(t, e, Request{Command: &Shell{Command: "echo $0"}}) // default shell, pointer form
	if string(r.Stdout) != "bash\n" || r.Command != "bash -c 'echo $0'" {
		t.Fatalf("default shell: stdout %q command %q", r.Stdout, r.Command)
	}
}

func TestExecPassesArgumentsLiterally(t *testing.T) {
	e := newEngine(t, Config{})
	args := []string{"$HOME", "a b", "'quoted'", "*", "; echo injected", ""}
	r := mustRun(t, e, helperReq("echo", args...))
	if string(r.Stdout) != strings.Join(args, "\n")+"\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
}

func TestScriptCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), mode)
		return p
	}
	plain := write("plain.sh", "echo plain $0\n", 0o644)
	exe := write("exe.sh", "#!/bin/sh\necho exe\n", 0o755)
	noShebang := write("noshebang.sh", "echo via bash $BASH_VERSION\n", 0o755)
	shebangOnly := write("shebang.sh", "#!/bin/sh -e\necho shebang $0\n", 0o644)

	e := newEngine(t, Config{})
	cases := []struct {
		name string
		cmd  Script
		dir  string
		want string
	}{
		{"interpreter", Script{Path: plain, Interpreter: "sh"}, "", "plain " + plain + "\n"},
		{"interpreter with args", Script{Path: plain, Interpreter: "sh -e"}, "", "plain " + plain + "\n"},
		{"executable with #!", Script{Path: exe}, "", "exe\n"},
		{"executable without #! runs with bash", Script{Path: noShebang}, "", "via bash "},
		{"not executable, #! names the interpreter", Script{Path: shebangOnly}, "", "shebang " + shebangOnly + "\n"},
		{"relative to Dir", Script{Path: "exe.sh"}, dir, "exe\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRun(t, e, Request{Command: tc.cmd, Dir: tc.dir})
			assertStatus(t, r, StatusCompleted)
			if !strings.HasPrefix(string(r.Stdout), tc.want) || r.ExitCode != 0 {
				t.Fatalf("stdout %q, want prefix %q (stderr %q)", r.Stdout, tc.want, r.Stderr)
			}
		})
	}
}

func TestAWSCLICommand(t *testing.T) {
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "aws"), []byte(`#!/bin/sh
for a in "$@"; do echo "arg=$a"; done
echo "profile=${AWS_PROFILE-unset} region=${AWS_REGION-unset} output=$AWS_OUTPUT"
`), 0o755)
	e := newEngine(t, Config{})
	env := map[string]string{"PATH": bin + ":/usr/bin:/bin", "AWS_OUTPUT": "text"}
	r := mustRun(t, e, Request{Command: AWSCLI{Service: "s3", Operation: "ls", Args: []string{"s3://bucket", "--recursive"},
		Profile: "prod", Region: "eu-west-1"}, Env: env, CleanEnv: true})
	want := "arg=s3\narg=ls\narg=s3://bucket\narg=--recursive\nprofile=prod region=eu-west-1 output=json\n"
	if string(r.Stdout) != want {
		t.Fatalf("stdout %q, want %q", r.Stdout, want)
	}
	if r.Command != "aws s3 ls s3://bucket --recursive" {
		t.Errorf("command %q", r.Command)
	}
	r = mustRun(t, e, Request{Command: AWSCLI{Service: "sts", Operation: "get-caller-identity"}, Env: env, CleanEnv: true})
	if !contains(r.Stdout, "profile=unset region=unset output=json") {
		t.Fatalf("without profile/region: %q", r.Stdout)
	}
}

func TestEnvAndDir(t *testing.T) {
	t.Setenv("ENGINE_TEST_INHERITED", "from-parent")
	e := newEngine(t, Config{})
	req := helperReq("env", "FOO", "ENGINE_TEST_INHERITED")
	req.Env["FOO"] = "bar baz"
	r := mustRun(t, e, req)
	if string(r.Stdout) != "FOO=bar baz true\nENGINE_TEST_INHERITED=from-parent true\n" {
		t.Fatalf("inherited env: %q", r.Stdout)
	}
	req.Env["ENGINE_TEST_INHERITED"] = "overridden"
	r = mustRun(t, e, req)
	if !contains(r.Stdout, "ENGINE_TEST_INHERITED=overridden true") {
		t.Fatalf("Env must win over the parent: %q", r.Stdout)
	}
	delete(req.Env, "ENGINE_TEST_INHERITED")
	req.CleanEnv = true
	r = mustRun(t, e, req)
	if string(r.Stdout) != "FOO=bar baz true\nENGINE_TEST_INHERITED= false\n" {
		t.Fatalf("CleanEnv: %q", r.Stdout)
	}

	dir := t.TempDir()
	req = helperReq("pwd")
	req.Dir = dir
	r = mustRun(t, e, req)
	want, _ := filepath.EvalSymlinks(dir)
	if got, _ := filepath.EvalSymlinks(strings.TrimSpace(string(r.Stdout))); got != want {
		t.Fatalf("cwd %q, want %q", got, want)
	}
}
