package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitProgress polls Progress until ok accepts it; the process it watches waits for the test, so the
// condition comes true or the test's deadline ends it.
func waitProgress(t *testing.T, e *Engine, id string, ok func(*Progress) bool) *Progress {
	t.Helper()
	for {
		p, err := e.Progress(id)
		if err != nil {
			t.Fatalf("Progress: %v", err)
		}
		if ok(p) {
			return p
		}
		time.Sleep(time.Millisecond)
	}
}

// A running execution's Progress holds what it printed so far, masked, with its byte counts; OutputBytes
// agrees; once it ended, both give the Result's figures.
func TestProgressOfARunningExecution(t *testing.T) {
	e := newEngine(t, Config{})
	gate := filepath.Join(t.TempDir(), "gate")
	id := mustExecute(t, e, Request{Command: Shell{Shell: "/bin/sh",
		Command: `echo "first hunter2"; echo oops >&2; while [ ! -e "$GATE" ]; do sleep 0.01; done; echo second`},
		Env: map[string]string{"GATE": gate}, Secrets: []string{"hunter2"}})
	p := waitProgress(t, e, id, func(p *Progress) bool {
		return bytes.Contains(p.Stdout, []byte("first")) && len(p.Stderr) > 0
	})
	if string(p.Stdout) != "first ***\n" || p.StdoutBytes != int64(len("first hunter2\n")) || p.StdoutTruncated {
		t.Errorf("stdout so far = %q (%d bytes, truncated %v), want the masked first line", p.Stdout, p.StdoutBytes, p.StdoutTruncated)
	}
	if string(p.Stderr) != "oops\n" || p.StderrBytes != 5 {
		t.Errorf("stderr so far = %q (%d bytes)", p.Stderr, p.StderrBytes)
	}
	if o, s, err := e.OutputBytes(id); err != nil || o != p.StdoutBytes || s != p.StderrBytes {
		t.Errorf("OutputBytes = %d, %d, %v; want %d, %d", o, s, err, p.StdoutBytes, p.StderrBytes)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustWait(t, e, id)
	end, err := e.Progress(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(end.Stdout, r.Stdout) || end.StdoutBytes != r.StdoutBytes || !bytes.Equal(end.Stderr, r.Stderr) {
		t.Errorf("Progress after the end = %q/%d, Result = %q/%d", end.Stdout, end.StdoutBytes, r.Stdout, r.StdoutBytes)
	}
}

// Past the output limit, Progress gives the head and the tail with the marker, as the Result will.
func TestProgressKeepsHeadAndTail(t *testing.T) {
	e := newEngine(t, Config{OutputLimit: 64})
	gate := filepath.Join(t.TempDir(), "gate")
	id := mustExecute(t, e, Request{Command: Shell{Shell: "/bin/sh",
		Command: `i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done; while [ ! -e "$GATE" ]; do sleep 0.01; done`},
		Env: map[string]string{"GATE": gate}})
	p := waitProgress(t, e, id, func(p *Progress) bool { return bytes.Contains(p.Stdout, []byte("line 99\n")) })
	if !p.StdoutTruncated || !strings.HasPrefix(string(p.Stdout), "line 0\nline 1\n") ||
		!strings.Contains(string(p.Stdout), " bytes omitted ...]\n") || !strings.HasSuffix(string(p.Stdout), "line 99\n") {
		t.Errorf("stdout so far = %q (truncated %v), want head, marker, tail", p.Stdout, p.StdoutTruncated)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustWait(t, e, id)
	if !bytes.Equal(p.Stdout, r.Stdout) || p.StdoutBytes != r.StdoutBytes {
		t.Errorf("Progress %q (%d bytes), Result %q (%d bytes)", p.Stdout, p.StdoutBytes, r.Stdout, r.StdoutBytes)
	}
}

// Readers on other goroutines poll while the process floods its output (run it under -race): every
// copy is a prefix of the final output, counts never go back, and the counts cover the copy.
func TestProgressWhileWriting(t *testing.T) {
	e := newEngine(t, Config{})
	id := mustExecute(t, e, shReq(`i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done`))
	var wg sync.WaitGroup
	snaps := make([][]*Progress, 4)
	for g := range snaps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() { _, _ = e.Wait(ctx, id); close(done) }()
			for {
				select {
				case <-done:
					return
				default:
				}
				if o, _, err := e.OutputBytes(id); err != nil || o < 0 {
					t.Errorf("OutputBytes: %d, %v", o, err)
					return
				}
				p, err := e.Progress(id)
				if err != nil {
					t.Errorf("Progress: %v", err)
					return
				}
				snaps[g] = append(snaps[g], p)
			}
		}()
	}
	r := mustWait(t, e, id)
	wg.Wait()
	for _, list := range snaps {
		var last int64
		for _, p := range list {
			if !bytes.HasPrefix(r.Stdout, p.Stdout) || p.StdoutBytes < int64(len(p.Stdout)) || p.StdoutBytes < last {
				t.Fatalf("snapshot %q... (%d bytes, previous %d) does not fit the final output", p.Stdout[:min(len(p.Stdout), 40)], p.StdoutBytes, last)
			}
			last = p.StdoutBytes
		}
	}
}

// An unknown execution is CodeNotFound for both calls.
func TestProgressUnknown(t *testing.T) {
	e := newEngine(t, Config{})
	if _, err := e.Progress("nope"); CodeOf(err) != CodeNotFound {
		t.Errorf("Progress: %v, want CodeNotFound", err)
	}
	if _, _, err := e.OutputBytes("nope"); CodeOf(err) != CodeNotFound {
		t.Errorf("OutputBytes: %v, want CodeNotFound", err)
	}
}
