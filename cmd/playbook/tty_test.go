//go:build linux

package main

import (
	"bytes"
	"fmt"
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

// openPTY opens a pseudo-terminal pair: what the runner writes to the returned slave comes out of
// master, as on a real terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ttyRun runs the playbook on a terminal; the step waits for the file "go", which the test creates once
// the live view has shown the step running.
func ttyRun(t *testing.T, extraEnv ...string) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "live.yaml"), `version: 1
name: live
steps:
  - id: waiter
    run: |
      echo waiting
      while [ ! -f go ]; do sleep 0.01; done
      echo done waiting
  - id: next
    needs: [waiter]
    run: echo next
`)
	master, slave := openPTY(t)
	cmd := exec.Command(playbookBin(t), "run", "live.yaml")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PLAYBOOK_DB="+filepath.Join(dir, "pb.db"), "NO_COLOR="), extraEnv...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()

	var mu sync.Mutex
	var out bytes.Buffer
	seen, drained := make(chan struct{}, 1), make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			select {
			case seen <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	// The live block: the running step with its elapsed time, and the counts.
	deadline := time.After(30 * time.Second)
	for {
		mu.Lock()
		ok := strings.Contains(out.String(), "1 running") && strings.Contains(out.String(), "waiter")
		mu.Unlock()
		if ok {
			break
		}
		select {
		case <-seen:
		case <-deadline:
			t.Fatalf("no live view within 30s:\n%q", out.String())
		}
	}
	writeFile(t, filepath.Join(dir, "go"), "")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%q", err, out.String())
	}
	// The master keeps what was written before the process ended; the reader drains it and stops at
	// the error that follows (EIO: no slave is left open).
	select {
	case <-drained:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the terminal's output did not end within 30 s of the process:\n%q", out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	return out.String()
}

func TestTerminalLiveView(t *testing.T) {
	out := ttyRun(t)
	for _, want := range []string{
		"0/2 done · 1 running · 1 waiting",
		"2/2 done · 0 running · 0 waiting",
		"\x1b[36m[waiter]\x1b[0m waiting", // step ids in colour
		"\x1b[32msucceeded\x1b[0m",
		"\x1b[J", // the live block is erased and redrawn in place
		"STEP",   // the summary table
	} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
}

func TestTerminalNoColor(t *testing.T) {
	out := ttyRun(t, "NO_COLOR=1")
	if strings.Contains(out, "\x1b[3") {
		t.Errorf("NO_COLOR set, but the output has colour:\n%q", out)
	}
	if !strings.Contains(out, "1 running") {
		t.Errorf("the live view is still wanted without colour:\n%q", out)
	}
}
