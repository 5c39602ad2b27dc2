package playbook

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// findScalar returns the first scalar under n whose value holds s.
func findScalar(n *yaml.Node, s string) *yaml.Node {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, s) {
		return n
	}
	for _, c := range n.Content {
		if f := findScalar(c, s); f != nil {
			return f
		}
	}
	return nil
}

// TestPosIn: an offset in a value maps to its line and column in the file for every scalar style. Each
// document holds MARK once in the file; the offset of MARK in the parsed value must map to where it is
// written.
func TestPosIn(t *testing.T) {
	cases := []struct{ name, y string }{
		{"plain", "run: echo MARK\n"},
		{"plain after multi-byte", "run: écho ✓ MARK\n"},
		{"plain multi-line", "run: echo one\n  two\n\n    three MARK\n"},
		{"plain in a flow sequence", "exec: [echo, a, MARK]\n"},
		{"plain in a flow mapping on two lines", "step: {id: a,\n  run: echo\n    MARK}\n"},
		{"single-quoted", "run: 'echo MARK'\n"},
		{"single-quoted with ''", "run: 'it''s ''quoted'' MARK'\n"},
		{"single-quoted multi-line", "run: 'one\n   two\n\n   three MARK'\n"},
		{"double-quoted", "run: \"echo MARK\"\n"},
		{"double-quoted with escapes", "run: \"a\\tb\\\"c\\\\d\\u00e9\\x41\\U0001F600 \\' MARK\"\n"},
		{"double-quoted multi-line", "run: \"one\n  two\n\n  three MARK\"\n"},
		{"double-quoted escaped line break", "run: \"one\\\n  two\\\n    MARK\"\n"},
		{"literal", "run: |\n  echo one\n  echo MARK\n"},
		{"literal more indented", "run: |\n  if true; then\n      echo MARK\n  fi\n"},
		{"literal leading blank lines", "run: |\n\n\n  echo MARK\n"},
		{"literal strip", "run: |-\n    echo one\n    echo MARK\nnext: x\n"},
		{"literal keep", "run: |+\n  echo one\n\n  echo MARK\n\n"},
		{"literal explicit indentation", "run: |4\n      echo one\n    echo MARK\n"},
		{"literal in a list", "steps:\n  - id: a\n    run: |\n      echo one\n      echo MARK\n"},
		{"folded", "run: >\n  echo one\n  two\n\n  three MARK\n"},
		{"folded more indented", "run: >\n  one\n    two MARK\n  three\n"},
		{"anchor", "run: &cmd echo MARK\n"},
		{"tag", "run: !!str echo MARK\n"},
		{"anchor and tag quoted", "run: &a !!str \"echo MARK\"\n"},
		{"anchor on its own line", "run: &cmd\n  echo MARK\n"},
		{"CRLF literal", "run: |\r\n  echo one\r\n  echo MARK\r\n"},
		{"CRLF plain multi-line", "run: echo\r\n  MARK\r\n"},
		{"comment after header", "run: | # a comment\n  echo MARK\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(c.y), &doc); err != nil {
				t.Fatal(err)
			}
			n := findScalar(&doc, "MARK")
			if n == nil {
				t.Fatalf("no scalar holds MARK")
			}
			b := newBuilder(&decoder{}, []byte(c.y))
			at := strings.Index(c.y, "MARK")
			wantLine := strings.Count(c.y[:at], "\n") + 1
			wantCol := utf8.RuneCountInString(c.y[strings.LastIndexByte(c.y[:at], '\n')+1:at]) + 1
			off := strings.Index(n.Value, "MARK")
			if line, col := b.posIn(n, off); line != wantLine || col != wantCol {
				t.Errorf("offset %d of %q maps to %d:%d, want %d:%d", off, n.Value, line, col, wantLine, wantCol)
			}
			// The end of the value is just after MARK (which ends every value but the kept block).
			if end := strings.TrimRight(n.Value, "\n"); strings.HasSuffix(end, "MARK") {
				if line, col := b.posIn(n, len(end)); line != wantLine || col != wantCol+4 {
					t.Errorf("end of the value maps to %d:%d, want %d:%d", line, col, wantLine, wantCol+4)
				}
			}
		})
	}
}

// TestPosInEscape: an offset inside the text an escape gives maps to the escape's backslash; an
// offset out of the value, or a value whose text the file does not give, maps to the value's start.
func TestPosInEscape(t *testing.T) {
	y := "run: \"\\u00e9x\"\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(y), &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0].Content[1]
	b := newBuilder(&decoder{}, []byte(y))
	for off, col := range map[int]int{0: 7, 1: 7, 2: 13, 3: 14, 4: 6, -1: 6} {
		if line, c := b.posIn(n, off); line != 1 || c != col {
			t.Errorf("offset %d maps to %d:%d, want 1:%d", off, line, c, col)
		}
	}
	other := &yaml.Node{Kind: yaml.ScalarNode, Value: "not there", Line: 1, Column: 6, Style: yaml.DoubleQuotedStyle}
	if line, col := b.posIn(other, 4); line != 1 || col != 6 {
		t.Errorf("a value not in the file maps to %d:%d, want its start 1:6", line, col)
	}
}
