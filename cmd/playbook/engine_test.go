package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// engineServer is a running `playbook engine serve` whose stdout messages the test reads one by one.
type engineServer struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	msgs  chan map[string]any
	stray chan string      // stdout lines that are not JSON
	seen  []map[string]any // read, not yet taken by next
}

func startEngineServer(t *testing.T, args ...string) *engineServer {
	t.Helper()
	cmd := exec.Command(playbookBin(t), append([]string{"engine", "serve"}, args...)...)
	cmd.Dir = t.TempDir()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &engineServer{t: t, cmd: cmd, in: in, msgs: make(chan map[string]any, 1000), stray: make(chan string, 100)}
	go func() {
		defer close(s.msgs)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				s.stray <- sc.Text()
				continue
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return s
}

func (s *engineServer) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

// next returns the first message, in the order written, that match accepts and that no earlier call
// took; it fails after 30 s or when stdout ends. Messages of other executions are kept for later calls.
func (s *engineServer) next(what string, match func(m map[string]any) bool) map[string]any {
	s.t.Helper()
	for i, m := range s.seen {
		if match(m) {
			s.seen = append(s.seen[:i:i], s.seen[i+1:]...)
			return m
		}
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				s.t.Fatalf("the server's stdout ended before %s", what)
			}
			if match(m) {
				return m
			}
			s.seen = append(s.seen, m)
		case l := <-s.stray:
			s.t.Fatalf("stdout line that is not JSON: %q", l)
		case <-timeout:
			s.t.Fatalf("no %s within 30 s", what)
		}
	}
}

func payload(m map[string]any) map[string]any {
	p, _ := m["payload"].(map[string]any)
	return p
}

func isEvent(id, eventType string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		p := payload(m)
		return m["type"] == "event" && p["execution_id"] == id && p["event_type"] == eventType
	}
}

func isResult(id string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == "result" && payload(m)["id"] == id }
}

// TestEngineServe drives the JSON-lines bridge through the binary, as another language would: live
// output, results, a refused line, secrets masked, then SIGTERM stops what runs (its process group
// gone) and the server exits 143.
func TestEngineServe(t *testing.T) {
	s := startEngineServer(t)
	s.send(`{"id":"long","command":{"type":"shell","command":"echo ready; exec sleep 300"},"stop_grace_ms":2000}`)
	started := s.next("long's started event", isEvent("long", "started"))
	pid := int(payload(started)["pid"].(float64))
	ready := s.next("long's ready line", isEvent("long", "stdout"))
	if got := payload(ready)["line"]; got != "ready" {
		t.Fatalf("long's first line = %v, want ready", got)
	}

	s.send(`{"id":"quick","command":{"type":"exec","program":"sh","args":["-c","echo out; echo err >&2; echo token=hunter2; exit 3"]},"secrets":["hunter2"]}`)
	s.send(`{"id":"quick2", "command": nonsense}`)
	s.send(`{"id":"typo","command":{"type":"exec","program":"true"},"timeout":5}`)
	s.send(`{"id":"gone","command":{"type":"exec","program":"kubectl-x"}}`)
	res := payload(s.next("quick's result", isResult("quick")))
	if res["exit_code"] != 3.0 || res["success"] != false || res["stdout"] != "out\ntoken=***\n" || res["stderr"] != "err\n" {
		t.Errorf("quick's result: %v", res)
	}
	for _, want := range []struct {
		line      float64
		code, msg string
	}{
		{3, "SERIALIZATION", "decode request"},
		{4, "SERIALIZATION", `unknown field "timeout"`},
		{5, "VALIDATION", `"kubectl-x": not found in PATH`},
	} {
		e := payload(s.next(fmt.Sprintf("the error of line %v", want.line), func(m map[string]any) bool {
			return m["type"] == "error" && payload(m)["line"] == want.line
		}))
		if e["code"] != want.code || !strings.Contains(e["message"].(string), want.msg) {
			t.Errorf("line %v: error %v, want code %s and %q", want.line, e, want.code, want.msg)
		}
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.next("long's cancelled event", isEvent("long", "cancelled"))
	if r := payload(s.next("long's result", isResult("long"))); r["status"] != "cancelled" {
		t.Errorf("long's result after SIGTERM: %v", r)
	}
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("engine serve after SIGTERM: %v, want exit status 143", err)
	}
	if syscall.Kill(-pid, 0) == nil {
		t.Errorf("the process group %d of the cancelled execution is still there", pid)
	}
}

// TestEngineServeEndOfInput: closing stdin is the end of the requests; the server exits 0 once the
// executions it started are over, with every result written.
func TestEngineServeEndOfInput(t *testing.T) {
	s := startEngineServer(t, "--max-concurrent", "1")
	for i := 1; i <= 3; i++ {
		s.send(fmt.Sprintf(`{"id":"e%d","command":{"type":"shell","command":"echo %d"}}`, i, i))
	}
	s.in.Close()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("e%d", i)
		if r := payload(s.next(id+"'s result", isResult(id))); r["stdout"] != fmt.Sprintf("%d\n", i) || r["success"] != true {
			t.Errorf("%s: %v", id, r)
		}
	}
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("engine serve after the end of its input: %v, want exit status 0", err)
	}
}

// TestEngineServeUsage: bad flags are usage errors (exit 2), before anything is read.
func TestEngineServeUsage(t *testing.T) {
	for _, args := range [][]string{{"--max-concurrent", "0"}, {"--output-limit", "lots"}, {"--default-timeout", "-1s"}, {"extra"}} {
		cmd := exec.Command(playbookBin(t), append([]string{"engine", "serve"}, args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("engine serve %v: %v, want exit status 2\n%s", args, err, out)
		}
	}
}

// TestReadmeEnginePython runs the README's Python example against the binary: the example must work
// as printed. It needs python3, which playbook itself does not.
func TestReadmeEnginePython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the README's Python example is checked where it is")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### The engine from other languages.*?```python\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no Python example of playbook engine serve")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "example.py")
	if err := os.WriteFile(script, m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(playbookBin(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's Python example: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^live: Filesystem`).Match(out) || !regexp.MustCompile(`(?m)^disk completed exit code 0$`).Match(out) {
		t.Errorf("the README's Python example printed:\n%s", out)
	}
}
