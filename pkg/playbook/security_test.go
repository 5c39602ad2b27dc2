package playbook

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestSecretParamValuesNotInErrors: a -p value given for a secret param is never repeated in the error
// that rejects it (those errors reach terminals and CI logs); values of other params are, since they
// help.
func TestSecretParamValuesNotInErrors(t *testing.T) {
	pb := mustParse(t, `version: 1
name: s
params:
  token: {secret: true, type: int, default: 1}
  level: {secret: true, enum: [low, high], default: low}
  plain: {type: int, default: 1}
steps:
  - {id: a, run: echo}
`)
	for _, c := range []struct {
		values map[string]string
		want   string
	}{
		{map[string]string{"token": "hunter2-secret"}, `param "token": the value given (secret, not shown) is not a whole number (int)`},
		{map[string]string{"level": "medium-secret"}, `param "level": the value given (secret, not shown) is not allowed; use one of low, high`},
	} {
		_, err := pb.ResolveParams(c.values)
		if err == nil {
			t.Fatalf("%v: no error", c.values)
		}
		for _, v := range c.values {
			if strings.Contains(err.Error(), v) {
				t.Errorf("the error shows the secret value: %v", err)
			}
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q, want %q", err, c.want)
		}
	}
	if _, err := pb.ResolveParams(map[string]string{"plain": "many"}); err == nil || !strings.Contains(err.Error(), `"many" is not a whole number`) {
		t.Errorf("a plain param's bad value should be shown: %v", err)
	}
}

// TestExpressionsCannotReadEnvironmentOrFiles: whatever the runner's environment holds, expressions see
// only the playbook's declared env; every way to reach the process environment or the file system is a
// load error.
func TestExpressionsCannotReadEnvironmentOrFiles(t *testing.T) {
	t.Setenv("PLAYBOOK_TEST_RUNNER_SECRET", "from-the-runner")
	secretFile := t.TempDir() + "/secret.txt"
	if err := os.WriteFile(secretFile, []byte("file-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := []string{
		`$env.PLAYBOOK_TEST_RUNNER_SECRET != ""`,
		`$env["PLAYBOOK_TEST_RUNNER_SECRET"] != ""`,
		`env.PLAYBOOK_TEST_RUNNER_SECRET != ""`,
		`env["PLAYBOOK_TEST_RUNNER_SECRET"] != ""`,
		`env.HOME != ""`,
		`getenv("HOME") != ""`,
		`env("HOME") != ""`,
		`readFile("` + secretFile + `") != ""`,
		`file("` + secretFile + `") != ""`,
		`os.Getenv("HOME") != ""`,
		`fromJSON("{}") != nil`,
		`now() != nil`,
		`let x = 1; x == 1`,
		`params.s.Len() > 0`,
		`steps.a.outputs.String() != ""`,
	}
	for _, src := range refused {
		if _, err := Parse("test.yaml", []byte(exprPlaybook(src, ""))); err == nil {
			t.Errorf("if %s: loaded; expressions must not reach the environment or files", src)
		}
		if _, err := Parse("test.yaml", []byte(exprPlaybook("", "echo ${{ "+src+" }}"))); err == nil {
			t.Errorf("run ${{ %s }}: loaded", src)
		}
	}
	// The env map an expression sees holds the declared names only (E), not the runner's environment.
	ok, err := evalIf(t, `len(env) == 1 && env.E == "eu-west-1" && !("PLAYBOOK_TEST_RUNNER_SECRET" in env) && !("PATH" in env)`)
	if err != nil || !ok {
		t.Errorf("env seen by expressions is not the declared env only: %v %v", ok, err)
	}
	out, err := renderRun(t, `echo ${{ join(map(split("a,b", ","), # + env.E), " ") }}`)
	if err != nil || out != "echo aeu-west-1 beu-west-1" {
		t.Errorf("render = %q, %v", out, err)
	}
}

// TestInterpolationWarnings: every way of putting a secret or free-form string param into run with
// ${{ }} is warned about (bracket access, through a function, inside a larger expression), and the
// safe forms are not.
func TestInterpolationWarnings(t *testing.T) {
	head := `version: 1
name: w
params:
  token: {secret: true, default: x}
  note: {default: hi}
  level: {default: a, enum: [a, b]}
  n: {type: int, default: 1}
steps:
  - id: a
`
	warned := []string{
		`run: echo ${{ params.token }}`,
		`run: echo ${{ params["token"] }}`,
		`run: echo ${{ lower(params.note) }}`,
		`run: 'echo ${{ params.level == "a" ? params.note : "" }}'`,
		`run: echo ${{ trim(params.note + "x") }}`,
		`run: echo ${{ join(split(params.note, ","), " ") }}`,
	}
	for _, line := range warned {
		pb := mustParse(t, head+"    "+line+"\n")
		if len(pb.Warnings) == 0 {
			t.Errorf("%s: no warning", line)
			continue
		}
		if w := pb.Warnings[0]; w.Line != 10 || !strings.Contains(w.Msg, "$PLAYBOOK_PARAM_") {
			t.Errorf("%s: warning %v does not point at the line or give the safe form", line, w)
		}
	}
	safe := []string{
		`run: echo "$PLAYBOOK_PARAM_TOKEN $PLAYBOOK_PARAM_NOTE"`,
		`run: echo ${{ params.level }} ${{ params.n }}`,
		`exec: [echo, "${{ params.token }}", "${{ params.note }}"]`,
		"run: echo \"$V\"\n    env: {V: \"${{ params.note }}\"}",
	}
	for _, line := range safe {
		pb := mustParse(t, head+"    "+line+"\n")
		if len(pb.Warnings) != 0 {
			t.Errorf("%s: unexpected warnings %v", line, pb.Warnings)
		}
	}
}

// TestOutputInterpolationWarnings: a step's output put into run with ${{ }} is warned about like a
// free-form param (a command wrote it), at the step id it reads, with the env: form to use instead; its
// other fields, and outputs passed through env or exec or read in if, are not.
func TestOutputInterpolationWarnings(t *testing.T) {
	head := `version: 1
name: w
steps:
  - id: build
    run: echo "tag=v1" >> "$PLAYBOOK_OUTPUT"
  - id: b
    needs: [build]
`
	warned := []struct{ line, col, want string }{
		{`run: ./deploy.sh "${{ steps.build.outputs.tag }}"`, "8:33", `output "tag" of step "build" is put into the shell command of step "b" with ${{ }}: the value came from a command, so it is as untrusted as a free-form param, and a value such as "; rm -rf ~" would run as shell code; pass it through env (env: {TAG: "${{ steps.build.outputs.tag }}"}) and use "$TAG" in the command instead`},
		{`run: echo ${{ steps["build"].outputs["my-tag"] }}`, "8:25", `env: {MY_TAG: "${{ steps.build.outputs['my-tag'] }}"}) and use "$MY_TAG"`},
		{`run: echo ${{ upper(steps.build.outputs.tag) }}`, "8:31", `output "tag" of step "build"`},
	}
	for _, w := range warned {
		pb := mustParse(t, head+"    "+w.line+"\n")
		if len(pb.Warnings) != 1 {
			t.Errorf("%s: %d warnings, want 1: %v", w.line, len(pb.Warnings), pb.Warnings)
			continue
		}
		got := pb.Warnings[0]
		if pos := fmt.Sprintf("%d:%d", got.Line, got.Col); pos != w.col || !strings.Contains(got.Msg, w.want) {
			t.Errorf("%s: warning at %s: %s\nwant at %s: ...%s...", w.line, pos, got.Msg, w.col, w.want)
		}
	}
	safe := []string{
		`run: echo ${{ steps.build.status }} ${{ steps.build.exit_code }} ${{ steps.build.attempts }}`,
		"run: ./deploy.sh \"$TAG\"\n    env: {TAG: \"${{ steps.build.outputs.tag }}\"}",
		`exec: [./deploy.sh, "${{ steps.build.outputs.tag }}"]`,
		"if: steps.build.outputs.tag != \"\"\n    run: echo ok",
	}
	for _, line := range safe {
		pb := mustParse(t, head+"    "+line+"\n")
		if len(pb.Warnings) != 0 {
			t.Errorf("%s: unexpected warnings %v", line, pb.Warnings)
		}
	}
}
