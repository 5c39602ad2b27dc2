package playbook

import (
	"fmt"
	"reflect"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Concurrency is the playbook's concurrency group: at most one run of a group is active on a database
// at a time (the runner enforces it; see the README's "Concurrency groups").
type Concurrency struct {
	// Group is the group's name, a template over params only (rendered by Group before the run starts).
	Group *Template
	// Wait: a run that finds the group held waits for it (true, the default) or is refused at once.
	Wait bool
}

// MaxGroupLen is the longest concurrency group name, in bytes.
const MaxGroupLen = 200

// CheckGroup says what is wrong with a concurrency group name: it must be 1 to MaxGroupLen bytes of
// valid UTF-8 without control characters (it is shown in messages and stored in the database).
func CheckGroup(name string) error {
	if name == "" || len(name) > MaxGroupLen {
		return fmt.Errorf("concurrency group %q must be 1 to %d characters", name, MaxGroupLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("concurrency group %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("concurrency group %q holds a control character", name)
		}
	}
	return nil
}

// GroupName renders the concurrency group of a run with these params; "" when the playbook has no
// concurrency key.
func (p *Playbook) GroupName(params Params) (string, error) {
	if p.Concurrency == nil {
		return "", nil
	}
	g, err := p.Concurrency.Group.Render(&State{Params: params})
	if err != nil {
		return "", fmt.Errorf("concurrency group: %w", err)
	}
	if err := CheckGroup(g); err != nil {
		return "", err
	}
	return g, nil
}

// concurrencyField is the top-level concurrency key: a group name (concurrency: deploy), or a mapping
// {group: NAME, wait: BOOL}.
type concurrencyField struct {
	node
	Group textField
	Wait  boolField
}

// rawConcurrency is the mapping form.
type rawConcurrency struct {
	pos
	Group textField `yaml:"group" required:"true" nonempty:"true" doc:"The group's name. May hold ${{ expressions }} over params (not secrets)."`
	Wait  boolField `yaml:"wait" doc:"Default true: a run whose group is held waits until it is free; false: it is refused at once (exit status 75)."`
}

func (c *concurrencyField) decode(d *decoder, f *field) {
	c.begin(f)
	if f.Val.Kind == yaml.ScalarNode {
		c.Group.decode(d, f)
		if c.Group.set() && c.Group.V == "" {
			d.errorf(f.Val, "%s must not be empty", f.label())
			c.Group.Val = nil
			return
		}
		if c.Group.set() {
			c.ok(f)
		}
		return
	}
	var raw rawConcurrency
	if f.Val.Kind != yaml.MappingNode {
		d.errorf(f.Val, "%s must be a group name or a mapping {group: NAME, wait: true|false}, not %s", f.label(), describeNode(f.Val))
		return
	}
	if !d.decodeStruct(reflect.ValueOf(&raw).Elem(), f.Val, nestedWhere(f.name(), f.In)) {
		return
	}
	c.Group, c.Wait = raw.Group, raw.Wait
	if c.Group.set() {
		c.ok(f)
	}
}

func (c *concurrencyField) schema(tag reflect.StructTag) map[string]any {
	str := map[string]any{"type": "string", "minLength": 1}
	return withDoc(map[string]any{"oneOf": []any{str, structSchema(reflect.TypeFor[rawConcurrency]())}}, tag)
}

// concurrency compiles the concurrency key: its group is a template over params that must not read a
// secret (the group is shown to other runs and stored in the database).
func (b *builder) concurrency(f *concurrencyField) *Concurrency {
	if !f.set() {
		return nil
	}
	c := &Concurrency{Group: b.template(f.Group.Val, "concurrency group", scopeParams, -1), Wait: true}
	if f.Wait.set() {
		c.Wait = f.Wait.V
	}
	if c.Group.IsLiteral() {
		if err := CheckGroup(f.Group.V); err != nil {
			b.errorf(f.Group.Val, "%v", err)
		}
	}
	spans, _ := scanTemplate(c.Group.raw)
	for k, p := range c.Group.parts {
		if p.c == nil || k >= len(spans) {
			continue
		}
		for _, r := range p.c.params {
			if param := b.paramByName(r.name); param != nil && param.Secret {
				line, col := b.posIn(f.Group.Val, spans[k].exprOff+runeOffsetToByte(p.c.src, r.off))
				b.d.errorAt(line, col, "concurrency group reads secret param %q: the group is shown to other runs and stored in the database; use a param that is not secret", r.name)
			}
		}
	}
	return c
}
