package playbook

import (
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Positions of expressions. yaml v3 gives the position of each value; an error inside an expression
// is placed at its own column when the value's text in the file can be matched to the parsed value.

// posIn maps a byte offset in the value of scalar n to a file position. It is exact for single-line
// plain and quoted scalars without escapes and for literal blocks (|); for other scalars (folded,
// multi-line or escaped) it falls back to the start of the value.
func (b *builder) posIn(n *yaml.Node, off int) (int, int) {
	value := n.Value
	if off < 0 || off > len(value) {
		return n.Line, n.Column
	}
	switch n.Style {
	case yaml.LiteralStyle:
		k := strings.Count(value[:off], "\n")
		start := strings.LastIndexByte(value[:off], '\n') + 1
		end := strings.IndexByte(value[start:], '\n')
		if end < 0 {
			end = len(value)
		} else {
			end += start
		}
		content := value[start:end]
		line := n.Line + 1 + k
		src := b.line(line)
		if strings.HasSuffix(src, content) {
			prefix := src[:len(src)-len(content)]
			return line, utf8.RuneCountInString(prefix) + utf8.RuneCountInString(value[start:off]) + 1
		}
	case 0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle, yaml.FlowStyle:
		if strings.Contains(value, "\n") {
			break
		}
		quote := 0
		if n.Style == yaml.SingleQuotedStyle || n.Style == yaml.DoubleQuotedStyle {
			quote = 1
		}
		src := b.line(n.Line)
		at := runeOffsetToByte(src, n.Column-1+quote)
		if strings.HasPrefix(src[at:], value[:off]) {
			return n.Line, n.Column + quote + utf8.RuneCountInString(value[:off])
		}
	}
	return n.Line, n.Column
}

// line returns line n (1-based) of the source without its line break.
func (b *builder) line(n int) string {
	if n < 1 || n > len(b.lines) {
		return ""
	}
	start := b.lines[n-1]
	end := len(b.src)
	if n < len(b.lines) {
		end = b.lines[n] - 1
	}
	return strings.TrimSuffix(string(b.src[start:end]), "\r")
}

// runeOffsetToByte converts a rune offset in s (expr reports those) to a byte offset.
func runeOffsetToByte(s string, runes int) int {
	i := 0
	for k := 0; k < runes && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return i
}
