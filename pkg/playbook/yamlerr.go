package playbook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Syntax errors of the YAML. yaml v3 says what is wrong but not where: its message holds one line,
// that of the construct it was reading (a mapping that began far above, a [ that is never closed), and
// on a line counted from 0 for some errors and from 1 for others. So the place is found again: the file
// is cut ever shorter, and the first character with which the same error appears is where the mistake
// becomes certain. That is where yamllint points too (a stray -, text after a closing quote, a key
// indented wrongly); for what is left open (a quote, a [ or {) the message points at where it was
// opened instead, as that is what to fix, not the end of the file where the parser gave up.

// docError is the error string of decoding the first YAML document of src as Parse does; "" when it
// decodes or src holds none.
func docError(src []byte) string {
	var doc yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc)
	if err == nil || errors.Is(err, io.EOF) {
		return ""
	}
	return err.Error()
}

// locateSyntaxError returns the byte offset in src of the character with which the error full (the
// error of the whole of src) appears: the shortest prefix of src that gives the same error ends with
// it. Its line is at least from (0-based; yaml v3's line is never after the mistake): prefixes are
// tried from there by doubling steps, then halving, first by lines then within the line, so that a
// mistake close after from costs a few parses even in a large file. False when no prefix of the lines
// from there reproduces the error.
func locateSyntaxError(src []byte, full string, from int) (int, bool) {
	fails := func(end int) bool { return docError(src[:end]) == full }
	starts := []int{0}
	for i, c := range src {
		if c == '\n' && i+1 < len(src) {
			starts = append(starts, i+1)
		}
	}
	lineEnd := func(k int) int { // end of line k (0-based), its line break included
		if k+1 < len(starts) {
			return starts[k+1]
		}
		return len(src)
	}
	last := len(starts) - 1
	lo := min(max(from, 0), last)
	// The first line whose end makes the error appear: some line in [lo, hi].
	hi := lo
	for step := 1; !fails(lineEnd(hi)); step *= 2 {
		if hi == last {
			return 0, false
		}
		lo = hi + 1
		hi = min(hi+step, last)
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(lineEnd(mid)) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	// The first character of that line with which it appears (at rune boundaries); its line break
	// when none.
	start := starts[lo]
	line := src[start:lineEnd(lo)]
	var cuts []int // offsets just after each rune of the line, without its line break
	for i := 0; i < len(line) && line[i] != '\n' && line[i] != '\r'; {
		_, size := utf8.DecodeRune(line[i:])
		i += size
		cuts = append(cuts, start+i)
	}
	a, b := 0, len(cuts)
	for a < b {
		mid := (a + b) / 2
		if fails(cuts[mid]) {
			b = mid
		} else {
			a = mid + 1
		}
	}
	if a == len(cuts) {
		return start + len(bytes.TrimRight(line, "\r\n")), true
	}
	_, size := utf8.DecodeLastRune(src[:cuts[a]])
	return cuts[a] - size, true
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError positions a syntax error of yaml v3 and says what to do about the mistakes people make
// most.
func yamlError(name string, src []byte, err error) *Error {
	full := err.Error()
	msg := strings.TrimPrefix(full, "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatch(full); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if strings.Contains(msg, "exceeded max depth") {
		return &Error{File: name, Line: max(line, 1), Col: 1, Msg: "the YAML is nested too deeply (more than 10000 levels)"}
	}
	off, ok := locateSyntaxError(src, full, line-1)
	if !ok {
		line = max(line, 1)
		text := sourceLine(src, line)
		return &Error{File: name, Line: line, Col: len(text) - len(strings.TrimLeft(text, " ")) + 1, Msg: "invalid YAML: " + msg}
	}
	off, what := explainSyntax(src, off, msg)
	l, c := lineColAt(src, off)
	return &Error{File: name, Line: l, Col: c, Msg: what}
}

// lineColAt converts a byte offset of src to a line and rune column, both 1-based.
func lineColAt(src []byte, off int) (int, int) {
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return bytes.Count(src[:off], []byte("\n")) + 1, utf8.RuneCount(src[start:off]) + 1
}

// lineAt returns the line holding offset off, without its line break, and the offset of its start.
func lineAt(src []byte, off int) (string, int) {
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	end := bytes.IndexByte(src[start:], '\n')
	if end < 0 {
		end = len(src) - start
	}
	return strings.TrimSuffix(string(src[start:start+end]), "\r"), start
}

// indentOf is the number of spaces a line starts with.
func indentOf(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

// prevContentLine returns the nearest line above the one starting at start that holds more than
// white space and a comment, and its start; "" and -1 when there is none.
func prevContentLine(src []byte, start int) (string, int) {
	for start > 0 {
		line, s := lineAt(src, start-1)
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			return line, s
		}
		start = s
	}
	return "", -1
}

var keyLineRe = regexp.MustCompile(`^( *(?:- +)*)([^\s#'"\[\]{}:,-][^:#]*?|'[^']*'|"[^"]*"):(?:\s|$)`)

// lineKey finds the key of a "key: value" or "- key: value" line: its text and 1-based column; "" and
// 0 when the line holds none.
func lineKey(line string) (string, int) {
	m := keyLineRe.FindStringSubmatchIndex(line)
	if m == nil {
		return "", 0
	}
	return line[m[4]:m[5]], utf8.RuneCountInString(line[:m[4]]) + 1
}

// keyColumn is the column of lineKey.
func keyColumn(line string) int {
	_, col := lineKey(line)
	return col
}

var noSpaceRe = regexp.MustCompile(`^( *(?:- +)?)([A-Za-z_][\w.-]*):(\S)`)

// explainSyntax says what is wrong at offset off of src, where yaml v3's error msg appears, and what
// to do; it returns the offset where the fix goes (the [ that is not closed, not the end of the file).
func explainSyntax(src []byte, off int, msg string) (int, string) {
	var c byte
	if off < len(src) {
		c = src[off]
	}
	line, start := lineAt(src, off)
	before := line[:min(off-start, len(line))] // the line up to the site
	switch {
	case strings.Contains(msg, "tab"), c == '\t':
		// yaml v3 stops at the line of the block the tab is in: the tab is on that line or a later one.
		for at, n := start, 0; at < len(src) && n < 50; n++ {
			l, _ := lineAt(src, at)
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			if k := strings.IndexByte(indent, '\t'); k >= 0 {
				return at + k, "tab character in indentation: YAML indents with spaces only; replace the tab with spaces"
			}
			next := bytes.IndexByte(src[at:], '\n')
			if next < 0 {
				break
			}
			at += next + 1
		}
	case strings.Contains(msg, "unknown anchor"):
		name := strings.Trim(strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor "), " referenced"), "'")
		if k := strings.Index(line, "*"+name); k >= 0 {
			off = start + k
		}
		return off, fmt.Sprintf("*%s refers to an anchor &%s that is not defined before it; define it with &%s on a value above, or write the value out", name, name, name)
	case strings.Contains(msg, "unknown escape character"), strings.Contains(msg, "hexdecimal number"), strings.Contains(msg, "invalid Unicode character escape"):
		if k := bytes.LastIndexByte(src[:off+1], '\\'); k >= start {
			off = k
		}
		esc := string(src[off:min(off+2, len(src))])
		return off, fmt.Sprintf("%s is not a valid escape in a double-quoted value (a backslash starts an escape there, as in \\n); write \\\\ for a backslash, or use single quotes, in which a backslash is just a backslash", esc)
	case strings.Contains(msg, "did not find expected ',' or ']'"), strings.Contains(msg, "did not find expected ',' or '}'"):
		open, closer, kind := byte('['), "]", "list"
		if strings.Contains(msg, "'}'") {
			open, closer, kind = '{', "}", "mapping"
		}
		if k := unmatchedOpen(src, off, open); k >= 0 {
			l, _ := lineColAt(src, k)
			return k, fmt.Sprintf("this %c opens a %s that is not closed: end it with %s (the lines after it, from line %d on, are read as part of the %s until a %s)", open, kind, closer, l+1, kind, closer)
		}
		return off, fmt.Sprintf("expected , or %s here: a %c %s %s ends with %s, and its items are separated by commas", closer, open, closer, kind, closer)
	case strings.Contains(msg, "found unexpected end of stream"):
		if c == '"' || c == '\'' {
			return off, fmt.Sprintf("this %c opens a quoted value that is never closed: end the value with %c (a %c inside it is written %s)", c, c, c, map[byte]string{'"': `\"`, '\'': "''"}[c])
		}
		return off, "invalid YAML: the file ends in the middle of a value; close what is open above"
	case strings.Contains(msg, "cannot start any token"):
		return off, fmt.Sprintf("%q cannot start a value written without quotes (YAML reserves it); put the value in quotes", string(rune(c)))
	case strings.Contains(msg, "mapping values are not allowed"):
		prev, _ := prevContentLine(src, start)
		name, key := lineKey(line)
		if key > 0 && key == indentOf(line)+1 && prev != "" && key > keyColumn(prev) && keyColumn(prev) > 0 {
			// A key indented more than the one above continues that key's value.
			return start + indentOf(line), fmt.Sprintf("key %q is indented more than the key above it (column %d), so YAML reads it as more of that key's value: indent it like that key", name, keyColumn(prev))
		}
		return off, `a value without quotes cannot contain ": "; put the value in quotes or write it as a | block`
	case strings.Contains(msg, "could not find expected ':'"):
		if m := noSpaceRe.FindStringSubmatchIndex(line); m != nil && len(before) <= m[5]+1 {
			return start + m[5], fmt.Sprintf("missing space after the colon of %q: YAML reads %q as one word, not a key and its value; write %s: %s", line[m[4]:m[5]], strings.TrimSpace(line[m[4]:]), line[m[4]:m[5]], strings.TrimSpace(line[m[5]+1:]))
		}
		return start + indentOf(line), "this line is neither key: value nor a list item (- ...) of the mapping it is in; write key: value, or indent it as part of the value above"
	case strings.Contains(msg, "did not find expected"), strings.Contains(msg, "expected <block end>"):
		prev, prevStart := prevContentLine(src, start)
		switch {
		case c == ']' || c == '}':
			return off, fmt.Sprintf("this %c closes nothing: remove it, or open the %s with %s before", c, map[byte]string{']': "list", '}': "mapping"}[c], map[byte]string{']': "[", '}': "{"}[c])
		case strings.HasSuffix(strings.TrimRight(before, " "), `"`) || strings.HasSuffix(strings.TrimRight(before, " "), `'`):
			return off, "text after the closing quote: a quoted value ends at its closing quote; put the whole value in quotes (escape the quotes inside), or write it without the outer quotes"
		case c == '-' && strings.TrimSpace(line) == "-":
			return off, "a lone - where a key was expected: remove it, or indent it under a key as an item of its list"
		case c == '-' && off == start+indentOf(line):
			want := ""
			if sib := siblingItem(src, start, indentOf(line)); sib > 0 {
				want = fmt.Sprintf(" (column %d)", sib)
			}
			return off, fmt.Sprintf("a list item (-) where a key was expected: it is indented differently from the other items of its list; indent it like them%s", want)
		case c == '.' && strings.TrimSpace(line) == "...":
			return off, `"..." ends the YAML document here, so what follows is not part of the playbook: remove this line`
		}
		if b := blockAbove(src, start); b.header >= 0 && indentOf(line) > b.parentIndent && indentOf(line) < b.indent {
			l, _ := lineColAt(src, b.header)
			return start + indentOf(line), fmt.Sprintf("this line is less indented than the first line of the block scalar (| or >) of line %d, so it ends the block and is not a key: indent every line of the block at least %d spaces, like its first", l, b.indent)
		}
		if name, k := lineKey(line); prev != "" && k > 0 && k == indentOf(line)+1 {
			pk := keyColumn(prev)
			if pk == 0 {
				pk = indentOf(prev) + 1
			}
			if k != pk {
				pl, _ := lineColAt(src, prevStart)
				return start + indentOf(line), fmt.Sprintf("key %q is not indented like the key above it (line %d, column %d): keys of one mapping start in the same column; indent it like that key, or further to nest it in that key's value", name, pl, pk)
			}
		}
		if strings.Contains(msg, "expected key") || strings.Contains(msg, "'-' indicator") || strings.Contains(msg, "<block end>") {
			return off, "invalid YAML: " + msg + " here: check the indentation of this line against the lines above it"
		}
	}
	return off, "invalid YAML: " + msg
}

// unmatchedOpen finds, before off, the open bracket that no closing one matches, skipping quoted text
// and comments roughly as YAML reads them; -1 when there is none.
func unmatchedOpen(src []byte, off int, open byte) int {
	closer := map[byte]byte{'[': ']', '{': '}'}[open]
	var stack []int
	var quote byte
	for i := 0; i < off && i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '#' && (i == 0 || src[i-1] == ' ' || src[i-1] == '\n'):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case (c == '"' || c == '\'') && (len(stack) > 0 || i > 0 && (src[i-1] == ' ' || src[i-1] == '[' || src[i-1] == '{')):
			quote = c
		case c == open:
			stack = append(stack, i)
		case c == closer && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) == 0 {
		return -1
	}
	return stack[0]
}

// siblingItem is the column of the "- " of the nearest list item above the line starting at start
// that is indented differently from indent, 0 when there is none.
func siblingItem(src []byte, start, indent int) int {
	for start > 0 {
		line, s := lineAt(src, start-1)
		t := strings.TrimLeft(line, " ")
		if strings.HasPrefix(t, "- ") || t == "-" {
			if indentOf(line) != indent {
				return indentOf(line) + 1
			}
		} else if t != "" && !strings.HasPrefix(t, "#") && indentOf(line) < indent {
			return 0
		}
		start = s
	}
	return 0
}

// blockScalar describes the block scalar whose lines end just above a line: where its header is, the
// indentation of its first line and that of the line holding its header.
type blockScalar struct {
	header, indent, parentIndent int
}

var blockHeaderRe = regexp.MustCompile(`:\s+[|>][0-9+-]*\s*(#.*)?$`)

// blockAbove finds the block scalar (key: | or key: >) the lines just above the line starting at start
// belong to, lines more indented than that line; header -1 when they belong to none.
func blockAbove(src []byte, start int) blockScalar {
	this, _ := lineAt(src, start)
	first := -1
	for at := start; at > 0; {
		line, s := lineAt(src, at-1)
		if blockHeaderRe.MatchString(line) {
			if first < 0 {
				break
			}
			return blockScalar{header: s + strings.LastIndexAny(strings.SplitN(line, "#", 2)[0], "|>"), indent: first, parentIndent: indentOf(line)}
		}
		if strings.TrimSpace(line) != "" {
			if indentOf(line) <= indentOf(this) {
				break
			}
			first = indentOf(line)
		}
		at = s
	}
	return blockScalar{header: -1}
}
