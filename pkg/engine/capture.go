package engine

import (
	"strconv"
	"unicode/utf8"
)

// headTail keeps the first headCap and the last tailCap bytes written to it, and counts the rest. It is
// the byte-oriented saver of os/exec's prefixSuffixSaver, grown lazily so that the many executions with
// little output cost little memory.
type headTail struct {
	headCap, tailCap int
	head             []byte
	tail             []byte // a ring once len(tail) == tailCap; oldest byte at pos
	pos              int
	total            int64
}

func newHeadTail(limit int64) headTail {
	h := int(limit / 2)
	return headTail{headCap: h, tailCap: int(limit) - h}
}

// grow appends p to b without letting its capacity exceed limit.
func grow(b, p []byte, limit int) []byte {
	if need := len(b) + len(p); need > cap(b) {
		c := min(max(2*cap(b), need, 512), limit)
		nb := make([]byte, len(b), c)
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}

// Write keeps what fits in the head, then rotates the rest through the tail ring.
func (c *headTail) Write(p []byte) {
	c.total += int64(len(p))
	if n := c.headCap - len(c.head); n > 0 {
		n = min(n, len(p))
		c.head = grow(c.head, p[:n], c.headCap)
		p = p[n:]
	}
	if len(p) == 0 || c.tailCap == 0 {
		return
	}
	if len(p) >= c.tailCap {
		if cap(c.tail) < c.tailCap {
			c.tail = make([]byte, c.tailCap)
		}
		c.tail = c.tail[:c.tailCap]
		copy(c.tail, p[len(p)-c.tailCap:])
		c.pos = 0
		return
	}
	if n := c.tailCap - len(c.tail); n > 0 {
		n = min(n, len(p))
		c.tail = grow(c.tail, p[:n], c.tailCap)
		p = p[n:]
	}
	// The ring is full: overwrite the oldest bytes.
	for len(p) > 0 {
		n := copy(c.tail[c.pos:], p)
		p = p[n:]
		c.pos = (c.pos + n) % c.tailCap
	}
}

// omitted is how many bytes fell between the head and the tail.
func (c *headTail) omitted() int64 { return c.total - int64(len(c.head)) - int64(len(c.tail)) }

// Marker returns the text that replaces omitted bytes in a captured stream.
func Marker(omitted int64) string {
	return "\n[... " + strconv.FormatInt(omitted, 10) + " bytes omitted ...]\n"
}

// Bytes returns the captured stream: everything when nothing was omitted, else head, marker and tail.
// The cuts do not split a UTF-8 character: a character the head's end or the tail's start would cut
// is left out with the omitted bytes (up to 3 bytes each side, counted in the marker), so that text
// stays valid UTF-8 (the store keeps valid UTF-8 as TEXT, which a plain LIKE finds).
func (c *headTail) Bytes() []byte {
	n := c.omitted()
	if n == 0 {
		out := make([]byte, 0, len(c.head)+len(c.tail))
		out = append(out, c.head...)
		out = append(out, c.tail[c.pos:]...)
		return append(out, c.tail[:c.pos]...)
	}
	head := c.head[:len(c.head)-partialEnd(c.head)]
	tail := append(append(make([]byte, 0, len(c.tail)), c.tail[c.pos:]...), c.tail[:c.pos]...)
	skip := partialStart(tail)
	tail = tail[skip:]
	marker := Marker(n + int64(len(c.head)-len(head)) + int64(skip))
	out := make([]byte, 0, len(head)+len(marker)+len(tail))
	out = append(out, head...)
	out = append(out, marker...)
	return append(out, tail...)
}

// partialEnd is the length of the incomplete UTF-8 character b ends with (its first bytes), 0 if none.
func partialEnd(b []byte) int {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0 // ASCII: nothing is cut
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}

// partialStart is the number of continuation bytes b starts with (the end of a character cut off
// before it), up to utf8.UTFMax-1.
func partialStart(b []byte) int {
	n := 0
	for n < len(b) && n < utf8.UTFMax-1 && !utf8.RuneStart(b[n]) {
		n++
	}
	return n
}
