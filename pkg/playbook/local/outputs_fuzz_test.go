package local

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// encodeOutputs writes outputs in the $PLAYBOOK_OUTPUT format so that ParseOutputs gives them back
// exactly: every line ends with \r\n (the parser removes one \r, so a value ending in \r survives), a
// value holding a newline goes into a key<<DELIMITER block whose delimiter is none of its lines.
func encodeOutputs(outputs map[string]string) []byte {
	var b bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(outputs)) {
		v := outputs[k]
		if !strings.Contains(v, "\n") {
			fmt.Fprintf(&b, "%s=%s\r\n", k, v)
			continue
		}
		lines := strings.Split(v, "\n")
		delim := "EOF"
		for i := 0; slices.Contains(lines, delim); i++ {
			delim = fmt.Sprintf("EOF_%d", i)
		}
		fmt.Fprintf(&b, "%s<<%s\r\n", k, delim)
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
		b.WriteString(delim + "\r\n")
	}
	return b.Bytes()
}

var (
	outputName    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	outputMessage = regexp.MustCompile(`^PLAYBOOK_OUTPUT line ([0-9]+): `)
)

// FuzzParseOutputs: no content makes ParseOutputs panic or take long; an error names a line of the
// file, is short, and never quotes a line that is not a pair (a secret written there by mistake must
// not reach the error, whole or in part); what parses has valid names, and writing it back in the format and parsing
// again gives the same outputs.
//
//	go test -run '^$' -fuzz '^FuzzParseOutputs$' -fuzztime 1m ./pkg/playbook/scheduler/
func FuzzParseOutputs(f *testing.F) {
	for _, seed := range []string{
		"", "a=1\n", "a=1\nb=two words\n", "url=https://x/?q=1 \n", "a=\n", "a=1\na=2\n",
		"\r\na=1\r\n\n  \nb=2\r\n", "a=1", "notes<<EOF\nline one\nline two\nEOF\nafter=x\n",
		"n<<END\nEND\n", "n<<X\na=b\nc<<d\nX\n", "a=b<<c\n", "my-key_2=v\n", "a=1\nhello\n", "=1\n",
		"a b=1\n", "x=1\nn<<EOF\nline\n", "n<<\n", "k=v\r\r\n", "k<<E\r\nx\r\r\nE\r\n", "k<<E\nE\nk<<E\n",
		"\x00=\xff\n", "k=\xff\xfe\x00\n", "é=1\n", "k<<" + strings.Repeat("D", 100) + "\n",
		"dGhpcyBpcyBhIHNlY3JldA==\n", strings.Repeat("x", 200) + "\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		got, err := ParseOutputs(data)
		if d := time.Since(start); d > 30*time.Second { // a hang guard, not a speed target
			t.Fatalf("took %s: it hangs (normally well under a millisecond)", d)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		if err != nil {
			if got != nil {
				t.Fatalf("both outputs and an error")
			}
			msg := err.Error()
			m := outputMessage.FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("error %q does not start with PLAYBOOK_OUTPUT line N:", msg)
			}
			var n int
			fmt.Sscan(m[1], &n)
			if n < 1 || n > lines {
				t.Fatalf("error names line %d of a %d-line file: %q", n, lines, msg)
			}
			if len(msg) > 300 {
				t.Fatalf("error is %d bytes long: %q", len(msg), msg)
			}
			// A line that is not a pair, or whose name is not a name, is never quoted, not even in part:
			// it may be a secret written by mistake, and a piece of it would escape masking.
			line := bytes.TrimSuffix(bytes.Split(data, []byte("\n"))[n-1], []byte("\r"))
			eq, hd := bytes.IndexByte(line, '='), bytes.Index(line, []byte("<<"))
			nameEnd := eq
			if hd >= 0 && (eq < 0 || hd < eq) {
				nameEnd = hd
			}
			switch {
			case nameEnd < 0:
				want := fmt.Sprintf("PLAYBOOK_OUTPUT line %d: want key=value or key<<DELIMITER; this line has neither = nor <<", n)
				if msg != want {
					t.Fatalf("error %q, want %q", msg, want)
				}
			case nameEnd > 0 && !outputName.Match(line[:nameEnd]):
				want := fmt.Sprintf("PLAYBOOK_OUTPUT line %d: the output name before = or << may hold only letters, digits, _ and -", n)
				if msg != want {
					t.Fatalf("error %q, want %q", msg, want)
				}
			}
			return
		}
		if got == nil {
			t.Fatal("nil outputs without an error")
		}
		for k, v := range got {
			if !outputName.MatchString(k) {
				t.Fatalf("output name %q is not letters, digits, _ and -", k)
			}
			if len(v) > len(data) {
				t.Fatalf("value of %q is longer than the file", k)
			}
		}
		again, err := ParseOutputs(encodeOutputs(got))
		if err != nil {
			t.Fatalf("re-encoded outputs do not parse: %v\n%q", err, encodeOutputs(got))
		}
		if !maps.Equal(got, again) {
			t.Fatalf("round trip changed the outputs:\n got %q\nagain %q", got, again)
		}
	})
}
