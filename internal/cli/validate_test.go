package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playbookhq/playbook/pkg/run"
)

// writePlaybook writes a playbook into a temporary folder and returns its path.
func writePlaybook(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const validPlaybook = "version: 1\nname: ok\nsteps:\n  - {id: a, run: echo a}\n  - {id: b, needs: [a], run: echo b}\n"

func TestValidateExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/playbooks/*.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d examples", len(files))
	}
	r := runCLI(t, nil, append([]string{"validate"}, files...)...)
	if r.Code != run.ExitSucceeded || r.Stderr != "" {
		t.Fatalf("code %d, stderr:\n%s", r.Code, r.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != len(files) {
		t.Fatalf("stdout has %d lines for %d files:\n%s", len(lines), len(files), r.Stdout)
	}
	for i, f := range files {
		if !strings.HasPrefix(lines[i], f+": ok (") || !strings.HasSuffix(lines[i], " steps)") {
			t.Errorf("line %q for %s", lines[i], f)
		}
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	bad := writePlaybook(t, "bad.yaml", "version: 1\nname: bad\nsteps:\n  - id: a\n    rnu: echo\n  - id: b\n    needs: [zz]\n    run: echo\n    timeout: 5\n")
	good := writePlaybook(t, "good.yaml", validPlaybook)
	r := runCLI(t, nil, "validate", bad, good)
	if r.Code != run.ExitUsage {
		t.Fatalf("code %d, want %d", r.Code, run.ExitUsage)
	}
	want := bad + ":5:5: unknown key \"rnu\" in step \"a\"; did you mean \"run\"?\n" +
		bad + ":7:13: step \"b\" needs \"zz\", which is not a step\n" +
		bad + ":9:14: timeout in step \"b\" needs a unit: write 5s (or ms, m, h)\n"
	if r.Stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.Stderr, want)
	}
	if r.Stdout != good+": ok (2 steps)\n" {
		t.Errorf("stdout: %q", r.Stdout)
	}
}

func TestValidateWarningsDoNotFail(t *testing.T) {
	p := writePlaybook(t, "warn.yaml", "version: 1\nname: w\nparams:\n  v: {default: x}\nsteps:\n  - {id: a, run: 'echo ${{ params.v }}'}\n")
	r := runCLI(t, nil, "validate", p)
	if r.Code != run.ExitSucceeded {
		t.Fatalf("code %d: %s", r.Code, r.Stderr)
	}
	if !strings.HasPrefix(r.Stderr, p+":6:35: warning: free-form string param \"v\"") {
		t.Errorf("stderr: %q", r.Stderr)
	}
	if r.Stdout != p+": ok (1 step)\n" {
		t.Errorf("stdout: %q", r.Stdout)
	}
}

func TestValidateUsage(t *testing.T) {
	r := runCLI(t, nil, "validate")
	if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, "takes one or more playbook files") {
		t.Errorf("no files: code %d, stderr %q", r.Code, r.Stderr)
	}
	r = runCLI(t, nil, "validate", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.Code != run.ExitUsage || !strings.Contains(r.Stderr, "missing.yaml: cannot read the file: no such file or directory") {
		t.Errorf("missing file: code %d, stderr %q", r.Code, r.Stderr)
	}
}

func TestValidateStdin(t *testing.T) {
	var out, errOut bytes.Buffer
	sys := &System{In: strings.NewReader("version: 1\nname: x\nsteps:\n  - {id: a, rnu: x}\n"), Out: &out, ErrOut: &errOut}
	if code := Main([]string{"validate", "-"}, sys); code != run.ExitUsage {
		t.Errorf("code %d", code)
	}
	if errOut.String() != "<stdin>:4:13: unknown key \"rnu\" in step \"a\"; did you mean \"run\"?\n" {
		t.Errorf("stderr %q", errOut.String())
	}
	out.Reset()
	sys.In = strings.NewReader(validPlaybook)
	if code := Main([]string{"validate", "-"}, sys); code != run.ExitSucceeded || out.String() != "-: ok (2 steps)\n" {
		t.Errorf("code %d, stdout %q", code, out.String())
	}
}

// TestValidateWarnsOfOutputInRun: a step's output put into run with ${{ }} is warned about in the same
// file:line:col: warning: form as a free-form param, and validation still passes.
func TestValidateWarnsOfOutputInRun(t *testing.T) {
	p := writePlaybook(t, "out.yaml", "version: 1\nname: o\nsteps:\n  - {id: a, run: 'echo v=1 >> \"$PLAYBOOK_OUTPUT\"'}\n"+
		"  - {id: b, needs: [a], run: 'echo ${{ steps.a.outputs.v }}'}\n")
	r := runCLI(t, nil, "validate", p)
	if r.Code != run.ExitSucceeded {
		t.Fatalf("code %d: %s", r.Code, r.Stderr)
	}
	want := p + `:5:46: warning: output "v" of step "a" is put into the shell command of step "b" with ${{ }}: ` +
		`the value came from a command, so it is as untrusted as a free-form param, and a value such as "; rm -rf ~" ` +
		`would run as shell code; pass it through env (env: {V: "${{ steps.a.outputs.v }}"}) and use "$V" in the command instead` + "\n"
	if r.Stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.Stderr, want)
	}
	if r.Stdout != p+": ok (2 steps)\n" {
		t.Errorf("stdout: %q", r.Stdout)
	}
}
