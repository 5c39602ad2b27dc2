package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/playbookhq/playbook/pkg/playbook/local"
	pbtemporal "github.com/playbookhq/playbook/pkg/playbook/temporal"
)

// ruleCase is one playbook of the README's "How the steps run" rules (and the sections it points to:
// retries, timeouts, statuses, outputs, params), with what a run of it must end as. Every row runs on
// both backends; their records must be equal, and equal to what the row expects.
type ruleCase struct {
	name   string
	yaml   string
	params []string // -p values
	// status and exit are the run's; steps is "id status [reason] [exit=N] [attempts=N]" per step,
	// every step of the playbook listed (exit: the step's exit code, "-" for none).
	status string
	exit   int
	steps  []string
	// outputs, when set, are steps' recorded outputs (step id -> key -> value).
	outputs map[string]map[string]string
	// stdout, when set, is text a step's recorded stdout must hold (step id -> text).
	stdout map[string]string
	// within, when set, is how long the run may last: where stopping a step at the right time is
	// the rule (a run timeout stops the running steps when it expires, not later). What it tells
	// apart is a stop at the right time from none (a step's sleep, a retry's delay, of a minute), not
	// a quick stop from a slow one: on a loaded machine a distributed stop has taken 5 s.
	within time.Duration
	// files are written beside the playbook (name -> content), scripts for instance.
	files map[string]string
	// interrupt, when set, is the end of the name of a file a step creates in its folder: once it is
	// there, the run gets signal (SIGINT, the Ctrl-C of a terminal, when not set).
	interrupt string
	signal    syscall.Signal
	// distArgs are flags the distributed run gets and the local one does not; args, flags both get.
	distArgs []string
	args     []string
}

// Files a step keeps between attempts are named after $PLAYBOOK_RUN_ID, in the folder the step runs in
// (the playbook's locally, the worker's --dir distributed): each run has its own.
var ruleCases = []ruleCase{
	{
		name: "needs-order-and-outputs",
		yaml: `version: 1
name: chain
steps:
  - id: d
    needs: [b, c]
    run: echo "d after ${{ steps.b.outputs.v }} and ${{ steps.c.outputs.v }}"
  - id: a
    run: echo "v=a" >> "$PLAYBOOK_OUTPUT"
  - id: b
    needs: a
    run: echo "v=${{ steps.a.outputs.v }}b" >> "$PLAYBOOK_OUTPUT"
  - id: c
    needs: [a]
    env: {FROM_A: "${{ steps.a.outputs.v }}"}
    run: echo "v=${FROM_A}c" >> "$PLAYBOOK_OUTPUT"
`,
		status: "succeeded", exit: 0,
		steps:   []string{"a succeeded exit=0", "b succeeded", "c succeeded", "d succeeded"},
		outputs: map[string]map[string]string{"b": {"v": "ab"}, "c": {"v": "ac"}, "d": {}},
		stdout:  map[string]string{"d": "d after ab and ac\n"},
	},
	{
		name: "multi-line-and-missing-outputs",
		yaml: `version: 1
name: outputs
steps:
  - id: write
    run: |
      echo "tag=v1.4.2" >> "$PLAYBOOK_OUTPUT"
      { echo "summary<<EOF"; printf 'line one\nline two\n'; echo "EOF"; } >> "$PLAYBOOK_OUTPUT"
  - id: read
    needs: write
    env: {SUMMARY: "${{ steps.write.outputs.summary }}"}
    run: |
      echo "tag=${{ steps.write.outputs.tag }} missing=[${{ steps.write.outputs.nope }}]"
      echo "$SUMMARY"
`,
		status: "succeeded", exit: 0,
		steps:   []string{"write succeeded", "read succeeded"},
		outputs: map[string]map[string]string{"write": {"tag": "v1.4.2", "summary": "line one\nline two"}},
		stdout:  map[string]string{"read": "tag=v1.4.2 missing=[]\nline one\nline two\n"},
	},
	{
		name: "invalid-outputs-file",
		yaml: `version: 1
name: badout
steps:
  - id: bad
    retry: {attempts: 3, delay: 10ms}
    run: echo "no equals sign here" >> "$PLAYBOOK_OUTPUT"
  - id: after
    needs: bad
    run: echo never
`,
		status: "failed", exit: 1,
		steps: []string{"bad failed exit=0 attempts=1", "after skipped dependency_failed"},
	},
	{
		name: "typed-params",
		yaml: `version: 1
name: typed
params:
  n: {type: int, default: 1}
  ratio: {type: number}
  flag: {type: bool, default: false}
  env: {default: staging, enum: [staging, prod]}
  dry-run: {type: bool, default: true}
  notes:
env:
  LABEL: "${{ params.env }}-${{ params.n }}"
steps:
  - id: show
    run: echo "n=$PLAYBOOK_PARAM_N ratio=$PLAYBOOK_PARAM_RATIO flag=$PLAYBOOK_PARAM_FLAG dry=$PLAYBOOK_PARAM_DRY_RUN label=$LABEL notes=[$PLAYBOOK_PARAM_NOTES] twice=${{ params.n * 2 }} half=${{ params.ratio / 2 }}"
  - id: prod-only
    if: params.env == "prod" && params.n > 40 && params.flag && !params["dry-run"]
    exec: [printf, "%s|%s\n", "${{ upper(params.env) }}", "${{ params.ratio + 1 }}"]
  - id: staging-only
    if: params.env == "staging"
    run: echo staging
`,
		params: []string{"n=42", "ratio=0.25", "flag=true", "env=prod", "dry-run=false"},
		status: "succeeded", exit: 0,
		steps: []string{"show succeeded", "prod-only succeeded", "staging-only skipped condition_false"},
		stdout: map[string]string{
			"show":      "n=42 ratio=0.25 flag=true dry=false label=prod-42 notes=[] twice=84 half=0.125\n",
			"prod-only": "PROD|1.25\n",
		},
	},
	{
		name: "status-functions-after-failure",
		yaml: `version: 1
name: statusfns
max_parallel: 1
steps:
  - id: a
    run: echo failing; exit 3
  - id: plain
    needs: a
    run: echo never
  - id: on-failure
    needs: a
    if: failure()
    run: echo "rollback after ${{ steps.a.status }} ${{ steps.a.exit_code }} ${{ run.status }}"
  - id: on-always
    needs: a
    if: always()
    run: echo always
  - id: on-cancel
    needs: a
    if: cancelled()
    run: echo never
  - id: after-skipped
    needs: plain
    if: failure()
    run: echo "a failed upstream"
  - id: expr-only
    needs: a
    if: steps.a.exit_code == 3
    run: echo never
`,
		status: "failed", exit: 1,
		steps: []string{"a failed exit=3", "plain skipped dependency_failed exit=-", "on-failure succeeded",
			"on-always succeeded", "on-cancel skipped fail_fast", "after-skipped succeeded",
			"expr-only skipped dependency_failed"},
		stdout: map[string]string{"on-failure": "rollback after failed 3 failed\n", "after-skipped": "a failed upstream\n"},
	},
	{
		name: "if-over-outputs-and-run",
		yaml: `version: 1
name: ifout
steps:
  - id: probe
    run: echo "go=yes" >> "$PLAYBOOK_OUTPUT"; echo "n=7" >> "$PLAYBOOK_OUTPUT"
  - id: yes
    needs: probe
    if: steps.probe.outputs.go == "yes" && int(steps.probe.outputs.n) > 5
    run: echo yes
  - id: no
    needs: probe
    if: ${{ steps.probe.outputs.go == "no" }}
    run: echo no
  - id: counts
    needs: probe
    if: steps.probe.attempts == 1 && steps.probe.status == "succeeded" && run.status == "succeeded"
    run: echo "run ${{ run.name }} is ${{ run.status }}"
  - id: after-no
    needs: no
    run: echo never
  - id: always-after-no
    needs: no
    if: always()
    run: echo "no was ${{ steps.no.status }}"
`,
		status: "succeeded", exit: 0,
		steps: []string{"probe succeeded", "yes succeeded", "no skipped condition_false", "counts succeeded",
			"after-no skipped dependency_skipped", "always-after-no succeeded"},
		stdout: map[string]string{"counts": "run ifout is succeeded\n", "always-after-no": "no was skipped\n"},
	},
	{
		name: "disabled-step",
		yaml: `version: 1
name: disabled
steps:
  - id: off
    if: false
    run: echo never
  - id: next
    needs: off
    run: echo never
  - id: other
    run: echo other
`,
		status: "succeeded", exit: 0,
		steps: []string{"off skipped condition_false", "next skipped dependency_skipped", "other succeeded"},
	},
	{
		name: "condition-error",
		yaml: `version: 1
name: conderr
steps:
  - id: probe
    run: echo "n=abc" >> "$PLAYBOOK_OUTPUT"
  - id: check
    needs: probe
    if: int(steps.probe.outputs.n) > 1
    run: echo never
  - id: after
    needs: check
    run: echo never
`,
		status: "failed", exit: 1,
		steps: []string{"probe succeeded", "check failed condition_error", "after skipped dependency_failed"},
	},
	{
		// b is running when a fails (it waits for the failure() step, which starts only then): it
		// finishes; c, waiting for b, and late, not started yet, do not start.
		name: "fail-fast",
		yaml: `version: 1
name: failfast
max_parallel: 2
steps:
  - id: a
    run: exit 4
  - id: b
    run: until [ -f "$PLAYBOOK_RUN_ID.handled" ]; do sleep 0.01; done; echo b done
  - id: handler
    needs: a
    if: failure()
    run: touch "$PLAYBOOK_RUN_ID.handled"
  - id: c
    needs: b
    run: echo never
  - id: late
    run: echo never
  - id: cleanup
    needs: [b]
    if: always()
    run: echo cleanup
`,
		status: "failed", exit: 1,
		steps: []string{"a failed exit=4", "b succeeded", "handler succeeded", "c skipped fail_fast",
			"late skipped fail_fast", "cleanup succeeded"},
	},
	{
		name: "no-fail-fast",
		yaml: `version: 1
name: nofailfast
fail_fast: false
max_parallel: 1
steps:
  - id: a
    run: exit 2
  - id: dependent
    needs: a
    run: echo never
  - id: independent
    run: echo independent
  - id: after-independent
    needs: independent
    run: echo after
`,
		status: "failed", exit: 1,
		steps: []string{"a failed exit=2", "dependent skipped dependency_failed", "independent succeeded",
			"after-independent succeeded"},
	},
	{
		name: "continue-on-error",
		yaml: `version: 1
name: coe
steps:
  - id: a
    continue_on_error: true
    run: echo "partial=1" >> "$PLAYBOOK_OUTPUT"; exit 6
  - id: b
    needs: a
    run: echo "b after ${{ steps.a.status }} ${{ steps.a.exit_code }} run ${{ run.status }}"
  - id: c
    needs: a
    if: failure()
    run: echo never
  - id: d
    needs: b
    run: echo d
`,
		status: "succeeded", exit: 0,
		steps:  []string{"a failed exit=6", "b succeeded", "c skipped condition_false", "d succeeded"},
		stdout: map[string]string{"b": "b after failed 6 run succeeded\n"},
	},
	{
		name: "continue-on-error-from-defaults",
		yaml: `version: 1
name: coedefaults
defaults:
  continue_on_error: true
steps:
  - id: a
    run: exit 1
  - id: strict
    continue_on_error: false
    needs: a
    run: exit 2
  - id: after
    needs: strict
    run: echo never
`,
		status: "failed", exit: 1,
		steps: []string{"a failed exit=1", "strict failed exit=2", "after skipped dependency_failed"},
	},
	{
		name: "retry-with-backoff",
		yaml: `version: 1
name: retries
steps:
  - id: flaky
    retry: {attempts: 4, delay: 20ms, backoff: 2, max_delay: 50ms}
    run: |
      f="$PLAYBOOK_RUN_ID.flaky"; n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 )); echo $n > "$f"
      echo "try $n"
      [ $n -ge 3 ] || exit 1
      echo "tries=$n" >> "$PLAYBOOK_OUTPUT"
  - id: next
    needs: flaky
    run: echo "after ${{ steps.flaky.attempts }} attempts"
`,
		status: "succeeded", exit: 0,
		steps:   []string{"flaky succeeded exit=0 attempts=3", "next succeeded"},
		outputs: map[string]map[string]string{"flaky": {"tries": "3"}},
		stdout:  map[string]string{"flaky": "try 3\n", "next": "after 3 attempts\n"},
	},
	{
		name: "retry-exhausted",
		yaml: `version: 1
name: exhausted
defaults:
  retry: {attempts: 3, delay: 10ms}
steps:
  - id: always-fails
    run: echo "attempt"; exit 5
  - id: own-retry
    needs: always-fails
    if: always()
    retry: {attempts: 1}
    run: exit 8
`,
		status: "failed", exit: 1,
		steps: []string{"always-fails failed exit=5 attempts=3", "own-retry failed exit=8 attempts=1"},
	},
	{
		name: "retry-on-exit-codes",
		yaml: `version: 1
name: exitcodes
fail_fast: false
max_parallel: 1
steps:
  - id: retried
    retry: {attempts: 3, delay: 10ms, on_exit_codes: [75]}
    run: |
      f="$PLAYBOOK_RUN_ID.retried"; n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 )); echo $n > "$f"
      [ $n -ge 2 ] || exit 75
  - id: not-retried
    retry: {attempts: 3, delay: 10ms, on_exit_codes: [75]}
    run: exit 9
  - id: timeout-not-retried
    timeout: 200ms
    retry: {attempts: 3, delay: 10ms, on_exit_codes: [75]}
    run: sleep 30
`,
		status: "failed", exit: 1,
		steps: []string{"retried succeeded attempts=2", "not-retried failed exit=9 attempts=1",
			"timeout-not-retried timed_out exit=- attempts=1"},
	},
	{
		name: "step-timeout",
		yaml: `version: 1
name: steptimeout
steps:
  - id: slow
    timeout: 300ms
    stop_grace: 2s
    run: |
      trap 'echo got TERM; exit 143' TERM
      echo started
      sleep 30 & wait
  - id: after
    needs: slow
    run: echo never
  - id: report
    needs: slow
    if: failure()
    run: echo "slow ${{ steps.slow.status }}"
`,
		status: "failed", exit: 1,
		steps:  []string{"slow timed_out", "after skipped dependency_failed", "report succeeded"},
		stdout: map[string]string{"slow": "started\ngot TERM\n", "report": "slow timed_out\n"},
	},
	{
		name: "timed-out-attempt-retried",
		yaml: `version: 1
name: timeoutretry
steps:
  - id: hangs-once
    timeout: 300ms
    retry: {attempts: 2, delay: 10ms}
    run: |
      f="$PLAYBOOK_RUN_ID.hang"
      if [ ! -f "$f" ]; then touch "$f"; exec sleep 30; fi
      echo second
`,
		status: "succeeded", exit: 0,
		steps:  []string{"hangs-once succeeded exit=0 attempts=2"},
		stdout: map[string]string{"hangs-once": "second\n"},
	},
	{
		// The timeout comes after the hanging step's first heartbeats: the cancellation reaches it in
		// the answer to a later one, which the SDK must not hold back.
		name: "run-timeout",
		yaml: `version: 1
name: runtimeout
timeout: 2500ms
max_parallel: 2
steps:
  - id: quick
    run: echo quick
  - id: hang
    needs: quick
    run: sleep 60
  - id: never
    needs: [hang]
    run: echo never
  - id: cleanup
    needs: [hang]
    if: always()
    run: echo "cleanup after ${{ steps.hang.status }} in a ${{ run.status }} run"
  - id: on-cancel
    needs: [hang]
    if: cancelled()
    run: echo cancelled ran
  - id: on-failure
    needs: [hang]
    if: failure()
    run: echo never
`,
		status: "timed_out", exit: 124, within: 20 * time.Second,
		steps: []string{"quick succeeded", "hang cancelled run_timed_out", "never skipped run_timed_out",
			"cleanup succeeded", "on-cancel succeeded", "on-failure skipped run_timed_out"},
		stdout: map[string]string{"cleanup": "cleanup after cancelled in a timed_out run\n"},
	},
	{
		name: "cannot-start",
		yaml: `version: 1
name: nostart
fail_fast: false
steps:
  - id: missing-program
    retry: {attempts: 3, delay: 10ms}
    exec: [no-such-program-4b1e, arg]
  - id: after
    needs: missing-program
    run: echo never
  - id: rollback
    needs: missing-program
    if: failure()
    run: echo "rollback after ${{ steps["missing-program"].status }}"
`,
		status: "failed", exit: 1,
		steps: []string{"missing-program failed exit=- attempts=1", "after skipped dependency_failed",
			"rollback succeeded"},
		stdout: map[string]string{"rollback": "rollback after failed\n"},
	},
	{
		name: "secret-param",
		yaml: `version: 1
name: secret
params:
  token: {secret: true}
  user: {default: deploy}
steps:
  - id: login
    run: |
      echo "user $PLAYBOOK_PARAM_USER token $PLAYBOOK_PARAM_TOKEN"
      echo "auth=$PLAYBOOK_PARAM_TOKEN-ok" >> "$PLAYBOOK_OUTPUT"
  - id: use
    needs: login
    run: echo "got ${{ steps.login.outputs.auth }}"
`,
		params: []string{"token=s3cr3t-Value-77"},
		status: "succeeded", exit: 0,
		steps:   []string{"login succeeded", "use succeeded"},
		outputs: map[string]map[string]string{"login": {"auth": "***-ok"}},
		stdout:  map[string]string{"login": "user deploy token ***\n"},
	},
	{
		// A cancelled run never retries: the step waiting for its second attempt keeps the status of
		// its first, and the run ends when its timeout expires, not after the retry's delay.
		name: "run-timeout-during-retry-delay",
		yaml: `version: 1
name: retrycut
timeout: 800ms
steps:
  - id: failing
    retry: {attempts: 3, delay: 60s}
    run: echo "try"; exit 3
  - id: after
    needs: failing
    run: echo never
  - id: always
    needs: failing
    if: always()
    run: echo "failing ${{ steps.failing.status }} after ${{ steps.failing.attempts }}"
`,
		status: "timed_out", exit: 124, within: 20 * time.Second,
		steps:  []string{"failing failed exit=3 attempts=1", "after skipped run_timed_out", "always succeeded"},
		stdout: map[string]string{"always": "failing failed after 1\n"},
	},
	{
		name: "stop-signal-and-grace",
		yaml: `version: 1
name: stopsignal
fail_fast: false
max_parallel: 2
steps:
  - id: by-int
    timeout: 300ms
    stop_signal: SIGINT
    run: |
      trap 'echo got INT; exit 7' INT
      echo waiting
      sleep 30 & wait
  - id: deaf
    timeout: 300ms
    stop_grace: 300ms
    run: |
      trap '' TERM
      echo deaf
      sleep 30 & wait; sleep 30 & wait
`,
		status: "failed", exit: 1,
		steps:  []string{"by-int timed_out exit=7", "deaf timed_out exit=-"},
		stdout: map[string]string{"by-int": "waiting\ngot INT\n", "deaf": "deaf\n"},
	},
	{
		name: "script-travels-with-the-run",
		yaml: `version: 1
name: script
steps:
  - id: by-shebang
    script: hello.sh
    env: {WHO: "${{ run.name }}"}
  - id: by-interpreter
    needs: by-shebang
    script: hello.sh
    interpreter: sh
    env: {WHO: "${{ steps['by-shebang'].outputs.greeted }}"}
`,
		files:  map[string]string{"hello.sh": "#!/bin/sh\necho \"hello $WHO from $PLAYBOOK_STEP_ID\"\necho \"greeted=$WHO\" >> \"$PLAYBOOK_OUTPUT\"\n"},
		status: "succeeded", exit: 0,
		steps:   []string{"by-shebang succeeded", "by-interpreter succeeded"},
		outputs: map[string]map[string]string{"by-interpreter": {"greeted": "script"}},
		stdout:  map[string]string{"by-shebang": "hello script from by-shebang\n", "by-interpreter": "hello script from by-interpreter\n"},
	},
	{
		name: "environment",
		yaml: `version: 1
name: environ
params:
  region: {default: eu-west-1}
env:
  SHARED: "top"
  OVERRIDDEN: "top"
  REGION: "${{ params.region }}"
steps:
  - id: show
    env: {OVERRIDDEN: "step", STEP_ONLY: "${{ params.region }}-x"}
    run: echo "$SHARED $OVERRIDDEN $STEP_ONLY $REGION $PLAYBOOK_STEP_ID ${#PLAYBOOK_RUN_ID} ${HOME:+home-set}"
`,
		status: "succeeded", exit: 0,
		steps:  []string{"show succeeded"},
		stdout: map[string]string{"show": "top step eu-west-1-x eu-west-1 show 32 home-set\n"},
	},
	{
		// A playbook's output_limit bounds what is kept of each stream, head and tail.
		name: "output-limit",
		yaml: `version: 1
name: outlimit
output_limit: 1KiB
steps:
  - id: chatty
    run: for i in $(seq 1 2000); do echo "line $i"; done; echo err >&2
`,
		status: "succeeded", exit: 0,
		steps: []string{"chatty succeeded"},
	},
	{
		name: "outputs-file-too-large",
		yaml: `version: 1
name: bigout
steps:
  - id: big
    run: head -c 1100000 /dev/zero | tr '\0' 'a' | sed 's/^/k=/' >> "$PLAYBOOK_OUTPUT"
  - id: after
    needs: big
    run: echo never
`,
		status: "failed", exit: 1,
		steps: []string{"big failed exit=0", "after skipped dependency_failed"},
	},
	{
		// The secret is masked in the error of a step that cannot start, as in its output.
		name: "secret-in-an-error",
		yaml: `version: 1
name: secreterr
params:
  token: {secret: true}
steps:
  - id: leak
    exec: ["/nonexistent/${{ params.token }}"]
`,
		params: []string{"token=Zq9-secret-Kx"},
		status: "failed", exit: 1,
		steps: []string{"leak failed exit=- attempts=1"},
	},
	{
		// Without max_parallel, as many steps run at once as the default allows (the submitter's):
		// the failure of the first leaves the last waiter, for which no slot was free, unstarted.
		name:   "default-max-parallel",
		yaml:   defaultMaxParallelYAML(defaultMaxParallel),
		status: "failed", exit: 1,
		steps: defaultMaxParallelSteps(defaultMaxParallel),
		// A distributed run has no default cap (each worker's --max-parallel bounds what runs on it:
		// the submitting machine's CPUs say nothing of the workers'); given the local default, it
		// starts the same steps.
		distArgs: []string{"--max-parallel", strconv.Itoa(defaultMaxParallel)},
	},
	{
		// --only and --skip: the steps left out are skipped_by_user, their dependents follow the rules.
		name: "only-and-skip",
		yaml: `version: 1
name: select
steps:
  - {id: a, run: echo a}
  - {id: b, needs: [a], run: echo b}
  - {id: c, needs: [b], run: echo c}
  - {id: d, run: echo d}
  - {id: e, needs: [d], run: echo e}
  - {id: f, needs: [c], if: always(), run: echo f}
`,
		args:   []string{"--only", "c,e", "--skip", "d"},
		status: "succeeded", exit: 0,
		steps: []string{"a succeeded", "b succeeded", "c succeeded", "d skipped skipped_by_user",
			"e skipped dependency_skipped", "f skipped skipped_by_user"},
	},
	{
		name: "ctrl-c",
		yaml: `version: 1
name: interrupted
steps:
  - id: long
    run: touch "$PLAYBOOK_RUN_ID.ctrl-c-ready"; sleep 60
  - id: next
    needs: long
    run: echo never
  - id: cleanup
    needs: long
    if: always()
    run: echo "cleanup after ${{ steps.long.status }} in a ${{ run.status }} run"
  - id: on-cancel
    needs: long
    if: cancelled()
    run: echo cancelled ran
  - id: on-failure
    needs: long
    if: failure()
    run: echo never
`,
		interrupt: ".ctrl-c-ready",
		status:    "cancelled", exit: 130, within: 20 * time.Second,
		steps: []string{"long cancelled", "next skipped run_cancelled", "cleanup succeeded",
			"on-cancel succeeded", "on-failure skipped run_cancelled"},
		stdout: map[string]string{"cleanup": "cleanup after cancelled in a cancelled run\n", "on-cancel": "cancelled ran\n"},
	},
	{
		// SIGTERM (a service manager stopping the runner) is the same graceful stop, exit status 143.
		name: "sigterm",
		yaml: `version: 1
name: terminated
steps:
  - id: long
    run: touch "$PLAYBOOK_RUN_ID.sigterm-ready"; sleep 60
  - id: cleanup
    needs: long
    if: cancelled()
    run: echo "cleanup in a ${{ run.status }} run"
`,
		interrupt: ".sigterm-ready", signal: syscall.SIGTERM,
		status: "cancelled", exit: 143, within: 20 * time.Second,
		steps:  []string{"long cancelled", "cleanup succeeded"},
		stdout: map[string]string{"cleanup": "cleanup in a cancelled run\n"},
	},
	{
		name: "file-order-under-max-parallel",
		yaml: `version: 1
name: fileorder
max_parallel: 1
steps:
  - id: report
    needs: [one, two, three]
    run: cat "$PLAYBOOK_RUN_ID.order"
  - id: three
    run: echo three >> "$PLAYBOOK_RUN_ID.order"
  - id: one
    run: echo one >> "$PLAYBOOK_RUN_ID.order"
  - id: two
    run: echo two >> "$PLAYBOOK_RUN_ID.order"
`,
		status: "succeeded", exit: 0,
		steps:  []string{"report succeeded", "three succeeded", "one succeeded", "two succeeded"},
		stdout: map[string]string{"report": "three\none\ntwo\n"},
	},
	{
		name: "exit-code-and-stderr",
		yaml: `version: 1
name: exits
fail_fast: false
steps:
  - id: loud
    run: echo to-out; echo to-err >&2; exit 42
  - id: script-ish
    shell: sh
    run: printf 'sh says %s\n' "$PLAYBOOK_STEP_ID"
  - id: killed
    run: printf 'bytes \377\376\n'; kill -9 $$
`,
		status: "failed", exit: 1,
		steps:  []string{"loud failed exit=42", "script-ish succeeded", "killed failed exit=-"},
		stdout: map[string]string{"loud": "to-out\n", "script-ish": "sh says script-ish\n"},
	},
}

// TestRulesBothBackends runs every ruleCase with the local runner (`playbook run`) and distributed (one
// real worker, one dev server for the whole table): each must end as the row expects, and the two
// databases must hold the same records.
func TestRulesBothBackends(t *testing.T) {
	addr, _ := devServer(t)
	bin := buildBinary(t)
	local := filepath.Join(t.TempDir(), "playbook")
	if out, err := exec.Command("go", "build", "-o", local, "../playbook").CombinedOutput(); err != nil {
		t.Fatalf("build playbook: %v\n%s", err, out)
	}
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("3c", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	workDir := t.TempDir()
	replay := newReplayer(t, addr, testNamespace(t), key)
	// Room for the rows that run at once, default-max-parallel's waiters (the local default) among
	// them: with fewer slots they would hold every one while the step they wait for queues.
	capacity := strconv.Itoa(2 * defaultMaxParallel)
	startWorker(t, bin, addr, "playbook", workDir, "--key-file", key, "--max-parallel", capacity)

	// A few rows at a time: each waits mostly on Temporal and on its steps, not on the CPUs.
	slots := make(chan struct{}, 3)
	for _, c := range ruleCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			dir := t.TempDir()
			file := filepath.Join(dir, c.name+".yaml")
			if err := os.WriteFile(file, []byte(c.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			for name, content := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ps := c.args
			for _, p := range c.params {
				ps = append(ps, "-p", p)
			}
			localDB, distDB := filepath.Join(t.TempDir(), "local.db"), filepath.Join(t.TempDir(), "dist.db")
			began := time.Now()
			localExit, localOut := runCmd(t, dir, c.interruptWhen(dir), c.signal, local, append(append([]string{"run", "--db", localDB}, ps...), file)...)
			mid := time.Now()
			distExit, distOut := runCmd(t, dir, c.interruptWhen(workDir), c.signal, bin, append(append(append([]string{"run", "--temporal", addr, "--db", distDB, "--key-file", key}, c.distArgs...), ps...), file)...)
			t.Logf("local %s, distributed %s", mid.Sub(began).Round(time.Millisecond), time.Since(mid).Round(time.Millisecond))
			l, d := readRecords(t, localDB), readRecords(t, distDB)
			if t.Failed() {
				return
			}
			c.check(t, "local", localExit, l, localOut)
			c.check(t, "distributed", distExit, d, distOut)
			if localExit != distExit {
				t.Errorf("process exit status: local %d, distributed %d", localExit, distExit)
			}
			for _, diff := range l.diff(d, map[string]string{dir: "<PLAYBOOK DIR>", workDir: "<WORKER DIR>"}) {
				t.Errorf("local and distributed records differ: %s", diff)
			}
			replay.check(t, distDB)
		})
	}
}

// replayer replays a run's workflow histories through this build's workflow code, as a worker does
// when its cache lost the workflow (a restart, a slow sticky queue): a decision that differs on
// replay stalls a run in production, and fails the row here.
type replayer struct {
	c client.Client
	w worker.WorkflowReplayer
}

// newReplayer reads the runs' histories in namespace on the server at addr; keyFile is the runs'
// --key-file, "" for runs without one.
func newReplayer(t *testing.T, addr, namespace, keyFile string) *replayer {
	t.Helper()
	dc := converter.GetDefaultDataConverter()
	if keyFile != "" {
		key, err := pbtemporal.ReadKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		codec, err := pbtemporal.NewCodec(key)
		if err != nil {
			t.Fatal(err)
		}
		dc = codec.DataConverter()
	}
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: namespace, DataConverter: dc, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: dc,
		// What is checked is the decisions, not their speed: under -race, a continued run's parse
		// and log replay take longer than the SDK's 1 s (a worker allows
		// pbtemporal.DeadlockDetectionTimeout).
		DisableDeadlockDetection: true})
	if err != nil {
		t.Fatal(err)
	}
	w.RegisterWorkflowWithOptions(pbtemporal.Run, workflow.RegisterOptions{Name: pbtemporal.WorkflowName})
	return &replayer{c: c, w: w}
}

// check replays every workflow run of the run recorded in db, the last one first, then those it
// continued.
func (r *replayer) check(t *testing.T, db string) {
	t.Helper()
	h, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var wid string
	err = h.QueryRow("SELECT workflow_id FROM runs").Scan(&wid)
	h.Close()
	if err != nil {
		t.Fatalf("%s: the run's workflow: %v", db, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for next, n := "", 1; ; n++ {
		history := &historypb.History{}
		it := r.c.GetWorkflowHistory(ctx, wid, next, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("workflow %s: its history: %v", wid, err)
			}
			history.Events = append(history.Events, ev)
		}
		if err := r.w.ReplayWorkflowHistory(quietLogger, history); err != nil {
			t.Errorf("workflow %s (run %q, \"\" the last, %d events) does not replay: %v", wid, next, len(history.Events), err)
		}
		if len(history.Events) == 0 {
			t.Fatalf("workflow %s: an empty history", wid)
		}
		next = history.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if next == "" {
			if n > 1 {
				t.Logf("workflow %s: %d workflow runs replayed", wid, n)
			}
			return
		}
	}
}

// interruptWhen is the pattern of the file whose creation in stepDir (where the run's steps run)
// interrupts the run; "" when the row does not interrupt it.
func (c *ruleCase) interruptWhen(stepDir string) string {
	if c.interrupt == "" {
		return ""
	}
	return filepath.Join(stepDir, "*"+c.interrupt)
}

// runCmd runs a command to its end in dir and returns its exit status and combined output. With
// interrupt, a file pattern, the command gets sig (0: SIGINT) once a file matches it.
func runCmd(t *testing.T, dir, interrupt string, sig syscall.Signal, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "GOTRACEBACK=all")
	// A command still running at the deadline dumps its goroutines (SIGABRT) into the output the
	// failure shows: where it waits says which side stalled.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGABRT) }
	cmd.WaitDelay = 15 * time.Second
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if interrupt != "" {
		for {
			if m, _ := filepath.Glob(interrupt); len(m) > 0 {
				// Consumed, so that the next run's marker is the only one.
				for _, f := range m {
					os.Remove(f)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("no %s appeared within 2 minutes", interrupt)
			}
			time.Sleep(10 * time.Millisecond) // polling for the file the step creates
		}
		if sig == 0 {
			sig = syscall.SIGINT
		}
		cmd.Process.Signal(sig)
	}
	err := cmd.Wait()
	out := buf.String()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not end within 2 minutes:\n%s", filepath.Base(bin), strings.Join(args, " "), out)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("%s: %v", bin, err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// records is what one database holds of its only run: each row as column -> value, the columns that
// may legitimately differ between backends left out (excluded).
type records struct {
	duration time.Duration // the run's, not compared: only bounded by a row's within
	run      map[string]any
	steps    map[string]map[string]any   // by step id
	attempts map[string][]map[string]any // by step id, in attempt order
}

// excluded are the columns left out of the comparison, and why:
//   - ids, times and durations: every run has its own id and timing;
//   - owner_*, last_seen_at, temp_dir: the local runner's liveness and private folder (crash
//     recovery); a distributed run has no local process to own it;
//   - pid, pid_start: processes of different machines (the worker's are not the submitter's);
//   - command: the display of the command may differ (the worker's paths, a script's copy);
//   - fingerprint: an HMAC keyed with the key file beside each database, over the step's folder,
//     which is the playbook's locally and the worker's --dir distributed;
//   - workflow_id, workflow_run_id, worker: what only a distributed run has (its Temporal workflow,
//     the worker that ran each attempt), NULL locally.
var excluded = map[string]bool{
	"id": true, "run_id": true, "started_at": true, "finished_at": true, "duration_ms": true,
	"owner_pid": true, "owner_start": true, "owner_host": true, "owner_boot_id": true,
	"last_seen_at": true, "temp_dir": true, "pid": true, "pid_start": true, "command": true,
	"fingerprint": true, "workflow_id": true, "workflow_run_id": true, "worker": true,
}

// readRecords reads a run database, read-only, through SQLite itself (not the store package), so that
// the comparison sees what `sqlite3` would.
func readRecords(t *testing.T, path string) *records {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs := queryRows(t, db, "SELECT * FROM runs")
	if len(runs) != 1 {
		t.Errorf("%s: %d runs recorded, want 1", path, len(runs))
		return nil
	}
	r := &records{run: runs[0], steps: map[string]map[string]any{}, attempts: map[string][]map[string]any{}}
	var ms sql.NullInt64
	if err := db.QueryRow("SELECT duration_ms FROM runs").Scan(&ms); err != nil {
		t.Fatal(err)
	}
	r.duration = time.Duration(ms.Int64) * time.Millisecond
	for _, s := range queryRows(t, db, "SELECT * FROM steps ORDER BY step_id") {
		r.steps[s["step_id"].(string)] = s
	}
	for _, a := range queryRows(t, db, "SELECT * FROM attempts ORDER BY step_id, attempt") {
		id := a["step_id"].(string)
		r.attempts[id] = append(r.attempts[id], a)
	}
	return r
}

// queryRows is every row of a query as column -> value, without the excluded columns; text and blobs
// as strings, JSON columns (params, outputs) re-encoded with sorted keys.
func queryRows(t *testing.T, db *sql.DB, q string) []map[string]any {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		for i, c := range cols {
			v := vals[i]
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			if s, ok := v.(string); ok && (c == "params" || c == "outputs") {
				var j any
				if json.Unmarshal([]byte(s), &j) == nil {
					enc, _ := json.Marshal(j)
					v = string(enc)
				}
			}
			if c == "step_id" || !excluded[c] {
				m[c] = v
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// diff lists every difference between two runs' records, each saying where and both values. Text
// values are compared after replacing each backend's folders (keys of dirs) by a name for them.
func (l *records) diff(d *records, dirs map[string]string) []string {
	var out []string
	norm := func(v any) any {
		if s, ok := v.(string); ok {
			for dir, name := range dirs {
				s = strings.ReplaceAll(s, dir, name)
			}
			return s
		}
		return v
	}
	cmp := func(where string, a, b map[string]any) {
		keys := map[string]bool{}
		for k := range a {
			keys[k] = true
		}
		for k := range b {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			if x, y := norm(a[k]), norm(b[k]); !reflect.DeepEqual(x, y) {
				out = append(out, fmt.Sprintf("%s %s: %s", where, k, describeDiff(x, y)))
			}
		}
	}
	cmp("run", l.run, d.run)
	ids := map[string]bool{}
	for id := range l.steps {
		ids[id] = true
	}
	for id := range d.steps {
		ids[id] = true
	}
	var sorted []string
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		ls, ds := l.steps[id], d.steps[id]
		if ls == nil || ds == nil {
			out = append(out, fmt.Sprintf("step %s: recorded locally %t, distributed %t", id, ls != nil, ds != nil))
			continue
		}
		cmp("step "+id, ls, ds)
		la, da := l.attempts[id], d.attempts[id]
		if len(la) != len(da) {
			out = append(out, fmt.Sprintf("step %s: %d attempts recorded locally, %d distributed", id, len(la), len(da)))
			continue
		}
		for i := range la {
			cmp(fmt.Sprintf("step %s attempt %d", id, i+1), la[i], da[i])
		}
	}
	return out
}

// check compares one backend's run with what the row expects.
func (c *ruleCase) check(t *testing.T, backend string, exit int, r *records, out string) {
	t.Helper()
	if exit != c.exit {
		t.Errorf("%s: process exit status %d, want %d:\n%s", backend, exit, c.exit, out)
	}
	if got := r.run["status"]; got != c.status {
		t.Errorf("%s: run %v, want %s (error %v)", backend, got, c.status, r.run["error"])
	}
	if got := r.run["exit_code"]; got != int64(c.exit) {
		t.Errorf("%s: run exit code %v, want %d", backend, got, c.exit)
	}
	if c.within > 0 && r.duration > c.within {
		t.Errorf("%s: the run lasted %s, want at most %s", backend, r.duration, c.within)
	}
	if len(r.steps) != len(c.steps) {
		// Every step of the playbook is listed once in the row.
		t.Errorf("%s: %d steps recorded, want %d", backend, len(r.steps), len(c.steps))
	}
	for _, want := range c.steps {
		f := strings.Fields(want)
		s := r.steps[f[0]]
		if s == nil {
			t.Errorf("%s: step %s not recorded", backend, f[0])
			continue
		}
		if s["status"] != f[1] {
			t.Errorf("%s: step %s %v (reason %v, error %v), want %s", backend, f[0], s["status"], s["reason"], s["error"], f[1])
		}
		for _, extra := range f[2:] {
			k, v, ok := strings.Cut(extra, "=")
			var got any
			switch {
			case !ok:
				k, got, v = "reason", s["reason"], extra
			case k == "exit":
				got = s["exit_code"]
			case k == "attempts":
				got = s["attempts"]
				if n := int64(len(r.attempts[f[0]])); n != s["attempts"] {
					t.Errorf("%s: step %s has %d attempt rows, attempts says %v", backend, f[0], n, s["attempts"])
				}
			}
			if fmt.Sprint(got) != v && !(v == "-" && got == nil) {
				t.Errorf("%s: step %s %s %v, want %s (error %v)", backend, f[0], k, got, v, s["error"])
			}
		}
	}
	for step, want := range c.outputs {
		enc, _ := json.Marshal(want)
		if s := r.steps[step]; s == nil || s["outputs"] != string(enc) {
			t.Errorf("%s: step %s outputs %v, want %s", backend, step, s["outputs"], enc)
		}
	}
	for step, want := range c.stdout {
		if s := r.steps[step]; s == nil || s["stdout"] != want {
			t.Errorf("%s: step %s stdout %q, want %q", backend, step, s["stdout"], want)
		}
	}
}

// describeDiff shows two differing values: whole when short, else their lengths and where they part.
func describeDiff(l, d any) string {
	ls, lok := l.(string)
	ds, dok := d.(string)
	if !lok || !dok || len(ls)+len(ds) < 400 {
		return fmt.Sprintf("local %#v, distributed %#v", l, d)
	}
	i := 0
	for i < len(ls) && i < len(ds) && ls[i] == ds[i] {
		i++
	}
	cut := func(s string) string { return s[i:min(len(s), i+80)] }
	return fmt.Sprintf("local %d bytes, distributed %d; from byte %d local %q, distributed %q", len(ls), len(ds), i, cut(ls), cut(ds))
}

// defaultMaxParallelYAML is a playbook whose first step fails while cpus steps wait for the failure()
// step that follows it: with cpus slots, the first and cpus-1 waiters start.
// defaultMaxParallel is a local run's default max_parallel on this machine.
var defaultMaxParallel = local.DefaultMaxParallel(runtime.NumCPU())

func defaultMaxParallelYAML(cpus int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: defaultpar\nsteps:\n  - id: fails\n    run: exit 1\n")
	for i := 1; i <= cpus; i++ {
		fmt.Fprintf(&b, "  - id: w%d\n    run: until [ -f \"$PLAYBOOK_RUN_ID.handled\" ]; do sleep 0.1; done\n", i)
	}
	b.WriteString("  - id: handler\n    needs: fails\n    if: failure()\n    run: touch \"$PLAYBOOK_RUN_ID.handled\"\n")
	return b.String()
}

func defaultMaxParallelSteps(cpus int) []string {
	steps := []string{"fails failed exit=1", "handler succeeded"}
	for i := 1; i < cpus; i++ {
		steps = append(steps, fmt.Sprintf("w%d succeeded", i))
	}
	return append(steps, fmt.Sprintf("w%d skipped fail_fast", cpus))
}
