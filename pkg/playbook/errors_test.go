package playbook

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Col: 5, Msg: "bad"}, "a.yaml:3:5: bad"},
		{Error{File: "a.yaml", Line: 3, Msg: "bad"}, "a.yaml:3: bad"},
		{Error{File: "a.yaml", Msg: "cannot read"}, "a.yaml: cannot read"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
	list := ErrorList{{File: "f", Line: 2, Col: 1, Msg: "b"}, {File: "f", Line: 1, Col: 9, Msg: "a"}, {File: "f", Line: 2, Col: 1, Msg: "b"}}
	list = list.sorted()
	if got := list.Error(); got != "f:1:9: a\nf:2:1: b" {
		t.Errorf("sorted list: %q", got)
	}
	var err error = fmt.Errorf("load: %w", list)
	var e *Error
	if !errors.As(err, &e) || e.Msg != "a" {
		t.Errorf("errors.As(*Error) through ErrorList: %v", e)
	}
	var l ErrorList
	if !errors.As(err, &l) || len(l) != 2 {
		t.Errorf("errors.As(ErrorList): %v", l)
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"run", "run", 0}, {"", "abc", 3}, {"abc", "", 3},
		{"rnu", "run", 1},        // transposition
		{"timout", "timeout", 1}, // insertion
		{"needss", "needs", 1},   // deletion
		{"shel", "shell", 1}, {"kitten", "sitting", 3}, {"ça", "ca", 1},
	}
	for _, c := range cases {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := editDistance(c.b, c.a); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (not symmetric)", c.b, c.a, got, c.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"id", "name", "needs", "if", "run", "exec", "script", "interpreter", "timeout", "retry", "env", "dir"}
	cases := map[string]string{
		"rnu": "run", "Run": "run", "neds": "needs", "timout": "timeout", "retyr": "retry",
		"enf": "env", "interpeter": "interpreter", "x": "", "zzzzzz": "", "command": "", "i": "",
	}
	for word, want := range cases {
		if got := suggest(word, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
	if got := didYouMean("rnu", keys); got != `; did you mean "run"?` {
		t.Errorf("didYouMean: %q", got)
	}
}

// TestNamedPatternsAgree: the hand-written name checks match the regular expressions of the schema.
func TestNamedPatternsAgree(t *testing.T) {
	inputs := []string{"", "a", "A1", "1a", "_x", "-x", "x-", "a_b-c", "a b", "é", "x.y", "ABC_DEF", "a\n", "s3", "list-buckets", "UP-per"}
	for name, p := range namedPatterns {
		for _, in := range inputs {
			if p.match(in) != p.re.MatchString(in) {
				t.Errorf("pattern %s on %q: match %v, regexp %v", name, in, p.match(in), p.re.MatchString(in))
			}
		}
	}
}
