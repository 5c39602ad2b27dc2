package playbook_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/playbookhq/playbook/pkg/playbook"
)

const examplesDir = "../../examples/playbooks"

// TestExamplesValidate loads every example: they are part of the documentation, so they must stay valid,
// and they must not produce warnings (they show the safe way to use params in commands).
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("expected at least hello.yaml and four playbooks in %s, found %d (%v)", examplesDir, len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			pb, err := playbook.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(pb.Warnings) > 0 {
				t.Errorf("warnings: %v", pb.Warnings)
			}
			if _, err := pb.ResolveParams(nil); err != nil {
				t.Errorf("does not run with its defaults: %v", err)
			}
		})
	}
}

// TestExamplesRun runs every example with a small sequential runner that follows the runtime contract
// the scheduler implements (bash -c for run, the playbook's folder as working directory, PLAYBOOK_*
// variables, $PLAYBOOK_OUTPUT, if with GitHub Actions' status functions, fail_fast, retries). It proves
// the examples' shell snippets work and that Condition.Eval and Template.Render are enough to run a
// playbook. The real scheduler has its own tests.
func TestExamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs shell commands")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	cases := []struct {
		file   string
		params map[string]string
		want   map[string]string // step id -> status; steps not listed must have succeeded
		run    string            // run status
	}{
		{file: "hello.yaml", run: "succeeded"},
		{file: "hello.yaml", params: map[string]string{"name": "Ada"}, run: "succeeded"},
		{file: "release.yaml", want: map[string]string{"rollback": "skipped"}, run: "succeeded"},
		{file: "release.yaml", params: map[string]string{"fail_deploy": "true"},
			want: map[string]string{"deploy": "failed"}, run: "failed"},
		{file: "backup.yaml", run: "succeeded"},
		{file: "diagnostics.yaml", run: "succeeded"},
		{file: "cert-rotation.yaml", want: map[string]string{"restore": "skipped"}, run: "succeeded"},
		{file: "cert-rotation.yaml", params: map[string]string{"fail_reload": "true"},
			want: map[string]string{"reload": "failed"}, run: "failed"},
		{file: "cert-rotation.yaml", params: map[string]string{"renew_below_days": "10"},
			want: map[string]string{"issue": "skipped", "verify": "skipped", "install": "skipped",
				"reload": "skipped", "restore": "skipped"}, run: "succeeded"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v", c.file, c.params), func(t *testing.T) {
			t.Parallel()
			pb, err := playbook.Load(filepath.Join(examplesDir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			r := runExample(t, pb, c.params)
			for _, s := range pb.Steps {
				want := c.want[s.ID]
				if want == "" {
					want = "succeeded"
				}
				if got := r.state.Steps[s.ID].Status; got != want {
					t.Errorf("step %s: %s, want %s\n%s", s.ID, got, want, r.log.String())
				}
			}
			if r.state.Run.Status != c.run {
				t.Errorf("run %s, want %s", r.state.Run.Status, c.run)
			}
			if dir := r.state.Steps["workspace"].Outputs["dir"]; dir != "" {
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("workspace %s was not cleaned up (%v)", dir, err)
				}
			}
			if t.Failed() || testing.Verbose() {
				t.Log(r.log.String())
			}
		})
	}
}

type exampleRun struct {
	pb     *playbook.Playbook
	state  playbook.State
	params playbook.Params
	log    bytes.Buffer
}

func runExample(t *testing.T, pb *playbook.Playbook, values map[string]string) *exampleRun {
	t.Helper()
	params, err := pb.ResolveParams(values)
	if err != nil {
		t.Fatal(err)
	}
	r := &exampleRun{pb: pb, params: params}
	r.state = playbook.State{
		Run:    playbook.RunState{ID: "test-run", Name: pb.Name, Status: "succeeded"},
		Params: params,
		Env:    map[string]string{},
		Steps:  map[string]playbook.StepState{},
	}
	for _, e := range pb.Env {
		v, err := e.Value.Render(&r.state)
		if err != nil {
			t.Fatalf("env %s: %v", e.Name, err)
		}
		r.state.Env[e.Name] = v
	}
	failedUpstream := map[string]bool{}
	ok := map[string]bool{}
	stopped := false // fail_fast after a failure
	for _, s := range pb.Order {
		funcs := playbook.StatusFuncs{Success: true}
		for _, n := range s.Needs {
			if !ok[n] {
				funcs.Success = false
			}
			if failedUpstream[n] || r.failed(n) {
				funcs.Failure = true
			}
		}
		failedUpstream[s.ID] = funcs.Failure
		if stopped && !s.If.Calls("always") && !s.If.Calls("failure") {
			r.record(s, "skipped", 0, 0, nil)
			continue
		}
		run, err := s.If.Eval(&r.state, funcs)
		if err != nil {
			fmt.Fprintf(&r.log, "%s: if: %v\n", s.ID, err)
			r.record(s, "failed", 0, 0, nil)
		} else if !run {
			r.record(s, "skipped", 0, 0, nil)
			continue
		} else {
			r.execute(t, s)
		}
		st := r.state.Steps[s.ID]
		ok[s.ID] = st.Status == "succeeded" || s.ContinueOnError
		if !ok[s.ID] {
			r.state.Run.Status = "failed"
			stopped = pb.FailFast
		}
	}
	return r
}

func (r *exampleRun) failed(id string) bool {
	st := r.state.Steps[id].Status
	return st == "failed" || st == "timed_out"
}

func (r *exampleRun) record(s *playbook.Step, status string, code, attempts int, outputs map[string]string) {
	r.state.Steps[s.ID] = playbook.StepState{Status: status, ExitCode: code, Attempts: attempts, Outputs: outputs}
	fmt.Fprintf(&r.log, "== %s: %s (exit %d, %d attempts)\n", s.ID, status, code, attempts)
}

func (r *exampleRun) execute(t *testing.T, s *playbook.Step) {
	argv, env, dir, err := r.command(s)
	if err != nil {
		fmt.Fprintf(&r.log, "%s: %v\n", s.ID, err)
		r.record(s, "failed", 0, 0, nil)
		return
	}
	delay := s.Retry.Delay
	var code int
	var outputs map[string]string
	status := "failed"
	attempt := 0
	for attempt = 1; attempt <= s.Retry.Attempts; attempt++ {
		out := filepath.Join(t.TempDir(), "output")
		if err := os.WriteFile(out, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if s.Timeout > 0 {
			ctx, cancel = context.WithTimeout(context.Background(), s.Timeout)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(env, "PLAYBOOK_OUTPUT="+out)
		cmd.Stdout, cmd.Stderr = &r.log, &r.log
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		code = cmd.ProcessState.ExitCode()
		if outputs, err2 := parseOutputs(out); err2 == nil {
			r.state.Steps[s.ID] = playbook.StepState{Outputs: outputs}
		}
		outputs, _ = parseOutputs(out)
		if err == nil {
			status = "succeeded"
			break
		}
		if timedOut {
			status = "timed_out"
		}
		if len(s.Retry.OnExitCodes) > 0 && !containsInt(s.Retry.OnExitCodes, code) {
			break
		}
		if attempt < s.Retry.Attempts {
			time.Sleep(delay)
			if s.Retry.Backoff > 1 {
				delay = time.Duration(math.Min(float64(delay)*s.Retry.Backoff, float64(math.MaxInt64)))
			}
			if s.Retry.MaxDelay > 0 && delay > s.Retry.MaxDelay {
				delay = s.Retry.MaxDelay
			}
		}
	}
	r.record(s, status, code, min(attempt, s.Retry.Attempts), outputs)
}

// command renders what a step runs, its environment and its working folder.
func (r *exampleRun) command(s *playbook.Step) (argv, env []string, dir string, err error) {
	env = os.Environ()
	for _, e := range r.pb.Env {
		env = append(env, e.Name+"="+r.state.Env[e.Name])
	}
	for _, e := range s.Env {
		v, err := e.Value.Render(&r.state)
		if err != nil {
			return nil, nil, "", err
		}
		env = append(env, e.Name+"="+v)
	}
	env = append(env, "PLAYBOOK_RUN_ID="+r.state.Run.ID, "PLAYBOOK_STEP_ID="+s.ID)
	for _, p := range r.pb.Params {
		env = append(env, playbook.ParamEnvName(p.Name)+"="+formatParam(r.params[p.Name]))
	}
	switch {
	case s.Run != nil:
		cmd, err := s.Run.Render(&r.state)
		if err != nil {
			return nil, nil, "", err
		}
		shell := s.Shell
		if shell == "" {
			shell = "bash"
		}
		argv = []string{shell, "-c", cmd}
	case len(s.Exec) > 0:
		for _, a := range s.Exec {
			v, err := a.Render(&r.state)
			if err != nil {
				return nil, nil, "", err
			}
			argv = append(argv, v)
		}
	case s.Script != "":
		if s.Interpreter != "" {
			argv = append(argv, s.Interpreter)
		}
		argv = append(argv, s.Script)
	default:
		return nil, nil, "", errors.New("aws steps are not run by this test")
	}
	dir = r.pb.Dir
	if s.Dir != nil {
		d, err := s.Dir.Render(&r.state)
		if err != nil {
			return nil, nil, "", err
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.pb.Dir, d)
		}
		dir = d
	}
	return argv, env, dir, nil
}

func formatParam(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// parseOutputs reads a $PLAYBOOK_OUTPUT file: key=value lines, and key<<DELIM ... DELIM blocks for
// multi-line values.
func parseOutputs(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if k, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(k, "=") {
			var lines []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				lines = append(lines, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("output %s: no closing %s", k, delim)
			}
			out[k] = strings.Join(lines, "\n")
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}
