package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOwnProcessGroup(t *testing.T) {
	e := newEngine(t, Config{})
	r := mustRun(t, e, helperReq("pgid"))
	assertStatus(t, r, StatusCompleted)
	want := fmt.Sprintf("pid=%d pgid=%d\n", r.PID, r.PID)
	if string(r.Stdout) != want {
		t.Fatalf("child reports %q, want %q (its own group, id = Result.PID)", r.Stdout, want)
	}
	if r.PID == syscall.Getpgrp() {
		t.Fatal("child shares the test's process group")
	}
}

// TestTimeoutKillsTree: a timeout stops the whole process group, not just the shell it started (whose
// children would otherwise run on).
func TestTimeoutKillsTree(t *testing.T) {
	// The timeout leaves a loaded machine time to start the shell and print "before" (a much shorter
	// one failed there).
	const timeout, grace = 2 * time.Second, 500 * time.Millisecond
	e := newEngine(t, Config{StopGrace: grace})
	rec := newRecorder(e)
	req := shReq("echo before; sleep 300 & sleep 300 & wait")
	req.Timeout = timeout
	start := time.Now()
	r := mustRun(t, e, req)
	elapsed := time.Since(start)
	assertStatus(t, r, StatusTimedOut)
	// The stop ladder is the behaviour here, so time is bounded, with room for a loaded machine: the
	// group's sleeps would take 300 s.
	if elapsed > 10*(timeout+grace) {
		t.Errorf("took %s, want about timeout+grace (%s): the timeout did not stop the group", elapsed, timeout+grace)
	}
	if string(r.Stdout) != "before\n" {
		t.Errorf("partial output %q, want %q", r.Stdout, "before\n")
	}
	if r.ErrorCode != CodeTimeout || !errors.Is(r.Err(), ErrTimeout) || !IsRetryable(r.Err()) {
		t.Errorf("error code %s, Err %v", r.ErrorCode, r.Err())
	}
	waitGroupGone(t, r.PID, 10*time.Second)
	ev := rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type == EventTimedOut })
	if ev.TimeoutMS != timeout.Milliseconds() || ev.Result == nil || ev.Result.Status != StatusTimedOut {
		t.Errorf("timed_out event %+v", ev)
	}
}

func TestCancelStopsTree(t *testing.T) {
	e := newEngine(t, Config{StopGrace: 500 * time.Millisecond})
	rec := newRecorder(e)
	id := mustExecute(t, e, shReq("sleep 300 & sleep 300 & echo ready; wait"))
	rec.waitLine(t, id, "ready")
	if err := e.Cancel(id); err != nil {
		t.Fatal(err)
	}
	r := mustWait(t, e, id)
	assertStatus(t, r, StatusCancelled)
	waitGroupGone(t, r.PID, 10*time.Second)
}

// TestCancelSendsStopSignalFirst: the stop signal arrives and the child can clean up before the grace
// ends, rather than being killed at once.
func TestCancelSendsStopSignalFirst(t *testing.T) {
	const grace = 20 * time.Second
	e := newEngine(t, Config{StopGrace: grace})
	rec := newRecorder(e)
	id := mustExecute(t, e, helperReq("trap-term"))
	rec.waitLine(t, id, "ready")
	start := time.Now()
	e.Cancel(id)
	r := mustWait(t, e, id)
	assertStatus(t, r, StatusCancelled)
	if !contains(r.Stdout, "got TERM") {
		t.Fatalf("stdout %q lacks got TERM", r.Stdout)
	}
	if time.Since(start) >= grace {
		t.Fatal("waited for the grace although the child exited")
	}
	if r.ExitCode != 0 || r.Signal != 0 {
		t.Errorf("exit %d signal %d, want the child's own exit 0", r.ExitCode, r.Signal)
	}
	if r.ErrorCode != CodeCancelled || !errors.Is(r.Err(), ErrCancelled) || IsRetryable(r.Err()) {
		t.Errorf("code %s err %v", r.ErrorCode, r.Err())
	}
}

func TestRequestStopSignal(t *testing.T) {
	e := newEngine(t, Config{StopGrace: 20 * time.Second})
	rec := newRecorder(e)
	req := shReq(`trap 'echo got INT; exit 0' INT; echo ready; while :; do sleep 0.01; done`)
	req.StopSignal = syscall.SIGINT
	id := mustExecute(t, e, req)
	rec.waitLine(t, id, "ready")
	e.Cancel(id)
	r := mustWait(t, e, id)
	if !contains(r.Stdout, "got INT") {
		t.Fatalf("stdout %q: Request.StopSignal not used", r.Stdout)
	}
}

// TestIgnoredStopSignalEscalatesToKill: a child that ignores SIGTERM gets SIGKILL after the grace.
func TestIgnoredStopSignalEscalatesToKill(t *testing.T) {
	const grace = 300 * time.Millisecond
	e := newEngine(t, Config{StopGrace: grace})
	rec := newRecorder(e)
	id := mustExecute(t, e, helperReq("ignore-term"))
	rec.waitLine(t, id, "ready")
	start := time.Now()
	e.Cancel(id)
	r := mustWait(t, e, id)
	elapsed := time.Since(start)
	assertStatus(t, r, StatusCancelled)
	if r.Signal != int(syscall.SIGKILL) || r.ExitCode != -1 {
		t.Errorf("signal %d exit %d, want SIGKILL and -1", r.Signal, r.ExitCode)
	}
	// The ladder is the behaviour: SIGKILL not before the grace, and soon after it (the helper would
	// sleep an hour), with room for a loaded machine.
	if elapsed < grace || elapsed > grace+5*time.Second {
		t.Errorf("killed after %s, want after the grace (%s) and within 5 s of it", elapsed, grace)
	}
}

func TestNoGraceKillsAtOnce(t *testing.T) {
	e := newEngine(t, Config{StopGrace: NoGrace})
	rec := newRecorder(e)
	id := mustExecute(t, e, helperReq("trap-term"))
	rec.waitLine(t, id, "ready")
	e.Cancel(id)
	r := mustWait(t, e, id)
	if r.Signal != int(syscall.SIGKILL) || contains(r.Stdout, "got TERM") {
		t.Fatalf("signal %d stdout %q, want SIGKILL without TERM", r.Signal, r.Stdout)
	}
}

func TestKill(t *testing.T) {
	e := newEngine(t, Config{StopGrace: time.Hour, MaxConcurrent: 1})
	rec := newRecorder(e)
	id := mustExecute(t, e, helperReq("ignore-term"))
	pending := mustExecute(t, e, helperReq("echo", "never"))
	rec.waitLine(t, id, "ready")
	e.Cancel(id) // SIGTERM, ignored; the grace is an hour
	if err := e.Kill(id); err != nil {
		t.Fatal(err)
	}
	r := mustWait(t, e, id)
	assertStatus(t, r, StatusCancelled)
	if r.Signal != int(syscall.SIGKILL) {
		t.Errorf("signal %d, want 9", r.Signal)
	}
	p := mustWait(t, e, pending)
	if p.Status != StatusCompleted {
		t.Errorf("the queued execution should run after the kill, got %s", p.Status)
	}
}

func TestKillAll(t *testing.T) {
	e := newEngine(t, Config{StopGrace: time.Hour, MaxConcurrent: 2})
	rec := newRecorder(e)
	a := mustExecute(t, e, helperReq("ignore-term"))
	b := mustExecute(t, e, helperReq("sleep"))
	c := mustExecute(t, e, helperReq("echo", "never"))
	rec.waitLine(t, a, "ready")
	rec.waitLine(t, b, "ready")
	e.KillAll()
	for _, id := range []string{a, b} {
		r := mustWait(t, e, id)
		assertStatus(t, r, StatusCancelled)
		if r.Signal != int(syscall.SIGKILL) {
			t.Errorf("%s: signal %d, want 9", id, r.Signal)
		}
	}
	r := mustWait(t, e, c)
	assertStatus(t, r, StatusCancelled)
	if r.PID != 0 || !r.StartedAt.IsZero() {
		t.Errorf("pending execution started: %+v", r)
	}
	// The engine stays usable.
	if r := mustRun(t, e, helperReq("echo", "after")); string(r.Stdout) != "after\n" {
		t.Errorf("after KillAll: %q", r.Stdout)
	}
}

// TestGrandchildHoldsPipe: a grandchild that escapes the group and holds the pipes does not hang Wait.
func TestGrandchildHoldsPipe(t *testing.T) {
	const waitDelay = 300 * time.Millisecond
	cases := []struct {
		name     string
		req      Request
		exitCode int
	}{
		{"helper setsid", helperReq("setsid-grandchild"), 0},
		{"setsid binary", shReq(escapeScript + "; echo started"), 0},
		{"setsid binary, exit 3", shReq(escapeScript + "; echo started; exit 3"), 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.name, "binary") {
				if _, err := exec.LookPath("setsid"); err != nil {
					t.Skip("no setsid binary")
				}
			}
			e := newEngine(t, Config{WaitDelay: waitDelay})
			rec := newRecorder(e)
			id := mustExecute(t, e, tc.req)
			rec.waitLine(t, id, "started") // the command exits right after this line
			start := time.Now()
			r := mustWait(t, e, id)
			elapsed := time.Since(start)
			killGrandchild(t, r.Stdout)
			assertStatus(t, r, StatusCompleted)
			if r.ExitCode != tc.exitCode {
				t.Errorf("exit %d, want %d", r.ExitCode, tc.exitCode)
			}
			// The grandchild holds the pipes for 30 s; Wait gives up WaitDelay after the command exits.
			if elapsed > waitDelay+10*time.Second {
				t.Errorf("Wait took %s, want about WaitDelay (%s): it waited for the grandchild", elapsed, waitDelay)
			}
			if !contains(r.Stdout, "started\n") {
				t.Errorf("stdout %q lacks started", r.Stdout)
			}
			if !strings.Contains(r.Warning, "output may be incomplete") {
				t.Errorf("warning %q, want the incomplete-output warning", r.Warning)
			}
		})
	}
}

// escapeScript starts a grandchild in a new session that holds stdout, and waits until it has left the
// group (otherwise the group kill at the shell's exit could catch it before setsid).
const escapeScript = `f=$(mktemp -u); setsid sh -c "touch $f; exec sleep 30" & echo "grandchild $!"; ` +
	`while [ ! -e "$f" ]; do :; done; rm -f "$f"`

func killGrandchild(t *testing.T, stdout []byte) {
	for _, line := range strings.Split(string(stdout), "\n") {
		if pid, ok := strings.CutPrefix(line, "grandchild "); ok {
			if n, err := strconv.Atoi(pid); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
				return
			}
		}
	}
	t.Errorf("no grandchild pid in %q", stdout)
}

// Background jobs left in the group are killed when the leader exits, so they cannot hold the pipes and
// the execution ends without waiting for WaitDelay.
func TestBackgroundJobsKilledWhenLeaderExits(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("elsewhere the group is killed only after Wait")
	}
	e := newEngine(t, Config{WaitDelay: time.Minute})
	start := time.Now()
	r := mustRun(t, e, shReq(`sleep 300 & echo "bg $!"`))
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %s: background job held the pipes", time.Since(start))
	}
	assertStatus(t, r, StatusCompleted)
	if r.Warning != "" {
		t.Errorf("warning %q", r.Warning)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(r.Stdout), "bg ")))
	waitGroupGone(t, r.PID, 10*time.Second)
	waitProcessGone(t, pid, 10*time.Second)
}

// TestExitCodesAndSignals: exit codes and signals are reported faithfully: a process a signal ended has
// the signal's number, not an exit code of -1.
func TestExitCodesAndSignals(t *testing.T) {
	e := newEngine(t, Config{})
	cases := []struct {
		name           string
		req            Request
		exit, signal   int
		success        bool
		code           Code
		errorSubstring string
	}{
		{"exit 0", shReq("exit 0"), 0, 0, true, "", ""},
		{"exit 3", shReq("exit 3"), 3, 0, false, CodeCommandFailed, "exit status 3"},
		{"helper exit 42", helperReq("exit", "42"), 42, 0, false, CodeCommandFailed, "exit status 42"},
		{"killed by SIGTERM", helperReq("kill-self"), -1, 15, false, CodeCommandFailed, "signal 15"},
		{"shell kills itself", shReq("kill -KILL $$"), -1, 9, false, CodeCommandFailed, "SIGKILL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRun(t, e, tc.req)
			assertStatus(t, r, StatusCompleted)
			if r.ExitCode != tc.exit || r.Signal != tc.signal || r.Success() != tc.success || r.ErrorCode != tc.code {
				t.Fatalf("exit %d signal %d success %v code %q; want %d %d %v %q",
					r.ExitCode, r.Signal, r.Success(), r.ErrorCode, tc.exit, tc.signal, tc.success, tc.code)
			}
			if !strings.Contains(r.Error, tc.errorSubstring) {
				t.Errorf("error %q lacks %q", r.Error, tc.errorSubstring)
			}
			if tc.success != (r.Err() == nil) {
				t.Errorf("Err() = %v", r.Err())
			}
			var ee *Error
			if !tc.success && (!errors.As(r.Err(), &ee) || ee.ExitCode != tc.exit || ee.Signal != tc.signal) {
				t.Errorf("Err() = %#v", r.Err())
			}
		})
	}
}

func TestSpawnFailure(t *testing.T) {
	// Executable with an ELF magic but garbage inside: validation accepts it, execve refuses it.
	path := filepath.Join(t.TempDir(), "broken")
	os.WriteFile(path, []byte("\x7fELF not really"), 0o755)
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	r := mustRun(t, e, Request{Command: Exec{Program: path}})
	assertStatus(t, r, StatusFailed)
	if r.ErrorCode != CodeSpawnFailed || !IsRetryable(r.Err()) || r.PID != 0 || r.ExitCode != -1 {
		t.Fatalf("%+v", r)
	}
	ev := rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	if ev.Type != EventFailed || ev.Error == "" {
		t.Fatalf("terminal event %+v", ev)
	}
	for _, ev := range rec.of(r.ID) {
		if ev.Type == EventStarted {
			t.Error("started event for a process that never started")
		}
	}
}

// Pdeathsig: when the runner process dies, its child (the group leader) dies with it.
func TestChildDiesWithRunner(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux only")
	}
	runner := exec.Command(os.Args[0])
	runner.Env = append(os.Environ(), helperEnv+"=engine-runner", "GORACE=atexit_sleep_ms=0")
	stdout, _ := runner.StdoutPipe()
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	child := 0
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "child "); ok {
			child, _ = strconv.Atoi(n)
		}
		if sc.Text() == "ready" {
			break
		}
	}
	if child == 0 {
		t.Fatal("runner did not report its child")
	}
	runner.Process.Kill()
	runner.Wait()
	waitGroupGone(t, child, 5*time.Second)
}
