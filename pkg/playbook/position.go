package playbook

import (
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Positions inside values. yaml v3 gives the position of each value only; an error inside one (in an
// expression, in a shell command) is placed at its own line and column by reading the value's text in
// the file again, as YAML wrote it, and matching it byte by byte with the parsed value.

// posIn maps a byte offset in the value of scalar n to a file position (line, rune column). It is
// exact for every style: plain, single- and double-quoted and literal (|) and folded (>) blocks, on one
// line or many, after an anchor or tag (a value reached through an alias maps to where the anchored
// value is written). Only characters of the value that are not written as themselves map to the nearest
// place: an escape's character to its backslash, the quote a doubled single quote stands for to the first of the two, a line break
// folded into a space to the end of its line, the line break that stands for blank lines to the first
// of them. When the text in the file cannot be matched with the value, it falls back to the start of
// the value, which is where yaml v3 puts it.
func (b *builder) posIn(n *yaml.Node, off int) (int, int) {
	if at, ok := b.sourceOffset(n, off); ok {
		return b.lineCol(at)
	}
	return n.Line, n.Column
}

// sourceOffset returns the byte offset in the file of byte off of the value of scalar n (off may be
// the value's length: then just after its last character), or false when the file's text does not give
// the value.
func (b *builder) sourceOffset(n *yaml.Node, off int) (int, bool) {
	value := n.Value
	if n.Kind != yaml.ScalarNode || off < 0 || off > len(value) || n.Line < 1 || n.Line > len(b.lines) || n.Column < 1 {
		return 0, false
	}
	src := b.src
	si := b.lines[n.Line-1] + runeOffsetToByte(b.line(n.Line), n.Column-1)
	// yaml v3 places a value at its properties: skip &anchor and !tag, each followed by white space.
	for si < len(src) && (src[si] == '&' || src[si] == '!') {
		for si < len(src) && !isSpaceByte(src[si]) {
			si++
		}
		for si < len(src) && isSpaceByte(src[si]) {
			si++
		}
	}
	if si >= len(src) {
		return 0, false
	}
	m := matcher{src: src, value: value, si: si, indent: -1}
	switch n.Style &^ yaml.TaggedStyle {
	case 0, yaml.FlowStyle:
	case yaml.SingleQuotedStyle:
		if src[si] != '\'' {
			return 0, false
		}
		m.si++
		m.single = true
	case yaml.DoubleQuotedStyle:
		if src[si] != '"' {
			return 0, false
		}
		m.si++
		m.double = true
	case yaml.LiteralStyle, yaml.FoldedStyle:
		if src[si] != '|' && src[si] != '>' {
			return 0, false
		}
		// The content starts on the line after the header; its indentation is what the first line
		// that is not blank has in the file and not in the value (that works with an explicit
		// indentation indicator too).
		k := strings.IndexByte(string(src[si:]), '\n')
		if k < 0 {
			return 0, false
		}
		m.si = si + k + 1
		m.indent = blockIndent(src[m.si:], value)
		if m.indent < 0 {
			return 0, false
		}
		m.lineStart = true
	default:
		return 0, false
	}
	return m.find(off)
}

// matcher walks a scalar's text in the file (src from si) and its value together.
type matcher struct {
	src            []byte
	value          string
	si             int
	single, double bool
	indent         int  // of a block scalar; -1 for the others
	lineStart      bool // si is at the start of a line of a block scalar
}

// find advances to byte off of the value and returns the file offset there. A byte of the value is
// matched with the same byte in the file; the file's other bytes can be only what YAML drops or turns
// into something else: indentation and white space around line breaks, a line break folded into a
// space, the second of two single quotes that stand for one in a single-quoted scalar, and escapes in a double-quoted one.
func (m *matcher) find(off int) (int, bool) {
	src, value := m.src, m.value
	vi, end := 0, m.si // end: just after the last byte of the value matched
	for {
		if m.lineStart && vi < len(value) {
			for k := 0; k < m.indent && m.si < len(src) && src[m.si] == ' '; k++ {
				m.si++
			}
			m.lineStart = false
		}
		if vi == len(value) {
			return end, off == vi
		}
		if m.si >= len(src) {
			return 0, false
		}
		c, v := src[m.si], value[vi]
		if c == '\r' && m.si+1 < len(src) && src[m.si+1] == '\n' && (v == '\n' || v == ' ') {
			m.si++ // a CRLF line break is at its CR
			if vi == off {
				return m.si - 1, true
			}
			c = '\n'
		}
		if m.double && c == '\\' {
			if m.si+1 < len(src) && (src[m.si+1] == '\n' || src[m.si+1] == '\r') {
				m.si++ // an escaped line break: the line goes on without a space
				continue
			}
			text, size, ok := unescape(src[m.si:])
			if !ok || !strings.HasPrefix(value[vi:], text) {
				return 0, false
			}
			if off < vi+len(text) {
				return m.si, true
			}
			vi += len(text)
			m.si += size
			end = m.si
			continue
		}
		switch {
		case c == v || (v == ' ' && c == '\n'):
			if vi == off {
				return m.si, true
			}
			vi++
			end = m.si + 1
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || (m.single && c == '\''):
		default:
			return 0, false
		}
		if c == '\n' {
			m.lineStart = m.indent >= 0
		}
		m.si++
	}
}

// blockIndent is the indentation of a block scalar whose content in the file is src (from the line
// after its header) and whose value is value, or -1 when they do not agree.
func blockIndent(src []byte, value string) int {
	first := strings.TrimLeft(value, "\n")
	if first == "" {
		return 0
	}
	valueLead := len(first) - len(strings.TrimLeft(first, " "))
	for len(src) > 0 {
		line := src
		if k := strings.IndexByte(string(src), '\n'); k >= 0 {
			line, src = src[:k], src[k+1:]
		} else {
			src = nil
		}
		text := strings.TrimRight(string(line), " \t\r")
		if text == "" {
			continue
		}
		lead := len(text) - len(strings.TrimLeft(text, " "))
		if lead < valueLead {
			return -1
		}
		return lead - valueLead
	}
	return -1
}

// simpleEscapes are YAML's escapes of one character after the backslash and what they give.
var simpleEscapes = map[byte]string{'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v",
	'f': "\f", 'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '\'': "'", '\\': "\\", 'N': "\u0085",
	'_': "\u00a0", 'L': "\u2028", 'P': "\u2029"}

// unescape decodes the escape at the start of src (a backslash) of a double-quoted scalar, as yaml v3
// does: the text it gives and its length in the file.
func unescape(src []byte) (string, int, bool) {
	if len(src) < 2 {
		return "", 0, false
	}
	if s, ok := simpleEscapes[src[1]]; ok {
		return s, 2, true
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[src[1]]
	if digits == 0 || len(src) < 2+digits {
		return "", 0, false
	}
	var r rune
	for _, c := range src[2 : 2+digits] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return "", 0, false
		}
		r = r<<4 | rune(d)
	}
	return string(r), 2 + digits, true
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// lineCol converts a byte offset of the source to a line and rune column, both 1-based.
func (b *builder) lineCol(at int) (int, int) {
	i := sort.Search(len(b.lines), func(i int) bool { return b.lines[i] > at }) - 1
	return i + 1, utf8.RuneCount(b.src[b.lines[i]:at]) + 1
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
