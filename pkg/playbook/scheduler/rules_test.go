package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/playbookhq/playbook/pkg/run"
)

// hdr begins every playbook of the rule table.
const hdr = "version: 1\nname: t\n"

// rule is one row of the rule table: a rule of README's "How the steps run", "Retries", "Timeouts",
// "Ctrl-C and signals" and "Statuses" (and of retries of runs), played as a script of events.
type rule struct {
	name   string
	yaml   string
	params map[string]string // -p values
	cfg    Config
	// play drives the run; nil: Begin, then every attempt succeeds.
	play func(h *harness)
	// want is each listed step's final "status" or "status/reason".
	want map[string]string
	// run is the run's "status exit".
	run string
	// check tests the rest of the row's rule.
	check func(t *testing.T, h *harness)
}

func (r rule) harness(t *testing.T) *harness {
	t.Helper()
	pb := loadPlaybook(t, r.yaml)
	cfg := r.cfg
	params, err := pb.ResolveParams(r.params)
	if err != nil {
		t.Fatalf("params: %v", err)
	}
	cfg.Params = params
	return newHarnessPB(t, pb, cfg)
}

func playRules(t *testing.T, rules []rule) {
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			h := r.harness(t)
			if r.play != nil {
				r.play(h)
			} else {
				h.begin()
				h.drain(nil)
			}
			for id, want := range r.want {
				if got := h.status(id); got != want {
					t.Errorf("step %s: %q, want %q", id, got, want)
				}
			}
			if r.run != "" {
				if h.done == nil {
					t.Fatalf("no RunDone; log:\n%s", h.dump())
				}
				if got := fmt.Sprintf("%s %d", h.done.Status, h.done.ExitCode); got != r.run {
					t.Errorf("run: %q, want %q", got, r.run)
				}
			}
			if r.check != nil {
				r.check(t, h)
			}
			if t.Failed() {
				t.Logf("commands:\n%s", h.dump())
			}
		})
	}
}

// eq fails the test when got and want differ (compared as fmt %v).
func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Errorf("%s: %s, want %s", what, g, w)
	}
}

func has(cmds []Command, f func(Command) bool) bool { return slices.ContainsFunc(cmds, f) }

func isRetry(c Command) bool   { _, ok := c.(*RetryLater); return ok }
func isStop(c Command) bool    { _, ok := c.(*StopSteps); return ok }
func isKillAll(c Command) bool { _, ok := c.(*KillAll); return ok }

// fail3 makes every attempt of the listed steps fail with exit 3, the rest succeed.
func failing(ids ...string) func(string, int) (run.Status, int) {
	return func(id string, _ int) (run.Status, int) {
		if slices.Contains(ids, id) {
			return run.StatusFailed, 3
		}
		return run.StatusSucceeded, 0
	}
}

// TestRulesHowStepsRun: README "How the steps run", the if and its status functions, and "Statuses".
func TestRulesHowStepsRun(t *testing.T) {
	playRules(t, []rule{
		{
			name: "needs_wait_for_every_need",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n  - {id: c, needs: [a, b], run: x}\n",
			play: func(h *harness) {
				h.begin()
				eq(h.t.(*testing.T), "after Begin", h.running(), []string{"a", "b"})
				h.succeed("a")
				eq(h.t.(*testing.T), "after a", h.running(), []string{"b"})
				h.succeed("b")
				eq(h.t.(*testing.T), "after b", h.running(), []string{"c"})
				h.succeed("c")
			},
			want: map[string]string{"a": "succeeded", "b": "succeeded", "c": "succeeded"},
			run:  "succeeded 0",
		},
		{
			name: "dependency_failed",
			yaml: hdr + "fail_fast: false\nsteps:\n  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "skipped/dependency_failed"},
			run:  "failed 1",
			check: func(t *testing.T, h *harness) {
				eq(t, "run error", h.done.Error, "failed steps: a")
				eq(t, "b attempts", h.records["b"].Attempts, 0)
			},
		},
		{
			name: "dependency_failed_before_fail_fast",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "skipped/dependency_failed"},
			run:  "failed 1",
		},
		{
			name: "dependency_skipped",
			yaml: hdr + "steps:\n  - {id: a, if: 'false', run: x}\n  - {id: b, needs: a, run: x}\n",
			want: map[string]string{"a": "skipped/condition_false", "b": "skipped/dependency_skipped"},
			run:  "succeeded 0",
		},
		{
			name: "dependency_failed_wins_over_skipped",
			yaml: hdr + "fail_fast: false\nsteps:\n  - {id: a, if: 'false', run: x}\n  - {id: b, run: x}\n  - {id: c, needs: [a, b], run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("b")) },
			want: map[string]string{"a": "skipped/condition_false", "b": "failed", "c": "skipped/dependency_failed"},
			run:  "failed 1",
		},
		{
			name: "condition_false",
			yaml: hdr + "params:\n  env: {default: staging}\nsteps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'params.env == \"prod\"', run: x}\n",
			want: map[string]string{"a": "succeeded", "b": "skipped/condition_false"},
			run:  "succeeded 0",
		},
		{
			name:   "condition_true_with_params",
			yaml:   hdr + "params:\n  env: {default: staging}\nsteps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'params.env == \"prod\"', run: x}\n",
			params: map[string]string{"env": "prod"},
			want:   map[string]string{"a": "succeeded", "b": "succeeded"},
			run:    "succeeded 0",
		},
		{
			name: "if_without_status_function_means_success_and",
			yaml: hdr + "fail_fast: false\nparams:\n  env: {default: prod}\nsteps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'params.env == \"prod\"', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "skipped/dependency_failed"},
			run:  "failed 1",
		},
		{
			name: "explicit_success_or_failure_is_evaluated",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'success() || failure()', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "succeeded"},
			run:  "failed 1",
		},
		{
			name: "always_runs_after_failure",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'always()', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "succeeded"},
			run:  "failed 1",
		},
		{
			name: "failure_sees_transitive_failure",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n  - {id: c, needs: b, if: 'failure()', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "skipped/dependency_failed", "c": "succeeded"},
			run:  "failed 1",
		},
		{
			name: "failure_false_when_needs_succeeded",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'failure()', run: x}\n",
			want: map[string]string{"a": "succeeded", "b": "skipped/condition_false"},
			run:  "succeeded 0",
		},
		{
			name: "failure_ignores_continue_on_error",
			yaml: hdr + "steps:\n  - {id: a, continue_on_error: true, run: x}\n  - {id: b, needs: a, if: 'failure()', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "skipped/condition_false"},
			run:  "succeeded 0",
		},
		{
			name: "cancelled_false_in_a_normal_run",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'cancelled()', run: x}\n",
			want: map[string]string{"a": "succeeded", "b": "skipped/condition_false"},
			run:  "succeeded 0",
		},
		{
			name: "if_reads_outputs",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'steps.a.outputs.go == \"yes\"', run: x}\n  - {id: c, needs: a, if: 'steps.a.outputs.go == \"no\"', run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.finish("a", run.StatusSucceeded, 0, map[string]string{"go": "yes"})
				h.drain(nil)
			},
			want: map[string]string{"a": "succeeded", "b": "succeeded", "c": "skipped/condition_false"},
			run:  "succeeded 0",
		},
		{
			name: "if_reads_exit_code",
			yaml: hdr + "fail_fast: false\nsteps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'always() && steps.a.exit_code == 3', run: x}\n  - {id: c, needs: a, if: 'always() && steps.a.exit_code == 4', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "succeeded", "c": "skipped/condition_false"},
			run:  "failed 1",
		},
		{
			name: "if_reads_run_status",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'always() && run.status == \"failed\"', run: x}\n  - {id: c, needs: a, if: 'always() && run.status == \"succeeded\"', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "succeeded", "c": "skipped/condition_false"},
			run:  "failed 1",
		},
		{
			name: "condition_error",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: 'int(steps.a.outputs.n) > 1', run: x}\n  - {id: c, needs: b, if: 'failure()', run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.finish("a", run.StatusSucceeded, 0, map[string]string{"n": "many"})
				h.drain(nil)
			},
			want: map[string]string{"a": "succeeded", "b": "failed/condition_error", "c": "succeeded"},
			run:  "failed 1",
			check: func(t *testing.T, h *harness) {
				b := h.records["b"]
				eq(t, "b attempts", b.Attempts, 0)
				if b.Error == "" {
					t.Errorf("b: condition_error without an error message")
				}
				eq(t, "starts", h.startedIDs(), []string{"a#1", "c#1"})
			},
		},
		{
			name: "fail_fast",
			yaml: hdr + "max_parallel: 1\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n  - {id: c, if: 'always()', run: x}\n  - {id: d, if: 'failure()', run: x}\n  - {id: e, needs: a, if: 'failure()', run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "skipped/fail_fast", "c": "succeeded", "d": "skipped/condition_false", "e": "succeeded"},
			run:  "failed 1",
		},
		{
			name: "fail_fast_off_runs_independent_steps",
			yaml: hdr + "max_parallel: 1\nfail_fast: false\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n  - {id: c, needs: a, run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "succeeded", "c": "skipped/dependency_failed"},
			run:  "failed 1",
		},
		{
			name: "fail_fast_lets_running_steps_finish",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n",
			play: func(h *harness) {
				h.begin()
				cmds := h.fail("a", 1)
				if has(cmds, isStop) || has(cmds, isKillAll) {
					h.t.Errorf("a failure stopped running steps: %v", cmds)
				}
				h.succeed("b")
			},
			want: map[string]string{"a": "failed", "b": "succeeded"},
			run:  "failed 1",
		},
		{
			name: "continue_on_error",
			yaml: hdr + "max_parallel: 1\nsteps:\n  - {id: a, continue_on_error: true, run: x}\n  - {id: b, run: x}\n  - {id: c, needs: a, run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed", "b": "succeeded", "c": "succeeded"},
			run:  "succeeded 0",
			check: func(t *testing.T, h *harness) {
				eq(t, "a continue_on_error", h.records["a"].ContinueOnError, true)
				eq(t, "a exit", h.records["a"].ExitCode, 3)
			},
		},
		{
			name: "step_timed_out_fails_the_run",
			yaml: hdr + "steps:\n  - {id: a, timeout: 1s, run: x}\n  - {id: b, needs: a, run: x}\n  - {id: c, needs: a, if: 'failure()', run: x}\n",
			play: func(h *harness) {
				h.begin()
				eq(h.t.(*testing.T), "a's launch timeout", h.launches["a"].Timeout, time.Second)
				h.finish("a", run.StatusTimedOut, -1, nil)
				h.drain(nil)
			},
			want: map[string]string{"a": "timed_out", "b": "skipped/dependency_failed", "c": "succeeded"},
			run:  "failed 1",
		},
		{
			name: "step_starts_when_its_first_attempt_started",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 2}, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.step(AttemptStarted{Step: "a", Attempt: 1, At: t0.Add(time.Second)})
				h.now = t0.Add(2 * time.Second)
				h.fail("a", 1)
				h.due("a")
				h.step(AttemptStarted{Step: "a", Attempt: 2, At: t0.Add(3 * time.Second)})
				h.succeed("a")
			},
			want: map[string]string{"a": "succeeded"},
			check: func(t *testing.T, h *harness) {
				eq(t, "a started at", h.records["a"].StartedAt, t0.Add(time.Second))
				eq(t, "a finished at", h.records["a"].FinishedAt, t0.Add(2*time.Second))
			},
		},
		{
			name: "unrendered_attempt_fails_unstarted_and_is_not_retried",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, retry: {attempts: 3}, run: 'echo ${{ int(steps.a.outputs.n) }}'}\n",
			play: func(h *harness) {
				h.begin()
				h.finish("a", run.StatusSucceeded, 0, map[string]string{"n": "x"})
				h.drain(nil)
			},
			want: map[string]string{"a": "succeeded", "b": "failed"},
			run:  "failed 1",
			check: func(t *testing.T, h *harness) {
				eq(t, "b attempts", h.records["b"].Attempts, 1)
				eq(t, "starts", h.startedIDs(), []string{"a#1", "b#1"})
				if !strings.Contains(h.dump(), "unstarted b#1") {
					t.Errorf("no AttemptUnstarted for b")
				}
				eq(t, "c.Running", h.c.Running(), 0)
			},
		},
	})
}

// TestRulesParallelAndOrder: max_parallel, "the limit is reached whenever enough steps are ready",
// file order, retries first.
func TestRulesParallelAndOrder(t *testing.T) {
	playRules(t, []rule{
		{
			name: "max_parallel",
			yaml: hdr + "max_parallel: 2\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n  - {id: c, run: x}\n  - {id: d, run: x}\n",
			play: func(h *harness) {
				t := h.t.(*testing.T)
				h.begin()
				eq(t, "after Begin", h.running(), []string{"a", "b"})
				h.succeed("b")
				eq(t, "after b", h.running(), []string{"a", "c"})
				h.drain(nil)
			},
			run: "succeeded 0",
		},
		{
			name: "config_max_parallel_overrides_the_playbook",
			yaml: hdr + "max_parallel: 1\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n  - {id: c, run: x}\n  - {id: d, run: x}\n",
			cfg:  Config{MaxParallel: 3},
			play: func(h *harness) {
				h.begin()
				eq(h.t.(*testing.T), "after Begin", h.running(), []string{"a", "b", "c"})
				h.drain(nil)
			},
			run: "succeeded 0",
		},
		{
			name: "no_max_parallel_no_cap",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n  - {id: c, run: x}\n  - {id: d, run: x}\n",
			play: func(h *harness) {
				h.begin()
				eq(h.t.(*testing.T), "after Begin", h.running(), []string{"a", "b", "c", "d"})
				h.drain(nil)
			},
			run: "succeeded 0",
		},
		{
			name: "ready_steps_start_in_file_order",
			// d is released before c, but c comes first in the file.
			yaml: hdr + "max_parallel: 1\nsteps:\n  - {id: z, run: x}\n  - {id: b, run: x}\n  - {id: c, needs: b, run: x}\n  - {id: d, needs: z, run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(nil) },
			run:  "succeeded 0",
			check: func(t *testing.T, h *harness) {
				eq(t, "starts", h.startedIDs(), []string{"z#1", "b#1", "c#1", "d#1"})
			},
		},
		{
			name: "retries_go_before_first_attempts",
			yaml: hdr + "max_parallel: 1\nsteps:\n  - {id: a, retry: {attempts: 2, delay: 1s}, run: x}\n  - {id: b, run: x}\n  - {id: c, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.fail("a", 1)
				h.due("a") // b is running: a's retry waits for the slot, as c does
				h.succeed("b")
				h.drain(nil)
			},
			run: "succeeded 0",
			check: func(t *testing.T, h *harness) {
				eq(t, "starts", h.startedIDs(), []string{"a#1", "b#1", "a#2", "c#1"})
			},
		},
		{
			name: "outputs_between_steps",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, env: {TAG: '${{ steps.a.outputs.tag }}'}, run: 'deploy ${{ steps.a.outputs.tag }}'}\n",
			play: func(h *harness) {
				h.begin()
				h.finish("a", run.StatusSucceeded, 0, map[string]string{"tag": "v1.2"})
				h.drain(nil)
			},
			want: map[string]string{"a": "succeeded", "b": "succeeded"},
			run:  "succeeded 0",
			check: func(t *testing.T, h *harness) {
				l := h.launches["b"]
				eq(t, "b run", l.Run, "deploy v1.2")
				eq(t, "b env TAG", l.Env["TAG"], "v1.2")
				eq(t, "a outputs", h.records["a"].Outputs, map[string]string{"tag": "v1.2"})
			},
		},
		{
			name: "commands_in_order_stops_retries_then_starts_then_records",
			yaml: hdr + "fail_fast: false\nsteps:\n  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n  - {id: c, retry: {attempts: 2, delay: 1s}, run: x}\n",
			play: func(h *harness) {
				t := h.t.(*testing.T)
				h.begin()
				n := len(h.log)
				h.succeed("a")
				eq(t, "a's end", strings.Join(h.log[n:], " | "), `start b#1 run="x" argv=[] display="x" dir="/nonexistent/test" env=["PLAYBOOK_RUN_ID=" "PLAYBOOK_STEP_ID=b"] timeout=0s queue="" | attempt a#1 succeeded 0 "" | `+h.log[len(h.log)-1])
				n = len(h.log)
				h.fail("c", 1)
				eq(t, "c's failure", strings.Join(h.log[n:], " | "), `retry c#1 in 1s (failed 1) | attempt c#1 failed 1 ""`)
				h.drain(nil)
			},
			run: "succeeded 0",
		},
		{
			name: "launch_environment",
			yaml: hdr + "params:\n  dry-run: {default: 'yes'}\nenv: {A: top, B: top}\nsteps:\n  - {id: s, env: {B: mine}, dir: sub, run: x}\n",
			cfg:  Config{RunID: "r42"},
			run:  "succeeded 0",
			check: func(t *testing.T, h *harness) {
				l := h.launches["s"]
				eq(t, "env", []string{l.Env["A"], l.Env["B"], l.Env["PLAYBOOK_RUN_ID"], l.Env["PLAYBOOK_STEP_ID"], l.Env["PLAYBOOK_PARAM_DRY_RUN"]},
					[]string{"top", "mine", "r42", "s", "yes"})
				eq(t, "dir", l.Dir, "/nonexistent/test/sub")
			},
		},
	})
}

// TestRulesRetries: README "Retries".
func TestRulesRetries(t *testing.T) {
	playRules(t, []rule{
		{
			name: "retry_delay_backoff_max_delay",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 5, delay: 2s, backoff: 3, max_delay: 10s}, run: x}\n",
			play: func(h *harness) {
				h.begin()
				for i := 0; i < 3; i++ {
					h.fail("a", 1)
					h.due("a")
				}
				h.succeed("a")
			},
			want: map[string]string{"a": "succeeded"},
			run:  "succeeded 0",
			check: func(t *testing.T, h *harness) {
				eq(t, "delays", h.delays["a"], []time.Duration{2 * time.Second, 6 * time.Second, 10 * time.Second})
				eq(t, "attempts", h.records["a"].Attempts, 4)
				eq(t, "attempt records", len(h.attempts), 4)
				eq(t, "started at (first attempt)", h.records["a"].StartedAt, t0)
				eq(t, "starts", h.startedIDs(), []string{"a#1", "a#2", "a#3", "a#4"})
			},
		},
		{
			name: "retry_constant_delay",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 3, delay: 1500ms}, run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			want: map[string]string{"a": "failed"},
			run:  "failed 1",
			check: func(t *testing.T, h *harness) {
				eq(t, "delays", h.delays["a"], []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond})
				eq(t, "attempts", h.records["a"].Attempts, 3)
				eq(t, "exit", h.records["a"].ExitCode, 3)
			},
		},
		{
			name: "retry_max_delay_caps_growth",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 5, delay: 20s, backoff: 2.5, max_delay: 45s}, run: x}\n",
			play: func(h *harness) { h.begin(); h.drain(failing("a")) },
			check: func(t *testing.T, h *harness) {
				eq(t, "delays", h.delays["a"], []time.Duration{20 * time.Second, 45 * time.Second, 45 * time.Second, 45 * time.Second})
			},
		},
		{
			name: "retry_on_exit_codes",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 5, on_exit_codes: [75]}, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.fail("a", 75)
				h.due("a")
				if cmds := h.fail("a", 1); has(cmds, isRetry) {
					h.t.Errorf("exit 1 retried: %v", cmds)
				}
			},
			want: map[string]string{"a": "failed"},
			run:  "failed 1",
			check: func(t *testing.T, h *harness) {
				eq(t, "attempts", h.records["a"].Attempts, 2)
				eq(t, "exit", h.records["a"].ExitCode, 1)
			},
		},
		{
			name: "retry_on_exit_codes_not_a_timeout",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 5, on_exit_codes: [75]}, run: x}\n",
			play: func(h *harness) { h.begin(); h.finish("a", run.StatusTimedOut, -1, nil) },
			want: map[string]string{"a": "timed_out"},
			run:  "failed 1",
		},
		{
			name: "retry_a_timed_out_attempt",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 2}, run: x}\n",
			play: func(h *harness) { h.begin(); h.finish("a", run.StatusTimedOut, -1, nil); h.due("a"); h.succeed("a") },
			want: map[string]string{"a": "succeeded"},
			run:  "succeeded 0",
			check: func(t *testing.T, h *harness) {
				eq(t, "delays", h.delays["a"], []time.Duration{0})
			},
		},
		{
			name: "retry_not_when_it_could_not_start",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 3}, run: x}\n",
			play: func(h *harness) { h.begin(); h.finishR("a", run.StatusFailed, 127, nil, false) },
			want: map[string]string{"a": "failed"},
			run:  "failed 1",
			check: func(t *testing.T, h *harness) {
				eq(t, "attempts", h.records["a"].Attempts, 1)
			},
		},
		{
			name: "retry_not_a_cancelled_attempt",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 3}, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.step(Cancel{})
				if cmds := h.finish("a", run.StatusCancelled, -1, nil); has(cmds, isRetry) {
					h.t.Errorf("a cancelled attempt is retried: %v", cmds)
				}
			},
			want: map[string]string{"a": "cancelled"},
			run:  "cancelled 130",
		},
		{
			name: "cancel_during_backoff_keeps_last_status",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 3, delay: 1m}, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.fail("a", 7)
				tm := h.timers["a"]
				h.step(Cancel{})
				if cmds := h.step(RetryDue{Step: "a", Attempt: tm.attempt}); len(cmds) > 0 {
					h.t.Errorf("RetryDue after the cancel: %v", cmds)
				}
			},
			want: map[string]string{"a": "failed"},
			run:  "cancelled 130",
			check: func(t *testing.T, h *harness) {
				eq(t, "attempts", h.records["a"].Attempts, 1)
				eq(t, "exit", h.records["a"].ExitCode, 7)
			},
		},
		{
			name: "retry_under_fail_fast_continues",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, retry: {attempts: 2}, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.fail("b", 1) // b waits for its retry
				h.fail("a", 1) // fail_fast: no new step, but b's retry is not a new step
				h.due("b")
				h.succeed("b")
			},
			want: map[string]string{"a": "failed", "b": "succeeded"},
			run:  "failed 1",
		},
	})
}

// TestRulesStops: README "Timeouts", "Ctrl-C and signals", exit status 3 and Hold.
func TestRulesStops(t *testing.T) {
	// a runs; b and c wait for it; d, e (always()/cancelled()) too.
	const stopPB = hdr + "timeout: 1m\nsteps:\n  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n  - {id: c, needs: a, if: 'always()', run: x}\n  - {id: d, needs: a, if: 'cancelled()', run: x}\n  - {id: e, needs: a, if: 'failure()', run: x}\n"
	stopWith := func(ev Event, aEnds run.Status) func(h *harness) {
		return func(h *harness) {
			h.begin()
			h.step(ev)
			if aEnds != "" {
				h.finish("a", aEnds, 0, nil)
			}
			h.drain(nil)
		}
	}
	sigRow := func(name string, sig syscall.Signal, want string) rule {
		return rule{
			name: name, yaml: stopPB,
			play: stopWith(Cancel{Cause: &run.Interrupt{Signal: sig}}, run.StatusCancelled),
			want: map[string]string{"a": "cancelled", "b": "skipped/run_cancelled", "c": "succeeded", "d": "succeeded"},
			run:  want,
			check: func(t *testing.T, h *harness) {
				eq(t, "run error", h.done.Error, "interrupted by "+unix.SignalName(sig))
			},
		}
	}
	playRules(t, []rule{
		{
			name: "run_timeout",
			yaml: stopPB,
			play: stopWith(Timeout{}, run.StatusCancelled),
			want: map[string]string{"a": "cancelled/run_timed_out", "b": "skipped/run_timed_out", "c": "succeeded", "d": "succeeded",
				"e": "skipped/run_timed_out"},
			run: "timed_out 124",
			check: func(t *testing.T, h *harness) {
				eq(t, "stops", h.stops, [][]StepAttempt{{{"a", 1}}})
				eq(t, "kills", h.kills, 0)
				eq(t, "run error", h.done.Error, "the run's timeout of 1m0s expired")
			},
		},
		{
			name: "run_timeout_skips_steps_not_started",
			yaml: hdr + "timeout: 1m\nmax_parallel: 1\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n",
			play: stopWith(Timeout{}, run.StatusCancelled),
			want: map[string]string{"a": "cancelled/run_timed_out", "b": "skipped/run_timed_out"},
			run:  "timed_out 124",
		},
		{
			name: "cancel_is_graceful",
			yaml: stopPB,
			play: stopWith(Cancel{}, run.StatusCancelled),
			want: map[string]string{"a": "cancelled", "b": "skipped/run_cancelled", "c": "succeeded", "d": "succeeded", "e": "skipped/run_cancelled"},
			run:  "cancelled 130",
			check: func(t *testing.T, h *harness) {
				eq(t, "stops", h.stops, [][]StepAttempt{{{"a", 1}}})
				eq(t, "kills", h.kills, 0)
				eq(t, "stopping", len(h.stopping), 1)
			},
		},
		{
			name: "cancel_step_that_ends_succeeded_is_kept",
			yaml: stopPB,
			play: stopWith(Cancel{}, run.StatusSucceeded),
			want: map[string]string{"a": "succeeded", "b": "skipped/run_cancelled", "c": "succeeded", "d": "succeeded"},
			run:  "cancelled 130",
		},
		sigRow("cancel_sigint_exit_130", syscall.SIGINT, "cancelled 130"),
		sigRow("cancel_sigterm_exit_143", syscall.SIGTERM, "cancelled 143"),
		sigRow("cancel_sighup_exit_129", syscall.SIGHUP, "cancelled 129"),
		{
			name: "second_cancel_changes_nothing",
			yaml: stopPB,
			play: func(h *harness) {
				h.begin()
				h.step(Cancel{Cause: &run.Interrupt{Signal: syscall.SIGTERM}})
				if cmds := h.step(Cancel{Cause: &run.Interrupt{Signal: syscall.SIGINT}}); len(cmds) > 0 {
					h.t.Errorf("second Cancel: %v", cmds)
				}
				h.finish("a", run.StatusCancelled, -1, nil)
				h.drain(nil)
			},
			run: "cancelled 143",
		},
		{
			name: "cancel_before_begin",
			yaml: stopPB,
			play: func(h *harness) { h.step(Cancel{}); h.begin(); h.drain(nil) },
			want: map[string]string{"a": "skipped/run_cancelled", "b": "skipped/run_cancelled", "c": "succeeded", "d": "succeeded"},
			run:  "cancelled 130",
			check: func(t *testing.T, h *harness) {
				eq(t, "stops", len(h.stops), 0)
			},
		},
		{
			name: "kill",
			yaml: stopPB,
			play: stopWith(Kill{}, run.StatusCancelled),
			want: map[string]string{"a": "cancelled", "b": "skipped/run_cancelled", "c": "skipped/run_cancelled", "d": "skipped/run_cancelled"},
			run:  "cancelled 130",
			check: func(t *testing.T, h *harness) {
				eq(t, "kills", h.kills, 1)
				eq(t, "stops", len(h.stops), 0)
				eq(t, "starts", h.startedIDs(), []string{"a#1"})
			},
		},
		{
			name: "cancel_with_kill_interrupt_is_kill",
			yaml: stopPB,
			play: stopWith(Cancel{Cause: &run.Interrupt{Signal: syscall.SIGQUIT, Kill: true}}, run.StatusCancelled),
			want: map[string]string{"a": "cancelled", "c": "skipped/run_cancelled", "d": "skipped/run_cancelled"},
			run:  "cancelled 131",
			check: func(t *testing.T, h *harness) {
				eq(t, "kills", h.kills, 1)
				eq(t, "stops", len(h.stops), 0)
			},
		},
		{
			name: "kill_after_cancel_stops_always_steps",
			yaml: stopPB + "  - {id: f, needs: c, if: 'always()', run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.step(Cancel{Cause: &run.Interrupt{Signal: syscall.SIGINT}})
				h.finish("a", run.StatusCancelled, -1, nil) // c and d start
				h.step(Kill{})
				h.finish("c", run.StatusCancelled, -1, nil)
				h.drain(nil)
			},
			want: map[string]string{"c": "cancelled", "f": "skipped/run_cancelled"},
			run:  "cancelled 130",
			check: func(t *testing.T, h *harness) {
				eq(t, "kills", h.kills, 1)
				eq(t, "stops", len(h.stops), 1)
			},
		},
		{
			name: "kill_gives_up_retries",
			yaml: hdr + "steps:\n  - {id: a, retry: {attempts: 3, delay: 1s}, run: x}\n",
			play: func(h *harness) { h.begin(); h.fail("a", 2); h.step(Kill{}) },
			want: map[string]string{"a": "failed"},
			run:  "cancelled 130",
		},
		{
			name: "record_failed",
			yaml: stopPB,
			play: func(h *harness) {
				h.begin()
				if cmds := h.step(RecordFailed{Err: errors.New("disk full")}); has(cmds, isStop) || has(cmds, isKillAll) {
					h.t.Errorf("RecordFailed stopped running steps: %v", cmds)
				}
				h.succeed("a")
				h.drain(nil)
			},
			// cancelled() is false: the run is not cancelled, only stopping, so only always() starts.
			want: map[string]string{"a": "succeeded", "b": "skipped/record_error", "c": "succeeded", "d": "skipped/record_error", "e": "skipped/record_error"},
			run:  "failed 3",
			check: func(t *testing.T, h *harness) {
				eq(t, "stopping", len(h.stopping), 1)
				eq(t, "stopping.RecordFailed", h.stopping[0].RecordFailed, true)
				eq(t, "run error", h.done.Error, "the run could not be recorded: disk full")
			},
		},
		{
			name: "record_failed_after_run_done",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.succeed("a")
				h.step(RecordFailed{Err: errors.New("disk full")})
			},
			check: func(t *testing.T, h *harness) {
				eq(t, "RunDone", h.log[len(h.log)-1], "done succeeded exit=0 err=\"\" end=2026-01-02T03:04:05Z")
				rec := h.c.Record() // the run's record is the RunDone's, updated
				eq(t, "record after RecordFailed", fmt.Sprintf("%s %d", rec.Status, rec.ExitCode), "failed 3")
			},
		},
		{
			name: "record_failed_keeps_a_failed_run_failed_exit_3",
			yaml: hdr + "fail_fast: false\nsteps:\n  - {id: a, run: x}\n  - {id: b, run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.fail("a", 1)
				h.step(RecordFailed{Err: errors.New("disk full")})
				h.succeed("b")
			},
			run: "failed 3",
			check: func(t *testing.T, h *harness) {
				eq(t, "run error", h.done.Error, "failed steps: a")
			},
		},
		{
			name: "hold_starts_nothing",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, run: x}\n",
			play: func(h *harness) {
				t := h.t.(*testing.T)
				h.step(Hold{On: true})
				h.begin()
				eq(t, "held at Begin", h.running(), []string{})
				h.step(Hold{On: false})
				eq(t, "released", h.running(), []string{"a"})
				h.step(Hold{On: true})
				h.succeed("a")
				eq(t, "held after a", h.running(), []string{})
				h.step(Hold{On: false})
				eq(t, "released again", h.running(), []string{"b"})
				h.succeed("b")
			},
			run: "succeeded 0",
		},
		{
			// A killed run starts nothing, so a hold (writes stalled) has nothing to hold back: the
			// steps left are skipped and the run ends without waiting for the writes.
			name: "kill_ends_a_held_run",
			yaml: hdr + "steps:\n  - {id: a, run: x}\n  - {id: b, needs: a, if: always(), run: x}\n",
			play: func(h *harness) {
				h.begin()
				h.step(Hold{On: true})
				h.step(Kill{})
				h.finish("a", run.StatusFailed, -1, nil)
			},
			want: map[string]string{"a": "failed", "b": "skipped/run_cancelled"},
			run:  "cancelled 130",
		},
	})
}

// TestRulesSecrets: a secret param's value never shows in what is displayed or recorded; the steps
// themselves and expressions see the real value.
func TestRulesSecrets(t *testing.T) {
	const secret = "hunter2-XYZ"
	yaml := hdr + "fail_fast: false\nparams:\n  token: {secret: true}\nsteps:\n" +
		"  - {id: a, run: 'login ${{ params.token }}'}\n" +
		"  - {id: b, needs: a, if: 'steps.a.outputs.k == params.token', run: x}\n" +
		"  - {id: c, needs: a, if: 'int(steps.a.outputs.k) > 0', run: x}\n" +
		"  - {id: d, needs: a, env: {N: '${{ int(params.token) }}'}, run: x}\n"
	playRules(t, []rule{{
		name:   "secrets_masked_in_errors_and_records",
		yaml:   yaml,
		params: map[string]string{"token": secret},
		play: func(h *harness) {
			h.begin()
			h.finish("a", run.StatusSucceeded, 0, map[string]string{"k": secret})
			h.drain(nil)
		},
		want: map[string]string{"a": "succeeded", "b": "succeeded", "c": "failed/condition_error", "d": "failed"},
		run:  "failed 1",
		check: func(t *testing.T, h *harness) {
			l := h.launches["a"]
			eq(t, "launch run", l.Run, "login "+secret)
			eq(t, "launch display", l.Display, "login ***")
			eq(t, "a command", h.records["a"].Command, "login ***")
			eq(t, "a outputs", h.records["a"].Outputs, map[string]string{"k": "***"})
			if strings.Contains(h.dump(), secret) {
				// a StartAttempt holds it (the step's command and environment): the one place allowed
				for _, line := range h.log {
					if strings.Contains(line, secret) && !strings.HasPrefix(line, "start ") {
						t.Errorf("secret in %s", line)
					}
				}
			}
			if h.records["c"].Error == "" || h.records["d"].Error == "" {
				t.Errorf("c, d: no error: %q, %q", h.records["c"].Error, h.records["d"].Error)
			}
		},
	}, {
		name:   "secrets_masked_in_the_stop_reason_and_run_error",
		yaml:   yaml,
		params: map[string]string{"token": secret},
		play: func(h *harness) {
			h.begin()
			h.step(Cancel{Cause: errors.New("stopped by " + secret)})
			h.finish("a", run.StatusCancelled, -1, nil)
			h.drain(nil)
		},
		run: "cancelled 130",
		check: func(t *testing.T, h *harness) {
			eq(t, "run error", h.done.Error, "stopped by ***")
			eq(t, "stopping", h.stopping[0].Reason, "stopped by ***")
		},
	}})
}

// TestStopsAfterRunDone: after RunDone only RecordFailed changes anything (Core.Step's
// doc). A Cancel, Kill or Timeout that arrives then (a Ctrl-C while the driver writes the run's end)
// must give no command and leave the run's status alone, also for a RecordFailed that follows.
func TestStopsAfterRunDone(t *testing.T) {
	for _, ev := range []Event{Cancel{Cause: &run.Interrupt{Signal: syscall.SIGTERM}}, Kill{}, Timeout{}} {
		t.Run(fmt.Sprintf("%T", ev), func(t *testing.T) {
			h := newHarness(t, hdr+"steps:\n  - {id: a, run: x}\n", Config{})
			h.begin()
			h.succeed("a")
			if cmds := h.c.Step(h.now, ev); len(cmds) > 0 {
				t.Errorf("%T after RunDone gave %d commands: %s", ev, len(cmds), canon(cmds[0]))
			}
			h.c.Step(h.now, RecordFailed{Err: errors.New("disk full")})
			rec := h.c.Record()
			eq(t, "run after RecordFailed", fmt.Sprintf("%s %d", rec.Status, rec.ExitCode), "failed 3")
		})
	}
}
