// Package shquote quotes words the way a POSIX shell needs them typed, for commands shown to people:
// the display form of a program and its arguments can be pasted back into a shell.
package shquote

import "strings"

// Join quotes each word of argv (Quote) and joins them with spaces. Nil gives "".
func Join(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Quote(a))
	}
	return b.String()
}

// Quote returns s as is when a shell would read it as one literal word, else wrapped in single
// quotes, where an embedded single quote is written as quote, backslash, quote, quote. The empty word
// becomes a pair of single quotes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-./:=@%+,", c) >= 0) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
