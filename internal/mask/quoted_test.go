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
