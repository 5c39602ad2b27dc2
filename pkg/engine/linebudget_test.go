package engine

import (
	"fmt"
	"strconv"
	"testing"
)

// A subscriber that falls behind a step flooding long lines holds at most EventBufferBytes of them:
// the rest are counted as dropped, not queued (8192 lines of 64 KiB would be 512 MiB), and every
// lifecycle event still arrives.
func TestLineEventsBoundedByBytes(t *testing.T) {
	const size, budget = 32 << 20, 256 << 10
	e := newEngine(t, Config{EventBufferBytes: budget, MaxLinePieces: -1}) // every chunk of the one long line
	release := stalledSubscriber(e)
	r := mustRun(t, e, helperReq("blast", strconv.Itoa(size)))
	assertStatus(t, r, StatusCompleted)
	if r.StdoutBytes != size {
		t.Fatalf("%d bytes captured, want %d", r.StdoutBytes, size)
	}
	n := tallyEvents(release())
	if fmt.Sprint(n.lifecycle) != "[status_changed started status_changed completed]" {
		t.Errorf("lifecycle events %v", n.lifecycle)
	}
	pieces := int64(size / DefaultMaxLineBytes)
	if n.lines+n.dropped != pieces || n.dropped == 0 {
		t.Errorf("%d lines + %d dropped, want %d in all with some dropped", n.lines, n.dropped, pieces)
	}
	if n.lineBytes > budget {
		t.Errorf("%d bytes of lines were queued, want at most %d", n.lineBytes, budget)
	}
}

// Lines nobody has room for are counted, not copied, and the count goes out before the next line.
func TestLineSplitterNoRoom(t *testing.T) {
	var out []string
	room := false
	l := &lineSplitter{max: 4,
		emit: func(b []byte, partial bool) { out = append(out, fmt.Sprintf("%s/%v", b, partial)) },
		room: func() bool { return room },
		drop: func(n int64) { out = append(out, fmt.Sprintf("drop %d", n)) }}
	// Without room: "a", "bb" and the first 4 bytes of the long line are counted (once, at the end of the
	// write); the rest of that line, "cc", waits in the buffer.
	l.write([]byte("a\nbb\ncccccc"))
	room = true
	l.write([]byte("c\nd\n"))
	room = false
	l.write([]byte("e\n"))
	l.flush()
	if want := "[drop 3 ccc/false d/false drop 1]"; fmt.Sprint(out) != want {
		t.Errorf("got %v, want %s", out, want)
	}
}
