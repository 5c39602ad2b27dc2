package mask

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestQuotedFormsMasked: error messages quote values with %q and JSON escapes them; a secret holding a
// quote, a backslash, a control character, <, > or & then appears escaped, and must be masked in that
// form too (a password such as pa"ss\word leaked through `exec: "pa\"ss\\word": not found`).
func TestQuotedFormsMasked(t *testing.T) {
	for _, secret := range []string{`pa"ss\word`, "tab\there", "new\nline", "<b>&amp;</b>", "ünïcödé\u2028x", "bell\a", "\xffbin"} {
		m := New([]string{secret})
		_, execErr := exec.LookPath("/nonexistent/" + secret)
		jsonText, _ := json.Marshal(map[string]string{"error": "bad " + secret})
		for _, text := range []string{
			fmt.Sprintf("value %q is wrong", secret),
			fmt.Sprintf("%v", execErr),
			string(jsonText),
			"raw " + secret + " end",
		} {
			got := m.String(text)
			q := fmt.Sprintf("%q", secret)
			forms := []string{secret, q[1 : len(q)-1]}
			if utf8.ValidString(secret) { // JSON replaces invalid bytes: its form of "\xffbin" is not the secret
				j, _ := json.Marshal(secret)
				forms = append(forms, string(j[1:len(j)-1]))
			} else if strings.HasPrefix(text, "{") {
				continue
			}
			for _, form := range forms {
				if strings.Contains(got, form) {
					t.Errorf("secret %q: String(%q) = %q still holds %q", secret, text, got, form)
				}
			}
			if !strings.Contains(got, Replacement) {
				t.Errorf("secret %q: nothing masked in %q", secret, got)
			}
			if streamed(m, []byte(text), 1) != got {
				t.Errorf("secret %q: the Writer masks %q differently from String", secret, text)
			}
		}
	}
	// A secret without characters to escape has no other form: nothing else is masked.
	m := New([]string{"plain"})
	if got := m.String(`"plain" and "pla\"in"`); got != `"***" and "pla\"in"` {
		t.Errorf("String = %q", got)
	}
}

// TestMultiLineSecretMaskedLineByLine: a command that prints one line of a multi-line secret (one field
// of a JSON key file, the second line of a PEM body) must not show it; lines shorter than MinLineLen are
// left alone unless the secret has no other line.
func TestMultiLineSecretMaskedLineByLine(t *testing.T) {
	const key = "{\n  \"client_id\": \"abc\",\n  \"private_key\": \"hunter2-line\"\r\n}\n"
	m := New([]string{key})
	for _, tt := range []struct{ in, want string }{
		{"line 2 is   \"private_key\": \"hunter2-line\" here", "line 2 is   *** here"},
		{"\"client_id\": \"abc\",\n", "***\n"},
		{key, "***"},
		{"braces } and { stay", "braces } and { stay"},
		{fmt.Sprintf("%q", "\"private_key\": \"hunter2-line\""), `"***"`},
	} {
		if got := m.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := streamed(m, []byte(tt.in), 3); got != m.String(tt.in) {
			t.Errorf("Writer(%q) = %q, differs from String", tt.in, got)
		}
	}
	// The only non-blank line of a secret is the secret, however short.
	if got := New([]string{"\nabc\n"}).String("x abc y"); got != "x *** y" {
		t.Errorf("a short secret with blank lines around it: %q", got)
	}
	// A short line among others is not masked alone.
	if got := New([]string{"ab\nlong-enough"}).String("ab cd long-enough"); got != "ab cd ***" {
		t.Errorf("short line: %q", got)
	}
}

// TestShellQuotedSecretMasked: bash's `set -x` prints a word holding a single quote in single quotes,
// each quote of the value written as quote, backslash, quote, quote; that form is the secret all the
// same.
func TestShellQuotedSecretMasked(t *testing.T) {
	secret := "hunter2'abc"
	m := New([]string{secret})
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	out, err := exec.Command(bash, "-xc", `: "$1"`, "_", secret).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	got := m.String(string(out))
	if got != "+ : '***'\n" {
		t.Errorf("set -x trace %q masked as %q, want + : '***'", out, got)
	}
	if strings.Contains(got, "hunter2") || strings.Contains(got, "abc") {
		t.Errorf("the trace still shows part of the secret: %q", got)
	}
}
