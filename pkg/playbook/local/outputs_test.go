package local

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseOutputs(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "pairs", in: "a=1\nb=two words\n", want: map[string]string{"a": "1", "b": "two words"}},
		{name: "value keeps = and spaces", in: "url=https://x/?q=1 \n", want: map[string]string{"url": "https://x/?q=1 "}},
		{name: "empty value", in: "a=\n", want: map[string]string{"a": ""}},
		{name: "later wins", in: "a=1\na=2\n", want: map[string]string{"a": "2"}},
		{name: "blank lines and CRLF", in: "\r\na=1\r\n\n  \nb=2\r\n", want: map[string]string{"a": "1", "b": "2"}},
		{name: "no final newline", in: "a=1", want: map[string]string{"a": "1"}},
		{name: "heredoc", in: "notes<<EOF\nline one\nline two\nEOF\nafter=x\n", want: map[string]string{"notes": "line one\nline two", "after": "x"}},
		{name: "heredoc empty", in: "n<<END\nEND\n", want: map[string]string{"n": ""}},
		{name: "heredoc keeps = and <<", in: "n<<X\na=b\nc<<d\nX\n", want: map[string]string{"n": "a=b\nc<<d"}},
		{name: "= before << is a pair", in: "a=b<<c\n", want: map[string]string{"a": "b<<c"}},
		{name: "dashes and underscores", in: "my-key_2=v\n", want: map[string]string{"my-key_2": "v"}},
		{name: "not a pair", in: "a=1\nhello\n", err: "line 2: want key=value or key<<DELIMITER"},
		{name: "empty name", in: "=1\n", err: "line 1: empty output name"},
		{name: "bad name", in: "a b=1\n", err: `line 1: the output name before = or << may hold only letters, digits, _ and -`},
		{name: "unclosed heredoc", in: "x=1\nn<<EOF\nline\n", err: `line 2: "n" is never closed by a line "EOF"`},
		{name: "heredoc without delimiter", in: "n<<\n", err: `line 1: "n" needs a delimiter after <<`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOutputs([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReadOutputs: a missing file is no outputs, 1 MiB is the most, and what cannot be read is an error
// naming it.
func TestReadOutputs(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) (map[string]string, error) { return ReadOutputs(filepath.Join(dir, name)) }
	if got, err := read("missing"); err != nil || got != nil {
		t.Errorf("a step that wrote no outputs: %v, %v; want none and no error", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte("k="+strings.Repeat("x", MaxOutputsSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := read("big"); !errors.Is(err, ErrOutputsTooLarge) {
		t.Errorf("a file over 1 MiB: %v, want ErrOutputsTooLarge", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exact"), []byte("k="+strings.Repeat("x", MaxOutputsSize-2)), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := read("exact"); err != nil || len(got["k"]) != MaxOutputsSize-2 {
		t.Errorf("a file of exactly 1 MiB: %d bytes, %v", len(got["k"]), err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "folder"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := read("folder"); err == nil || !strings.Contains(err.Error(), "read PLAYBOOK_OUTPUT") ||
		!strings.Contains(err.Error(), filepath.Join(dir, "folder")) {
		t.Errorf("a folder where the file should be: %v, want an error naming it", err)
	}
}

// TestTempBases: $TMPDIR, when set, is the only place a run's folder goes; otherwise the user's
// runtime folder and /dev/shm (memory file systems) come before os.TempDir().
func TestTempBases(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cases := []struct {
		name string
		env  func(string) string
		want []string
	}{
		{"TMPDIR wins", env("TMPDIR", "/scratch", "XDG_RUNTIME_DIR", "/run/user/1000"), []string{"/scratch"}},
		{"runtime folder first", env("XDG_RUNTIME_DIR", "/run/user/1000"), []string{"/run/user/1000", "/dev/shm", os.TempDir()}},
		{"relative runtime folder ignored", env("XDG_RUNTIME_DIR", "run"), []string{"/dev/shm", os.TempDir()}},
		{"nothing set", env(), []string{"/dev/shm", os.TempDir()}},
	}
	for _, c := range cases {
		if got := tempBases(c.env); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
