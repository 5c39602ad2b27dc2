package playbook

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a playbook file at a position. Error() is "file:line:col: message", the form
// editors and terminals turn into a link. Line and Col are 1-based; a zero Line means the problem is
// about the whole file (it could not be read, for example) and Error() is then "file: message".
type Error struct {
	File      string // the file as the caller named it (not made absolute)
	Line, Col int
	Msg       string // says what is wrong and, where possible, what to write instead
}

// Error returns "file:line:col: message" ("file:line: message" without a column, "file: message"
// without a line).
func (e *Error) Error() string {
	switch {
	case e.Line <= 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Col <= 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ErrorList is every problem found in one file, sorted by line then column. Load and Parse return one
// (as the error value, never empty) whenever a file is invalid, so callers can print each problem on its
// own line with errors.As(err, &list). Error() joins the lines with newlines.
type ErrorList []*Error

// Error returns every error of the list, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns every *Error, so errors.As finds the first one.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// sorted orders the list by position and drops exact duplicates (the same message at the same place can
// be found twice, for example through a YAML alias used in two places).
func (l ErrorList) sorted() ErrorList {
	slices.SortStableFunc(l, func(a, b *Error) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
	return slices.CompactFunc(l, func(a, b *Error) bool { return *a == *b })
}
