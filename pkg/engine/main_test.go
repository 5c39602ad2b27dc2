package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the helper processes: with helperEnv set, TestMain becomes the named helper
// instead of running tests (the os/exec approach), so tests depend on neither sleep nor trap semantics of
// a particular shell.
const helperEnv = "ENGINE_TEST_HELPER"

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		runHelper(name, os.Args[1:])
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func runHelper(name string, args []string) {
	out := os.Stdout
	switch name {
	case "echo":
		for _, a := range args {
			fmt.Fprintln(out, a)
		}
	case "exit":
		code, _ := strconv.Atoi(args[0])
		fmt.Fprintln(out, "exiting")
		os.Exit(code)
	case "env":
		for _, k := range args {
			v, ok := os.LookupEnv(k)
			fmt.Fprintf(out, "%s=%s %v\n", k, v, ok)
		}
	case "pwd":
		wd, _ := os.Getwd()
		fmt.Fprintln(out, wd)
	case "trap-term": // print got TERM on SIGTERM, then exit 0
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Fprintln(out, "ready")
		<-c
		fmt.Fprintln(out, "got TERM")
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Fprintln(out, "ready")
		time.Sleep(time.Hour)
	case "sleep": // print ready, then wait to be killed
		fmt.Fprintln(out, "ready")
		time.Sleep(time.Hour)
	case "write": // write N bytes: a repeating pattern that makes offsets checkable
		n, _ := strconv.Atoi(args[0])
		writePattern(out, n)
	case "write-both": // N bytes to each stream
		n, _ := strconv.Atoi(args[0])
		writePattern(out, n)
		writePattern(os.Stderr, n)
	case "long-line": // a 5 MiB line without a newline, then TAIL-MARKER
		out.Write(bytes.Repeat([]byte("a"), 5<<20))
		out.WriteString("TAIL-MARKER")
	case "lines": // N numbered lines on each stream
		n, _ := strconv.Atoi(args[0])
		for i := range n {
			fmt.Fprintf(out, "out %d\n", i)
			fmt.Fprintf(os.Stderr, "err %d\n", i)
		}
	case "setsid-grandchild": // a grandchild in a new session keeps stdout open; we exit at once
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=sleep", "GORACE=atexit_sleep_ms=0")
		cmd.Stdout = out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		fmt.Fprintf(out, "grandchild %d\nstarted\n", cmd.Process.Pid)
	case "kill-self":
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(time.Hour)
	case "blast": // N bytes of zeros in 1 MiB writes
		n, _ := strconv.Atoi(args[0])
		buf := make([]byte, 1<<20)
		for n > 0 {
			k, err := out.Write(buf[:min(n, len(buf))])
			if err != nil {
				os.Exit(1)
			}
			n -= k
		}
	case "write-forever":
		chunk := bytes.Repeat([]byte("y\n"), 32<<10)
		for {
			if _, err := out.Write(chunk); err != nil {
				os.Exit(1)
			}
		}
	case "pgid":
		fmt.Fprintf(out, "pid=%d pgid=%d\n", os.Getpid(), syscall.Getpgrp())
	case "engine-runner": // a runner with its own engine; prints its child's pid, then waits to be killed
		e, err := New(Config{})
		if err != nil {
			panic(err)
		}
		ready := make(chan int, 1)
		e.Subscribe(HandlerFunc(func(ev Event) {
			if ev.Type == EventStdout && string(ev.Line) == "ready" {
				ready <- 1
			}
			if ev.Type == EventStarted {
				fmt.Fprintf(out, "child %d\n", ev.PID)
			}
		}))
		if _, err := e.Execute(helperReq("sleep")); err != nil {
			panic(err)
		}
		<-ready
		fmt.Fprintln(out, "ready")
		time.Sleep(time.Hour)
	case "invalid-utf8":
		out.Write([]byte("\xff\xfe\x00ok\xe2\x82"))
	case "split-write": // write args[0], wait for the file args[1], write args[2]
		out.WriteString(args[0])
		for {
			if _, err := os.Stat(args[1]); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		out.WriteString(args[2])
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", name)
		os.Exit(99)
	}
}

func writePattern(w *os.File, n int) {
	chunk := make([]byte, 37*1771) // a whole number of periods, so chunks join seamlessly
	for i := range chunk {
		chunk[i] = patternByte(i)
	}
	for written := 0; written < n; {
		k := min(len(chunk)-written%len(chunk), n-written)
		off := written % len(chunk)
		w.Write(chunk[off : off+k])
		written += k
	}
}

// patternByte is the byte at offset i of the "write" helper's output.
func patternByte(i int) byte { return "0123456789abcdefghijklmnopqrstuvwxyz\n"[i%37] }

func pattern(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = patternByte(from + i)
	}
	return b
}

// helperReq is a Request running the named helper. GORACE keeps a race-enabled helper from sleeping a
// second before it exits.
func helperReq(name string, args ...string) Request {
	return Request{Command: Exec{Program: os.Args[0], Args: args},
		Env: map[string]string{helperEnv: name, "GORACE": "atexit_sleep_ms=0"}}
}

func shReq(script string) Request { return Request{Command: Shell{Command: script, Shell: "/bin/sh"}} }

// newEngine returns an engine that the test closes at its end; it then checks that no process group of
// the engine's executions is left.
func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		e.Close()
		for _, s := range e.List() {
			if r, err := e.Result(s.ID); err == nil && r.PID > 0 {
				waitGroupGone(t, r.PID, 5*time.Second)
			}
		}
	})
	return e
}

// waitGroupGone waits until no process of group pgid is alive: kill(-pgid, 0) gives ESRCH, or every
// member left is a zombie. (Killed orphans stay zombies until init reaps them, which some container
// inits do only every few seconds; a zombie runs nothing and holds no pipe.)
func waitGroupGone(t testing.TB, pgid int, within time.Duration) {
	t.Helper()
	waitGone(t, fmt.Sprintf("process group %d", pgid), within, func() bool { return groupAlive(pgid) })
}

// waitProcessGone waits until process pid is dead (gone or a zombie).
func waitProcessGone(t testing.TB, pid int, within time.Duration) {
	t.Helper()
	waitGone(t, fmt.Sprintf("process %d", pid), within, func() bool { return processAlive(pid) })
}

func waitGone(t testing.TB, what string, within time.Duration, alive func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for alive() {
		if time.Now().After(deadline) {
			t.Errorf("%s still alive after %s", what, within)
			return
		}
		<-tick.C
	}
}

func groupAlive(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true // no /proc: trust kill
	}
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil {
			if state, pg, ok := procStat(pid); ok && pg == pgid && state != "Z" {
				return true
			}
		}
	}
	return false
}

func processAlive(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return false
	}
	state, _, ok := procStat(pid)
	return !ok || state != "Z"
}

// procStat reads the state and process group of pid from /proc/<pid>/stat.
func procStat(pid int) (state string, pgid int, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// The command name is in parentheses and may contain spaces: parse after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 3 {
		return "", 0, false
	}
	pg, _ := strconv.Atoi(f[2])
	return f[0], pg, true
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustRun(t testing.TB, e *Engine, req Request) *Result {
	t.Helper()
	r, err := e.Run(ctxT(t), req)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

func mustExecute(t testing.TB, e *Engine, req Request) string {
	t.Helper()
	id, err := e.Execute(req)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return id
}

func mustWait(t testing.TB, e *Engine, id string) *Result {
	t.Helper()
	r, err := e.Wait(ctxT(t), id)
	if err != nil {
		t.Fatalf("Wait(%s): %v", id, err)
	}
	return r
}

// recorder is a Handler that keeps every event and lets tests wait for one.
type recorder struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
}

func newRecorder(e *Engine) *recorder {
	r := &recorder{notify: make(chan struct{}, 1)}
	e.Subscribe(r)
	return r
}

func (r *recorder) HandleEvent(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) of(id string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.ExecutionID == id {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor blocks until an event of id satisfies ok, and returns it.
func (r *recorder) waitFor(t testing.TB, id string, ok func(Event) bool) Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		for _, ev := range r.of(id) {
			if ok(ev) {
				return ev
			}
		}
		select {
		case <-r.notify:
		case <-timeout:
			t.Fatalf("no matching event for %s; got %d events", id, len(r.of(id)))
		}
	}
}

// waitLine waits for a line event of id with exactly this text.
func (r *recorder) waitLine(t testing.TB, id, line string) {
	t.Helper()
	r.waitFor(t, id, func(ev Event) bool {
		return (ev.Type == EventStdout || ev.Type == EventStderr) && string(ev.Line) == line
	})
}

func (r *recorder) lines(id string, typ EventType) []string {
	var out []string
	for _, ev := range r.of(id) {
		if ev.Type == typ {
			out = append(out, string(ev.Line))
		}
	}
	return out
}

func assertStatus(t testing.TB, r *Result, want Status) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %s, want %s (error %q, exit %d, signal %d, stdout %q, stderr %q)",
			r.Status, want, r.Error, r.ExitCode, r.Signal, trunc(r.Stdout), trunc(r.Stderr))
	}
}

func trunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
