//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// ttyCommand runs playbook with args in dir on a terminal, with env added to the test's environment
// and the database db, and returns all it wrote there once it has exited.
func ttyCommand(t *testing.T, dir, db string, env []string, args ...string) string {
	t.Helper()
	master, slave := openPTY(t)
	cmd := exec.Command(playbookBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PLAYBOOK_DB="+db), env...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return // EIO once the process, the only one with the slave open, has exited
			}
		}
	}()
	err := cmd.Wait()
	select {
	case <-drained:
	case <-time.After(30 * time.Second):
		t.Fatalf("playbook %s: the terminal's output did not end within 30 s of the process", strings.Join(args, " "))
	}
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
		t.Fatalf("playbook %s: %v\n%q", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// sgr matches an ANSI colour or style code (not the cursor movements of the live view).
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// On a terminal, run's summary, runs and show colour the statuses, unless NO_COLOR is set to anything,
// and show times in local time (TZ), naming the zone; the database keeps UTC.
func TestTerminalTablesColourAndLocalTime(t *testing.T) {
	const zone = "Asia/Kolkata" // +05:30 all year: no daylight saving time to trip over
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Skipf("no time zone database here: %v", err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "mixed.yaml"), `version: 1
name: mixed
fail_fast: false
steps:
  - id: good
    run: "true"
  - id: bad
    run: exit 3
`)
	colour := []string{"TZ=" + zone, "NO_COLOR="}
	out := ttyCommand(t, dir, db, colour, "run", "mixed.yaml")
	for _, want := range []string{"\x1b[32msucceeded\x1b[0m", "bad   \x1b[31mfailed\x1b[0m     3     ", "Run ", "\x1b[31mfailed\x1b[0m in "} {
		if !strings.Contains(out, want) {
			t.Errorf("run's summary lacks %q:\n%q", want, out)
		}
	}
	started, err := time.Parse("2006-01-02T15:04:05.000Z", queryDB(t, db, `SELECT started_at FROM runs`)[0])
	if err != nil {
		t.Fatal(err)
	}
	local := started.In(loc).Format("2006-01-02 15:04:05") + " IST"
	utc := started.Format("2006-01-02 15:04:05")

	out = ttyCommand(t, dir, db, colour, "runs")
	if !strings.Contains(out, "\x1b[31mfailed\x1b[0m") || !strings.Contains(out, local) || strings.Contains(out, utc) {
		t.Errorf("runs on a terminal: want the status in red and the start %q (local), not %q (UTC):\n%q", local, utc, out)
	}
	out = ttyCommand(t, dir, db, colour, "show", "last")
	for _, want := range []string{"\x1b[31mfailed (exit 1)\x1b[0m", "Started:   " + local + " by ", "\x1b[32msucceeded\x1b[0m", "\x1b[31mfailed\x1b[0m"} {
		if !strings.Contains(out, want) {
			t.Errorf("show on a terminal lacks %q:\n%q", want, out)
		}
	}

	for _, noColor := range []string{"1", "false", "0"} { // any non-empty value: https://no-color.org
		env := []string{"TZ=" + zone, "NO_COLOR=" + noColor}
		for _, args := range [][]string{{"run", "mixed.yaml"}, {"runs"}, {"show", "last"}} {
			out := ttyCommand(t, dir, db, env, args...)
			if sgr.MatchString(out) {
				t.Errorf("NO_COLOR=%s, but playbook %s has colour:\n%q", noColor, strings.Join(args, " "), out)
			}
			if args[0] == "runs" && !strings.Contains(out, " IST ") {
				t.Errorf("NO_COLOR=%s: runs on a terminal still shows local time:\n%q", noColor, out)
			}
		}
	}
}
