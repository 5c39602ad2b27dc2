// Package mask replaces secret values with a fixed placeholder in strings, byte slices and streams.
//
// A Masker is built once from a list of secrets and is then safe for concurrent use. Matching is
// leftmost-longest: scanning left to right, the first position where any secret occurs wins, and among the
// secrets occurring there the longest one is replaced. Every occurrence of a secret becomes [Replacement].
//
// A nil *Masker, or one built from no non-empty secrets, masks nothing and costs nothing: its methods return
// their input unchanged and its Writer forwards writes as they are.
//
// A secret is also masked in the forms that quoting gives it: Go's %q (strconv.Quote) and JSON escaping,
// for a secret holding a quote, a backslash, a control character or (JSON) <, > or &. Error messages
// quote values ("exec: \"...\": executable file not found"), and such a form is the secret all the same.
//
// A secret of several lines is also masked line by line, so that a command printing only some of its
// lines (one field of a JSON key file, one line of a PEM block) gives none of them away: each line,
// without its surrounding white space, is masked on its own when it is at least [MinLineLen] bytes long.
// Shorter lines ("}", "---", "-->") are common text that masking would garble everywhere, and give little
// away. A secret whose only non-blank line is short ("abc\n") is that line, and it is masked whatever its
// length.
//
// A secret holding a single quote is also masked in the form a shell gives it when it quotes it with
// single quotes, as bash's `set -x` trace does: each quote closes the quoted text, is escaped and opens
// it again, so that `echo "$TOKEN"` with the secret hunter2'abc is traced (after bash's "+ ") as
//
//	echo 'hunter2'\''abc'
//
// The streaming [Writer] masks a secret even when the producer splits it across two writes: it holds back
// the trailing bytes that could still become a secret (at most the longest secret's length minus one) until
// the next write decides, and releases them on Flush or Close.
package mask

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Replacement is what every occurrence of a secret is replaced with.
const Replacement = "***"

var replacement = []byte(Replacement)

// MinLineLen is the shortest line of a multi-line secret that is masked on its own (see the package
// documentation). Four bytes keep braces, brackets and YAML's --- out while masking any line that carries
// a meaningful part of a key or a password.
const MinLineLen = 4

// Masker replaces secrets. Build it with New; the zero value and nil mask nothing.
type Masker struct {
	secrets [][]byte // distinct, non-empty, longest first
	first   [256]bool
	maxLen  int
}

// New returns a Masker for the given secret values. Empty values are ignored (an empty secret would match
// everywhere) and duplicates are removed. With no non-empty value it returns nil, which is a valid Masker
// that masks nothing.
func New(secrets []string) *Masker {
	seen := make(map[string]bool, len(secrets))
	var m Masker
	add := func(s string) {
		if s == "" || seen[s] {
			return
		}
		seen[s] = true
		m.secrets = append(m.secrets, []byte(s))
		m.first[s[0]] = true
		m.maxLen = max(m.maxLen, len(s))
	}
	for _, s := range secrets {
		add(s)
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, v := range quotedForms(s) {
			add(v)
		}
		for _, l := range secretLines(s) {
			add(l)
			for _, v := range quotedForms(l) {
				add(v)
			}
		}
	}
	if len(m.secrets) == 0 {
		return nil
	}
	// Longest first, so that at one position the longest secret wins; ties broken by value for determinism.
	sort.Slice(m.secrets, func(i, j int) bool {
		a, b := m.secrets[i], m.secrets[j]
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return bytes.Compare(a, b) < 0
	})
	return &m
}

// secretLines returns the lines of a multi-line secret that are masked on their own: trimmed of white
// space (a line is often printed re-indented, or with its \r dropped), non-empty, and at least MinLineLen
// bytes long unless it is the secret's only non-blank line.
func secretLines(s string) []string {
	if !strings.Contains(s, "\n") {
		return nil
	}
	var lines []string
	nonBlank := 0
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		nonBlank++
		lines = append(lines, l)
	}
	if nonBlank == 1 {
		return lines
	}
	kept := lines[:0]
	for _, l := range lines {
		if len(l) >= MinLineLen {
			kept = append(kept, l)
		}
	}
	return kept
}

// quotedForms returns the escaped forms of s, without their quotes, that differ from s: strconv.Quote's,
// (for valid UTF-8, which JSON keeps exactly) encoding/json's with and without HTML escaping, and the
// shell's single-quoted form.
func quotedForms(s string) []string {
	q := strconv.Quote(s)
	forms := []string{q[1 : len(q)-1]}
	if utf8.ValidString(s) {
		if j, err := json.Marshal(s); err == nil {
			forms = append(forms, string(j[1:len(j)-1]))
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(s) == nil {
			j := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
			forms = append(forms, string(j[1:len(j)-1]))
		}
	}
	if strings.Contains(s, "'") {
		forms = append(forms, strings.ReplaceAll(s, "'", `'\''`))
	}
	var out []string
	for _, f := range forms {
		if f != s {
			out = append(out, f)
		}
	}
	return out
}

// Empty reports whether m masks nothing.
func (m *Masker) Empty() bool { return m == nil || len(m.secrets) == 0 }

// String returns s with every secret replaced. It returns s itself when nothing matched.
func (m *Masker) String(s string) string {
	if m.Empty() || !m.containsAny(s) {
		return s
	}
	return string(m.Bytes([]byte(s)))
}

func (m *Masker) containsAny(s string) bool {
	for _, sec := range m.secrets {
		if strings.Contains(s, string(sec)) {
			return true
		}
	}
	return false
}

// Bytes returns b with every secret replaced. When nothing matched it returns b itself, so the result may
// alias the argument; otherwise it is a new slice and b is not modified.
func (m *Masker) Bytes(b []byte) []byte {
	if m.Empty() {
		return b
	}
	if out, n := m.mask(nil, b, true); n >= 0 {
		return out
	}
	return b
}

// mask appends to dst the masked form of data. With final false it stops before the first position whose
// remaining bytes are a proper prefix of some secret, because more data could complete that secret; the
// returned n is how many bytes of data were consumed. When nothing in data matched and everything was
// consumed, it returns (dst, -1) without copying, so callers can use data as it is.
func (m *Masker) mask(dst, data []byte, final bool) ([]byte, int) {
	if len(data) == 0 {
		return dst, -1
	}
	// next[k] caches the next occurrence of secret k at or after i (-1: none left, -2: not searched yet).
	var stack [8]int
	next := stack[:0]
	for range m.secrets {
		next = append(next, -2)
	}
	i := 0
	matched := false
	for i < len(data) {
		hold := len(data)
		if !final {
			hold = m.partialAt(data, i)
		}
		j, n := m.leftmost(data, i, hold, next)
		if n == 0 {
			if !matched && hold == len(data) && i == 0 {
				return dst, -1
			}
			dst = append(dst, data[i:hold]...)
			return dst, hold
		}
		matched = true
		dst = append(dst, data[i:j]...)
		dst = append(dst, replacement...)
		i = j + n
	}
	return dst, i
}

// leftmost finds the leftmost occurrence of any secret starting at or after i and before limit, choosing
// the longest secret at that position. It returns the position and length, or n == 0 if none.
func (m *Masker) leftmost(data []byte, i, limit int, next []int) (pos, n int) {
	pos = -1
	for k, sec := range m.secrets {
		p := next[k]
		if p == -1 {
			continue // no further occurrence in data at all
		}
		if p < i {
			idx := bytes.Index(data[i:], sec)
			if idx < 0 {
				next[k] = -1
				continue
			}
			p = i + idx
			next[k] = p
		}
		// Secrets are sorted longest first, so a strictly smaller position is needed to win.
		if p < limit && (pos < 0 || p < pos) {
			pos, n = p, len(sec)
		}
	}
	if pos < 0 {
		return 0, 0
	}
	return pos, n
}

// partialAt returns the first position p >= i such that data[p:] is a proper prefix of some secret (so the
// next bytes could complete it), or len(data) if there is none.
func (m *Masker) partialAt(data []byte, i int) int {
	start := max(i, len(data)-m.maxLen+1)
	for p := start; p < len(data); p++ {
		if !m.first[data[p]] {
			continue
		}
		rest := data[p:]
		for _, sec := range m.secrets {
			if len(sec) > len(rest) && bytes.HasPrefix(sec, rest) {
				return p
			}
		}
	}
	return len(data)
}

// Writer masks what is written to it and writes the result to an underlying writer. Create it with
// Masker.Writer. It is not safe for concurrent use: one producer writes to it.
type Writer struct {
	m    *Masker
	w    io.Writer
	held []byte // bytes that may be the start of a secret
	buf  []byte // reused output buffer
}

// Writer returns a streaming Writer that writes the masked stream to w. Bytes that could be the beginning of
// a secret split across writes are held back until the next Write, Flush or Close. With an empty Masker the
// Writer forwards every write unchanged.
func (m *Masker) Writer(w io.Writer) *Writer { return &Writer{m: m, w: w} }

// Write masks p and writes what can be decided to the underlying writer. It reports len(p) on success; an
// error comes only from the underlying writer.
func (w *Writer) Write(p []byte) (int, error) {
	if w.m.Empty() {
		return w.w.Write(p)
	}
	data := p
	if len(w.held) > 0 {
		w.held = append(w.held, p...)
		data = w.held
	}
	out, n := w.m.mask(w.buf[:0], data, false)
	if n < 0 { // nothing matched, nothing held
		n = len(data)
		out = data
	} else {
		w.buf = out
	}
	rest := data[n:]
	var err error
	if len(out) > 0 {
		_, err = w.w.Write(out)
	}
	// rest may alias held; copy it down before reusing held's storage.
	w.held = append(w.held[:0], rest...)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the held-back bytes, masked, to the underlying writer. Call it when the stream ends.
func (w *Writer) Flush() error {
	if len(w.held) == 0 {
		return nil
	}
	out := w.m.Bytes(w.held)
	_, err := w.w.Write(out)
	w.held = w.held[:0]
	return err
}

// Close flushes the held-back bytes. It does not close the underlying writer.
func (w *Writer) Close() error { return w.Flush() }
