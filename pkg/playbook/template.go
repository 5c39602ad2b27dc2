package playbook

import (
	"fmt"
	"strings"
)

// Template is text that may hold ${{ expr }} parts (run, exec items, env values, dir, aws args),
// compiled when the playbook is loaded. Render replaces each part with its value: strings as they are,
// numbers in their shortest form (3, 0.5, 1e+21), bools as true or false, nothing (a missing value) as
// the empty string. A template without parts renders to its text without any work. A Template is
// immutable; Render may be called from several goroutines.
type Template struct {
	raw   string
	parts []templatePart // empty for literal text
	info  *evalInfo
}

// templatePart is literal text followed by an optional expression.
type templatePart struct {
	lit string
	c   *compiled // nil for the trailing literal
}

// Raw returns the text as written in the file, ${{ }} parts included.
func (t *Template) Raw() string { return t.raw }

// IsLiteral reports whether the text has no ${{ }} part.
func (t *Template) IsLiteral() bool { return len(t.parts) == 0 }

// Render returns the text with every ${{ }} part replaced by its value in state s.
func (t *Template) Render(s *State) (string, error) {
	if len(t.parts) == 0 {
		return t.raw, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.lit)
		if p.c == nil {
			continue
		}
		v, err := t.info.run(p.c, s, nil)
		if err != nil {
			return "", fmt.Errorf("${{%s}}: %w", truncate(p.c.src, 60), err)
		}
		str, ok := scalarString(v)
		if !ok {
			return "", fmt.Errorf("${{%s}}: gave %T; only strings, numbers and bools can be put into text", truncate(p.c.src, 60), v)
		}
		b.WriteString(str)
	}
	return b.String(), nil
}

// templateSpan is one ${{ }} found in a text: the expression and its byte offset.
type templateSpan struct {
	start, end int // of the whole ${{ ... }}
	expr       string
	exprOff    int
}

// scanTemplate finds the ${{ }} parts of text. The end of a part is the first }} outside string
// literals and outside { } pairs, so `${{ "}}" }}` and `${{ {"a": 1}.a }}` work. An unclosed part is
// reported with its byte offset.
func scanTemplate(text string) (spans []templateSpan, unclosed int) {
	i := 0
	for {
		k := strings.Index(text[i:], "${{")
		if k < 0 {
			return spans, -1
		}
		start := i + k
		j := start + 3
		depth := 0
		var quote byte
		end := -1
	scan:
		for ; j < len(text); j++ {
			ch := text[j]
			switch {
			case quote != 0:
				if ch == '\\' {
					j++
				} else if ch == quote {
					quote = 0
				}
			case ch == '"' || ch == '\'' || ch == '`':
				quote = ch
			case ch == '{':
				depth++
			case ch == '}' && depth > 0:
				depth--
			case ch == '}' && j+1 < len(text) && text[j+1] == '}':
				end = j
				break scan
			}
		}
		if end < 0 {
			return spans, start
		}
		spans = append(spans, templateSpan{start: start, end: end + 2, expr: text[start+3 : end], exprOff: start + 3})
		i = end + 2
	}
}
