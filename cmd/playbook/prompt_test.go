//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const promptPlaybook = `version: 1
name: prompt
params:
  token: {secret: true, required: true, description: API token}
steps:
  - id: use
    run: |
      if [ "$PLAYBOOK_PARAM_TOKEN" = TOPSECRET ]; then echo "the step got the token"; fi
`

// terminalSession is a playbook command whose controlling terminal is a pseudo-terminal the test
// types into and reads from.
type terminalSession struct {
	t       *testing.T
	cmd     *exec.Cmd
	master  *os.File
	slave   *os.File // the test's own copy, kept open to read the terminal's settings at the end
	mu      sync.Mutex
	out     bytes.Buffer
	seen    chan struct{}
	drained chan struct{}
}

func startOnTerminal(t *testing.T, dir string, args ...string) *terminalSession {
	return startOnTerminalStderr(t, dir, nil, args...)
}

// startOnTerminalStderr is startOnTerminal with stderr going to stderr instead of the terminal (nil:
// the terminal).
func startOnTerminalStderr(t *testing.T, dir string, stderr *os.File, args ...string) *terminalSession {
	master, slave := openPTY(t)
	s := &terminalSession{t: t, master: master, slave: slave, seen: make(chan struct{}, 1), drained: make(chan struct{})}
	s.cmd = exec.Command(playbookBin(t), args...)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "PLAYBOOK_DB="+filepath.Join(dir, "pb.db"), "NO_COLOR=1", "PLAYBOOK_PARAM_TOKEN=")
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = slave, slave, slave
	if stderr != nil {
		s.cmd.Stderr = stderr
	}
	// Its own session with the terminal as its controlling one, so that Ctrl-C typed on it is a
	// SIGINT to the command.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.drained)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			select {
			case s.seen <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *terminalSession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// waitFor waits until the terminal has shown want.
func (s *terminalSession) waitFor(want string) {
	s.t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.output(), want) {
		select {
		case <-s.seen:
		case <-deadline:
			s.t.Fatalf("the terminal did not show %q within 30s:\n%q", want, s.output())
		}
	}
}

// waitEchoOff waits until the terminal no longer echoes: the prompt is shown just before the command
// turns the echo off.
func (s *terminalSession) waitEchoOff() {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		termios, err := unix.IoctlGetTermios(int(s.slave.Fd()), unix.TCGETS)
		if err != nil {
			s.t.Fatal(err)
		}
		if termios.Lflag&unix.ECHO == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the terminal still echoes 30s after the prompt:\n%q", s.output())
		}
	}
}

func (s *terminalSession) typeText(text string) {
	s.t.Helper()
	if _, err := s.master.Write([]byte(text)); err != nil {
		s.t.Fatal(err)
	}
}

// wait waits for the command's end and returns its exit status.
func (s *terminalSession) wait() int {
	s.t.Helper()
	err := s.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		s.t.Fatal(err)
	}
	return 0
}

// TestPromptSecret: on a terminal, a required secret param that no -p, file or variable gave is
// asked for without echo; the run gets it, and it is neither shown nor recorded.
func TestPromptSecret(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "prompt.yaml"), promptPlaybook)
	s := startOnTerminal(t, dir, "run", "prompt.yaml")
	s.waitFor("Secret param token (API token): ")
	s.waitEchoOff()
	s.typeText("TOPSECRET\r")
	if code := s.wait(); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%q", code, s.output())
	}
	s.slave.Close()
	select {
	case <-s.drained:
	case <-time.After(30 * time.Second):
		t.Fatalf("the terminal's output did not end:\n%q", s.output())
	}
	out := s.output()
	if strings.Contains(out, "TOPSECRET") {
		t.Errorf("the secret was echoed or shown:\n%q", out)
	}
	if !strings.Contains(out, "the step got the token") {
		t.Errorf("the step did not get the typed secret:\n%q", out)
	}
	got := queryDB(t, filepath.Join(dir, "pb.db"), "SELECT params FROM runs")
	if len(got) != 1 || got[0] != `{"token":"***"}` {
		t.Errorf("recorded params %q, want the secret masked", got)
	}
}

// TestPromptSecretInterrupted: Ctrl-C at the prompt ends the command (status 130) and gives the
// terminal its echo back.
func TestPromptSecretInterrupted(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "prompt.yaml"), promptPlaybook)
	s := startOnTerminal(t, dir, "run", "prompt.yaml")
	s.waitFor("Secret param token")
	s.waitEchoOff()
	s.typeText("\x03")
	if code := s.wait(); code != 130 {
		t.Fatalf("exit status %d, want 130:\n%q", code, s.output())
	}
	termios, err := unix.IoctlGetTermios(int(s.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if termios.Lflag&unix.ECHO == 0 {
		t.Errorf("the terminal was left without echo")
	}
	if _, err := os.Stat(filepath.Join(dir, "pb.db")); err == nil {
		t.Errorf("a run was recorded although none started")
	}
}

// TestPromptSecretStderrRedirected: with stderr going to a file, the prompt is shown on the terminal
// that is asked, not written to the file.
func TestPromptSecretStderrRedirected(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "prompt.yaml"), promptPlaybook)
	logFile, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s := startOnTerminalStderr(t, dir, logFile, "run", "prompt.yaml")
	s.waitFor("Secret param token (API token): ")
	s.waitEchoOff()
	s.typeText("TOPSECRET\r")
	if code := s.wait(); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%q", code, s.output())
	}
	logged, err := os.ReadFile(logFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logged), "Secret param") || strings.Contains(string(logged), "TOPSECRET") {
		t.Errorf("stderr got the prompt or the secret: %q", logged)
	}
}
