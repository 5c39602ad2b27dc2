package engine

import "strconv"

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
func (c *headTail) Bytes() []byte {
	var marker string
	if n := c.omitted(); n > 0 {
		marker = Marker(n)
	}
	out := make([]byte, 0, len(c.head)+len(marker)+len(c.tail))
	out = append(out, c.head...)
	out = append(out, marker...)
	out = append(out, c.tail[c.pos:]...)
	return append(out, c.tail[:c.pos]...)
}
