package playbook

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// The field types of the file format. Each decodes one YAML value strictly, keeps the nodes so that
// later checks can report positions, and describes its JSON Schema from the same struct tags it obeys.
//
// Struct tags they read:
//
//	nonempty:"true"    strings must not be ""
//	pattern:"id"       the value must match the named pattern of namedPatterns (keypattern: each key)
//	enum:"a|b|c"       the value must be one of these
//	min:"1" max:"255"  bounds of integers (inclusive)
//	positive:"true"    durations must be greater than zero (otherwise zero is allowed)
//	single:"true"      lists also accept a single value
//	minItems:"1"       lists must not be empty
//	doc:"..."          the description, for the schema

// node is embedded in every field type: where the key and the value were. Val is nil when the key was
// not in the file.
type node struct {
	Key, Val *yaml.Node
}

// set reports whether the value was given and valid: decoders record Val only on success, so later
// checks skip values already reported.
func (n *node) set() bool { return n.Val != nil }

// present reports whether the key was in the file, valid or not.
func (n *node) present() bool { return n.Key != nil || n.Val != nil }

// at is where to report a problem with the value.
func (n *node) at() *yaml.Node {
	if n.Val != nil {
		return n.Val
	}
	return n.Key
}

// begin records the key; ok records the value once it decoded without error.
func (n *node) begin(f *field) { n.Key = f.Key }
func (n *node) ok(f *field)    { n.Val = f.Val }

// namedPattern is a pattern with the words messages use for it. The regular expression goes into the
// schema; match is the same rule written out, because the loader checks every name of large files and
// TestNamedPatternsAgree proves the two agree.
type namedPattern struct {
	re    *regexp.Regexp
	match func(string) bool
	words string
}

// namedPatterns are the patterns tags refer to. Compiled once; never modified.
var namedPatterns = map[string]namedPattern{
	"id":  {regexp.MustCompile(`^[A-Za-z0-9_-]+$`), isID, "letters, digits, - and _"},
	"env": {regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`), isEnvName, "letters, digits and _, not starting with a digit"},
	"aws": {regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`), isAWSName, "lower-case letters, digits and -"},
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func isID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return s != ""
}

func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && c != '_' && (i == 0 || !isDigit(c)) {
			return false
		}
	}
	return s != ""
}

func isAWSName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z') && !isDigit(c) && (i == 0 || c != '-') {
			return false
		}
	}
	return s != ""
}

func tagPattern(tag reflect.StructTag, key string) (namedPattern, bool) {
	name := tag.Get(key)
	if name == "" {
		return namedPattern{}, false
	}
	p, ok := namedPatterns[name]
	if !ok {
		panic("playbook: unknown pattern " + name)
	}
	return p, true
}

func tagEnum(tag reflect.StructTag) []string {
	if e := tag.Get("enum"); e != "" {
		return strings.Split(e, "|")
	}
	return nil
}

// withDoc adds the field's doc tag to a schema fragment.
func withDoc(s map[string]any, tag reflect.StructTag) map[string]any {
	if doc := tag.Get("doc"); doc != "" {
		s["description"] = doc
	}
	return s
}

// scalar checks that f.Val is a scalar with an ordinary (not custom) tag, reporting it otherwise.
func (d *decoder) scalar(f *field, want string) bool {
	n := f.Val
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s must be %s, not %s", f.label(), want, describeNode(n))
		return false
	}
	if !strings.HasPrefix(n.Tag, "!!") {
		d.errorf(n, "%s has the custom YAML tag %s, which playbooks do not support; remove it", f.label(), n.Tag)
		return false
	}
	if n.Tag == "!!binary" {
		d.errorf(n, "%s must be %s, not YAML binary data; remove the !!binary tag", f.label(), want)
		return false
	}
	return true
}

// textField is a string that must be written as a YAML string: `name: 2024` is an error asking for
// quotes, so that nothing is silently turned from a number into text (and 1.10 into 1.1).
type textField struct {
	node
	V string
}

func (t *textField) decode(d *decoder, f *field) {
	t.begin(f)
	if !d.scalar(f, "a string") {
		return
	}
	n := f.Val
	switch n.Tag {
	case "!!str":
	case "!!null":
		d.errorf(n, "%s is empty; give it a value or remove the key", f.label())
		return
	default:
		d.errorf(n, "%s must be a string, not %s; put it in quotes: %q", f.label(), describeNode(n), n.Value)
		return
	}
	t.V = n.Value
	if checkText(d, f, n.Value) {
		t.ok(f)
	}
}

// checkText applies the nonempty, pattern and enum tags to a string value.
func checkText(d *decoder, f *field, v string) bool {
	if v == "" && f.Rules.nonempty {
		d.errorf(f.Val, "%s is empty; give it a value or remove the key", f.label())
		return false
	}
	if p := f.Rules.pattern; p != nil && !p.match(v) {
		d.errorf(f.Val, "%s may only hold %s, not %q", f.label(), p.words, v)
		return false
	}
	if e := f.Rules.enum; e != nil && !slices.Contains(e, v) {
		d.errorf(f.Val, "%s must be one of %s, not %q%s", f.label(), strings.Join(e, ", "), v, didYouMean(v, e))
		return false
	}
	return true
}

func (t *textField) schema(tag reflect.StructTag) map[string]any {
	s := map[string]any{"type": "string"}
	if p, ok := tagPattern(tag, "pattern"); ok {
		s["pattern"] = p.re.String()
	}
	if e := tagEnum(tag); e != nil {
		s["enum"] = e
	}
	if tag.Get("nonempty") == "true" {
		s["minLength"] = 1
	}
	return withDoc(s, tag)
}

// scalarField is any scalar kept as the text written in the file: env values, exec arguments, string
// params. `VERSION: 1.10` is the string "1.10" (never 1.1), `COUNTRY: NO` is "NO", `PORT: 010` is
// "010", `DAY: 2026-01-31` is "2026-01-31". Only an empty value (null) is refused, since it is
// ambiguous: write "" for an empty string.
type scalarField struct {
	node
	V   string
	Tag string // the YAML type it was written as (!!str, !!int, !!float, !!bool), for typed params
}

func (s *scalarField) decode(d *decoder, f *field) {
	s.begin(f)
	if !d.scalar(f, "a single value") {
		return
	}
	if f.Val.Tag == "!!null" {
		d.errorf(f.Val, "%s has no value; write \"\" for an empty string", f.label())
		return
	}
	s.V, s.Tag = f.Val.Value, f.Val.Tag
	if s.Tag != "!!str" || checkText(d, f, s.V) {
		s.ok(f)
	}
}

func (s *scalarField) schema(tag reflect.StructTag) map[string]any {
	// The loader keeps the text of numbers and booleans, so the schema accepts them too.
	return withDoc(map[string]any{"type": []string{"string", "number", "boolean"}}, tag)
}

// condField is an if: an expression, or the booleans true and false (which are expressions too).
type condField struct {
	node
	V string
}

func (c *condField) decode(d *decoder, f *field) {
	c.begin(f)
	if !d.scalar(f, "an expression") {
		return
	}
	n := f.Val
	switch {
	case n.Tag == "!!str":
	case n.Tag == "!!bool" && (n.Value == "true" || n.Value == "false"):
	case n.Tag == "!!null":
		d.errorf(n, "%s is empty; write an expression such as success() or remove the key", f.label())
		return
	default:
		d.errorf(n, "%s must be an expression, not %s", f.label(), describeNode(n))
		return
	}
	c.V = n.Value
	c.ok(f)
}

func (c *condField) schema(tag reflect.StructTag) map[string]any {
	return withDoc(map[string]any{"type": []string{"string", "boolean"}}, tag)
}

// intField is a whole number written in decimal.
type intField struct {
	node
	V int64
}

func (i *intField) decode(d *decoder, f *field) {
	i.begin(f)
	if !d.scalar(f, "a whole number") {
		return
	}
	n := f.Val
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if n.Tag != "!!int" || err != nil {
		if n.Tag == "!!str" {
			if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				d.errorf(n, "%s must be a number, not a string; remove the quotes", f.label())
				return
			}
		}
		if n.Tag != "!!str" && errors.Is(err, strconv.ErrRange) {
			d.errorf(n, "%s is too large: it must be at most %d", f.label(), f.Rules.hi)
			return
		}
		d.errorf(n, "%s must be a whole number written in decimal, not %s", f.label(), describeNode(n))
		return
	}
	if r := f.Rules; r.bounded && (v < r.lo || v > r.hi) {
		d.errorf(n, "%s must be %s, not %d", f.label(), boundsText(r.lo, r.hi), v)
		return
	}
	i.V = v
	i.ok(f)
}

func bounds(tag reflect.StructTag) (lo, hi int64, ok bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	if s := tag.Get("min"); s != "" {
		lo, _ = strconv.ParseInt(s, 10, 64)
		ok = true
	}
	if s := tag.Get("max"); s != "" {
		hi, _ = strconv.ParseInt(s, 10, 64)
		ok = true
	}
	return lo, hi, ok
}

func boundsText(lo, hi int64) string {
	switch {
	case lo == hi:
		return strconv.FormatInt(lo, 10)
	case hi == math.MaxInt64:
		return fmt.Sprintf("at least %d", lo)
	case lo == math.MinInt64:
		return fmt.Sprintf("at most %d", hi)
	}
	return fmt.Sprintf("between %d and %d", lo, hi)
}

func (i *intField) schema(tag reflect.StructTag) map[string]any {
	s := map[string]any{"type": "integer"}
	if lo, hi, ok := bounds(tag); ok {
		if lo != math.MinInt64 {
			s["minimum"] = lo
		}
		if hi != math.MaxInt64 {
			s["maximum"] = hi
		}
	}
	return withDoc(s, tag)
}

// numberField is a number, whole or not (retry.backoff).
type numberField struct {
	node
	V float64
}

func (x *numberField) decode(d *decoder, f *field) {
	x.begin(f)
	if !d.scalar(f, "a number") {
		return
	}
	n := f.Val
	v, err := strconv.ParseFloat(n.Value, 64)
	if (n.Tag != "!!int" && n.Tag != "!!float") || err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		d.errorf(n, "%s must be a number such as 2 or 1.5, not %s", f.label(), describeNode(n))
		return
	}
	if r := f.Rules; r.bounded && v < float64(r.lo) {
		d.errorf(n, "%s must be at least %d, not %s", f.label(), r.lo, n.Value)
		return
	}
	x.V = v
	x.ok(f)
}

func (x *numberField) schema(tag reflect.StructTag) map[string]any {
	s := map[string]any{"type": "number"}
	if lo, _, ok := bounds(tag); ok {
		s["minimum"] = lo
	}
	return withDoc(s, tag)
}

// boolField takes only true and false. yaml v3 accepts yes, no, on, off, y and n for Go bools (YAML 1.1
// rules), which is how `continue_on_error: no` could silently become something else (TestBoolStrict).
type boolField struct {
	node
	V bool
}

func (b *boolField) decode(d *decoder, f *field) {
	b.begin(f)
	if !d.scalar(f, "true or false") {
		return
	}
	n := f.Val
	if n.Tag != "!!bool" || (n.Value != "true" && n.Value != "false") {
		d.errorf(n, "%s must be true or false, not %s; write true or false", f.label(), describeNode(n))
		return
	}
	b.V = n.Value == "true"
	b.ok(f)
}

func (b *boolField) schema(tag reflect.StructTag) map[string]any {
	return withDoc(map[string]any{"type": "boolean"}, tag)
}

// durationField is a Go duration: 500ms, 30s, 10m, 1h30m.
type durationField struct {
	node
	V time.Duration
}

// durationPattern is the schema's version of time.ParseDuration (without the sign: durations here are
// never negative).
const durationPattern = `^([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))*$`

func (t *durationField) decode(d *decoder, f *field) {
	t.begin(f)
	if !d.scalar(f, "a duration") {
		return
	}
	n := f.Val
	if n.Tag == "!!int" || n.Tag == "!!float" {
		if z, err := strconv.ParseFloat(n.Value, 64); err == nil && z <= 0 && f.Rules.positive {
			d.errorf(n, "%s must be longer than zero, such as 500ms, 30s or 10m", f.label())
			return
		}
		d.errorf(n, "%s needs a unit: write %ss (or ms, m, h)", f.label(), n.Value)
		return
	}
	v, err := time.ParseDuration(n.Value)
	if n.Tag != "!!str" || err != nil {
		d.errorf(n, "%s must be a duration such as 500ms, 30s, 10m or 1h, not %s", f.label(), describeNode(n))
		return
	}
	switch {
	case v < 0:
		d.errorf(n, "%s must not be negative", f.label())
		return
	case v == 0 && f.Rules.positive:
		d.errorf(n, "%s must be longer than zero", f.label())
		return
	}
	t.V = v
	t.ok(f)
}

func (t *durationField) schema(tag reflect.StructTag) map[string]any {
	return withDoc(map[string]any{"type": "string", "pattern": durationPattern}, tag)
}

// sizeField is a number of bytes: an integer, or a number with a unit (B, KiB, MiB, GiB, and the
// powers of ten KB, MB, GB).
type sizeField struct {
	node
	V int64
}

const sizePattern = `^[0-9]+ ?(B|KiB|MiB|GiB|KB|MB|GB)$`

var sizeRe = regexp.MustCompile(sizePattern)

func (z *sizeField) decode(d *decoder, f *field) {
	z.begin(f)
	if !d.scalar(f, "a size") {
		return
	}
	n := f.Val
	v, err := ParseSize(n.Value)
	if (n.Tag != "!!int" && n.Tag != "!!str") || (err != nil && !errors.Is(err, errSizeTooLarge)) || (n.Tag == "!!str" && !sizeRe.MatchString(n.Value)) {
		d.errorf(n, "%s must be a number of bytes or a size such as 512KiB or 1MiB, not %s", f.label(), describeNode(n))
		return
	}
	if err != nil || v <= 0 || v > MaxOutputLimit {
		d.errorf(n, "%s must be between 1 byte and 1GiB, not %s", f.label(), n.Value)
		return
	}
	z.V = v
	z.ok(f)
}

func (z *sizeField) schema(tag reflect.StructTag) map[string]any {
	return withDoc(map[string]any{"oneOf": []any{
		map[string]any{"type": "integer", "minimum": 1, "maximum": MaxOutputLimit},
		map[string]any{"type": "string", "pattern": sizePattern},
	}}, tag)
}

// signals are the stop_signal names accepted, with and without the SIG prefix.
var signals = map[string]syscall.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGABRT": syscall.SIGABRT, "SIGKILL": syscall.SIGKILL, "SIGUSR1": syscall.SIGUSR1,
	"SIGUSR2": syscall.SIGUSR2, "SIGALRM": syscall.SIGALRM, "SIGTERM": syscall.SIGTERM,
}

// otherSignals are signal names that exist but make no sense as a stop_signal: they pause or resume a
// process, report events, or are raised by faults. A stop_signal names the request to end.
var otherSignals = map[string]bool{
	"SIGSTOP": true, "SIGTSTP": true, "SIGCONT": true, "SIGTTIN": true, "SIGTTOU": true, "SIGCHLD": true,
	"SIGWINCH": true, "SIGURG": true, "SIGIO": true, "SIGPIPE": true, "SIGPROF": true, "SIGVTALRM": true,
	"SIGSEGV": true, "SIGBUS": true, "SIGFPE": true, "SIGILL": true, "SIGTRAP": true, "SIGSYS": true,
	"SIGXCPU": true, "SIGXFSZ": true, "SIGPWR": true, "SIGSTKFLT": true,
}

func signalNames() []string {
	var names []string
	for _, full := range []string{"SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGABRT", "SIGALRM"} {
		names = append(names, full, strings.TrimPrefix(full, "SIG"))
	}
	return names
}

// signalField is a signal name: SIGTERM or TERM, SIGINT, ... Numbers are refused: they differ between
// systems (SIGUSR1 is 10 on Linux and 30 on macOS).
type signalField struct {
	node
	V syscall.Signal
}

func (s *signalField) decode(d *decoder, f *field) {
	s.begin(f)
	if !d.scalar(f, "a signal name") {
		return
	}
	n := f.Val
	name := n.Value
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig, ok := signals[name]
	if n.Tag == "!!str" && !ok && otherSignals[strings.ToUpper(name)] {
		d.errorf(n, "%s cannot be %s: a stop signal asks the step to end, and %s does not; use one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGKILL, SIGABRT or SIGALRM", f.label(), n.Value, n.Value)
		return
	}
	if n.Tag != "!!str" || !ok {
		d.errorf(n, "%s must be a signal name such as SIGTERM, SIGINT or SIGQUIT, not %s%s", f.label(), describeNode(n), didYouMean(n.Value, signalNames()))
		return
	}
	s.V = sig
	s.ok(f)
}

func (s *signalField) schema(tag reflect.StructTag) map[string]any {
	return withDoc(map[string]any{"type": "string", "enum": signalNames()}, tag)
}

// list is a YAML list of values of one field type; with the single tag a lone value is a list of one.
type list[T any] struct {
	node
	Items []T
}

func (l *list[T]) decode(d *decoder, f *field) {
	l.begin(f)
	n := f.Val
	items := n.Content
	if n.Kind != yaml.SequenceNode {
		if !f.Rules.single || n.Kind != yaml.ScalarNode {
			d.errorf(n, "%s must be a list such as [a, b], not %s", f.label(), describeNode(n))
			return
		}
		items = []*yaml.Node{n}
	}
	if len(items) == 0 && f.Rules.minItems {
		d.errorf(n, "%s must not be empty", f.label())
		return
	}
	l.Items = make([]T, 0, len(items))
	for i, item := range items {
		item = d.resolve(item)
		if item == nil {
			continue
		}
		var v T
		sub := &field{Val: item, Rules: f.Rules, Name: f.name(), In: f.In}
		if n.Kind == yaml.SequenceNode {
			sub.Item = i + 1
		}
		d.decodeValue(reflect.ValueOf(&v).Elem(), sub)
		l.Items = append(l.Items, v)
	}
	l.ok(f)
}

func (l *list[T]) schema(tag reflect.StructTag) map[string]any {
	items := schemaOf(reflect.TypeFor[T](), itemTag(tag))
	arr := map[string]any{"type": "array", "items": items}
	if tag.Get("minItems") != "" {
		arr["minItems"] = 1
	}
	if tag.Get("single") == "true" {
		return withDoc(map[string]any{"oneOf": []any{items, arr}}, tag)
	}
	return withDoc(arr, tag)
}

// itemTag keeps the tags that apply to each item of a list (drops the list's own doc).
func itemTag(tag reflect.StructTag) reflect.StructTag {
	var parts []string
	for _, k := range []string{"pattern", "enum", "min", "max"} {
		if v, ok := tag.Lookup(k); ok {
			parts = append(parts, fmt.Sprintf("%s:%q", k, v))
		}
	}
	return reflect.StructTag(strings.Join(parts, " "))
}

// namedMap is a mapping from names the user chooses (params, env) to values, in file order.
type namedMap[T any] struct {
	node
	Entries []namedEntry[T]
}

type namedEntry[T any] struct {
	Key   *yaml.Node
	Name  string
	Value T
}

func (m *namedMap[T]) decode(d *decoder, f *field) {
	m.begin(f)
	n := f.Val
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		m.ok(f)
		return // "env:" with nothing under it
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of names to values, not %s", f.label(), describeNode(n))
		return
	}
	kind := f.Rules.entry // how one entry is named: "param", "env"
	keyPattern := f.Rules.keyPattern
	var probe T
	_, isLeaf := any(&probe).(leaf)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := d.keyName(k, f.label())
		if !ok {
			continue
		}
		if first, dup := seen[name]; dup {
			d.errorf(k, "%s %q is defined twice %s (first at line %d); keep one", kind, name, inWhere(f.In), first.Line)
			continue
		}
		seen[name] = k
		if keyPattern != nil && !keyPattern.match(name) {
			d.errorf(k, "%s name %q may only hold %s", kind, name, keyPattern.words)
			continue
		}
		v = d.resolve(v)
		if v == nil {
			continue
		}
		e := namedEntry[T]{Key: k, Name: name}
		entryName := kind + " " + strconv.Quote(name)
		ev := reflect.ValueOf(&e.Value).Elem()
		if !isLeaf {
			// A struct entry (a param): its keys are reported "in param "x"". An empty entry
			// ("token:" with nothing under it) takes every default.
			if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
				if !d.decodeStruct(ev, v, entryName) {
					continue
				}
			}
		} else {
			d.decodeValue(ev, &field{Key: k, Val: v, Rules: f.Rules.itemRules(), Name: entryName, In: f.In})
		}
		m.Entries = append(m.Entries, e)
	}
	m.ok(f)
}

func (m *namedMap[T]) schema(tag reflect.StructTag) map[string]any {
	s := map[string]any{
		"type":                 "object",
		"additionalProperties": schemaOf(reflect.TypeFor[T](), itemTag(tag)),
	}
	if p, ok := tagPattern(tag, "keypattern"); ok {
		s["propertyNames"] = map[string]any{"pattern": p.re.String()}
	}
	if reflect.TypeFor[T]().Kind() == reflect.Struct && !reflect.PointerTo(reflect.TypeFor[T]()).Implements(leafType) {
		// An entry may be empty (all defaults).
		s["additionalProperties"] = map[string]any{"anyOf": []any{s["additionalProperties"], map[string]any{"type": "null"}}}
	}
	return withDoc(s, tag)
}
