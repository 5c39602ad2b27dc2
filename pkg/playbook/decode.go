package playbook

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The strict decoder. yaml v3 only checks unknown keys (KnownFields) for the decoder it was set on: a
// type with its own UnmarshalYAML that calls node.Decode gets a fresh decoder that accepts anything
// (the cases of TestUnknownKeys), it accepts yes/no/on/off for Go bools (TestBoolStrict), and it does
// not check duplicate keys when decoding into a yaml.Node (TestDuplicateKeys). So the file is parsed
// into a yaml.Node tree and this decoder walks it itself, driven by the struct types of format.go: the
// yaml tag of each field is the allow-list of keys, and the other tags (required, pattern, enum, min,
// max, ...) are the rules. The JSON Schema (schema.go) is generated from the same types and tags, so
// the two cannot drift apart.

// decoder holds the state of one decoding pass: the file name for positions, the errors found so far and
// the alias budget. It is created per Parse call; nothing is shared between calls.
type decoder struct {
	file        string
	errs        ErrorList
	aliasNodes  int  // nodes visited through aliases
	aliasFailed bool // the alias budget ran out (reported once)
	structs     map[reflect.Type]*structInfo
	sizes       map[*yaml.Node]int
	// suggested records, per mapping, the keys suggested for unknown ones ("rnu" -> "run"): a key the
	// user probably wrote, misspelt, is not reported missing as well.
	suggested map[*yaml.Node][]string
}

// suggestedAny reports whether a key of keys was suggested for an unknown key of mapping n.
func (d *decoder) suggestedAny(n *yaml.Node, keys []string) bool {
	for _, k := range d.suggested[n] {
		if slices.Contains(keys, k) {
			return true
		}
	}
	return false
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	d.errorAt(line, col, format, args...)
}

func (d *decoder) errorAt(line, col int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases. Every node reached through an alias is charged to a budget, so that an
// alias bomb (aliases of aliases of lists) costs bounded work: the decoder only ever descends into
// places the format allows, and each of them pays for what it visits.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.aliasNodes += d.size(n.Alias)
		if d.aliasNodes > maxAliasNodes {
			if !d.aliasFailed {
				d.aliasFailed = true
				d.errorf(n, "too many YAML aliases (more than %d nodes reached through them); write the values out", maxAliasNodes)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

// size is the number of nodes under n (aliases inside count as one: they are charged when followed),
// memoised so that an anchor used many times is measured once.
func (d *decoder) size(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	if s, ok := d.sizes[n]; ok {
		return s
	}
	s := 1
	if n.Kind != yaml.AliasNode {
		for _, c := range n.Content {
			s += d.size(c)
		}
	}
	if d.sizes == nil {
		d.sizes = map[*yaml.Node]int{}
	}
	d.sizes[n] = s
	return s
}

// field is one value being decoded and what is needed to report problems with it.
type field struct {
	Key   *yaml.Node // the key node, or nil for a list item
	Val   *yaml.Node // the value, aliases resolved
	Rules *rules     // the rules of the Go field
	Name  string     // how messages name the value: "timeout", "env \"X\"", "needs"
	Item  int        // 1-based position in the list Name, or 0: then messages say "needs item 2"
	In    string     // where it is: "" at the top level, else `step "a"`, `retry of step "a"`, ...
}

// name is how messages name the value. An item's name is only made when a message needs it: a large
// playbook has tens of thousands of items and almost never an error.
func (f *field) name() string {
	if f.Item > 0 {
		return itemName(f.Name, f.Item-1)
	}
	return f.Name
}

// itemName names the item at index i of the list called list: "needs item 2".
func itemName(list string, i int) string { return list + " item " + strconv.Itoa(i+1) }

// label is how a message names this value: `timeout in step "a"`, or just `timeout` at the top level.
func (f *field) label() string {
	if f.In == "" {
		return f.name()
	}
	return f.name() + " in " + f.In
}

// at is where to report a problem with the value.
func (f *field) at() *yaml.Node {
	if f.Val != nil {
		return f.Val
	}
	return f.Key
}

// inWhere is the end of a message saying where: "at the top level" or `in step "a"`.
func inWhere(where string) string {
	if where == "" {
		return "at the top level"
	}
	return "in " + where
}

// nestedWhere names a mapping nested under key: "defaults", `retry of step "a"`.
func nestedWhere(key, parent string) string {
	if parent == "" {
		return key
	}
	return key + " of " + parent
}

// leaf is implemented (with a pointer receiver) by the field types of fields.go: each decodes its own
// node and describes its own JSON Schema from the same struct tags.
type leaf interface {
	decode(d *decoder, f *field)
	schema(tag reflect.StructTag) map[string]any
}

// whereNamer is implemented by list element types that name themselves in messages (a step by its id).
type whereNamer interface {
	whereIn(n *yaml.Node, index int) string
}

// structInfo is the allow-list and rules of one struct type of format.go.
type structInfo struct {
	fields []fieldInfo
	byKey  map[string]int
	keys   []string // in declaration order, for messages and suggestions
}

type fieldInfo struct {
	key      string
	index    int
	rules    *rules
	required bool
}

// rules are the struct tags the field types obey (listed at the top of fields.go), read once per field
// of a struct type: looking them up in the tag text for every value made a tenth of the loading time of
// large playbooks.
type rules struct {
	tag        reflect.StructTag
	nonempty   bool
	positive   bool
	single     bool
	minItems   bool
	pattern    *namedPattern
	keyPattern *namedPattern
	enum       []string
	entry      string
	lo, hi     int64 // bounds; both the int64 extremes without min and max
	bounded    bool
	items      *rules // the rules each item or entry obeys (itemTag), made when first needed
}

func rulesOf(tag reflect.StructTag) *rules {
	r := &rules{tag: tag, nonempty: tag.Get("nonempty") == "true", positive: tag.Get("positive") == "true",
		single: tag.Get("single") == "true", minItems: tag.Get("minItems") != "", enum: tagEnum(tag),
		entry: tag.Get("entry")}
	if p, ok := tagPattern(tag, "pattern"); ok {
		r.pattern = &p
	}
	if p, ok := tagPattern(tag, "keypattern"); ok {
		r.keyPattern = &p
	}
	r.lo, r.hi, r.bounded = bounds(tag)
	return r
}

// itemRules are the rules of each item of a list, or of each value of a mapping.
func (r *rules) itemRules() *rules {
	if r.items == nil {
		r.items = rulesOf(itemTag(r.tag))
	}
	return r.items
}

var leafType = reflect.TypeFor[leaf]()

func structInfoOf(t reflect.Type) *structInfo {
	si := &structInfo{byKey: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		si.byKey[key] = len(si.fields)
		si.keys = append(si.keys, key)
		si.fields = append(si.fields, fieldInfo{key: key, index: i, rules: rulesOf(sf.Tag), required: sf.Tag.Get("required") == "true"})
	}
	return si
}

func (d *decoder) info(t reflect.Type) *structInfo {
	if si, ok := d.structs[t]; ok {
		return si
	}
	if d.structs == nil {
		d.structs = map[reflect.Type]*structInfo{}
	}
	si := structInfoOf(t)
	d.structs[t] = si
	return si
}

// decodeValue decodes f.Val into v, which is a leaf, a struct, a pointer to a struct or a slice of
// structs.
func (d *decoder) decodeValue(v reflect.Value, f *field) {
	if v.CanAddr() {
		if l, ok := v.Addr().Interface().(leaf); ok {
			l.decode(d, f)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		if d.decodeStruct(nv.Elem(), f.Val, nestedWhere(f.name(), f.In)) {
			v.Set(nv)
		}
	case reflect.Struct:
		d.decodeStruct(v, f.Val, nestedWhere(f.name(), f.In))
	case reflect.Slice:
		d.decodeSlice(v, f)
	default:
		panic(fmt.Sprintf("playbook: no decoder for %s", v.Type()))
	}
}

// decodeStruct decodes a mapping into a struct of format.go, checking every key against the struct's
// allow-list, duplicates and required keys. It reports false when n is not a mapping.
func (d *decoder) decodeStruct(v reflect.Value, n *yaml.Node, where string) bool {
	if n == nil {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping of keys to values, not %s", whereOrTop(where), describeNode(n))
		return false
	}
	si := d.info(v.Type())
	if pos, ok := v.Addr().Interface().(interface{ setPos(*yaml.Node) }); ok {
		pos.setPos(n)
	}
	// The key of each field seen so far (on the stack for the structs of format.go), and of unknown keys.
	var buf [32]*yaml.Node
	var seen []*yaml.Node
	if len(si.fields) <= len(buf) {
		seen = buf[:len(si.fields)]
	} else {
		seen = make([]*yaml.Node, len(si.fields))
	}
	var unknown map[string]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name, ok := d.keyName(k, where)
		if !ok {
			continue
		}
		idx, known := si.byKey[name]
		first := unknown[name]
		if known {
			first = seen[idx]
		}
		if first != nil {
			d.errorf(k, "key %q appears twice %s (first at line %d); keep one", name, inWhere(where), first.Line)
			continue
		}
		if !known {
			if unknown == nil {
				unknown = map[string]*yaml.Node{}
			}
			unknown[name] = k
			if s := d.unknownKey(k, name, where, si.keys); s != "" {
				if d.suggested == nil {
					d.suggested = map[*yaml.Node][]string{}
				}
				d.suggested[n] = append(d.suggested[n], s)
			}
			continue
		}
		seen[idx] = k
		fi := si.fields[idx]
		val = d.resolve(val)
		if val == nil {
			continue
		}
		d.decodeValue(v.Field(fi.index), &field{Key: k, Val: val, Rules: fi.rules, Name: name, In: where})
	}
	for i, fi := range si.fields {
		if fi.required && seen[i] == nil && !d.suggestedAny(n, []string{fi.key}) {
			d.errorf(n, "missing required key %q %s", fi.key, inWhere(where))
		}
	}
	return true
}

func whereOrTop(where string) string {
	if where == "" {
		return "the playbook"
	}
	return where
}

// keyName returns a mapping key's text, reporting keys that are not plain scalars (and merge keys,
// which yaml v3 leaves to the caller and this format does not support).
func (d *decoder) keyName(k *yaml.Node, where string) (string, bool) {
	k = d.resolve(k)
	if k == nil {
		return "", false
	}
	if k.Kind != yaml.ScalarNode {
		d.errorf(k, "keys must be names %s, not %s", inWhere(where), describeNode(k))
		return "", false
	}
	if k.Tag == "!!merge" {
		d.errorf(k, "merge keys (<<) are not supported %s; use defaults: for settings shared by steps", inWhere(where))
		return "", false
	}
	return k.Value, true
}

// unknownKey reports a key that is not in the allow-list and returns the key it suggests, if any.
func (d *decoder) unknownKey(k *yaml.Node, name, where string, keys []string) string {
	if s := suggest(name, keys); s != "" {
		d.errorf(k, "unknown key %q %s; did you mean %q?", name, inWhere(where), s)
		return s
	}
	d.errorf(k, "unknown key %q %s; allowed keys: %s", name, inWhere(where), strings.Join(keys, ", "))
	return ""
}

// decodeSlice decodes a sequence of mappings into a slice of structs.
func (d *decoder) decodeSlice(v reflect.Value, f *field) {
	n := f.Val
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list (items starting with -), not %s", f.label(), describeNode(n))
		return
	}
	if len(n.Content) == 0 && f.Rules.minItems {
		d.errorf(n, "%s must not be empty", f.label())
		return
	}
	et := v.Type().Elem()
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	wn, named := reflect.New(et).Interface().(whereNamer)
	for i, item := range n.Content {
		item = d.resolve(item)
		if item == nil {
			continue
		}
		var where string
		if named {
			where = wn.whereIn(item, i)
		} else {
			where = itemName(f.name(), i)
		}
		ev := reflect.New(et).Elem()
		if d.decodeStruct(ev, item, where) {
			out = reflect.Append(out, ev)
		}
	}
	v.Set(out)
}

// describeNode names what a node is, for "must be X, not Y" messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "empty"
		case "!!bool":
			return "the boolean " + n.Value
		case "!!int", "!!float":
			return "the number " + n.Value
		}
		return strconv.Quote(truncate(n.Value, 40))
	}
	return "an unsupported YAML node"
}

// truncate shortens s to at most n runes for messages.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}

// scalarIDAt returns the text of key id in mapping n when it is a plain scalar: it names steps in
// messages about keys that come before the id.
func scalarIDAt(n *yaml.Node, key string) (string, bool) {
	if n == nil || n.Kind != yaml.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == key && v.Kind == yaml.ScalarNode && v.Tag != "!!null" && v.Value != "" {
			return v.Value, true
		}
	}
	return "", false
}
