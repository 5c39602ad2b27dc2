package playbook

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// Expressions (expr-lang/expr v1.17.8), compiled when a playbook is loaded.
//
// Every expression is compiled against a typed context (types.Map): params typed as declared, env with
// the playbook's declared names, steps.<id> with status, exit_code, outputs and attempts, and run. The
// value passed to the VM at run time is a plain map[string]any of data (no methods: expr would make
// methods callable: TestEvalEnvHasNoMethods).
//
// Before type checking, the syntax tree is analysed and patched here:
//   - names are checked against the context with messages that say what to write (unknown params,
//     steps that do not exist, env in playbook-level env, ...), and every read is recorded, so the
//     loader can check that a step reads only the steps it depends on and can warn about params put
//     into shell commands;
//   - builtins outside a short allow-list, let declarations and $env are refused: v1.17.8 parses the
//     predicate builtins (all, filter, map, ...) whatever DisableBuiltin says, so the allow-list is
//     enforced on the tree, not only through expr's options;
//   - success(), failure() and cancelled() become reads of hidden fields of the context (names with a
//     space, which no expression can spell), and always() becomes true, so the status functions need no
//     methods or function values in the context;
//   - calls of the string functions that allocate (lower, upper, split, join, string) and, after type
//     checking, string concatenation with + get a hidden first argument: a per-evaluation byte budget
//     (EvalStringBudget). expr v1.17.8 does not count string building against its memory budget.

// Hidden names of the context. The space makes them impossible to write in an expression.
const (
	hiddenSuccess   = " success"
	hiddenFailure   = " failure"
	hiddenCancelled = " cancelled"
	hiddenBudget    = " budget"
	hiddenConcat    = " concat"
	hiddenAdd       = " add"
)

// statusFunctions are the status functions, in the order messages list them.
var statusFunctions = []string{"success", "failure", "always", "cancelled"}

// allowedBuiltins are expr's own builtins that stay available: pure, deterministic, and bounded by the
// VM's memory budget or by the size of their input without allocating. Everything else expr offers
// (now, date, duration, timezone, $env, fromJSON, toJSON, repeat, reduce, sort, ...) is unavailable;
// TestDisabledBuiltins proves it for every name in expr's builtin list.
var allowedBuiltins = map[string]bool{
	"len": true, "abs": true, "min": true, "max": true, "int": true, "float": true,
	"ceil": true, "floor": true, "round": true,
	"trim": true, "trimPrefix": true, "trimSuffix": true, "hasPrefix": true, "hasSuffix": true,
	"indexOf": true, "lastIndexOf": true,
	"all": true, "any": true, "none": true, "one": true, "filter": true, "map": true, "count": true,
	"first": true, "last": true,
}

// budgetedFunctions replace expr's builtins of the same names with versions that charge the strings
// they build to the evaluation's budget.
var budgetedFunctions = map[string]bool{"lower": true, "upper": true, "split": true, "join": true, "string": true}

// functionNames lists every function an expression of this kind may call, for messages.
func functionNames(kind exprKind) []string {
	var names []string
	for n := range allowedBuiltins {
		names = append(names, n)
	}
	for n := range budgetedFunctions {
		names = append(names, n)
	}
	slices.Sort(names)
	if kind == kindCondition {
		names = append(slices.Clone(statusFunctions), names...)
	}
	return names
}

// exprKind is what an expression is for.
type exprKind uint8

const (
	kindCondition exprKind = iota // an if: boolean, may call the status functions
	kindTemplate                  // a ${{ }} part: a string, number or bool
)

// exprScope is which names an expression may read.
type exprScope uint8

const (
	scopeParams exprScope = iota // the playbook's env and runs_on: params only (rendered before any step)
	scopeStep                    // anything in a step: params, env, steps, run
)

// statusMask records which status functions an expression calls.
type statusMask uint8

func statusBit(name string) statusMask {
	if i := slices.Index(statusFunctions, strings.TrimSuffix(name, "()")); i >= 0 {
		return 1 << i
	}
	return 0
}

// ref is one read of params.<name>, env.<NAME> or steps.<id>, at a rune offset of the source.
type ref struct {
	name string
	off  int
}

// exprError is a problem with an expression at a rune offset of its source.
type exprError struct {
	off int
	msg string
}

// compiled is the result of compiling one expression: the program or the errors, and what it reads.
type compiled struct {
	src      string
	prog     *vm.Program
	errs     []exprError
	calls    statusMask
	params   []ref
	env      []ref
	steps    []ref
	outputs  []outputRef
	readsRun bool
}

// outputRef is one read of steps.<id>.outputs (Output "": the whole map) or steps.<id>.outputs.<name>,
// at the rune offset of the step id. Such a value came from a command, so validate warns where one is put
// into a shell command.
type outputRef struct {
	step, output string
	off          int
}

// static reports whether the expression reads nothing but params and env.
func (c *compiled) static() bool { return len(c.steps) == 0 && !c.readsRun }

// stepIDs returns the distinct step ids the expression reads.
func (c *compiled) stepIDs() []string {
	var ids []string
	for _, r := range c.steps {
		if !slices.Contains(ids, r.name) {
			ids = append(ids, r.name)
		}
	}
	return ids
}

// evalInfo is what evaluation needs to know about the playbook: the declared params and env. It is
// shared by every Condition and Template of a playbook and never modified after loading.
type evalInfo struct {
	params   []*Param
	envNames []string
}

// exprCompiler compiles the expressions of one playbook being loaded. Not safe for concurrent use;
// discarded once the playbook is loaded.
type exprCompiler struct {
	info    *evalInfo
	configs map[[2]uint8]*conf.Config
	cache   map[cacheKey]*compiled
}

type cacheKey struct {
	kind  exprKind
	scope exprScope
	src   string
}

func newExprCompiler(info *evalInfo) *exprCompiler {
	return &exprCompiler{info: info, configs: map[[2]uint8]*conf.Config{}, cache: map[cacheKey]*compiled{}}
}

func paramExprType(t ParamType) types.Type {
	switch t {
	case ParamInt:
		return types.Int
	case ParamNumber:
		return types.Float64
	case ParamBool:
		return types.Bool
	}
	return types.String
}

// stepStateType is the type of steps.<id>.
var stepStateType = types.Map{
	"status":    types.String,
	"exit_code": types.Int,
	"outputs":   types.TypeOf(map[string]string{}),
	"attempts":  types.Int,
}

var runStateType = types.Map{"id": types.String, "name": types.String, "status": types.String}

// config builds (once per kind and scope) the expr configuration: the typed context, the allowed
// builtins, the budgeted functions and the node cap.
func (ec *exprCompiler) config(kind exprKind, scope exprScope) *conf.Config {
	key := [2]uint8{uint8(kind), uint8(scope)}
	if c, ok := ec.configs[key]; ok {
		return c
	}
	params := types.Map{}
	for _, p := range ec.info.params {
		params[p.Name] = paramExprType(p.Type)
	}
	env := types.Map{"params": params, hiddenBudget: types.TypeOf(&evalBudget{})}
	if scope == scopeStep {
		envVars := types.Map{}
		for _, n := range ec.info.envNames {
			envVars[n] = types.String
		}
		env["env"] = envVars
		env["steps"] = types.Map{types.Extra: stepStateType}
		env["run"] = runStateType
		if kind == kindCondition {
			env[hiddenSuccess] = types.Bool
			env[hiddenFailure] = types.Bool
			env[hiddenCancelled] = types.Bool
		}
	}
	opts := []expr.Option{
		expr.Env(env),
		expr.DisableAllBuiltins(),
		expr.MaxNodes(MaxExpressionNodes),
		expr.Function("lower", budgetLower, new(func(*evalBudget, string) string)),
		expr.Function("upper", budgetUpper, new(func(*evalBudget, string) string)),
		expr.Function("split", budgetSplit, new(func(*evalBudget, string, string) []string)),
		expr.Function("join", budgetJoin,
			new(func(*evalBudget, []string, string) string), new(func(*evalBudget, []string) string),
			new(func(*evalBudget, []any, string) string), new(func(*evalBudget, []any) string)),
		expr.Function("string", budgetString, new(func(*evalBudget, any) string)),
		expr.Function(hiddenConcat, budgetConcat, new(func(*evalBudget, string, string) string)),
		expr.Function(hiddenAdd, budgetAdd, new(func(*evalBudget, any, any) any)),
	}
	for name := range allowedBuiltins {
		opts = append(opts, expr.EnableBuiltin(name))
	}
	if kind == kindCondition {
		opts = append(opts, expr.AsBool())
	}
	c := conf.CreateNew()
	for _, o := range opts {
		o(c)
	}
	for name := range c.Disabled {
		delete(c.Builtins, name)
	}
	ec.configs[key] = c
	return c
}

// compile compiles src, from the cache when the same text was compiled for the same kind and scope.
func (ec *exprCompiler) compile(src string, kind exprKind, scope exprScope) *compiled {
	key := cacheKey{kind, scope, src}
	if c, ok := ec.cache[key]; ok {
		return c
	}
	c := ec.compileNew(src, kind, scope)
	ec.cache[key] = c
	return c
}

func (ec *exprCompiler) compileNew(src string, kind exprKind, scope exprScope) (c *compiled) {
	c = &compiled{src: src}
	if len(src) > MaxExpressionLength {
		c.errs = append(c.errs, exprError{0, fmt.Sprintf("expression is %d bytes long; the limit is %d: move the logic into a step", len(src), MaxExpressionLength)})
		return c
	}
	if strings.TrimSpace(src) == "" {
		c.errs = append(c.errs, exprError{0, "empty expression"})
		return c
	}
	defer func() {
		// The parser, checker and compiler are not supposed to panic, but a panic while loading one
		// expression must become an error about it, not a crash of validate.
		if r := recover(); r != nil {
			c.prog = nil
			c.errs = append(c.errs, exprError{0, fmt.Sprintf("cannot compile this expression (%v)", r)})
		}
	}()
	cfg := ec.config(kind, scope)
	tree, err := parser.ParseWithConfig(src, cfg)
	if err != nil {
		c.errs = append(c.errs, fileError(err, src, "syntax error: "))
		return c
	}
	a := &analyzer{ec: ec, c: c, kind: kind, scope: scope,
		rooted: map[*ast.IdentifierNode]bool{}, callees: map[*ast.IdentifierNode]bool{}}
	ast.Walk(&tree.Node, roots{a})
	ast.Walk(&tree.Node, a)
	if len(c.errs) > 0 {
		return c
	}
	t, err := checker.Check(tree, cfg)
	if err != nil {
		c.errs = append(c.errs, typeError(err, src, tree.Node))
		return c
	}
	if kind == kindTemplate && t != nil {
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
			c.errs = append(c.errs, exprError{0, fmt.Sprintf("a ${{ }} in text must give a string, number or bool, not %s; use join() for lists", exprTypeName(t))})
			return c
		}
	}
	cp := &concatPatcher{}
	ast.Walk(&tree.Node, cp)
	if cp.patched {
		if _, err := checker.Check(tree, cfg); err != nil {
			c.errs = append(c.errs, typeError(err, src, tree.Node))
			return c
		}
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		c.errs = append(c.errs, fileError(err, src, ""))
		return c
	}
	prog, err := compiler.Compile(tree, cfg)
	if err != nil {
		c.errs = append(c.errs, fileError(err, src, ""))
		return c
	}
	c.prog = prog
	return c
}

func exprTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a map"
	}
	return t.String()
}

// fileError turns an error of expr into an exprError at its rune offset, rewording the messages users
// meet most.
func fileError(err error, src, prefix string) exprError {
	var fe *file.Error
	if !errors.As(err, &fe) {
		fe = &file.Error{Message: err.Error()}
	}
	msg := fe.Message
	switch {
	case strings.HasPrefix(msg, "expected bool, but got "):
		msg = "this expression gives " + strings.TrimPrefix(msg, "expected bool, but got ") + ", but an if must give true or false; compare it, e.g. x == \"value\""
	case strings.Contains(msg, "exceeds maximum allowed nodes"):
		return exprError{0, fmt.Sprintf("expression is too complex (more than %d nodes); move the logic into a step", MaxExpressionNodes)}
	case strings.Contains(msg, "(mismatched types "):
		msg += "; convert one side with int(), float() or string()"
	case strings.HasPrefix(msg, "cannot use ") && strings.Contains(msg, " as argument (type "):
		msg = strings.TrimSpace(msg) + "; convert it with string(), int() or float()"
	case strings.HasPrefix(msg, "type ") && strings.Contains(msg, " has no field "):
		msg += "; only params, env, steps.<id>, steps.<id>.outputs and run have fields"
	}
	off := fe.From
	if off < 0 || off > utf8.RuneCountInString(src) {
		off = 0
	}
	return exprError{off, prefix + msg}
}

// typeError is fileError for an error of the type checker: a mismatch of types in an operation on an
// output (steps.<id>.outputs...) also says that outputs are strings, the usual cause; a mismatch that
// involves no output does not, as the hint would send the reader looking for one.
func typeError(err error, src string, root ast.Node) exprError {
	e := fileError(err, src, "")
	var fe *file.Error
	if errors.As(err, &fe) && strings.Contains(fe.Message, "(mismatched types ") && operatesOnOutput(root, fe.From) {
		e.msg += " (outputs are always strings)"
	}
	return e
}

// operatesOnOutput reports whether the operation the checker reported at rune offset off (a binary
// operator) has steps.<id>.outputs among its operands, at any depth.
func operatesOnOutput(root ast.Node, off int) bool {
	found := false
	ast.Find(root, func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryNode); ok && b.Location().From == off {
			found = ast.Find(b, isOutputsNode) != nil
		}
		return found
	})
	return found
}

// isOutputsNode reports whether n is steps.<id>.outputs (the map, or through it an output).
func isOutputsNode(n ast.Node) bool {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return false
	}
	prop, ok := m.Property.(*ast.StringNode)
	if !ok || prop.Value != "outputs" {
		return false
	}
	inner, ok := m.Node.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, ok := inner.Node.(*ast.IdentifierNode)
	return ok && id.Value == "steps"
}

// roots is the first pass of the analysis: it finds the identifiers that are the object of a member
// access (params in params.x) or the callee of a call, so that the second pass can tell them from bare
// names.
type roots struct{ a *analyzer }

func (r roots) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok {
			r.a.rooted[id] = true
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			r.a.callees[id] = true
		}
	case *ast.VariableDeclaratorNode:
		r.a.lets = append(r.a.lets, n.Name)
	}
}

// analyzer is the second pass: it checks names and functions, records reads and patches the tree.
type analyzer struct {
	ec      *exprCompiler
	c       *compiled
	kind    exprKind
	scope   exprScope
	rooted  map[*ast.IdentifierNode]bool
	callees map[*ast.IdentifierNode]bool
	lets    []string // names declared with let (refused once, not again at each use)
}

func (a *analyzer) errorf(n ast.Node, format string, args ...any) {
	a.c.errs = append(a.c.errs, exprError{n.Location().From, fmt.Sprintf(format, args...)})
}

// contextNames are the names an expression of this scope may read.
func (a *analyzer) contextNames() []string {
	if a.scope == scopeParams {
		return []string{"params"}
	}
	return []string{"params", "env", "steps", "run"}
}

func (a *analyzer) Visit(np *ast.Node) {
	switch n := (*np).(type) {
	case *ast.IdentifierNode:
		if a.callees[n] {
			return
		}
		a.identifier(n)
	case *ast.MemberNode:
		a.member(n)
	case *ast.CallNode:
		a.call(np, n)
	case *ast.BuiltinNode:
		if !allowedBuiltins[n.Name] {
			a.unavailable(n, n.Name)
		}
	case *ast.VariableDeclaratorNode:
		a.errorf(n, "let is not supported in playbook expressions; write the value where it is used")
	}
}

func (a *analyzer) identifier(n *ast.IdentifierNode) {
	name := n.Value
	if strings.HasPrefix(name, "$") {
		a.errorf(n, "%s is not available in playbook expressions; read params.<name>, env.<NAME>, steps.<id> or run", name)
		return
	}
	if !slices.Contains(a.contextNames(), name) {
		switch {
		case slices.Contains(a.lets, name):
		case statusBit(name) != 0 && a.kind == kindCondition && a.scope == scopeStep:
			a.errorf(n, "%s is a function: write %s()", name, name)
		case statusBit(name) != 0:
			a.errorf(n, "%s() can only be used in if", name)
		case a.scope == scopeParams && slices.Contains([]string{"env", "steps", "run"}, name):
			a.errorf(n, "only params can be read here: the playbook's env and runs_on are set before any step runs (a step's own env can read steps)")
		case didYouMean(name, a.contextNames()) != "":
			a.errorf(n, "unknown name %q%s", name, didYouMean(name, a.contextNames()))
		default:
			a.errorf(n, "unknown name %q; expressions can read %s", name, strings.Join(a.contextNames(), ", "))
		}
		return
	}
	if a.rooted[n] {
		return // checked with its member access
	}
	switch name {
	case "steps":
		a.errorf(n, "steps must be followed by a step id, as in steps.build.status")
	case "run":
		a.c.readsRun = true
	case "params":
		// Reading the whole map reads every param.
		for _, p := range a.ec.info.params {
			a.c.params = append(a.c.params, ref{p.Name, n.Location().From})
		}
	case "env":
		for _, e := range a.ec.info.envNames {
			a.c.env = append(a.c.env, ref{e, n.Location().From})
		}
	}
}

// isOutputs reports whether n is steps.<id>.outputs.
func (a *analyzer) isOutputs(n *ast.MemberNode) bool {
	prop, ok := n.Property.(*ast.StringNode)
	if !ok || prop.Value != "outputs" {
		return false
	}
	inner, ok := n.Node.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, ok := inner.Node.(*ast.IdentifierNode)
	return ok && id.Value == "steps" && slices.Contains(a.contextNames(), "steps")
}

// member checks params.x, env.X, steps.id, steps.id.field and run.field.
func (a *analyzer) member(n *ast.MemberNode) {
	if inner, ok := n.Node.(*ast.MemberNode); ok {
		if id, ok := inner.Node.(*ast.IdentifierNode); ok && id.Value == "steps" && slices.Contains(a.contextNames(), "steps") {
			fields := []string{"status", "exit_code", "outputs", "attempts"}
			prop, ok := n.Property.(*ast.StringNode)
			if !ok {
				a.errorf(n.Property, "write the field of a step out: steps.<id>.status, exit_code, outputs or attempts")
			} else if !slices.Contains(fields, prop.Value) {
				a.errorf(n.Property, "steps.<id> has no field %q%s", prop.Value, orList(prop.Value, fields, "it has"))
			} else if step, ok := inner.Property.(*ast.StringNode); ok && prop.Value == "outputs" {
				a.c.outputs = append(a.c.outputs, outputRef{step: step.Value, off: step.Location().From})
			}
		} else if a.isOutputs(inner) {
			// steps.<id>.outputs.<name>: the walk visits children first, so steps.<id>.outputs is recorded
			// already; name the output it reads.
			step := inner.Node.(*ast.MemberNode).Property
			if prop, ok := n.Property.(*ast.StringNode); ok {
				for i := range a.c.outputs {
					if o := &a.c.outputs[i]; o.off == step.Location().From && o.output == "" {
						o.output = prop.Value
					}
				}
			}
		}
		return
	}
	id, ok := n.Node.(*ast.IdentifierNode)
	if !ok || !slices.Contains(a.contextNames(), id.Value) {
		return
	}
	prop, ok := n.Property.(*ast.StringNode)
	if !ok {
		a.errorf(id, "write the name out: %s.<name> or %s[\"name\"], not a computed index", id.Value, id.Value)
		return
	}
	off := prop.Location().From
	switch id.Value {
	case "params":
		var names []string
		for _, p := range a.ec.info.params {
			names = append(names, p.Name)
		}
		if !slices.Contains(names, prop.Value) {
			if len(names) == 0 {
				a.errorf(prop, "unknown param %q: the playbook declares no params", prop.Value)
			} else {
				a.errorf(prop, "unknown param %q%s", prop.Value, orList(prop.Value, names, "declared params:"))
			}
			return
		}
		a.c.params = append(a.c.params, ref{prop.Value, off})
	case "env":
		if !slices.Contains(a.ec.info.envNames, prop.Value) {
			a.errorf(prop, "env.%s is not in the playbook's env%s (expressions read only the env declared at the top of the playbook, never the runner's environment)", prop.Value, didYouMean(prop.Value, a.ec.info.envNames))
			return
		}
		a.c.env = append(a.c.env, ref{prop.Value, off})
	case "steps":
		a.c.steps = append(a.c.steps, ref{prop.Value, off})
	case "run":
		fields := []string{"id", "name", "status"}
		if !slices.Contains(fields, prop.Value) {
			a.errorf(prop, "run has no field %q%s", prop.Value, orList(prop.Value, fields, "it has"))
			return
		}
		a.c.readsRun = true
	}
}

func (a *analyzer) call(np *ast.Node, n *ast.CallNode) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return // a method call: the checker refuses it (the context has no methods)
	}
	name := id.Value
	switch {
	case statusBit(name) != 0:
		if a.kind != kindCondition || a.scope != scopeStep {
			a.errorf(n, "%s() can only be used in if", name)
			return
		}
		if len(n.Arguments) > 0 {
			a.errorf(n, "%s() takes no arguments", name)
			return
		}
		a.c.calls |= statusBit(name)
		var repl ast.Node
		switch name {
		case "always":
			repl = &ast.BoolNode{Value: true}
		case "success":
			repl = &ast.IdentifierNode{Value: hiddenSuccess}
		case "failure":
			repl = &ast.IdentifierNode{Value: hiddenFailure}
		case "cancelled":
			repl = &ast.IdentifierNode{Value: hiddenCancelled}
		}
		ast.Patch(np, repl)
	case budgetedFunctions[name]:
		n.Arguments = append([]ast.Node{&ast.IdentifierNode{Value: hiddenBudget}}, n.Arguments...)
	default:
		a.unavailable(n, name)
	}
}

// unavailable reports a call of a function that is not on the allow-list.
func (a *analyzer) unavailable(n ast.Node, name string) {
	why := ""
	switch name {
	case "now", "date", "duration", "timezone":
		why = " (expressions must give the same result on every machine and every day; compute times in a step and pass them as outputs)"
	case "env", "getenv", "$env", "readFile", "file":
		why = " (expressions read the playbook's env as env.<NAME>, never the runner's environment or files)"
	}
	if _, isBuiltin := builtin.Index[name]; isBuiltin || why != "" {
		a.errorf(n, "function %s() is not available in playbook expressions%s", name, why)
		return
	}
	a.errorf(n, "unknown function %s()%s", name, didYouMean(name, functionNames(a.kind)))
}

// concatPatcher runs after type checking: it routes string concatenation through the budget. Where a
// side's type is unknown until run time (inside predicates over lists of any), it routes + through
// budgetAdd, which charges strings and leaves numbers to expr.
type concatPatcher struct{ patched bool }

var stringType = reflect.TypeFor[string]()

func (p *concatPatcher) Visit(np *ast.Node) {
	n, ok := (*np).(*ast.BinaryNode)
	if !ok || n.Operator != "+" {
		return
	}
	lt, rt := n.Left.Type(), n.Right.Type()
	isString := func(t reflect.Type) bool { return t != nil && t.Kind() == reflect.String }
	unknown := func(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }
	var fn string
	switch {
	case isString(lt) && isString(rt):
		if _, l := n.Left.(*ast.StringNode); l {
			if _, r := n.Right.(*ast.StringNode); r {
				return // two literals: the optimizer joins them at compile time
			}
		}
		fn = hiddenConcat
	case (unknown(lt) && !isNumber(rt)) || (unknown(rt) && !isNumber(lt)):
		fn = hiddenAdd
	default:
		return
	}
	ast.Patch(np, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: fn},
		Arguments: []ast.Node{&ast.IdentifierNode{Value: hiddenBudget}, n.Left, n.Right},
	})
	p.patched = true
}

func isNumber(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// evalBudget is the string budget of one evaluation: bytes that may still be built. It is a plain
// struct without methods, since it travels in the expression's context.
type evalBudget struct{ left int }

var errStringBudget = fmt.Errorf("expression builds more than %d bytes of strings", EvalStringBudget)

func charge(b *evalBudget, n int) error {
	if n > b.left {
		b.left = 0
		return errStringBudget
	}
	b.left -= n
	return nil
}

// budgetArg unpacks the budget. It and stringArg check argument types the checker already proved; the checks
// only matter when a value's type was unknown at compile time.
func budgetArg(args []any) (*evalBudget, error) {
	if len(args) == 0 {
		return nil, errors.New("internal error: missing budget")
	}
	b, ok := args[0].(*evalBudget)
	if !ok || b == nil {
		return nil, errors.New("internal error: missing budget")
	}
	return b, nil
}

func stringArg(fn string, args []any, i int) (string, error) {
	if i >= len(args) {
		return "", fmt.Errorf("%s: not enough arguments", fn)
	}
	s, ok := args[i].(string)
	if !ok {
		return "", fmt.Errorf("%s: argument %d is %T, not a string", fn, i, args[i])
	}
	return s, nil
}

func budgetCase(fn string, f func(string) string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		b, err := budgetArg(args)
		if err != nil {
			return nil, err
		}
		s, err := stringArg(fn, args, 1)
		if err != nil {
			return nil, err
		}
		if err := charge(b, len(s)); err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

var (
	budgetLower = budgetCase("lower", strings.ToLower)
	budgetUpper = budgetCase("upper", strings.ToUpper)
)

func budgetSplit(args ...any) (any, error) {
	b, err := budgetArg(args)
	if err != nil {
		return nil, err
	}
	s, err := stringArg("split", args, 1)
	if err != nil {
		return nil, err
	}
	sep, err := stringArg("split", args, 2)
	if err != nil {
		return nil, err
	}
	// The strings share s's bytes; the slice costs a header per piece.
	pieces := strings.Count(s, sep) + 1
	if sep == "" {
		pieces = utf8.RuneCountInString(s)
	}
	if err := charge(b, 16*pieces); err != nil {
		return nil, err
	}
	return strings.Split(s, sep), nil
}

func budgetJoin(args ...any) (any, error) {
	b, err := budgetArg(args)
	if err != nil {
		return nil, err
	}
	sep := ""
	if len(args) > 2 {
		if sep, err = stringArg("join", args, 2); err != nil {
			return nil, err
		}
	}
	var items []string
	switch l := args[1].(type) {
	case []string:
		items = l
	case []any:
		items = make([]string, len(l))
		for i, v := range l {
			s, ok := scalarString(v)
			if !ok {
				return nil, fmt.Errorf("join: item %d is %T; only strings, numbers and bools can be joined", i, v)
			}
			items[i] = s
		}
	default:
		return nil, fmt.Errorf("join: %T is not a list", args[1])
	}
	n := len(sep) * max(len(items)-1, 0)
	for _, s := range items {
		n += len(s)
	}
	if err := charge(b, n); err != nil {
		return nil, err
	}
	return strings.Join(items, sep), nil
}

func budgetString(args ...any) (any, error) {
	b, err := budgetArg(args)
	if err != nil {
		return nil, err
	}
	if len(args) != 2 {
		return nil, errors.New("string: want one argument")
	}
	s, ok := scalarString(args[1])
	if !ok {
		return nil, fmt.Errorf("string: %T is not a string, number or bool", args[1])
	}
	if err := charge(b, len(s)); err != nil {
		return nil, err
	}
	return s, nil
}

func budgetConcat(args ...any) (any, error) {
	b, err := budgetArg(args)
	if err != nil {
		return nil, err
	}
	l, err := stringArg("+", args, 1)
	if err != nil {
		return nil, err
	}
	r, err := stringArg("+", args, 2)
	if err != nil {
		return nil, err
	}
	if err := charge(b, len(l)+len(r)); err != nil {
		return nil, err
	}
	return l + r, nil
}

func budgetAdd(args ...any) (any, error) {
	b, err := budgetArg(args)
	if err != nil {
		return nil, err
	}
	if len(args) != 3 {
		return nil, errors.New("+: want two operands")
	}
	l, lok := args[1].(string)
	r, rok := args[2].(string)
	if lok && rok {
		if err := charge(b, len(l)+len(r)); err != nil {
			return nil, err
		}
		return l + r, nil
	}
	return runtime.Add(args[1], args[2]), nil // numbers; panics (recovered by the VM) on other types
}

// scalarString renders a value the way templates do: strings as they are, numbers in their shortest
// form, bools as true or false, nil as the empty string. It reports false for lists and maps.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return formatFloat(v), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.Float32:
		return formatFloat(rv.Float()), true
	}
	return "", false
}

// formatFloat writes a number in its shortest form: 3 not 3.0, 0.1 not 0.10000000000000001, and
// exponents only for very large or small numbers.
func formatFloat(f float64) string {
	if math.Abs(f) >= 1e21 || (f != 0 && math.Abs(f) < 1e-6) {
		s := strconv.FormatFloat(f, 'g', -1, 64)
		return strings.NewReplacer("e-0", "e-", "e+0", "e+").Replace(s)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// evalEnv builds the context of one evaluation: plain data (maps, strings, numbers, bools and the
// budget, a struct without methods). Only the steps the expression reads are included, so building it
// costs the size of what is read, not of the run.
func (info *evalInfo) evalEnv(c *compiled, s *State, f *StatusFuncs) map[string]any {
	if s == nil {
		s = &State{}
	}
	params := make(map[string]any, len(info.params))
	for _, p := range info.params {
		params[p.Name] = exprParam(p.Type, s.Params[p.Name])
	}
	env := map[string]any{
		"params":     params,
		hiddenBudget: &evalBudget{left: EvalStringBudget},
	}
	if len(c.env) > 0 {
		vars := make(map[string]any, len(info.envNames))
		for _, n := range info.envNames {
			vars[n] = s.Env[n]
		}
		env["env"] = vars
	}
	if ids := c.stepIDs(); len(ids) > 0 {
		steps := make(map[string]any, len(ids))
		for _, id := range ids {
			st := s.Steps[id]
			outputs := st.Outputs
			if outputs == nil {
				outputs = map[string]string{}
			}
			steps[id] = map[string]any{"status": st.Status, "exit_code": st.ExitCode, "outputs": outputs, "attempts": st.Attempts}
		}
		env["steps"] = steps
	}
	if c.readsRun {
		env["run"] = map[string]any{"id": s.Run.ID, "name": s.Run.Name, "status": s.Run.Status}
	}
	if f != nil {
		env[hiddenSuccess] = f.Success
		env[hiddenFailure] = f.Failure
		env[hiddenCancelled] = f.Cancelled
	}
	return env
}

// exprParam converts a resolved param to the Go type its expression type has (int64 becomes int), and a
// missing one to its type's zero value, so that typed operations never see the wrong type.
func exprParam(t ParamType, v any) any {
	switch t {
	case ParamInt:
		switch v := v.(type) {
		case int64:
			return int(v)
		case int:
			return v
		case float64:
			return int(v)
		}
		return 0
	case ParamNumber:
		switch v := v.(type) {
		case float64:
			return v
		case int64:
			return float64(v)
		case int:
			return float64(v)
		}
		return 0.0
	case ParamBool:
		b, _ := v.(bool)
		return b
	}
	if s, ok := v.(string); ok {
		return s
	}
	if s, ok := scalarString(v); ok && v != nil {
		return s
	}
	return ""
}

// run evaluates a compiled expression with the VM's memory budget. Panics inside the VM (memory
// budget exceeded, a budgeted function's error, a conversion that fails) come back as errors.
func (info *evalInfo) run(c *compiled, s *State, f *StatusFuncs) (out any, err error) {
	if c.prog == nil {
		return nil, errors.New("expression was not compiled")
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%v", r)
		}
	}()
	machine := vm.VM{MemoryBudget: EvalMemoryBudget}
	out, err = machine.Run(c.prog, info.evalEnv(c, s, f))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, errors.New(fe.Message)
		}
		return nil, err
	}
	return out, nil
}
