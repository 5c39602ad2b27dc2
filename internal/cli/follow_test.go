package cli

import (
	"bytes"
	"testing"

	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/run"
)

// The follower prints each stored copy's new bytes: exactly while the copy is whole, the end of the
// tail once the middle is dropped (with a marker for what fell out unseen), and never half a character.
func TestFollowerPrintsOnlyNewBytes(t *testing.T) {
	var buf bytes.Buffer
	f := &follower{w: &buf}
	step := func(data string, total int64, truncated, final bool, want string) {
		t.Helper()
		buf.Reset()
		if err := f.show(1, run.Output{Data: []byte(data), Bytes: total, Truncated: truncated}, final); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Errorf("after %q: printed %q, want %q", data, buf.String(), want)
		}
	}
	step("ab\n", 3, false, false, "ab\n")
	step("ab\ncd\n", 6, false, false, "cd\n")
	step("ab\ncd\n", 6, false, false, "")
	// Limit 8: head 4, tail 4. 14 bytes written: "ab\ncd\nef\ngh\nij" would keep "ab\nc" and "h\nij"; the
	// follower printed 6 of them, so 8 are new, of which the tail holds 4.
	step("ab\nc"+engine.Marker(6)+"h\nij", 14, true, false, engine.Marker(4)+"h\nij")
	step("ab\nc"+engine.Marker(7)+"\nijk", 15, true, false, "k")
	// A character cut in two by a progress record waits for its second byte.
	step("ab\nc"+engine.Marker(8)+"ijk\xc3", 16, true, false, "")
	step("ab\nc"+engine.Marker(9)+"jk\xc3\xa9", 17, true, true, "\u00e9")
	if got := storedTail([]byte("x" + engine.Marker(5) + "yy")); string(got) != "yy" {
		t.Errorf("storedTail = %q", got)
	}
	// The step's own output may contain marker-like text: the head/tail sizes tell the real one.
	fake := "h" + engine.Marker(1)[:len(engine.Marker(1))-1]
	data := fake + engine.Marker(3) + fake
	if got := storedTail([]byte(data)); string(got) != fake {
		t.Errorf("storedTail(%q) = %q, want %q", data, got, fake)
	}
	// Limit 64: head 32 less the 3 bytes of a character the cut would split, tail 32 with marker-like
	// text in it.
	head, tail := "hhhhhhhhhhhhhhhhhhhhhhhhhhhhh", engine.Marker(9)+"tttttt"
	data = head + engine.Marker(7) + tail
	if got := storedTail([]byte(data)); string(got) != tail {
		t.Errorf("storedTail(%q) = %q, want %q", data, got, tail)
	}
}
