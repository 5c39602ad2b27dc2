package playbook

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ParamType is string, int, number or bool.
type ParamType string

// The param types. A param declared without a type is a string.
const (
	ParamString ParamType = "string" // any text; the value of -p as given
	ParamInt    ParamType = "int"    // a whole number in decimal, held as int64
	ParamNumber ParamType = "number" // any finite number, held as float64
	ParamBool   ParamType = "bool"   // true or false, held as bool
)

// Param is a declared input.
type Param struct {
	Name        string // letters, digits, - and _
	Type        ParamType
	Default     any   // typed (string, int64, float64 or bool); nil when there is none
	Required    bool  // without a default, the run needs -p name=value
	Enum        []any // typed like Default; empty = any value of the type
	Description string
	Secret      bool // masked wherever it is written; warned about when put into run: with ${{ }}
}

// Params are resolved values: string, int64, float64 or bool per the declared type.
type Params map[string]any

// ParamError is a problem with a value given for a param (or missing for it). ResolveParams returns
// them joined with errors.Join; find them with errors.As.
type ParamError struct {
	Name string // the param as written in -p or declared
	Msg  string // what is wrong and what is allowed
}

// Error returns `param "name": message`.
func (e *ParamError) Error() string { return fmt.Sprintf("param %q: %s", e.Name, e.Msg) }

// ParamText is a param's value as text: what $PLAYBOOK_PARAM_<NAME> holds, and what ${{ params.name }}
// renders in a template. One form for both, so that a secret is masked in the form a command really
// holds (a number is 1000000 in both, never 1e+06 in one of them).
func ParamText(v any) string {
	if s, ok := scalarString(v); ok {
		return s
	}
	return fmt.Sprint(v)
}

// ParamEnvName is the environment variable a param is exported as: PLAYBOOK_PARAM_ + upper-cased name
// with every character that is not a letter or digit turned into _. ParamEnvName("my-param") is
// PLAYBOOK_PARAM_MY_PARAM.
func ParamEnvName(name string) string {
	var b strings.Builder
	b.WriteString("PLAYBOOK_PARAM_")
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ResolveParams checks values given as -p name=value against the declared params and returns every
// param's typed value (defaults applied). A missing required, unknown, mistyped or out-of-enum value is
// an error naming the param and saying what is allowed; every such problem is reported (errors.Join of
// *ParamError). A param that is neither given, nor required, nor defaulted resolves to its type's zero
// value ("", 0, 0.0, false), so that expressions and PLAYBOOK_PARAM_ variables always have one.
func (p *Playbook) ResolveParams(values map[string]string) (Params, error) {
	var errs []error
	var names []string
	for _, d := range p.Params {
		names = append(names, d.Name)
	}
	var unknown []string
	for k := range values {
		if !slices.Contains(names, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		msg := "the playbook has no such param"
		if len(names) == 0 {
			msg = "the playbook declares no params"
		} else {
			msg += didYouMean(k, names) + "; declared: " + strings.Join(names, ", ")
		}
		errs = append(errs, &ParamError{Name: k, Msg: msg})
	}
	out := make(Params, len(p.Params))
	for _, d := range p.Params {
		raw, given := values[d.Name]
		if !given {
			switch {
			case d.Default != nil:
				out[d.Name] = d.Default
			case d.Required:
				errs = append(errs, &ParamError{Name: d.Name, Msg: fmt.Sprintf("is required; pass -p %s=%s", d.Name, exampleValue(d))})
			default:
				out[d.Name] = zeroParam(d.Type)
			}
			continue
		}
		// A secret's value never appears in a message (they reach terminals and CI logs).
		shown := fmt.Sprintf("%q", raw)
		if d.Secret {
			shown = "the value given (secret, not shown)"
		}
		v, err := parseParam(d.Type, raw)
		if err != nil {
			errs = append(errs, &ParamError{Name: d.Name, Msg: fmt.Sprintf("%s is not %s", shown, typeWords(d.Type))})
			continue
		}
		if len(d.Enum) > 0 && !slices.Contains(d.Enum, v) {
			errs = append(errs, &ParamError{Name: d.Name, Msg: fmt.Sprintf("%s is not allowed; use one of %s", shown, enumText(d.Enum))})
			continue
		}
		out[d.Name] = v
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func zeroParam(t ParamType) any {
	switch t {
	case ParamInt:
		return int64(0)
	case ParamNumber:
		return 0.0
	case ParamBool:
		return false
	}
	return ""
}

// parseParam reads a value of type t from text (-p values; defaults and enums in the file go through
// the same function, so the file and the command line agree on what a value of a type is).
func parseParam(t ParamType, s string) (any, error) {
	switch t {
	case ParamInt:
		return strconv.ParseInt(s, 10, 64)
	case ParamNumber:
		f, err := strconv.ParseFloat(s, 64)
		if err == nil && (math.IsInf(f, 0) || math.IsNaN(f)) {
			err = errors.New("not finite")
		}
		return f, err
	case ParamBool:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, errors.New("not a bool")
	}
	return s, nil
}

func typeWords(t ParamType) string {
	switch t {
	case ParamInt:
		return "a whole number (int)"
	case ParamNumber:
		return "a number"
	case ParamBool:
		return "true or false (bool)"
	}
	return "a string"
}

func exampleValue(d *Param) string {
	if len(d.Enum) > 0 {
		s, _ := scalarString(d.Enum[0])
		return s
	}
	switch d.Type {
	case ParamInt:
		return "1"
	case ParamNumber:
		return "1.5"
	case ParamBool:
		return "true"
	}
	return "VALUE"
}

func enumText(enum []any) string {
	parts := make([]string, len(enum))
	for i, v := range enum {
		parts[i], _ = scalarString(v)
	}
	return strings.Join(parts, ", ")
}
