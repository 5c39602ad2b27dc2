package shquote

import "testing"

func TestJoin(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{nil, ""},
		{[]string{"echo", "hello"}, "echo hello"},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"printf", "%s\n", "a b"}, `printf '%s` + "\n" + `' 'a b'`},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"ls", "/tmp/x_y-z.1:2=3@4%5+6,7"}, "ls /tmp/x_y-z.1:2=3@4%5+6,7"},
		{[]string{"echo", "$HOME", "a*", "x;y"}, `echo '$HOME' 'a*' 'x;y'`},
	} {
		if got := Join(c.argv); got != c.want {
			t.Errorf("Join(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}
