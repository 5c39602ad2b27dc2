package playbook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"mvdan.cc/sh/v3/syntax"
)

// builder turns the decoded file into a Playbook, checking what the struct tags cannot say: params'
// types, the kind of each step, the graph, and every expression.
type builder struct {
	d        *decoder
	lines    []int // byte offset of the start of each line of src
	src      []byte
	info     *evalInfo
	ec       *exprCompiler
	warnings ErrorList

	pb        *Playbook
	index     map[string]int     // step id -> index in pb.Steps
	needNodes [][]*yaml.Node     // per step, the node of each entry of pb.Steps[i].Needs
	reads     [][]stepRead       // per step, the steps its expressions read
	warned    map[[2]string]bool // (step, param) pairs already warned about

	topQueue, defaultQueue *Template // runs_on at the top level and under defaults; nil when not given
	scripts                Scripts   // ParseScripts: the script files' content; nil = read the disk

	shellParsers map[syntax.LangVariant]*syntax.Parser // one per dialect, made when first needed
}

// stepRead is one steps.<id> in an expression of a step, positioned in the file.
type stepRead struct {
	id        string
	line, col int
}

func newBuilder(d *decoder, src []byte) *builder {
	b := &builder{d: d, src: src, lines: []int{0}, warned: map[[2]string]bool{}}
	for i, c := range src {
		if c == '\n' {
			b.lines = append(b.lines, i+1)
		}
	}
	return b
}

func (b *builder) errorf(n *yaml.Node, format string, args ...any) { b.d.errorf(n, format, args...) }

func (b *builder) build(raw *rawPlaybook, abs string) *Playbook {
	pb := &Playbook{
		File:        abs,
		Dir:         filepath.Dir(abs),
		Version:     int(raw.Version.V),
		Name:        raw.Name.V,
		Description: raw.Description.V,
		MaxParallel: int(raw.MaxParallel.V),
		Timeout:     raw.Timeout.V,
		FailFast:    true,
		OutputLimit: raw.OutputLimit.V,
		byID:        map[string]*Step{},
	}
	if raw.FailFast.set() {
		pb.FailFast = raw.FailFast.V
	}
	b.pb = pb
	pb.Params = b.params(raw)
	b.info = &evalInfo{params: pb.Params}
	for _, e := range raw.Env.Entries {
		b.info.envNames = append(b.info.envNames, e.Name)
	}
	b.ec = newExprCompiler(b.info)
	pb.Env = b.env(raw.Env, "", scopeParams, -1)
	if raw.RunsOn.set() {
		b.topQueue = b.queue(raw.RunsOn, "runs_on")
	}
	if raw.Defaults != nil && raw.Defaults.RunsOn.set() {
		b.defaultQueue = b.queue(raw.Defaults.RunsOn, "runs_on of defaults")
	}
	pb.Concurrency = b.concurrency(&raw.Concurrency)
	b.steps(raw)
	b.graph()
	b.checkReads()
	return pb
}

// params converts the declared params, checking defaults and enums against the declared type.
func (b *builder) params(raw *rawPlaybook) []*Param {
	var out []*Param
	envNames := map[string]string{}
	for _, e := range raw.Params.Entries {
		rp := e.Value
		p := &Param{Name: e.Name, Type: ParamString, Description: rp.Description.V,
			Required: rp.Required.V, Secret: rp.Secret.V}
		if rp.Type.set() && rp.Type.V != "" {
			p.Type = ParamType(rp.Type.V)
		}
		where := fmt.Sprintf("param %q", e.Name)
		if other, dup := envNames[ParamEnvName(e.Name)]; dup {
			b.errorf(e.Key, "params %q and %q would both be exported as $%s; rename one", other, e.Name, ParamEnvName(e.Name))
		}
		envNames[ParamEnvName(e.Name)] = e.Name
		for _, item := range rp.Enum.Items {
			if v, ok := b.typedValue(p.Type, &item, "enum value of "+where, false); ok {
				if slices.Contains(p.Enum, v) {
					b.errorf(item.Val, "enum value %s of %s is listed twice", item.V, where)
					continue
				}
				p.Enum = append(p.Enum, v)
			}
		}
		if rp.Default.set() {
			// A secret's default is not repeated: validate's messages reach CI logs.
			if v, ok := b.typedValue(p.Type, &rp.Default, "default of "+where, p.Secret); ok {
				switch {
				case len(p.Enum) > 0 && !slices.Contains(p.Enum, v) && p.Secret:
					b.errorf(rp.Default.Val, "default of %s (secret, not shown) is not in its enum (%s)", where, enumText(p.Enum))
				case len(p.Enum) > 0 && !slices.Contains(p.Enum, v):
					b.errorf(rp.Default.Val, "default of %s is %s, which is not in its enum (%s)", where, rp.Default.V, enumText(p.Enum))
				}
				p.Default = v
			}
		}
		out = append(out, p)
	}
	return out
}

// typedValue reads a default or enum value as the param's type. A string param keeps the text as
// written; the other types need the matching YAML type (a quoted "3" is not an int). With secret, an
// error does not show the value.
func (b *builder) typedValue(t ParamType, s *scalarField, what string, secret bool) (any, bool) {
	if !s.set() {
		return nil, false // already reported by the decoder
	}
	if t == ParamString {
		return s.V, true
	}
	ok := false
	switch t {
	case ParamInt:
		ok = s.Tag == "!!int"
	case ParamNumber:
		ok = s.Tag == "!!int" || s.Tag == "!!float"
	case ParamBool:
		ok = s.Tag == "!!bool"
	}
	v, err := parseParam(t, s.V)
	if !ok || err != nil {
		switch {
		case secret:
			b.errorf(s.Val, "%s must be %s; the value given (secret, not shown) is not", what, typeWords(t))
		case t == ParamInt && s.Tag != "!!str" && errors.Is(err, strconv.ErrRange):
			b.errorf(s.Val, "%s is too large for a whole number (int): it must be between %d and %d", what, int64(math.MinInt64), int64(math.MaxInt64))
		case ok && t == ParamNumber:
			b.errorf(s.Val, "%s must be a finite number, not %s", what, describeNode(s.Val))
		default:
			b.errorf(s.Val, "%s must be %s, not %s", what, typeWords(t), describeNode(s.Val))
		}
		return nil, false
	}
	return v, true
}

// env converts an env mapping to EnvVars whose values are templates.
func (b *builder) env(m namedMap[scalarField], stepWhere string, scope exprScope, stepIdx int) []EnvVar {
	var out []EnvVar
	for _, e := range m.Entries {
		if strings.HasPrefix(e.Name, "PLAYBOOK_") {
			b.errorf(e.Key, "env name %s is reserved: names starting with PLAYBOOK_ are set by playbook itself", e.Name)
			continue
		}
		where := fmt.Sprintf("env %q", e.Name)
		if stepWhere != "" {
			where += " of " + stepWhere
		}
		if !e.Value.set() {
			continue
		}
		out = append(out, EnvVar{Name: e.Name, Value: b.template(e.Value.Val, where, scope, stepIdx)})
	}
	return out
}

// template compiles the ${{ }} parts of the value of n. stepIdx is the step whose expressions these
// are (-1 for the playbook's env), for the checks of steps.<id> reads and warnings.
func (b *builder) template(n *yaml.Node, where string, scope exprScope, stepIdx int) *Template {
	text := n.Value
	t := &Template{raw: text, info: b.info}
	spans, unclosed := scanTemplate(text)
	if unclosed >= 0 {
		line, col := b.posIn(n, unclosed)
		hint := ""
		if n.Style == 0 && strings.Contains(n.LineComment, "}}") {
			hint = ` (YAML took everything after " #" for a comment: put the value in quotes)`
		}
		b.d.errorAt(line, col, "unclosed ${{ in %s; end the expression with }}%s", where, hint)
		return t
	}
	last := 0
	for _, sp := range spans {
		c := b.ec.compile(sp.expr, kindTemplate, scope)
		b.exprErrors(n, sp.exprOff, c, where)
		b.recordReads(n, sp.exprOff, c, stepIdx)
		t.parts = append(t.parts, templatePart{lit: text[last:sp.start], c: c})
		last = sp.end
	}
	if len(spans) > 0 && last < len(text) {
		t.parts = append(t.parts, templatePart{lit: text[last:]})
	}
	return t
}

// exprErrors reports the errors of a compiled expression at their positions in the file.
func (b *builder) exprErrors(n *yaml.Node, off int, c *compiled, where string) {
	for _, e := range c.errs {
		line, col := b.posIn(n, off+runeOffsetToByte(c.src, e.off))
		b.d.errorAt(line, col, "%s: %s", where, e.msg)
	}
}

func (b *builder) recordReads(n *yaml.Node, off int, c *compiled, stepIdx int) {
	if stepIdx < 0 {
		return
	}
	for _, r := range c.steps {
		line, col := b.posIn(n, off+runeOffsetToByte(c.src, r.off))
		b.reads[stepIdx] = append(b.reads[stepIdx], stepRead{r.name, line, col})
	}
}

// steps converts every step. Ids come first, so that needs can refer to steps further down.
func (b *builder) steps(raw *rawPlaybook) {
	pb := b.pb
	b.index = map[string]int{}
	firstAt := map[string]*yaml.Node{}
	for i := range raw.Steps {
		rs := &raw.Steps[i]
		s := &Step{ID: rs.ID.V, Name: rs.ID.V, If: defaultCondition()}
		if rs.Node != nil {
			s.Line, s.Col = rs.Node.Line, rs.Node.Column
		}
		if rs.ID.V != "" {
			if first, dup := firstAt[rs.ID.V]; dup {
				b.errorf(rs.ID.Val, "duplicate step id %q: also used by the step at line %d; ids must be unique", rs.ID.V, first.Line)
			} else {
				firstAt[rs.ID.V] = rs.ID.Val
				b.index[rs.ID.V] = i
				pb.byID[rs.ID.V] = s
			}
		}
		pb.Steps = append(pb.Steps, s)
	}
	b.needNodes = make([][]*yaml.Node, len(pb.Steps))
	b.reads = make([][]stepRead, len(pb.Steps))
	ids := make([]string, 0, len(b.index))
	for i, s := range pb.Steps {
		if j, ok := b.index[s.ID]; ok && j == i {
			ids = append(ids, s.ID)
		}
	}
	var defaults rawDefaults
	if raw.Defaults != nil {
		defaults = *raw.Defaults
	}
	for i := range raw.Steps {
		b.step(i, &raw.Steps[i], &defaults, ids)
	}
}

func (b *builder) step(i int, rs *rawStep, def *rawDefaults, ids []string) {
	s := b.pb.Steps[i]
	where := rawStep{}.whereIn(rs.Node, i)
	if rs.Name.set() {
		s.Name = rs.Name.V
	}

	// needs
	for _, n := range rs.Needs.Items {
		if !n.set() {
			continue
		}
		switch _, known := b.index[n.V]; {
		case n.V == s.ID:
			b.errorf(n.Val, "%s needs itself; remove %q from its needs", where, n.V)
		case slices.Contains(s.Needs, n.V):
			b.errorf(n.Val, "%s lists %q twice in needs", where, n.V)
		case !known:
			b.errorf(n.Val, "%s needs %q, which is not a step%s", where, n.V, didYouMean(n.V, ids))
		default:
			s.Needs = append(s.Needs, n.V)
			b.needNodes[i] = append(b.needNodes[i], n.Val)
		}
	}

	// what it runs: exactly one of run, exec, script, aws
	kinds := map[string]*node{"run": &rs.Run.node, "exec": &rs.Exec.node, "script": &rs.Script.node, "aws": {}}
	if rs.AWS != nil || keyNode(rs.Node, "aws") != rs.Node {
		kinds["aws"] = &node{Key: keyNode(rs.Node, "aws")}
	}
	var present []string
	for _, k := range stepKinds {
		if kinds[k].present() {
			if len(present) > 0 {
				b.errorf(keyNode(rs.Node, k), "%s has both %s and %s; a step runs exactly one of run, exec, script or aws", where, present[0], k)
			}
			present = append(present, k)
		}
	}
	if len(present) == 0 && rs.Node != nil && !b.d.suggestedAny(rs.Node, stepKinds) {
		b.errorf(rs.Node, "%s has nothing to run; give it one of run, exec, script or aws", where)
	}
	for k, need := range stepKeyNeeds {
		f := map[string]*node{"shell": &rs.Shell.node, "interpreter": &rs.Interpreter.node}[k]
		if f.present() && !kinds[need].present() {
			b.errorf(f.Key, "%s in %s only applies to %s", k, where, need)
		}
	}
	if rs.Run.set() {
		s.Run = b.template(rs.Run.Val, "run of "+where, scopeStep, i)
		b.warnShell(i, rs.Run.Val, s.Run, where)
	}
	for k, item := range rs.Exec.Items {
		if item.set() {
			s.Exec = append(s.Exec, b.template(item.Val, itemName("exec", k)+" of "+where, scopeStep, i))
		}
	}
	if rs.Script.set() {
		s.Script = b.script(rs.Script, where)
		if b.scripts != nil {
			sum := sha256.Sum256(b.scripts[s.Script])
			s.ScriptSHA256 = hex.EncodeToString(sum[:])
		} else {
			s.ScriptSHA256 = digestFile(s.Script)
		}
		s.Interpreter = rs.Interpreter.V
	}
	if rs.AWS != nil {
		s.AWS = &AWS{Service: rs.AWS.Service.V, Operation: rs.AWS.Operation.V, Profile: rs.AWS.Profile.V, Region: rs.AWS.Region.V}
		for k, item := range rs.AWS.Args.Items {
			if item.set() {
				s.AWS.Args = append(s.AWS.Args, b.template(item.Val, fmt.Sprintf("aws args item %d of %s", k+1, where), scopeStep, i))
			}
		}
	}

	// the rest, with defaults
	if rs.Run.present() {
		s.Shell = pick(rs.Shell.V, rs.Shell.set(), def.Shell.V)
	}
	if s.Shell != "" && strings.ContainsAny(s.Shell, " \t") {
		at := rs.Shell.at()
		if !rs.Shell.set() {
			at = def.Shell.at()
		}
		b.errorf(at, "shell %q must be a program (it runs as SHELL -c COMMAND); put options in the command, e.g. set -euo pipefail", s.Shell)
	}
	if rs.Run.set() {
		b.checkShell(rs.Run.Val, s.Shell, "run of "+where)
	}
	if rs.If.set() {
		s.If = b.condition(rs.If.Val, "if of "+where, i)
	}
	s.Env = b.env(rs.Env, where, scopeStep, i)
	if rs.Dir.set() {
		s.Dir = b.template(rs.Dir.Val, "dir of "+where, scopeStep, i)
	}
	s.Timeout = pick(rs.Timeout.V, rs.Timeout.set(), def.Timeout.V)
	s.ContinueOnError = pick(rs.ContinueOnError.V, rs.ContinueOnError.set(), def.ContinueOnError.V)
	s.StopSignal = pick(rs.StopSignal.V, rs.StopSignal.set(), def.StopSignal.V)
	s.StopGrace = pick(rs.StopGrace.V, rs.StopGrace.set(), def.StopGrace.V)
	switch {
	case rs.RunsOn.set():
		s.RunsOn = b.queue(rs.RunsOn, "runs_on of "+where)
	case def.RunsOn.set():
		s.RunsOn = b.defaultQueue
	default:
		s.RunsOn = b.topQueue
	}
	s.Retry = Retry{Attempts: 1}
	switch {
	case rs.Retry != nil:
		s.Retry = b.retry(rs.Retry, "retry of "+where)
	case def.Retry != nil:
		s.Retry = b.retry(def.Retry, "retry of defaults")
	}
}

func pick[T any](v T, set bool, def T) T {
	if set {
		return v
	}
	return def
}

// keyNode finds the key node of key in mapping n, for errors about a key that is present.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	if n != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i]
			}
		}
	}
	return n
}

func (b *builder) retry(r *rawRetry, where string) Retry {
	out := Retry{Attempts: int(r.Attempts.V), Delay: r.Delay.V, Backoff: r.Backoff.V, MaxDelay: r.MaxDelay.V}
	if out.Attempts == 0 {
		out.Attempts = 1 // missing or invalid: already reported
	}
	for _, c := range r.OnExitCodes.Items {
		out.OnExitCodes = append(out.OnExitCodes, int(c.V))
	}
	if r.MaxDelay.set() && r.Delay.set() && out.MaxDelay < out.Delay {
		b.errorf(r.MaxDelay.Val, "max_delay in %s (%s) is shorter than delay (%s)", where, out.MaxDelay, out.Delay)
	}
	return out
}

// script resolves a script path against the playbook's folder and checks that the file exists.
func (b *builder) script(f textField, where string) string {
	if strings.Contains(f.V, "${{") {
		b.errorf(f.Val, "script in %s is a file path and cannot hold ${{ }}; pass values through env", where)
		return ""
	}
	p := f.V
	if !filepath.IsAbs(p) {
		p = filepath.Join(b.pb.Dir, p)
	}
	if b.scripts != nil {
		if _, ok := b.scripts[p]; !ok {
			b.errorf(f.Val, "script file %q of %s was not sent with the playbook", f.V, where)
		}
		return p
	}
	st, err := os.Stat(p)
	switch {
	case err != nil:
		b.errorf(f.Val, "script file %q of %s does not exist (script paths are relative to the playbook's folder)", f.V, where)
	case st.IsDir():
		b.errorf(f.Val, "script %q of %s is a folder, not a file", f.V, where)
	}
	return p
}

// queue compiles a runs_on: a template over params, checked now when it holds no ${{ }}.
func (b *builder) queue(f textField, where string) *Template {
	t := b.template(f.Val, where, scopeParams, -1)
	if t.IsLiteral() {
		if err := CheckQueue(f.V); err != nil {
			b.errorf(f.Val, "%s: %v", where, err)
		}
	}
	return t
}

// digestFile is the hex SHA-256 of a script's content as the playbook was loaded, "" when it cannot
// be read (the step then fails when it starts, and says why). It is part of the step's fingerprint:
// a retry must not reuse a step whose script changed.
func digestFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// condition compiles an if.
func (b *builder) condition(n *yaml.Node, where string, stepIdx int) *Condition {
	src, off := stripWrapper(n.Value)
	if n.Tag == "!!bool" {
		src, off = n.Value, 0
	}
	c := b.ec.compile(src, kindCondition, scopeStep)
	b.exprErrors(n, off, c, where)
	b.recordReads(n, off, c, stepIdx)
	return &Condition{source: strings.TrimSpace(src), c: c, info: b.info}
}

// warnShell warns when a secret or a free-form string param, or a step's output, is put into a shell
// command with ${{ }}: its value becomes shell code (injection), and a secret also shows in the process
// list. An output is as untrusted as a free-form param: a command wrote it.
func (b *builder) warnShell(stepIdx int, n *yaml.Node, t *Template, where string) {
	spans, _ := scanTemplate(t.raw)
	for k, p := range t.parts {
		if p.c == nil || k >= len(spans) {
			continue
		}
		off := spans[k].exprOff
		for _, r := range p.c.params {
			param := b.paramByName(r.name)
			if param == nil || b.warned[[2]string{b.pb.Steps[stepIdx].ID, r.name}] {
				continue
			}
			var msg string
			switch {
			case param.Secret:
				msg = fmt.Sprintf("secret param %q is put into the shell command of %s with ${{ }}: the value becomes part of the command line and can run as shell code; use \"$%s\" in the command instead", r.name, where, ParamEnvName(r.name))
			case param.Type == ParamString && len(param.Enum) == 0:
				msg = fmt.Sprintf("free-form string param %q is put into the shell command of %s with ${{ }}: a value such as \"; rm -rf ~\" would run as shell code; use \"$%s\" in the command instead, or give the param an enum", r.name, where, ParamEnvName(r.name))
			default:
				continue
			}
			b.warned[[2]string{b.pb.Steps[stepIdx].ID, r.name}] = true
			line, col := b.posIn(n, off+runeOffsetToByte(p.c.src, r.off))
			b.warnings = append(b.warnings, &Error{File: b.d.file, Line: line, Col: col, Msg: msg})
		}
		for _, o := range p.c.outputs {
			read := "steps" + memberText(o.step) + ".outputs"
			if o.output != "" {
				read += memberText(o.output)
			}
			key := [2]string{b.pb.Steps[stepIdx].ID, read}
			if b.warned[key] {
				continue
			}
			b.warned[key] = true
			what, name := fmt.Sprintf("the outputs of step %q are", o.step), "VALUE"
			if o.output != "" {
				what, name = fmt.Sprintf("output %q of step %q is", o.output, o.step), envVarName(o.output)
			}
			msg := fmt.Sprintf("%s put into the shell command of %s with ${{ }}: the value came from a command, so it is "+
				"as untrusted as a free-form param, and a value such as \"; rm -rf ~\" would run as shell code; pass it "+
				"through env (env: {%s: \"${{ %s }}\"}) and use \"$%s\" in the command instead", what, where, name, read, name)
			line, col := b.posIn(n, off+runeOffsetToByte(p.c.src, o.off))
			b.warnings = append(b.warnings, &Error{File: b.d.file, Line: line, Col: col, Msg: msg})
		}
	}
}

// memberText is how an expression reads the member name: .name, or ["name"] when name is not an
// identifier (a step id or output name with a -); single-quoted, so that the text can go into a YAML
// double-quoted string as it is.
func memberText(name string) string {
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return "['" + name + "']"
		}
	}
	return "." + name
}

// envVarName turns an output name into the environment variable name a warning suggests: upper case,
// with every character that is not a letter or digit turned into _.
func envVarName(output string) string {
	name := strings.TrimPrefix(ParamEnvName(output), "PLAYBOOK_PARAM_")
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		name = "V_" + name
	}
	return name
}

func (b *builder) paramByName(name string) *Param {
	for _, p := range b.pb.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// checkReads checks every steps.<id> read: the step must exist and be one the reader depends on,
// directly or transitively. Otherwise the value would depend on which step happens to finish first.
//
// Reads of a direct need are checked at once. The others are grouped by the step read: one search
// forward from it through its dependents finds its readers, and stops as soon as all of them are found.
// So a step read by many (a workspace step, say) costs one walk of the graph, and a step read by a
// near dependent costs a few steps.
func (b *builder) checkReads() {
	var ids []string
	for id := range b.index {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	type pending struct {
		reader int
		read   stepRead
	}
	byTarget := map[int][]pending{}
	var targets []int
	for i, reads := range b.reads {
		s := b.pb.Steps[i]
		for _, r := range reads {
			j, known := b.index[r.id]
			switch {
			case !known:
				b.d.errorAt(r.line, r.col, "step %q reads steps.%s, which is not a step%s", s.ID, r.id, didYouMean(r.id, ids))
			case j == i:
				b.d.errorAt(r.line, r.col, "step %q reads steps.%s, its own state; a step can only read the steps it needs", s.ID, r.id)
			case slices.Contains(s.Needs, r.id):
			default:
				if byTarget[j] == nil {
					targets = append(targets, j)
				}
				byTarget[j] = append(byTarget[j], pending{i, r})
			}
		}
	}
	if len(targets) == 0 {
		return
	}
	dependents := make([][]int, len(b.pb.Steps))
	for i, s := range b.pb.Steps {
		for _, n := range s.Needs {
			j := b.index[n]
			dependents[j] = append(dependents[j], i)
		}
	}
	seen := make([]int, len(b.pb.Steps)) // generation stamps: seen[k] == gen means visited
	gen := 0
	var queue []int
	for _, j := range targets {
		waiting := map[int]bool{}
		for _, p := range byTarget[j] {
			waiting[p.reader] = true
		}
		found := map[int]bool{}
		gen++
		queue = append(queue[:0], j)
		seen[j] = gen
		for len(queue) > 0 && len(found) < len(waiting) {
			k := queue[0]
			queue = queue[1:]
			for _, m := range dependents[k] {
				if seen[m] != gen {
					seen[m] = gen
					if waiting[m] {
						found[m] = true
					}
					queue = append(queue, m)
				}
			}
		}
		for _, p := range byTarget[j] {
			if !found[p.reader] {
				b.d.errorAt(p.read.line, p.read.col, "step %q reads steps.%s but does not depend on it; add %q to needs", b.pb.Steps[p.reader].ID, p.read.id, p.read.id)
			}
		}
	}
}
