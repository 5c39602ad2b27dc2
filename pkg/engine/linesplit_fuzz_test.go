package engine

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzLineSplitter: the live line events of a stream (terminal, --output json) lose and invent
// nothing, however the process splits its writes: joining the pieces of each line (partial pieces, then
// the final one) gives the line without its newline and the \r before it; every piece fits the maximum and
// a partial piece is exactly the maximum; the same bytes written in other chunks give the same events.
//
//	go test -run '^$' -fuzz '^FuzzLineSplitter$' -fuzztime 1m ./pkg/engine/
func FuzzLineSplitter(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint8(10), uint8(1))
	f.Add([]byte("abcdefg\n"), uint8(3), uint8(2))
	f.Add([]byte("a\r\n\r\nlast"), uint8(10), uint8(3))
	f.Add([]byte("abc\r\nabcdef"), uint8(3), uint8(1))
	f.Add([]byte("ab\r\rx\r\n\n\n"), uint8(2), uint8(5))
	f.Add(bytes.Repeat([]byte("x"), 300), uint8(7), uint8(64))
	f.Fuzz(func(t *testing.T, data []byte, max, chunk uint8) {
		limit := int(max%64) + 1
		split := func(step int) (pieces []string, partial []bool) {
			l := &lineSplitter{max: limit, emit: func(b []byte, p bool) {
				pieces = append(pieces, string(b))
				partial = append(partial, p)
			}}
			for rest := data; len(rest) > 0; {
				n := min(step, len(rest))
				l.write(rest[:n])
				rest = rest[n:]
			}
			l.flush()
			return pieces, partial
		}
		pieces, partial := split(int(chunk) + 1)
		var lines []string
		var cur []byte
		for i, p := range pieces {
			if len(p) > limit || (partial[i] && len(p) != limit) {
				t.Fatalf("piece %d (%q, partial %v) does not fit the maximum %d", i, p, partial[i], limit)
			}
			cur = append(cur, p...)
			if !partial[i] {
				lines = append(lines, string(cur))
				cur = nil
			}
		}
		if cur != nil {
			t.Fatalf("the stream ended inside a line: %q", cur)
		}
		var want []string // each line without its \n and the \r before it; a last line without \n as it is
		for rest := data; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				want = append(want, string(rest))
				break
			}
			want = append(want, string(bytes.TrimSuffix(rest[:i], []byte("\r"))))
			rest = rest[i+1:]
		}
		if fmt.Sprintf("%q", lines) != fmt.Sprintf("%q", want) {
			t.Fatalf("lines %q, want %q (pieces %q)", lines, want, pieces)
		}
		again, againPartial := split(len(data) + 1)
		if fmt.Sprint(again, againPartial) != fmt.Sprint(pieces, partial) {
			t.Fatalf("one write gives %q %v, chunks of %d give %q %v", again, againPartial, int(chunk)+1, pieces, partial)
		}
	})
}
