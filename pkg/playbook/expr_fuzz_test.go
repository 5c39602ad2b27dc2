package playbook

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzExprPlaybook places src as the if of step t (line 18) and inside ${{ }} in t's run (line 20, a
// literal block); with inEnv, inside ${{ }} in the playbook's env instead (line 10, which may read
// params only).
func fuzzExprPlaybook(src string, inEnv bool) string {
	env, cond, run := "E: eu-west-1", "success()", "echo t"
	if inEnv {
		env = "PB: " + yamlQuote("${{ "+src+" }}")
	} else {
		cond, run = src, "echo ${{ "+src+" }}"
	}
	return `version: 1
name: fuzz
params:
  s: {default: hello}
  n: {type: int, default: 3}
  x: {type: number, default: 0.5}
  flag: {type: bool, default: true}
  e: {default: prod, enum: [staging, prod]}
env:
  ` + env + `
steps:
  - id: a
    run: echo a
  - id: b
    run: echo b
  - id: t
    needs: [a]
    if: ` + yamlQuote(cond) + `
    run: |
      ` + run + `
`
}

// fuzzLoad parses y and checks its errors: each on one of the given lines, at a column of that line.
func fuzzLoad(t *testing.T, src, y string, lines ...int) *Playbook {
	text := strings.Split(y, "\n")
	start := time.Now()
	pb, err := Parse("fuzz.yaml", []byte(y))
	if d := time.Since(start); d > hangGuard { // a hang guard, not a speed target
		t.Fatalf("loading took %s: it hangs (normally well under a second)", d)
	}
	if err == nil {
		return pb
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error is not a non-empty ErrorList: %v", err)
	}
	for _, e := range list {
		if !slices.Contains(lines, e.Line) {
			t.Fatalf("error outside the expression's lines %v: %v", lines, e)
		}
		if n := utf8.RuneCountInString(text[e.Line-1]); e.Col < 1 || e.Col > n+1 {
			t.Fatalf("error column %d is not on line %d (%d runes): %v", e.Col, e.Line, n, e)
		}
		if strings.Contains(e.Msg, "cannot compile this expression") {
			t.Fatalf("expr panicked while compiling %q: %v", src, e)
		}
	}
	return nil
}

// FuzzExpression compiles any text as an if, as a ${{ }} in run and as a ${{ }} in the playbook's env,
// over the step context (params of each type, env, steps, run), then evaluates what compiles with a run
// state built from the other inputs. Nothing panics or takes long; errors point into the line the
// expression is on; an if gives a bool or an error, a template a string or an error; evaluating twice
// gives the same result (expressions are deterministic).
//
//	go test -run '^$' -fuzz '^FuzzExpression$' -fuzztime 1m ./pkg/playbook/
func FuzzExpression(f *testing.F) {
	for _, seed := range []string{
		`success()`, `always() && params.flag`, `failure() || cancelled()`, `params.n > 2 && params.x < 1.0`,
		`steps.a.status == "succeeded"`, `steps.a.outputs.tag`, `steps["a"].exit_code + 1`, `run.id + run.name`,
		`env.E`, `params.s matches "^h"`, `len(params.s) * 2`, `lower(params.s) + upper(env.E)`,
		`join(split(params.s, "l"), "-")`, `filter(1..5, # > 2)`, `map(1..3, # * params.n)`, `int("12") + 1`,
		`float(params.n) / 0`, `params.n / 0`, `params.n % 0`, `1 .. 100000000`, `len(1..10000000) > 0`,
		`string(steps.a.attempts)`, `params.e in ["staging", "prod"]`, `steps.a.outputs.x ?? "d"`,
		`params.flag ? "yes" : "no"`, `first([])`, `last(split("", ""))`, `trimPrefix(params.s, "he")`,
		`indexOf(params.s, "l") == 2`, `now()`, `$env`, `let x = 1; x`, `steps.b.status`, `steps.nope.status`,
		`params.nope`, `"${{"`, `}}`, `((((((((((1))))))))))`, `-9223372036854775808 - 1`, `abs(-9223372036854775808)`,
		`repeat("x", 1000000)`, `"a" + "b" * 3`, `{"a": 1}.a`, `[1, 2][5]`, `params.s[100]`, `params.s[1:0]`,
		`max(1, "a")`, `round(1e308 * 10)`, `ceil(params.x)`, "`raw`", `'single'`, `"\u00e9" + "\xff"`,
	} {
		f.Add(seed, "v1", "succeeded", 0, false)
	}
	f.Fuzz(func(t *testing.T, src, output, status string, exitCode int, success bool) {
		if strings.ContainsAny(src, "\r\n\t") || !utf8.ValidString(src) || len(src) > MaxExpressionLength+16 {
			return // the file would be refused for its own reasons (line breaks inside a quoted if, tabs, not UTF-8)
		}
		if envPB := fuzzLoad(t, src, fuzzExprPlaybook(src, true), 10); envPB != nil {
			st := testState(envPB)
			a, errA := envPB.Env[0].Value.Render(st)
			b, errB := envPB.Env[0].Value.Render(st)
			if a != b || fmt.Sprint(errA) != fmt.Sprint(errB) {
				t.Fatalf("env renders differ: %q %v / %q %v", a, errA, b, errB)
			}
		}
		pb := fuzzLoad(t, src, fuzzExprPlaybook(src, false), 18, 20)
		if pb == nil {
			return
		}
		st := testState(pb)
		st.Steps["a"] = StepState{Status: status, ExitCode: exitCode, Outputs: map[string]string{"tag": output, "x": output}, Attempts: exitCode & 7}
		funcs := StatusFuncs{Success: success, Failure: !success, Cancelled: exitCode < 0}
		step := pb.Step("t")
		evalOnce := func() string {
			start := time.Now()
			defer func() {
				if d := time.Since(start); d > hangGuard { // a hang guard, not a speed target
					t.Fatalf("evaluating took %s: it hangs (normally well under a second)", d)
				}
			}()
			ok, err := step.If.Eval(st, funcs)
			run, rerr := step.Run.Render(st)
			return fmt.Sprintf("%v|%v|%q|%v", ok, err, run, rerr)
		}
		first, second := evalOnce(), evalOnce()
		if first != second {
			t.Fatalf("two evaluations differ:\n%s\n%s", first, second)
		}
		if run, err := step.Run.Render(st); err == nil && !strings.HasPrefix(run, "echo ") {
			t.Fatalf("rendered run %q lost its literal text", run)
		}
	})
}
