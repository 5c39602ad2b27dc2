package engine

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"
)

// checkHeadTail writes data to a capture of the given limit in the given chunk sizes and checks the
// head/tail property: output within the limit is reproduced exactly; longer output keeps its first
// limit/2 and last limit-limit/2 bytes around the marker, but for a UTF-8 character either cut would
// split (its bytes are counted as omitted).
func checkHeadTail(t *testing.T, data []byte, limit int64, chunks []int) {
	t.Helper()
	c := newHeadTail(limit)
	rest := data
	for _, n := range chunks {
		n = min(n, len(rest))
		c.Write(rest[:n])
		rest = rest[n:]
	}
	c.Write(rest)
	got := c.Bytes()
	total := int64(len(data))
	if c.total != total {
		t.Fatalf("total %d, want %d", c.total, total)
	}
	if total <= limit {
		if !bytes.Equal(got, data) || c.omitted() != 0 {
			t.Fatalf("limit %d, %d bytes: not reproduced exactly", limit, total)
		}
		return
	}
	h := limit / 2
	head, tail := data[:h], data[total-(limit-h):]
	cut, skip := partialEnd(head), partialStart(tail)
	if cut >= utf8.UTFMax || skip >= utf8.UTFMax {
		t.Fatalf("a cut character of %d+%d bytes", cut, skip)
	}
	want := append(append(append([]byte{}, head[:len(head)-cut]...), Marker(total-limit+int64(cut+skip))...), tail[skip:]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("limit %d, %d bytes, chunks %v: got %q, want %q", limit, total, chunks, got, want)
	}
	if int64(len(got)) > limit+int64(len(Marker(total-limit))) {
		t.Fatalf("stored %d bytes", len(got))
	}
}

func TestHeadTailProperty(t *testing.T) {
	f := func(seed uint64, size uint16, limit uint16) bool {
		r := rand.New(rand.NewPCG(seed, 1))
		data := make([]byte, int(size)%3000)
		for i := range data {
			data[i] = byte(r.IntN(256))
		}
		var chunks []int
		for range r.IntN(20) {
			chunks = append(chunks, r.IntN(400))
		}
		checkHeadTail(t, data, 1+int64(limit)%1000, chunks)
		return !t.Failed()
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 3000}); err != nil {
		t.Fatal(err)
	}
}

// Text that is valid UTF-8 stays valid UTF-8 whatever the limit (the store keeps it as TEXT then), and
// the cuts leave out only the characters they would split.
func TestHeadTailKeepsUTF8(t *testing.T) {
	text := []byte(strings.Repeat("ascii é ж ✓ 𝄞 ", 40))
	for limit := int64(1); limit <= int64(len(text))+1; limit++ {
		c := newHeadTail(limit)
		c.Write(text)
		got := c.Bytes()
		if !utf8.Valid(got) {
			t.Fatalf("limit %d: %q is not valid UTF-8", limit, got)
		}
		if int64(len(text)) <= limit {
			continue
		}
		head, tail, ok := bytes.Cut(got, []byte("\n[... "))
		_, tail, _ = bytes.Cut(tail, []byte(" ...]\n"))
		if !ok || !bytes.HasPrefix(text, head) || !bytes.HasSuffix(text, tail) ||
			int64(len(head)) < limit/2-3 || int64(len(tail)) < limit-limit/2-3 {
			t.Fatalf("limit %d: head %q, tail %q", limit, head, tail)
		}
	}
	// Binary output loses at most 3 bytes each side to the rule.
	for _, c := range []struct {
		data  string
		limit int64
		want  string
	}{
		{"abc\xe2\x82\xff\xff\xff\x82\x82\x82\x82xyz", 8, "abc\n[... 9 bytes omitted ...]\nxyz"},
		{"a" + strings.Repeat("\x82", 10) + "z", 10, "a\x82\x82\x82\x82\n[... 5 bytes omitted ...]\n\x82z"},
	} {
		ht := newHeadTail(c.limit)
		ht.Write([]byte(c.data))
		if got := string(ht.Bytes()); got != c.want {
			t.Errorf("%q, limit %d: %q, want %q", c.data, c.limit, got, c.want)
		}
	}
}

func TestHeadTailEdges(t *testing.T) {
	checkHeadTail(t, nil, 10, nil)
	checkHeadTail(t, []byte("a"), 1, nil)
	checkHeadTail(t, []byte("ab"), 1, nil) // head 0, tail 1
	checkHeadTail(t, []byte("abcdefghij"), 3, []int{1, 1, 5})
	checkHeadTail(t, bytes.Repeat([]byte("x"), 100), 10, []int{50}) // one write larger than the tail
	c := newHeadTail(1 << 20)
	c.Write([]byte("small"))
	if cap(c.head) > 1024 || c.tail != nil {
		t.Errorf("small output allocated %d+%d bytes", cap(c.head), cap(c.tail))
	}
}

func FuzzHeadTail(f *testing.F) {
	f.Add([]byte("hello world"), uint16(4), uint8(3))
	f.Add([]byte(""), uint16(1), uint8(1))
	f.Add(bytes.Repeat([]byte("ab\xff"), 100), uint16(17), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, chunk uint8) {
		if limit == 0 {
			limit = 1
		}
		var chunks []int
		for n := 0; n < len(data); n += int(chunk) + 1 {
			chunks = append(chunks, int(chunk)+1)
		}
		checkHeadTail(t, data, int64(limit), chunks)
	})
}
