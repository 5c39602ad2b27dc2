package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCaptureDrainsPastCap: output far beyond the cap is drained to its end (a reader that stopped at
// the cap would leave the child blocked on a full pipe); the totals are exact; head and tail
// are kept.
func TestCaptureDrainsPastCap(t *testing.T) {
	const limit, size = 64 << 10, 10 << 20
	e := newEngine(t, Config{OutputLimit: limit})
	r := mustRun(t, e, helperReq("write", strconv.Itoa(size)))
	assertStatus(t, r, StatusCompleted)
	if r.ExitCode != 0 || r.StdoutBytes != size || !r.StdoutTruncated || r.StderrTruncated {
		t.Fatalf("exit %d bytes %d truncated %v/%v", r.ExitCode, r.StdoutBytes, r.StdoutTruncated, r.StderrTruncated)
	}
	marker := Marker(size - limit)
	if marker != "\n[... 10420224 bytes omitted ...]\n" {
		t.Fatalf("marker %q", marker)
	}
	want := append(append(pattern(0, limit/2), marker...), pattern(size-limit/2, limit/2)...)
	if !bytes.Equal(r.Stdout, want) {
		t.Fatalf("captured %d bytes, not head+marker+tail", len(r.Stdout))
	}
	if len(r.Stdout) > limit+len(marker) {
		t.Fatalf("stored %d > limit + marker", len(r.Stdout))
	}
}

func TestOutputWithinLimitKeptExactly(t *testing.T) {
	const limit = 64 << 10
	e := newEngine(t, Config{OutputLimit: limit})
	r := mustRun(t, e, helperReq("write-both", strconv.Itoa(limit)))
	if !bytes.Equal(r.Stdout, pattern(0, limit)) || !bytes.Equal(r.Stderr, pattern(0, limit)) ||
		r.StdoutTruncated || r.StderrTruncated || r.StdoutBytes != limit || r.StderrBytes != limit {
		t.Fatalf("output at exactly the limit not kept exactly: %d/%d bytes", len(r.Stdout), len(r.Stderr))
	}
}

// TestLongLineWithoutNewline: one 5 MiB line without a newline is captured head and tail and streamed in
// chunks, where a line scanner would fail on it.
func TestLongLineWithoutNewline(t *testing.T) {
	// Room for every chunk: this test counts them all (the default 1 MiB would let a lagging subscriber
	// drop some, as TestLineEventsBoundedByBytes checks).
	e := newEngine(t, Config{EventBufferBytes: 16 << 20, MaxLinePieces: -1})
	rec := newRecorder(e)
	r := mustRun(t, e, helperReq("long-line"))
	assertStatus(t, r, StatusCompleted)
	total := int64(5<<20 + len("TAIL-MARKER"))
	if r.StdoutBytes != total || !r.StdoutTruncated {
		t.Fatalf("bytes %d truncated %v", r.StdoutBytes, r.StdoutTruncated)
	}
	if r.Stdout[0] != 'a' || !bytes.HasSuffix(r.Stdout, []byte("aTAIL-MARKER")) {
		t.Fatalf("head %q tail %q", r.Stdout[:10], r.Stdout[len(r.Stdout)-20:])
	}
	if !contains(r.Stdout, Marker(total-DefaultOutputLimit)) {
		t.Fatal("marker with the omitted count missing")
	}
	// Line events: 64 KiB chunks flagged partial, then the final piece ending with TAIL-MARKER.
	rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	var got int64
	var evs []Event
	for _, ev := range rec.of(r.ID) {
		if ev.Type == EventStdout {
			evs = append(evs, ev)
			got += int64(len(ev.Line))
		}
	}
	if got != total {
		t.Fatalf("line events carry %d bytes, want %d", got, total)
	}
	for i, ev := range evs {
		last := i == len(evs)-1
		if ev.Partial == last || len(ev.Line) > DefaultMaxLineBytes {
			t.Fatalf("chunk %d: partial %v, %d bytes", i, ev.Partial, len(ev.Line))
		}
	}
	if !bytes.HasSuffix(evs[len(evs)-1].Line, []byte("TAIL-MARKER")) {
		t.Fatal("last chunk lacks TAIL-MARKER")
	}
}

// TestInvalidUTF8KeptAndJSONValid: invalid UTF-8 is kept as bytes and never breaks JSON.
func TestInvalidUTF8KeptAndJSONValid(t *testing.T) {
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	r := mustRun(t, e, helperReq("invalid-utf8"))
	raw := []byte("\xff\xfe\x00ok\xe2\x82")
	if !bytes.Equal(r.Stdout, raw) {
		t.Fatalf("stdout %q, want the raw bytes", r.Stdout)
	}
	data, err := json.Marshal(r)
	if err != nil || !json.Valid(data) || !utf8.Valid(data) {
		t.Fatalf("result JSON invalid: %v %q", err, data)
	}
	ev := rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type == EventStdout })
	if !bytes.Equal(ev.Line, raw) {
		t.Fatalf("line event %q", ev.Line)
	}
	for _, ev := range rec.of(r.ID) {
		data, err := json.Marshal(ev)
		if err != nil || !json.Valid(data) || !utf8.Valid(data) {
			t.Fatalf("event JSON invalid: %v %q", err, data)
		}
	}
}

func TestOversizedFailExecution(t *testing.T) {
	const limit = 64 << 10
	e := newEngine(t, Config{OutputLimit: limit, Oversized: FailExecution, StopGrace: 2e9})
	r := mustRun(t, e, helperReq("write-forever"))
	assertStatus(t, r, StatusFailed)
	if r.ErrorCode != CodeOutputSizeExceeded || !errors.Is(r.Err(), ErrOutputSizeExceeded) || IsRetryable(r.Err()) {
		t.Fatalf("code %s err %v", r.ErrorCode, r.Err())
	}
	if !r.StdoutTruncated || r.StdoutBytes <= limit || len(r.Stdout) > limit+len(Marker(r.StdoutBytes)) {
		t.Fatalf("bytes %d stored %d", r.StdoutBytes, len(r.Stdout))
	}
	if !strings.Contains(r.Error, "stdout exceeded the output limit of 65536 bytes") {
		t.Errorf("error %q", r.Error)
	}
}

func TestOversizedSpillToFile(t *testing.T) {
	const limit, size = 64 << 10, 3 << 20
	dir := filepath.Join(t.TempDir(), "spill", "nested")
	e := newEngine(t, Config{OutputLimit: limit, Oversized: SpillToFile, SpillDir: dir})
	r := mustRun(t, e, helperReq("write", strconv.Itoa(size)))
	assertStatus(t, r, StatusCompleted)
	if r.StdoutFile == "" || r.StderrFile != "" {
		t.Fatalf("files %q %q: want a stdout spill file only (stderr fit)", r.StdoutFile, r.StderrFile)
	}
	if filepath.Dir(r.StdoutFile) != dir {
		t.Errorf("spill file %s not in %s", r.StdoutFile, dir)
	}
	data, err := os.ReadFile(r.StdoutFile)
	if err != nil || !bytes.Equal(data, pattern(0, size)) {
		t.Fatalf("spill file has %d bytes (err %v), want the complete stream", len(data), err)
	}
	if fi, _ := os.Stat(r.StdoutFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("spill file mode %v", fi.Mode().Perm())
	}
	if !r.StdoutTruncated || len(r.Stdout) > limit+len(Marker(size)) {
		t.Errorf("in-memory capture not bounded: %d bytes", len(r.Stdout))
	}
}

func TestLogFiles(t *testing.T) {
	base := t.TempDir()
	logDir := filepath.Join(base, "new", "logs")
	e := newEngine(t, Config{LogDir: logDir})
	req := helperReq("lines", "100")
	req.ID = "run-1"
	req.StdoutPath = filepath.Join(base, "steps", "out.log")
	req.StderrPath = filepath.Join(base, "steps", "err.log")
	req.LogPath = filepath.Join(base, "both.log")
	r := mustRun(t, e, req)
	assertStatus(t, r, StatusCompleted)

	var wantOut, wantErr strings.Builder
	for i := range 100 {
		wantOut.WriteString("out " + strconv.Itoa(i) + "\n")
		wantErr.WriteString("err " + strconv.Itoa(i) + "\n")
	}
	for path, want := range map[string]string{
		filepath.Join(logDir, "run-1.stdout"): wantOut.String(),
		filepath.Join(logDir, "run-1.stderr"): wantErr.String(),
		req.StdoutPath:                        wantOut.String(),
		req.StderrPath:                        wantErr.String(),
	} {
		data, err := os.ReadFile(path)
		if err != nil || string(data) != want {
			t.Errorf("%s: %d bytes (err %v), want %d", path, len(data), err, len(want))
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
		}
	}
	for _, d := range []string{logDir, filepath.Join(base, "new"), filepath.Join(base, "steps")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("folder %s: %v %v, want mode 0700", d, fi.Mode().Perm(), err)
		}
	}
	// The interleaved log has both streams, each in order.
	both, _ := os.ReadFile(req.LogPath)
	var outs, errs []string
	for _, l := range strings.Split(strings.TrimSuffix(string(both), "\n"), "\n") {
		if strings.HasPrefix(l, "out ") {
			outs = append(outs, l)
		} else {
			errs = append(errs, l)
		}
	}
	if strings.Join(outs, "\n")+"\n" != wantOut.String() || strings.Join(errs, "\n")+"\n" != wantErr.String() {
		t.Errorf("interleaved log does not hold both streams in order")
	}
}

func TestSameFileForBothStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "all.log")
	e := newEngine(t, Config{})
	req := helperReq("lines", "50")
	req.StdoutPath, req.StderrPath, req.LogPath = path, path, path
	mustRun(t, e, req)
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 100 {
		t.Fatalf("%d lines, want 100 (each written once, file opened once)", n)
	}
}

func TestLogFileOpenFailureFailsBeforeStart(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o600)
	e := newEngine(t, Config{})
	req := shReq("echo should not run")
	req.StdoutPath = filepath.Join(blocker, "sub", "out.log") // a folder under a file
	r := mustRun(t, e, req)
	assertStatus(t, r, StatusFailed)
	if r.ErrorCode != CodeIO || r.PID != 0 || !IsRetryable(r.Err()) {
		t.Fatalf("%+v", r)
	}
}

// Secrets are masked everywhere, even when the child splits one across two writes.
func TestSecretsMasked(t *testing.T) {
	const secret = "hunter2"
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	e := newEngine(t, Config{LogDir: dir})
	rec := newRecorder(e)
	// The last argument is ignored by the helper; it puts the secret in the displayed command.
	req := helperReq("split-write", "line1\nhun", gate, "ter2 end\n"+secret+"\n", secret)
	req.Secrets = []string{secret, ""}
	id := mustExecute(t, e, req)
	// "line1\nhun" was one write: once line1 is out, the engine has read "hun" and must hold it back.
	rec.waitLine(t, id, "line1")
	os.WriteFile(gate, nil, 0o600)
	r := mustWait(t, e, id)
	assertStatus(t, r, StatusCompleted)

	want := "line1\n*** end\n***\n"
	if string(r.Stdout) != want {
		t.Errorf("stdout %q, want %q", r.Stdout, want)
	}
	if strings.Contains(r.Command, secret) || !strings.Contains(r.Command, "***") {
		t.Errorf("command %q", r.Command)
	}
	if lines := rec.lines(id, EventStdout); strings.Join(lines, "\n")+"\n" != want {
		t.Errorf("line events %q", lines)
	}
	for _, ev := range rec.of(id) {
		data, _ := json.Marshal(ev)
		if strings.Contains(string(data), secret) {
			t.Errorf("event leaks the secret: %s", data)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, id+".stdout")); string(data) != want {
		t.Errorf("log file %q", data)
	}
}

func TestSecretsMaskedInErrors(t *testing.T) {
	e := newEngine(t, Config{})
	req := shReq("exit 3")
	req.Secrets = []string{"exit"}
	r := mustRun(t, e, req)
	if strings.Contains(r.Error, "exit") || strings.Contains(r.Command, "exit") {
		t.Fatalf("error %q command %q", r.Error, r.Command)
	}
}

// With no subscriber the line splitter does nothing at all.
func TestNoSubscriberNoLineWork(t *testing.T) {
	e := newEngine(t, Config{})
	ex, err := e.execute(helperReq("lines", "1000"), false, false)
	if err != nil {
		t.Fatal(err)
	}
	<-ex.done
	if ex.stdout.sink.lines.slab != nil || ex.stderr.sink.lines.slab != nil {
		t.Fatal("lines were split and copied with nobody listening")
	}
}

func TestNoLineEventsSetting(t *testing.T) {
	e := newEngine(t, Config{NoLineEvents: true})
	rec := newRecorder(e)
	r := mustRun(t, e, helperReq("lines", "10"))
	rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	for _, ev := range rec.of(r.ID) {
		if ev.Type == EventStdout || ev.Type == EventStderr {
			t.Fatal("line event with NoLineEvents")
		}
	}
	if !contains(r.Stdout, "out 9") {
		t.Fatal("capture must not depend on line events")
	}
}

func TestNoLineWorkAfterLastUnsubscribe(t *testing.T) {
	e := newEngine(t, Config{})
	e.Subscribe(Discard)()
	ex, err := e.execute(helperReq("lines", "1000"), false, false)
	if err != nil {
		t.Fatal(err)
	}
	<-ex.done
	if ex.stdout.sink.lines.slab != nil {
		t.Fatal("lines were split after every subscriber left")
	}
}

// An over-long line reaches subscribers as its first MaxLinePieces chunks and an event counting the
// rest (Omitted); the next line comes whole; capture and totals are untouched.
func TestLinePiecesBounded(t *testing.T) {
	e := newEngine(t, Config{MaxLineBytes: 1024, MaxLinePieces: 2})
	rec := newRecorder(e)
	script := `head -c 10000 /dev/zero | tr '\0' x; echo; echo next; head -c 3000 /dev/zero | tr '\0' y`
	r := mustRun(t, e, Request{Command: Shell{Command: script, Shell: "/bin/sh"}})
	assertStatus(t, r, StatusCompleted)
	if r.StdoutBytes != 10000+1+5+3000 {
		t.Fatalf("captured %d bytes", r.StdoutBytes)
	}
	rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	var got []string
	for _, ev := range rec.of(r.ID) {
		if ev.Type == EventStdout {
			got = append(got, fmt.Sprintf("%d/%v/%d", len(ev.Line), ev.Partial, ev.Omitted))
		}
	}
	want := "1024/true/0 1024/true/0 0/false/7952 4/false/0 1024/true/0 1024/true/0 0/false/952"
	if strings.Join(got, " ") != want {
		t.Errorf("line events (bytes/partial/omitted):\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestRequestOutputLimit: a request's own OutputLimit replaces the engine's for that execution only
// (a worker serves runs with different output_limit from one engine); a negative one is refused.
func TestRequestOutputLimit(t *testing.T) {
	const limit, size = 4 << 10, 1 << 20
	e := newEngine(t, Config{OutputLimit: 64 << 10})
	req := helperReq("write", strconv.Itoa(size))
	req.OutputLimit = limit
	r := mustRun(t, e, req)
	want := append(append(pattern(0, limit/2), Marker(size-limit)...), pattern(size-limit/2, limit/2)...)
	if !r.StdoutTruncated || r.StdoutBytes != size || !bytes.Equal(r.Stdout, want) {
		t.Fatalf("captured %d bytes (truncated %v): want the request's %d-byte head and tail", len(r.Stdout), r.StdoutTruncated, limit)
	}
	r = mustRun(t, e, helperReq("write", strconv.Itoa(32<<10)))
	if r.StdoutTruncated || len(r.Stdout) != 32<<10 {
		t.Fatalf("the next request kept %d bytes (truncated %v): the engine's own limit applies again", len(r.Stdout), r.StdoutTruncated)
	}
	req.OutputLimit = -1
	if _, err := e.Execute(req); err == nil {
		t.Fatal("a negative output limit was accepted")
	}
}
