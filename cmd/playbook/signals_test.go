//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hangupPlaybook has a step that cleans up on TERM and an always() step that prints enough to need
// writes after the terminal (or the reader of a pipe) has gone.
const hangupPlaybook = `version: 1
name: hup
steps:
  - id: slow
    stop_grace: 10s
    run: |
      echo $$ > pgid
      trap 'echo "got TERM"; sleep 0.3; echo "cleaned up"; exit 0' TERM
      echo ready
      : > ready
      while :; do sleep 0.02; done
  - id: cleanup
    needs: [slow]
    if: always()
    run: |
      i=0
      while [ $i -lt 300 ]; do echo "cleanup line $i"; i=$((i+1)); done
      echo "cleanup ran"
`

// waitInBackground waits for cmd; the channel gives its result once. If the test ends first, target
// (a pid, or a negative group id) gets SIGKILL.
func waitInBackground(t *testing.T, cmd *exec.Cmd, target int) <-chan error {
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		done <- cmd.Wait()
		close(ended)
	}()
	t.Cleanup(func() {
		select {
		case <-ended:
		default:
			syscall.Kill(target, syscall.SIGKILL)
			<-ended
		}
	})
	return done
}

// waitFile waits (up to 30 s) until a step has created path.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not created within 30s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStoppedGracefully checks the record of hangupPlaybook stopped by a signal with exit status code.
func checkStoppedGracefully(t *testing.T, dir, db string, code int) {
	t.Helper()
	waitGroupGone(t, readPID(t, filepath.Join(dir, "pgid")))
	if got := queryDB(t, db, `SELECT status, exit_code FROM runs`); len(got) != 1 || got[0] != fmt.Sprintf("cancelled|%d", code) {
		t.Errorf("runs = %v, want cancelled|%d", got, code)
	}
	if got := queryDB(t, db, `SELECT step_id, status FROM steps ORDER BY step_id`); strings.Join(got, ",") != "cleanup|succeeded,slow|cancelled" {
		t.Errorf("steps = %v, want cleanup succeeded (always() runs) and slow cancelled", got)
	}
	if got := queryDB(t, db, `SELECT instr(stdout, 'cleaned up') > 0 FROM steps WHERE step_id = 'slow'`); len(got) != 1 || got[0] != "1" {
		t.Errorf("the slow step's clean-up is not in its recorded output: %v", got)
	}
}

// TestHangupStopsGracefully: SIGHUP (an SSH session dropped) is a graceful stop like SIGTERM: the
// step gets its stop signal and cleans up, always() steps run, the run is recorded cancelled and the
// runner exits 129. A second SIGHUP (a dropped session sends more than one) does not force the stop.
func TestHangupStopsGracefully(t *testing.T) {
	for _, twice := range []bool{false, true} {
		t.Run(fmt.Sprintf("twice=%v", twice), func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "pb.db")
			writeFile(t, filepath.Join(dir, "hup.yaml"), hangupPlaybook)
			p := startPlaybook(t, dir, db, "run", "hup.yaml")
			p.waitLine(`^\[slow\] ready$`)
			syscall.Kill(p.cmd.Process.Pid, syscall.SIGHUP)
			if twice {
				p.waitLine(`Press Ctrl-C again`)
				syscall.Kill(p.cmd.Process.Pid, syscall.SIGHUP)
			}
			if code := p.wait(20 * time.Second); code != 129 {
				t.Fatalf("exit status %d, want 129:\n%s", code, p.output())
			}
			for _, want := range []string{`^\[slow\] cleaned up$`, `^\[cleanup\] cleanup ran$`, `Stopping the run: interrupted by SIGHUP`} {
				if p.count(want) == 0 {
					t.Errorf("no line matching %q:\n%s", want, p.output())
				}
			}
			checkStoppedGracefully(t, dir, db, 129)
		})
	}
}

// TestHangupOnTerminal: the runner is a session leader on a terminal that goes away (the SSH client's
// connection dropped): the kernel sends SIGHUP and every later write to the terminal fails with EIO.
// The runner still stops gracefully and records the run.
func TestHangupOnTerminal(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "hup.yaml"), hangupPlaybook)
	master, slave := openPTY(t)
	cmd := exec.Command(playbookBin(t), "run", "hup.yaml")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYBOOK_DB="+db)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := waitInBackground(t, cmd, cmd.Process.Pid)
	slave.Close()
	go func() { // keep the terminal drained until it hangs up
		buf := make([]byte, 4096)
		for {
			if _, err := master.Read(buf); err != nil {
				return
			}
		}
	}()
	waitFile(t, filepath.Join(dir, "ready"))
	master.Close() // the hang-up
	checkHungUp(t, done, dir, db, "the hang-up")
}

// TestHangupWithClosedPipe: the runner's output goes into a pipe whose reader has gone (`playbook run
// | tee` after the session dropped): its writes fail with EPIPE but must not kill it with SIGPIPE
// before the run is recorded. The steps' own SIGPIPE stays the default: `yes | head` in a step ends.
func TestHangupWithClosedPipe(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "hup.yaml"), strings.Replace(hangupPlaybook, `      echo "cleanup ran"`,
		`      yes | head -n 1
      echo "cleanup ran"`, 1))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(playbookBin(t), "run", "hup.yaml")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYBOOK_DB="+db, "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := waitInBackground(t, cmd, -cmd.Process.Pid)
	sc := bufio.NewScanner(r)
	for sc.Scan() && sc.Text() != "[slow] ready" {
	}
	r.Close()
	syscall.Kill(cmd.Process.Pid, syscall.SIGHUP)
	checkHungUp(t, done, dir, db, "SIGHUP")
}

// checkHungUp waits for the runner that got the hang-up (what) to end with exit status 129, then
// checks that it stopped gracefully.
func checkHungUp(t *testing.T, done <-chan error, dir, db, what string) {
	t.Helper()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 129 {
			t.Fatalf("runner ended with %v, want exit status 129", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the runner did not end within 20s of %s", what)
	}
	checkStoppedGracefully(t, dir, db, 129)
}

// TestQuitKillsAtOnce: SIGQUIT is the forced stop from the first signal: every step's group gets
// SIGKILL, nothing more starts (not even always() steps), the run is recorded cancelled and the
// runner exits 131 without Go's goroutine dump.
func TestQuitKillsAtOnce(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pb.db")
	writeFile(t, filepath.Join(dir, "hup.yaml"), hangupPlaybook)
	p := startPlaybook(t, dir, db, "run", "hup.yaml")
	p.waitLine(`^\[slow\] ready$`)
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGQUIT)
	if code := p.wait(20 * time.Second); code != 131 {
		t.Fatalf("exit status %d, want 131:\n%s", code, p.output())
	}
	out := p.output()
	for _, bad := range []string{"goroutine ", "SIGQUIT: quit", "got TERM", "cleanup ran", "Press Ctrl-C again"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
	waitGroupGone(t, readPID(t, filepath.Join(dir, "pgid")))
	if got := queryDB(t, db, `SELECT status, exit_code, error FROM runs`); len(got) != 1 || got[0] != "cancelled|131|interrupted by SIGQUIT" {
		t.Errorf("runs = %v, want cancelled|131|interrupted by SIGQUIT", got)
	}
	if got := queryDB(t, db, `SELECT step_id, status, signal FROM steps ORDER BY step_id`); strings.Join(got, ",") != "cleanup|skipped|NULL,slow|cancelled|9" {
		t.Errorf("steps = %v, want cleanup skipped and slow cancelled by SIGKILL", got)
	}
}
