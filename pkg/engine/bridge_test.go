package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
)

type bridgeLine struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func parseBridge(t *testing.T, out string) []bridgeLine {
	t.Helper()
	var lines []bridgeLine
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !json.Valid([]byte(l)) {
			t.Fatalf("invalid JSON line %q", l)
		}
		var bl bridgeLine
		json.Unmarshal([]byte(l), &bl)
		lines = append(lines, bl)
	}
	return lines
}

func TestServeJSON(t *testing.T) {
	e := newEngine(t, Config{})
	in := strings.Join([]string{
		`{"id":"one","command":{"type":"shell","command":"echo hello; echo oops >&2; exit 3","shell":"/bin/sh"}}`,
		``,
		`{"command":{"type":"exec","program":"` + os.Args[0] + `","args":["x"]},"env":{"` + helperEnv + `":"invalid-utf8","GORACE":"atexit_sleep_ms=0"}}`,
		`not json`,
		`{"id":"bad","command":{"type":"exec","program":"no-such-program-xyz"}}`,
		`{"id":"one","command":{"type":"shell","command":"true"}}`,
	}, "\n") // no final newline: the last line still counts
	var out bytes.Buffer
	if err := e.ServeJSON(ctxT(t), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := parseBridge(t, out.String())

	results := map[string]Result{}
	var errs []BridgeError
	terminalSeen := map[string]bool{}
	for _, l := range lines {
		switch l.Type {
		case "event":
			var ev Event
			json.Unmarshal(l.Payload, &ev)
			if terminalSeen[ev.ExecutionID] {
				t.Errorf("event after the terminal one: %+v", ev)
			}
			terminalSeen[ev.ExecutionID] = ev.Type.Terminal()
		case "result":
			var r Result
			json.Unmarshal(l.Payload, &r)
			if !terminalSeen[r.ID] {
				t.Errorf("result of %s before its terminal event", r.ID)
			}
			results[r.ID] = r
		case "error":
			var be BridgeError
			json.Unmarshal(l.Payload, &be)
			errs = append(errs, be)
		default:
			t.Errorf("unknown line type %q", l.Type)
		}
	}
	if len(results) != 2 {
		t.Fatalf("results %v", results)
	}
	one := results["one"]
	if one.ExitCode != 3 || string(one.Stdout) != "hello\n" || string(one.Stderr) != "oops\n" {
		t.Errorf("result one: %+v", one)
	}
	for id, r := range results {
		if id != "one" && string(r.Stdout) != "\uFFFD\x00ok\uFFFD" {
			t.Errorf("generated id %s: stdout %q", id, r.Stdout)
		}
	}
	// Line 4 is not JSON, line 5 fails validation, line 6 reuses an id still known to the engine.
	if len(errs) != 3 || errs[0].Line != 4 || errs[0].Code != CodeSerialization ||
		errs[1].Line != 5 || errs[1].Code != CodeValidation || errs[1].ID != "bad" ||
		errs[2].Line != 6 || errs[2].Code != CodeValidation {
		t.Fatalf("errors %+v", errs)
	}
}

// syncBuffer is a bytes.Buffer that tells when some text appears.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	found chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if s.found != nil && strings.Contains(s.buf.String(), s.want) {
		close(s.found)
		s.found = nil
	}
	return len(p), nil
}

func TestServeJSONCancel(t *testing.T) {
	e := newEngine(t, Config{})
	ready := make(chan struct{})
	out := &syncBuffer{want: `"line":"ready"`, found: ready}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-ready
		cancel()
	}()
	in := `{"id":"s","command":{"type":"exec","program":"` + os.Args[0] + `"},"env":{"` + helperEnv + `":"sleep","GORACE":"atexit_sleep_ms=0"}}` + "\n"
	err := e.ServeJSON(ctx, strings.NewReader(in), out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ServeJSON: %v", err)
	}
	out.mu.Lock()
	text := out.buf.String()
	out.mu.Unlock()
	lines := parseBridge(t, text)
	last := lines[len(lines)-1]
	var r Result
	json.Unmarshal(last.Payload, &r)
	if last.Type != "result" || r.Status != StatusCancelled {
		t.Fatalf("last line %s %s", last.Type, last.Payload)
	}
}

func TestServeJSONPackageFunc(t *testing.T) {
	var out bytes.Buffer
	in := `{"command":{"type":"shell","command":"echo hi"}}`
	if err := ServeJSON(context.Background(), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"type":"result"`) || !strings.Contains(out.String(), `"stdout":"hi\n"`) {
		t.Fatalf("output %s", out.String())
	}
}
