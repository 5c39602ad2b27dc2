package engine

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRequestJSONRoundTrip(t *testing.T) {
	reqs := []Request{
		{ID: "a", Command: Shell{Command: "echo hi", Shell: "bash"}},
		{ID: "b", Command: Exec{Program: "ls", Args: []string{"-l", "a b"}}, Env: map[string]string{"X": "1"},
			CleanEnv: true, Dir: "/tmp", Timeout: 1500 * time.Millisecond, StopSignal: syscall.SIGINT,
			StopGrace: NoGrace, Secrets: []string{"s"}},
		{ID: "c", Command: Script{Path: "deploy.sh", Interpreter: "python3"}, LogPath: "/tmp/l",
			StdoutPath: "/tmp/o", StderrPath: "/tmp/e", Timeout: NoTimeout, StopGrace: 3 * time.Second,
			Metadata: Metadata{Source: "cli", ConversationID: "conv", Tags: map[string]string{"step": "x"}}},
		{ID: "d", Command: AWSCLI{Service: "s3", Operation: "ls", Args: []string{}, Profile: "p", Region: "r"}},
	}
	for _, req := range reqs {
		data, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var back Request
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if !reflect.DeepEqual(back, req) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", data, back, req)
		}
	}
}

func TestRequestJSONWireForm(t *testing.T) {
	data, _ := json.Marshal(Request{ID: "x", Command: Shell{Command: "c"}, Timeout: 2 * time.Second,
		Dir: "/w", LogPath: "/l", StopSignal: syscall.SIGTERM})
	for _, want := range []string{`"command":{"type":"shell","command":"c","shell":"bash"}`,
		`"timeout_ms":2000`, `"working_dir":"/w"`, `"output_log_path":"/l"`, `"stop_signal":"SIGTERM"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
	tags := map[string]string{
		`{"type":"shell","command":"ls"}`:                               "shell",
		`{"type":"exec","program":"ls"}`:                                "exec",
		`{"type":"script","path":"a.sh"}`:                               "script",
		`{"type":"aws_cli","service":"s3","operation":"ls"}`:            "aws_cli",
		`{"type":"exec","program":"ls","args":["-l","x y"]}`:            "exec",
		`{"type":"aws_cli","service":"s","operation":"o","region":"r"}`: "aws_cli",
	}
	for cmd := range tags {
		var req Request
		if err := json.Unmarshal([]byte(`{"command":`+cmd+`}`), &req); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	var req Request
	json.Unmarshal([]byte(`{"command":{"type":"shell","command":"ls"}}`), &req)
	if req.Command.(Shell).Shell != "bash" {
		t.Errorf("shell default: %#v", req.Command)
	}
	json.Unmarshal([]byte(`{"command":{"type":"aws_cli","service":"s3","operation":"ls"}}`), &req)
	if a := req.Command.(AWSCLI).Args; a == nil || len(a) != 0 {
		t.Errorf("aws args default: %#v", a)
	}
	json.Unmarshal([]byte(`{"command":{"type":"exec","program":"ls"}}`), &req)
	if a := req.Command.(Exec).Args; a == nil || len(a) != 0 || req.Env != nil {
		t.Errorf("exec args default / env optional: %#v", req)
	}
	json.Unmarshal([]byte(`{"command":{"type":"exec","program":"ls"},"stop_signal":"int"}`), &req)
	if req.StopSignal != syscall.SIGINT {
		t.Errorf("stop_signal int: %v", req.StopSignal)
	}
	for _, bad := range []string{
		`{"command":{"type":"powershell","command":"ls"}}`,
		`{"command":{"command":"ls"}}`,
		`{"command":{"type":"shell","command":"ls","program":"x"}}`,
		`{"command":{"type":"shell","command":"ls"},"timeout":5}`,
		`{"command":{"type":"shell","command":"ls"},"stop_signal":"SIGNOPE"}`,
		`not json`,
	} {
		var req Request
		err := json.Unmarshal([]byte(bad), &req)
		if err == nil || (bad != "not json" && !errors.Is(err, ErrSerialization)) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 26, 7, 4, 52, 123456789, time.UTC)
	r := Result{ID: "id", Status: StatusTimedOut, Command: "sh -c 'x'", PID: 42, ExitCode: -1, Signal: 15,
		Stdout: []byte("out\n"), Stderr: []byte("err ü\n"), StdoutBytes: 4, StderrBytes: 8, StdoutTruncated: true,
		StdoutFile: "/tmp/f", StartedAt: now, FinishedAt: now.Add(time.Second), Duration: 1234567891 * time.Nanosecond,
		Error: "timed out after 1s", ErrorCode: CodeTimeout, Warning: "w"}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"status":"timed_out"`, `"exit_code":-1`, `"signal":15`, `"success":false`,
		`"stdout":"out\n"`, `"duration_ms":1234.567891`, `"error_code":"TIMEOUT"`, `"started_at":"2026-11-26T07:04:52.123456789Z"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip:\n got %#v\nwant %#v", back, r)
	}
	// Invalid UTF-8 becomes U+FFFD in JSON; the document stays valid.
	bad := Result{Stdout: []byte("a\xffb")}
	data, _ = json.Marshal(bad)
	json.Unmarshal(data, &back)
	if !json.Valid(data) || string(back.Stdout) != "a\uFFFDb" {
		t.Errorf("%s -> %q", data, back.Stdout)
	}
	// A pending execution's zero times are left out.
	data, _ = json.Marshal(Result{ID: "p", Status: StatusCancelled})
	if strings.Contains(string(data), "started_at") {
		t.Errorf("zero start time encoded: %s", data)
	}
}

func TestEventJSON(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res := &Result{ID: "x", Status: StatusCompleted, StartedAt: now, FinishedAt: now, Stdout: []byte{}, Stderr: []byte{}}
	events := []Event{
		{Type: EventStarted, ExecutionID: "x", Time: now, Command: "ls", PID: 7, Metadata: Metadata{Tags: map[string]string{"step": "a"}}},
		{Type: EventStdout, ExecutionID: "x", Time: now, Line: []byte("hello"), Partial: true, Dropped: 3},
		{Type: EventStderr, ExecutionID: "x", Time: now, Line: []byte{}},
		{Type: EventStatusChanged, ExecutionID: "x", Time: now, OldStatus: StatusPending, NewStatus: StatusRunning},
		{Type: EventCompleted, ExecutionID: "x", Time: now, Result: res},
		{Type: EventTimedOut, ExecutionID: "x", Time: now, Result: res, Error: "timed out", TimeoutMS: 500},
	}
	for _, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"event_type":"`+string(ev.Type)+`"`) ||
			!strings.Contains(string(data), `"execution_id":"x"`) || !strings.Contains(string(data), `"timestamp":`) {
			t.Errorf("wire form %s", data)
		}
		var back Event
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Errorf("round trip:\n got %#v\nwant %#v", back, ev)
		}
	}
	data, _ := json.Marshal(Event{Type: EventStdout, Line: []byte("ok\xff\xfe")})
	var back Event
	if err := json.Unmarshal(data, &back); err != nil || !json.Valid(data) || string(back.Line) != "ok\uFFFD" {
		t.Errorf("invalid UTF-8 line: %s -> %q", data, back.Line)
	}
}

func TestStatusAndEventNames(t *testing.T) {
	got := []string{string(StatusPending), string(StatusRunning), string(StatusCompleted), string(StatusFailed),
		string(StatusCancelled), string(StatusTimedOut), string(EventStarted), string(EventStdout),
		string(EventStderr), string(EventStatusChanged), string(EventCompleted), string(EventFailed),
		string(EventTimedOut), string(EventCancelled)}
	want := []string{"pending", "running", "completed", "failed", "cancelled", "timed_out", "started", "stdout",
		"stderr", "status_changed", "completed", "failed", "timed_out", "cancelled"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}

func TestSummaryJSON(t *testing.T) {
	s := Summary{ID: "x", Status: StatusRunning, Command: "ls", SubmittedAt: time.Unix(0, 0).UTC(),
		Duration: 1500 * time.Microsecond, Metadata: Metadata{Source: "cli"}}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":"x"`, `"status":"running"`, `"duration_ms":1.5`, `"metadata":{"source":"cli"}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
	if strings.Contains(string(data), "started_at") {
		t.Errorf("zero start encoded: %s", data)
	}
}
