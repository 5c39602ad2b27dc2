package playbook

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/expr-lang/expr/builtin"
)

// exprPlaybook is a playbook whose last step, "t", has the given if and run. Steps "a" (needed by t)
// and "b" (not needed) exist, with params s (string), n (int), x (number), flag (bool) and env E.
func exprPlaybook(ifExpr, run string) string {
	y := `version: 1
name: expr
params:
  s: {default: hello}
  n: {type: int, default: 3}
  x: {type: number, default: 0.5}
  flag: {type: bool, default: true}
  e: {default: prod, enum: [staging, prod]}
env:
  E: eu-west-1
steps:
  - id: a
    run: echo a
  - id: b
    run: echo b
  - id: t
    needs: [a]
`
	if ifExpr != "" {
		y += "    if: " + yamlQuote(ifExpr) + "\n"
	}
	if run == "" {
		run = "echo t"
	}
	return y + "    run: " + yamlQuote(run) + "\n"
}

// yamlQuote writes s as a single-quoted YAML scalar.
func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func mustParse(t *testing.T, y string) *Playbook {
	t.Helper()
	pb, err := Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, y)
	}
	return pb
}

// parseErr parses and returns the error list, failing when the file is valid.
func parseErr(t *testing.T, y string) ErrorList {
	t.Helper()
	_, err := Parse("test.yaml", []byte(y))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v\n%s", err, y)
	}
	return list
}

func testState(pb *Playbook) *State {
	params, err := pb.ResolveParams(nil)
	if err != nil {
		panic(err)
	}
	return &State{
		Run:    RunState{ID: "r1", Name: pb.Name, Status: "succeeded"},
		Params: params,
		Env:    map[string]string{"E": "eu-west-1"},
		Steps: map[string]StepState{
			"a": {Status: "succeeded", ExitCode: 0, Outputs: map[string]string{"tag": "v1"}, Attempts: 2},
		},
	}
}

// evalIf compiles ifExpr as the if of step t and evaluates it with success() true.
func evalIf(t *testing.T, ifExpr string) (bool, error) {
	t.Helper()
	pb := mustParse(t, exprPlaybook(ifExpr, ""))
	return pb.Step("t").If.Eval(testState(pb), StatusFuncs{Success: true})
}

// renderRun compiles run as the run of step t and renders it.
func renderRun(t *testing.T, run string) (string, error) {
	t.Helper()
	pb := mustParse(t, exprPlaybook("", run))
	return pb.Step("t").Run.Render(testState(pb))
}

// TestAllowedBuiltins proves that each builtin on the allow-list (and each budgeted replacement) is
// available and computes what it should.
func TestAllowedBuiltins(t *testing.T) {
	cases := map[string]string{
		"len":         `len("abc") == 3`,
		"abs":         `abs(-2) == 2`,
		"min":         `min(1, 2) == 1`,
		"max":         `max(1, 2) == 2`,
		"int":         `int("42") == 42`,
		"float":       `float("1.5") == 1.5`,
		"ceil":        `ceil(1.2) == 2`,
		"floor":       `floor(1.8) == 1`,
		"round":       `round(1.5) == 2`,
		"trim":        `trim("  a ") == "a"`,
		"trimPrefix":  `trimPrefix("v1.2", "v") == "1.2"`,
		"trimSuffix":  `trimSuffix("a.tar", ".tar") == "a"`,
		"hasPrefix":   `hasPrefix(params.s, "he")`,
		"hasSuffix":   `hasSuffix(params.s, "lo")`,
		"indexOf":     `indexOf("abc", "c") == 2`,
		"lastIndexOf": `lastIndexOf("abca", "a") == 3`,
		"all":         `all([1, 2], # > 0)`,
		"any":         `any([1, 2], # > 1)`,
		"none":        `none([1, 2], # > 2)`,
		"one":         `one([1, 2], # > 1)`,
		"filter":      `len(filter([1, 2, 3], # > 1)) == 2`,
		"map":         `map([1, 2], # * 2)[1] == 4`,
		"count":       `count([1, 2, 3], # > 1) == 2`,
		"first":       `first([7, 8]) == 7`,
		"last":        `last([7, 8]) == 8`,
		"lower":       `lower("AbC") == "abc"`,
		"upper":       `upper(params.s) == "HELLO"`,
		"split":       `split("a,b", ",")[1] == "b"`,
		"join":        `join(["a", "b"], "-") == "a-b" && join(map([1, 2], string(#))) == "12"`,
		"string":      `string(params.n) == "3" && string(params.x) == "0.5" && string(true) == "true"`,
	}
	for name := range allowedBuiltins {
		if _, ok := cases[name]; !ok {
			t.Errorf("allowed builtin %s has no test case", name)
		}
	}
	for name := range budgetedFunctions {
		if _, ok := cases[name]; !ok {
			t.Errorf("budgeted function %s has no test case", name)
		}
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			ok, err := evalIf(t, src)
			if err != nil || !ok {
				t.Fatalf("%s = %v, %v; want true", src, ok, err)
			}
		})
	}
}

// TestDisabledBuiltins proves that every builtin of expr v1.17.8 that is not on the allow-list is
// unavailable, whatever arguments it is given: the predicate ones (reduce, sortBy, ...) included, which
// expr's own DisableBuiltin does not cover in this version.
func TestDisabledBuiltins(t *testing.T) {
	if len(builtin.Names) < 60 {
		t.Fatalf("expr lists only %d builtins; the test would prove little", len(builtin.Names))
	}
	predicates := []string{"all", "none", "any", "one", "filter", "map", "count", "sum", "find", "findIndex",
		"findLast", "findLastIndex", "groupBy", "sortBy", "reduce"}
	names := append(slices.Clone(builtin.Names), "$env")
	disabled := 0
	for _, name := range names {
		if allowedBuiltins[name] || budgetedFunctions[name] {
			continue
		}
		disabled++
		t.Run(name, func(t *testing.T) {
			calls := []string{name + "()", name + `("x")`, name + "(1, 2)"}
			if slices.Contains(predicates, name) {
				calls = []string{name + "([1, 2], # > 0)", name + "([1, 2], #)", name + "([1, 2], # + 1, 0)"}
			}
			if name == "$env" {
				calls = []string{"$env", `$env["params"]`, `$env.params`}
			}
			refused := 0 // calls refused by name, not merely for their syntax
			for _, call := range calls {
				for _, src := range []string{call + " == nil", "string(" + call + `) != ""`} {
					list := parseErr(t, exprPlaybook(src, ""))
					if strings.Contains(list.Error(), "not available") {
						refused++
					} else if !strings.Contains(list.Error(), "syntax error") {
						t.Errorf("if %s: %v; want it refused as not available", src, list)
					}
				}
				list := parseErr(t, exprPlaybook("", "echo ${{ "+call+" }}"))
				if strings.Contains(list.Error(), "not available") {
					refused++
				} else if !strings.Contains(list.Error(), "syntax error") {
					t.Errorf("run with %s: %v; want it refused", call, list)
				}
			}
			if refused == 0 {
				t.Errorf("%s was never refused by name", name)
			}
		})
	}
	// The deterministic-by-construction guarantee: these must be among the disabled.
	for _, must := range []string{"now", "date", "duration", "timezone", "fromJSON", "toJSON", "repeat", "reduce", "$env"} {
		if allowedBuiltins[must] || budgetedFunctions[must] {
			t.Errorf("%s must not be allowed", must)
		}
	}
	t.Logf("%d builtins disabled, %d allowed", disabled, len(allowedBuiltins)+len(budgetedFunctions))
}

// TestExpressionLengthCap: the limit is MaxExpressionLength bytes, and a longer expression is refused
// before it is parsed (a long expression with a syntax error gets the length message, not a syntax one).
func TestExpressionLengthCap(t *testing.T) {
	pad := func(n int) string { // a valid expression of exactly n bytes
		base := `params.s == ""`
		return `params.s == "` + strings.Repeat("a", n-len(base)) + `"`
	}
	if src := pad(MaxExpressionLength); len(src) != MaxExpressionLength {
		t.Fatalf("pad: %d bytes", len(src))
	}
	if _, err := evalIf(t, pad(MaxExpressionLength)); err != nil {
		t.Fatalf("an expression of exactly %d bytes: %v", MaxExpressionLength, err)
	}
	list := parseErr(t, exprPlaybook(pad(MaxExpressionLength+1), ""))
	if !strings.Contains(list.Error(), "bytes long; the limit is 4096") {
		t.Errorf("4097 bytes: %v", list)
	}
	broken := strings.Repeat("(", 5<<10)
	list = parseErr(t, exprPlaybook(broken, ""))
	if !strings.Contains(list.Error(), "bytes long") || strings.Contains(list.Error(), "syntax") {
		t.Errorf("5 KiB of ( should be refused for its length before parsing: %v", list)
	}
	// Each ${{ }} of a template is capped too, not the template: a long script is fine.
	long := strings.Repeat("echo line\n", 1000) + "echo ${{ params.n }}"
	if _, err := renderRun(t, long); err != nil {
		t.Errorf("a long run with a short expression: %v", err)
	}
}

// TestExpressionNodeCap: 1000 terms (1999 nodes) compile, 1001 terms (2001 nodes) do not.
func TestExpressionNodeCap(t *testing.T) {
	terms := func(n int) string { return strings.Repeat("1+", n-1) + "1 > 0" }
	if _, err := evalIf(t, terms(999)); err != nil {
		t.Fatalf("1999 nodes + comparison: %v", err)
	}
	list := parseErr(t, exprPlaybook(terms(1001), ""))
	if !strings.Contains(list.Error(), "too complex (more than 2000 nodes)") {
		t.Errorf("2001+ nodes: %v", list)
	}
	// Deep nesting is bounded by the same cap (parentheses make no nodes; negations do).
	list = parseErr(t, exprPlaybook(strings.Repeat("!", 2001)+"true", ""))
	if !strings.Contains(list.Error(), "too complex") {
		t.Errorf("2001 nested negations: %v", list)
	}
}

// TestEvalMemoryBudget: programs that would allocate without bound fail with an error instead.
func TestEvalMemoryBudget(t *testing.T) {
	doubling := strings.Repeat("map(", 30) + `["xxxxxxxx"]` + strings.Repeat(", # + #)", 30) + "[0]"
	cases := []struct{ name, src, want string }{
		{"range", `len(1..10000000) > 0`, "memory budget exceeded"},
		{"nested predicates", `len(map(1..2000, map(1..2000, #))) > 0`, "memory budget exceeded"},
		{"string doubling", "len(" + doubling + ") > 0", "bytes of strings"},
		{"join of many copies", `len(join(map(1..500000, "` + strings.Repeat("x", 100) + `"))) > 0`, "memory budget exceeded"},
		{"split and join", `len(join(split(join(map(1..100000, "abcdefghij")), ""), "` + strings.Repeat("y", 100) + `")) > 0`, "bytes of strings"},
	}
	// What the budgets promise is the error, not a speed: each program is stopped by the budget named in
	// its error (the race detector on a loaded machine makes the time anything).
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, err := evalIf(t, c.src)
			if err == nil {
				t.Fatalf("%s = %v; want an error", c.src, ok)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q; want %q", err, c.want)
			}
		})
	}
	// Templates are evaluated with the same budget.
	if _, err := renderRun(t, "echo ${{ len(1..10000000) }}"); err == nil || !strings.Contains(err.Error(), "memory budget exceeded") {
		t.Errorf("template: %v", err)
	}
	// A runtime conversion error is an error, not a panic.
	if _, err := evalIf(t, `int(params.s) > 0`); err == nil {
		t.Errorf("int(\"hello\") evaluated without error")
	}
}

// TestEvalEnvHasNoMethods: expr makes methods of the environment callable, so every value
// in it (the maps, the budget) must be plain data. It walks the environment built for an expression
// that reads everything.
func TestEvalEnvHasNoMethods(t *testing.T) {
	pb := mustParse(t, exprPlaybook(`always() && success() && params.n > 0 && env.E != "" && steps.a.status != "" && run.id != ""`, ""))
	c := pb.Step("t").If
	env := c.info.evalEnv(c.c, testState(pb), &StatusFuncs{Success: true})
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if v == nil {
			return
		}
		rt := reflect.TypeOf(v)
		if n := rt.NumMethod(); n != 0 {
			t.Errorf("%s: %s has %d methods", path, rt, n)
		}
		if rt.Kind() == reflect.Pointer && reflect.PointerTo(rt.Elem()).NumMethod() != 0 {
			t.Errorf("%s: %s has pointer methods", path, rt)
		}
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				walk(path+"."+k, x)
			}
		}
	}
	walk("env", env)
	for _, key := range []string{"params", "env", "steps", "run", hiddenSuccess, hiddenBudget} {
		if _, ok := env[key]; !ok {
			t.Errorf("environment lacks %q", key)
		}
	}
	if n := reflect.TypeOf(evalBudget{}).NumMethod() + reflect.TypeOf(&evalBudget{}).NumMethod(); n != 0 {
		t.Errorf("evalBudget has %d methods", n)
	}
	// The hidden names cannot be reached from an expression.
	for _, src := range []string{`$env[" success"]`, `$env[" budget"] != nil`} {
		if list := parseErr(t, exprPlaybook(src, "")); !strings.Contains(list.Error(), "not available") {
			t.Errorf("%s: %v", src, list)
		}
	}
}

// TestCompileErrors: mistakes in expressions are load errors at the right position, never found in the
// middle of a run.
func TestCompileErrors(t *testing.T) {
	cases := []struct {
		ifExpr, run string
		line, col   int
		want        string
	}{
		{ifExpr: `steps.a.exit_code == "0"`, line: 18, col: 28, want: "mismatched types int and string"},
		{ifExpr: `1 + 1`, line: 18, col: 10, want: "gives int, but an if must give true or false"},
		{ifExpr: `stpes.a.status == "succeeded"`, line: 18, col: 10, want: `unknown name "stpes"; did you mean "steps"?`},
		{ifExpr: `params.nn > 1`, line: 18, col: 17, want: `unknown param "nn"; did you mean "n"?`},
		{ifExpr: `env.HOME != ""`, line: 18, col: 14, want: "env.HOME is not in the playbook's env"},
		{ifExpr: `steps.b.status == "succeeded"`, line: 18, col: 16, want: `step "t" reads steps.b but does not depend on it; add "b" to needs`},
		{ifExpr: `steps.zz.status == ""`, line: 18, col: 16, want: `step "t" reads steps.zz, which is not a step`},
		{ifExpr: `steps[params.s].status == ""`, line: 18, col: 10, want: "write the name out"},
		{ifExpr: `steps.a.statuss == ""`, line: 18, col: 18, want: `did you mean "status"?`},
		{ifExpr: `success(1)`, line: 18, col: 10, want: "success() takes no arguments"},
		{ifExpr: `params.s ==`, line: 18, col: 20, want: "syntax error"},
		{ifExpr: `params.n.Foo()`, line: 18, col: 19, want: "has no method Foo"},
		{run: `echo ${{ failure() }}`, line: 18, col: 20, want: "failure() can only be used in if"},
		{run: `echo ${{ params.s + 1 }}`, line: 18, col: 29, want: "mismatched types string and int"},
		{run: `echo ${{ [1, 2] }}`, line: 18, col: 19, want: "must give a string, number or bool, not a list"},
	}
	for _, c := range cases {
		t.Run(c.ifExpr+c.run, func(t *testing.T) {
			list := parseErr(t, exprPlaybook(c.ifExpr, c.run))
			e := list[0]
			if !strings.Contains(e.Msg, c.want) {
				t.Errorf("message %q; want it to contain %q", e.Msg, c.want)
			}
			if e.Line != c.line || e.Col != c.col {
				t.Errorf("at %d:%d; want %d:%d (%s)", e.Line, e.Col, c.line, c.col, e.Msg)
			}
		})
	}
}

// TestConditionSemantics: GitHub Actions' status functions and the implicit success().
func TestConditionSemantics(t *testing.T) {
	all := []StatusFuncs{
		{Success: true}, {Success: false}, {Success: false, Failure: true},
		{Success: true, Cancelled: true}, {Success: false, Failure: true, Cancelled: true},
	}
	cases := []struct {
		src    string // "" = no if
		want   func(f StatusFuncs) bool
		calls  []string
		static bool
	}{
		{"", func(f StatusFuncs) bool { return f.Success }, []string{"success"}, true},
		{"success()", func(f StatusFuncs) bool { return f.Success }, []string{"success"}, true},
		{"always()", func(StatusFuncs) bool { return true }, []string{"always"}, true},
		{"failure()", func(f StatusFuncs) bool { return f.Failure }, []string{"failure"}, true},
		{"cancelled()", func(f StatusFuncs) bool { return f.Cancelled }, []string{"cancelled"}, true},
		{"success() || failure()", func(f StatusFuncs) bool { return f.Success || f.Failure }, []string{"success", "failure"}, true},
		{"!cancelled()", func(f StatusFuncs) bool { return !f.Cancelled }, []string{"cancelled"}, true},
		// No status function: success() && (expr).
		{`params.s == "hello"`, func(f StatusFuncs) bool { return f.Success }, nil, true},
		{`params.s != "hello"`, func(StatusFuncs) bool { return false }, nil, true},
		{"true", func(f StatusFuncs) bool { return f.Success }, nil, true},
		{"false", func(StatusFuncs) bool { return false }, nil, true},
		{"${{ params.n == 3 }}", func(f StatusFuncs) bool { return f.Success }, nil, true},
		{`steps.a.outputs.tag == "v1"`, func(f StatusFuncs) bool { return f.Success }, nil, false},
		{`always() && run.status == "succeeded"`, func(StatusFuncs) bool { return true }, []string{"always"}, false},
		{`failure() && steps.a.attempts == 2`, func(f StatusFuncs) bool { return f.Failure }, []string{"failure"}, false},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			pb := mustParse(t, exprPlaybook(c.src, ""))
			cond := pb.Step("t").If
			want := strings.TrimSuffix(strings.TrimPrefix(c.src, "${{ "), " }}")
			if c.src == "" {
				want = "success()"
			}
			if cond.Source() != want {
				t.Errorf("Source() = %q, want %q", cond.Source(), want)
			}
			for _, fn := range statusFunctions {
				if got := cond.Calls(fn); got != slices.Contains(c.calls, fn) {
					t.Errorf("Calls(%q) = %v", fn, got)
				}
				if cond.Calls(fn+"()") != cond.Calls(fn) {
					t.Errorf("Calls(%q) differs from Calls(%q)", fn+"()", fn)
				}
			}
			if cond.Calls("other") {
				t.Errorf("Calls(other) = true")
			}
			if cond.CallsStatus() != (len(c.calls) > 0) {
				t.Errorf("CallsStatus() = %v with calls %v", cond.CallsStatus(), c.calls)
			}
			if cond.Static() != c.static {
				t.Errorf("Static() = %v, want %v", cond.Static(), c.static)
			}
			for _, f := range all {
				got, err := cond.Eval(testState(pb), f)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want(f) {
					t.Errorf("Eval(%+v) = %v, want %v", f, got, c.want(f))
				}
			}
		})
	}
}

// TestTemplateRender: values are written as strings, numbers in their shortest form, bools as
// true/false, missing outputs as "".
func TestTemplateRender(t *testing.T) {
	cases := []struct{ run, want string }{
		{`echo plain`, `echo plain`},
		{`echo ${{ params.s }}`, `echo hello`},
		{`${{ params.n }}/${{ params.x }}/${{ params.flag }}`, `3/0.5/true`},
		{`${{ params.n * 2 }} ${{ params.n / 2 }} ${{ 1.0 * 3 }} ${{ 0.1 + 0.2 }}`, `6 1.5 3 0.30000000000000004`},
		{`${{ 1e21 }} ${{ 1e-7 }} ${{ -0.25 }}`, `1e+21 1e-7 -0.25`},
		{`tag=${{ steps.a.outputs.tag }} missing=[${{ steps.a.outputs.nope }}]`, `tag=v1 missing=[]`},
		{`${{ steps.a.exit_code }} ${{ steps.a.attempts }} ${{ steps.a.status }}`, `0 2 succeeded`},
		{`${{ run.id }}:${{ run.name }}:${{ run.status }} ${{ env.E }}`, `r1:expr:succeeded eu-west-1`},
		{`${{ "}}" }} ${{ {"k": "v"}.k }} ${{ '${{' }}`, `}} v ${{`},
		{`${{params.s}}${{params.s}}`, `hellohello`},
		{`a ${{ params.s == "hello" ? "yes" : "no" }} b`, `a yes b`},
		{`${{ params.missing ?? "x" }}`, ``}, // unknown param: a load error (checked below)
	}
	for _, c := range cases[:len(cases)-1] {
		t.Run(c.run, func(t *testing.T) {
			got, err := renderRun(t, c.run)
			if err != nil || got != c.want {
				t.Errorf("Render = %q, %v; want %q", got, err, c.want)
			}
		})
	}
	parseErr(t, exprPlaybook("", cases[len(cases)-1].run))

	// A literal template renders to itself without allocating.
	pb := mustParse(t, exprPlaybook("", "echo nothing to replace"))
	tmpl, st := pb.Step("t").Run, testState(pb)
	if !tmpl.IsLiteral() || tmpl.Raw() != "echo nothing to replace" {
		t.Errorf("literal template: IsLiteral %v, Raw %q", tmpl.IsLiteral(), tmpl.Raw())
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = tmpl.Render(st) }); n != 0 {
		t.Errorf("rendering a literal allocates %v times", n)
	}
	// Raw keeps the ${{ }} parts.
	pb = mustParse(t, exprPlaybook("", "echo ${{ params.s }}"))
	if raw := pb.Step("t").Run.Raw(); raw != "echo ${{ params.s }}" {
		t.Errorf("Raw() = %q", raw)
	}
}

// TestScanTemplate covers the ${{ }} scanner on its own.
func TestScanTemplate(t *testing.T) {
	cases := []struct {
		text     string
		exprs    []string
		unclosed int
	}{
		{"no parts", nil, -1},
		{"${{ a }}", []string{" a "}, -1},
		{"x ${{ a }} y ${{b}}", []string{" a ", "b"}, -1},
		{`${{ "}}" }}`, []string{` "}}" `}, -1},
		{`${{ '}}\'' }}`, []string{` '}}\'' `}, -1},
		{"${{ {'a': {'b': 1}}.a.b }}", []string{" {'a': {'b': 1}}.a.b "}, -1},
		{"${{ a", nil, 0},
		{"ok ${{ a }} ${{ b", []string{" a "}, 12},
		{"$ {{ not }} ${ {x}}", nil, -1},
	}
	for _, c := range cases {
		spans, unclosed := scanTemplate(c.text)
		var exprs []string
		for _, s := range spans {
			exprs = append(exprs, s.expr)
			if c.text[s.exprOff:s.exprOff+len(s.expr)] != s.expr {
				t.Errorf("%q: offset %d does not point at %q", c.text, s.exprOff, s.expr)
			}
		}
		if !slices.Equal(exprs, c.exprs) || unclosed != c.unclosed {
			t.Errorf("scan(%q) = %q, %d; want %q, %d", c.text, exprs, unclosed, c.exprs, c.unclosed)
		}
	}
}

// TestExprContextScopes: the playbook's env reads params only; steps read only steps they depend on,
// transitively.
func TestExprContextScopes(t *testing.T) {
	y := `version: 1
name: scopes
params: {p: {default: x}}
env:
  A: ${{ params.p }}-a
steps:
  - id: one
    run: echo 1
  - id: two
    needs: [one]
    run: echo 2
  - id: three
    needs: [two]
    run: echo ${{ steps.one.outputs.x }} ${{ env.A }}
    env: {B: "${{ steps.two.status }}"}
    dir: ${{ steps.one.outputs.dir }}
`
	pb := mustParse(t, y)
	st := &State{Params: Params{"p": "x"}, Env: map[string]string{}}
	a, err := pb.Env[0].Value.Render(st)
	if err != nil || a != "x-a" {
		t.Fatalf("env A = %q, %v", a, err)
	}
	for _, bad := range []string{"${{ env.A }}", "${{ steps.one.status }}", "${{ run.id }}"} {
		list := parseErr(t, strings.Replace(y, "${{ params.p }}-a", bad, 1))
		if !strings.Contains(list.Error(), "only params can be read here: the playbook's env") {
			t.Errorf("playbook env %s: %v", bad, list)
		}
	}
}

// TestConcurrentEval: a loaded playbook is shared by the scheduler's goroutines (run with -race).
func TestConcurrentEval(t *testing.T) {
	pb := mustParse(t, exprPlaybook(`success() && steps.a.outputs.tag == "v1" && len(split(params.s, "l")) == 3`, `echo ${{ upper(params.s) + steps.a.outputs.tag }}`))
	st := testState(pb)
	step := pb.Step("t")
	done := make(chan error, 16)
	for range 16 {
		go func() {
			for range 200 {
				ok, err := step.If.Eval(st, StatusFuncs{Success: true})
				if err != nil || !ok {
					done <- fmt.Errorf("Eval = %v, %v", ok, err)
					return
				}
				out, err := step.Run.Render(st)
				if err != nil || out != "echo HELLOv1" {
					done <- fmt.Errorf("Render = %q, %v", out, err)
					return
				}
			}
			done <- nil
		}()
	}
	for range 16 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestOutputsHint: the hint that outputs are strings is given for a mismatch of types in an operation
// on an output, at any depth of its operands, and not for one that involves no output, even when the
// same expression reads an output elsewhere.
func TestOutputsHint(t *testing.T) {
	const hint = "(outputs are always strings)"
	cases := []struct {
		ifExpr, run string
		want        bool
	}{
		{ifExpr: `steps.a.outputs.n > 1`, want: true},
		{ifExpr: `1 < steps.a.outputs["n"]`, want: true},
		{ifExpr: `len(steps.a.outputs) > 0 && (steps.a.outputs.n + 1) > 2`, want: true},
		{run: `echo ${{ steps.a.outputs.n * 2 }}`, want: true},
		{ifExpr: `steps.a.exit_code == "0"`},
		{ifExpr: `steps.a.outputs.tag == "v1" && steps.a.attempts == "2"`},
		{run: `echo ${{ params.n + "x" }}`},
		{run: `echo ${{ params.s + 1 }}`},
	}
	for _, c := range cases {
		t.Run(c.ifExpr+c.run, func(t *testing.T) {
			list := parseErr(t, exprPlaybook(c.ifExpr, c.run))
			msg := list[0].Msg
			if !strings.Contains(msg, "mismatched types") {
				t.Fatalf("not a type mismatch: %s", msg)
			}
			if got := strings.Contains(msg, hint); got != c.want {
				t.Errorf("hint given %v, want %v: %s", got, c.want, msg)
			}
		})
	}
}
