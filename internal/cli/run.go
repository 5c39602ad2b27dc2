package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/playbook/local"
	"github.com/playbookhq/playbook/pkg/playbook/scheduler"
	"github.com/playbookhq/playbook/pkg/run"
)

// runOptions are the inputs of `playbook run` (and of `playbook retry`, which builds them from a
// recorded run).
type runOptions struct {
	File        string
	Params      []string // -p name=value, in order; a later value wins
	ParamsFile  string   // --params-file; see gatherParams for the other sources
	MaxParallel int
	DryRun      bool
	Output      string // text | json
	LogDir      string
	NoColor     bool
	OutputLimit string   // size, e.g. 512KiB; "" = the playbook's output_limit, else 1 MiB
	Only, Skip  []string // step ids: --only, --skip (playbook.Select)

	// Temporal.Address set runs the playbook on Temporal (RemoteRun); the rest apply then only.
	Temporal         TemporalOptions
	HeartbeatTimeout time.Duration

	// Set by retry.
	retryOf    string
	reuse      map[string]*run.StepRecord
	given      map[string]string // params recorded by the original run (secrets absent)
	unrecorded []string          // the original run's secret params, which were not recorded
	skipped    map[string]string // steps the original run's user skipped: skipped again
}

func newRunCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run FILE [-p name=value]...",
		Short: "Run a playbook",
		Long: `Run the steps of a playbook: each step starts when the steps in its needs have finished and
its if holds, in parallel up to max_parallel. The run and every step are recorded in the database.

On a terminal a live view shows the running steps; otherwise every line is prefixed with its step id.
--output json prints one JSON object per line (run_started, step_started, output, step_retrying,
step_finished, run_cancelling, run_finished) and nothing else on stdout.

The first Ctrl-C (or SIGTERM, or SIGHUP when the terminal goes away) stops the run gracefully: no new
step starts but those whose if calls always() or cancelled(), and running steps get their stop_signal,
then SIGKILL after stop_grace. A second Ctrl-C (or SIGTERM), or a SIGQUIT at any time, kills every
step at once.

With --temporal the run is a Temporal workflow and each step runs on a worker of its runs_on queue
(playbook worker); this terminal shows the same view and summary, with the worker of each step, and
the run and its steps are recorded in this machine's database. Ctrl-C cancels the workflow as it stops
a local run. Killing this process does not stop the run: playbook attach follows it. --log-dir and
--output-limit do not apply (the playbook's output_limit does); --dry-run prints the plan and contacts
nobody. Only the flag makes a run distributed, never $PLAYBOOK_TEMPORAL.

A playbook with a concurrency group waits while another run of the group is running, and says so
on stderr; with concurrency wait: false it exits 75 at once instead, running and recording nothing.

Params come from -p, then --params-file (NAME=value lines or a YAML mapping), then the environment
(PLAYBOOK_PARAM_<NAME>: the name upper-cased, every character but letters and digits turned into _).
On a terminal, a required secret param that none of them gave is asked for, without echo. Only -p
puts a value on the command line, where ps and the shell's history show it.

Exit status: 0 succeeded, 1 failed, 2 invalid playbook or params (nothing ran), 3 database error,
75 concurrency group held (wait: false; nothing ran), 124 the run timed out, 129 stopped by SIGHUP,
130 interrupted (SIGINT), 131 killed by SIGQUIT, 143 terminated (SIGTERM).`,
		Example: `  playbook run deploy.yaml -p env=prod -p version=1.4.2
  playbook run backup.yaml --dry-run
  playbook run diag.yaml --output json --log-dir ./logs
  playbook run deploy.yaml --temporal temporal.internal:7233 --key-file ~/.playbook/temporal.key`,
		Args: exactArgs(1, "one playbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return runRun(cmd.Context(), sys, g, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.Params, "param", "p", nil, "set a param: `name=value` (repeatable; also $PLAYBOOK_PARAM_<NAME>)")
	paramsFileFlag(f, &o.ParamsFile)
	f.Var(stepCount{&o.MaxParallel}, "max-parallel", "steps running at once, at least 1 (default: the playbook's max_parallel, else 4 per CPU, at least 16)")
	f.StringSliceVar(&o.Only, "only", nil, "run only these steps (`ID,...`) and the steps they need; the others are skipped (skipped_by_user)")
	f.StringSliceVar(&o.Skip, "skip", nil, "skip these steps (`ID,...`), recorded skipped_by_user; steps that need them follow the usual rules")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the plan (order, parallel levels, conditions) and run nothing")
	f.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.LogDir, "log-dir", "", "keep every step's complete stdout and stderr in files under `DIR`/<run id>/")
	f.BoolVar(&o.NoColor, "no-color", false, "no colour (also when NO_COLOR is set)")
	f.StringVar(&o.OutputLimit, "output-limit", "", "bytes of each step's stdout and stderr kept in the database, head and tail (default 1MiB)")
	o.Temporal.flags(f, "run on the Temporal frontend at `HOST:PORT`, each step on a worker of its runs_on queue")
	f.DurationVar(&o.HeartbeatTimeout, "heartbeat-timeout", 0, "with --temporal: how long a worker may be silent before its step's attempt fails as worker_lost (default 20s)")
	return cmd
}

func runRun(ctx context.Context, sys *System, g *globalOptions, o *runOptions) (err error) {
	remote := o.Temporal.Address != ""
	if remote && !o.DryRun && sys.Remote == nil {
		return handoff(sys, g.args)
	}
	collectLess(sys)
	if remote {
		switch {
		case o.LogDir != "":
			return usageErrorf("--log-dir does not apply with --temporal: the steps run on workers; playbook logs shows the head and tail each one recorded")
		case o.OutputLimit != "":
			return usageErrorf("--output-limit does not apply with --temporal: set output_limit in the playbook")
		}
	}
	if o.Output != "text" && o.Output != "json" {
		return usageErrorf("--output must be text or json, not %q", o.Output)
	}
	if o.MaxParallel < 0 {
		return usageErrorf("--max-parallel must be at least 1")
	}
	var limit int64
	if o.OutputLimit != "" {
		n, err := parseOutputLimit(o.OutputLimit)
		if err != nil {
			return err
		}
		limit = n
	}
	values, err := parseParamFlags(o.Params)
	if err != nil {
		return err
	}

	pb, err := playbook.Load(o.File)
	if err != nil {
		return invalidPlaybook(sys.ErrOut, err)
	}
	defer func() { err = maskSecrets(err, pb, values) }()
	for _, w := range pb.Warnings {
		fmt.Fprintf(sys.ErrOut, "%s:%d:%d: warning: %s\n", w.File, w.Line, w.Col, w.Msg)
	}
	if values, err = gatherParams(sys, pb, o, values); err != nil {
		return err
	}
	params, err := pb.ResolveParams(values)
	if err != nil {
		return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("%s: %w", o.File, err)}
	}

	skip, err := pb.Select(o.Only, o.Skip)
	if err != nil {
		return usageErrorf("%s: %w", o.File, err)
	}
	for id, why := range o.skipped {
		if _, ok := skip[id]; !ok {
			if skip == nil {
				skip = map[string]string{}
			}
			skip[id] = why
		}
	}
	group, err := pb.GroupName(params)
	if err != nil {
		return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("%s: %w", o.File, err)}
	}

	if o.DryRun {
		return printPlan(sys.Out, pb, params, skip)
	}
	if remote {
		if group != "" {
			// A distributed run's record is written as its workflow reports it, and a submitter that
			// dies leaves its run going on (detached): the group would need a holder other than a
			// live runner, which concurrency groups do not have yet.
			return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("%s: concurrency (group %q) is not supported with --temporal yet; run it without --temporal, or remove the concurrency key", o.File, group)}
		}
		return runRemote(ctx, sys, g, o, pb, values, skip)
	}

	if o.LogDir != "" {
		if err := checkLogDir(o.LogDir); err != nil {
			return &ExitError{Code: run.ExitUsage, Err: err}
		}
	}

	st, fpKey, err := openRunStore(ctx, sys, g)
	if err != nil {
		return err
	}
	defer st.Close()
	return follow(ctx, sys, o.Output, o.NoColor, len(pb.Steps), idWidth(pb), o.LogDir, false,
		func(ctx context.Context, prog progress, kill <-chan struct{}) (*local.Summary, error) {
			for {
				if group != "" {
					if err := waitGroup(ctx, sys, st, group, pb.Concurrency.Wait, prog); err != nil {
						return nil, err
					}
				}
				sum, err := local.Run(ctx, pb, local.Options{
					Params:           params,
					ConcurrencyGroup: group,
					MaxParallel:      o.MaxParallel,
					OutputLimit:      limit,
					Recorder:         st,
					Observer:         prog,
					LogDir:           o.LogDir,
					User:             currentUser(sys),
					Host:             hostname(),
					RetryOf:          o.retryOf,
					Reuse:            o.reuse,
					Skip:             skip,
					Kill:             kill,
					Now:              sys.Now,

					// Fingerprints are keyed so that a recorded one cannot be used to guess a secret.
					FingerprintKey: fpKey,
				})
				var busy *store.GroupBusyError
				if sum == nil && errors.As(err, &busy) {
					if !pb.Concurrency.Wait {
						return nil, groupBusy(busy)
					}
					continue // another run took the group between waitGroup and the start: wait again
				}
				return sum, err
			}
		})
}

// waitGroup returns once the run may start in its concurrency group: at once when no running run holds
// it, else (wait) when the run that holds it has ended, saying on stderr, and as a run_waiting event
// with --output json, which run it waits for and since when. With wait false a held group is an
// ExitGroupBusy error; a signal while waiting ends the command with the signal's status. Either way
// nothing is recorded.
func waitGroup(ctx context.Context, sys *System, st *store.Store, group string, wait bool, prog progress) error {
	before := len(st.Recovered())
	err := st.WaitGroup(ctx, group, wait, func(h *store.GroupHolder) {
		fmt.Fprintf(sys.ErrOut, "playbook: waiting for concurrency group %q: run %s (%s, pid %d on %s) holds it since %s\n",
			group, idPrefix(h.RunID), h.Playbook, h.PID, h.Host, h.Since.UTC().Format(store.TimeFormat))
		if jp, ok := prog.(*jsonProgress); ok {
			jp.waiting(sys.now(), h)
		}
	})
	for _, r := range st.Recovered()[before:] {
		fmt.Fprintf(sys.ErrOut, "playbook: run %s (%s) marked interrupted: its runner (pid %d) died; its concurrency group is free\n",
			idPrefix(r.ID), r.Playbook, r.OwnerPID)
	}
	var busy *store.GroupBusyError
	var intr *run.Interrupt
	switch {
	case errors.As(err, &busy):
		return groupBusy(busy)
	case errors.As(err, &intr):
		return &ExitError{Code: intr.ExitCode(), Err: fmt.Errorf("stopped while waiting for concurrency group %q: nothing ran", group)}
	case err != nil:
		return storeError(err)
	}
	return nil
}

// groupBusy is the error of a run refused because its concurrency group is held (wait: false).
func groupBusy(e *store.GroupBusyError) error {
	return &ExitError{Code: run.ExitGroupBusy, Err: fmt.Errorf("concurrency group %q is held by run %s (%s, pid %d on %s) since %s: not started, since concurrency.wait is false; try again once it has ended, or set wait: true to wait for it",
		e.Group, idPrefix(e.RunID), e.Playbook, e.PID, e.Host, e.Since.UTC().Format(store.TimeFormat))}
}

// follow shows a run as start carries it out, and ends with its summary and exit status: the live
// view or JSON events, the signals that stop it (the first ends ctx, the second closes kill), the
// summary table. start is a local run, or a run on Temporal (remote).
func follow(ctx context.Context, sys *System, output string, noColor bool, total, width int, logDir string, remote bool,
	start func(ctx context.Context, prog progress, kill <-chan struct{}) (*local.Summary, error)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	kill := make(chan struct{})
	var firstSignal os.Signal
	if sys.Signals != nil {
		sigs, stop := sys.Signals()
		defer stop()
		finished := make(chan struct{})
		defer close(finished)
		go func() {
			for {
				select {
				case sig := <-sigs:
					switch {
					case firstSignal == nil && sig == syscall.SIGQUIT:
						// SIGQUIT is the forced stop from the start; the cause gives the exit status.
						firstSignal = sig
						cancel(&run.Interrupt{Signal: signo(sig), Kill: true})
						close(kill)
						return
					case firstSignal == nil:
						firstSignal = sig
						cancel(&run.Interrupt{Signal: signo(sig)})
						continue
					case sig == syscall.SIGHUP:
						// A dropped session sends SIGHUP more than once (the shell passes its own on
						// to its jobs, the kernel sends one to the foreground group): never a second
						// Ctrl-C.
						continue
					}
					close(kill)
					return
				case <-finished:
					return
				}
			}
		}()
	}

	var prog progress
	color := colorOn(sys) && !noColor
	if output == "json" {
		prog = newJSONProgress(sys.Out)
	} else {
		prog = newTextProgress(sys.Out, sys.ErrOut, total, width, sys.OutIsTerminal, color, sys.now, logDir)
	}

	type result struct {
		sum *local.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := start(ctx, prog, kill)
		done <- result{sum, err}
	}()

	var res result
	select {
	case res = <-done:
	case <-kill:
		// The forced stop: the runner has killed every group; give it a moment to record that,
		// but a second Ctrl-C must end the command promptly even if the database is stuck.
		select {
		case res = <-done:
		case <-time.After(2 * time.Second):
			prog.Close()
			return &ExitError{Code: run.SignalExit(signo(firstSignal))}
		}
	}
	prog.Close()
	if res.sum == nil {
		if errors.Is(res.err, local.ErrRecord) {
			return storeError(res.err)
		}
		return res.err
	}
	if output == "text" {
		printSummary(sys.Out, res.sum, logDir, color)
	}
	if res.err != nil {
		return storeError(res.err)
	}
	code := res.sum.Run.ExitCode
	var intr *run.Interrupt
	if remote && res.sum.Run.Status == run.StatusCancelled && errors.As(context.Cause(ctx), &intr) {
		// The workflow knows it was cancelled, not which signal made this process cancel it.
		code = intr.ExitCode()
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// runRemote is run --temporal: the playbook, loaded and checked here as for a local run, goes to the
// Remote with what the workflow needs.
func runRemote(ctx context.Context, sys *System, g *globalOptions, o *runOptions, pb *playbook.Playbook, values map[string]string, skip map[string]string) error {
	src, err := os.ReadFile(pb.File)
	if err != nil {
		return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("read %s: %w", pb.File, err)}
	}
	scripts, err := pb.ReadScripts(maxScript)
	if err != nil {
		return &ExitError{Code: run.ExitUsage, Err: err}
	}
	st, fpKey, err := openRunStore(ctx, sys, g)
	if err != nil {
		return err
	}
	defer st.Close()
	return follow(ctx, sys, o.Output, o.NoColor, len(pb.Steps), idWidth(pb), "", true,
		func(ctx context.Context, prog progress, kill <-chan struct{}) (*local.Summary, error) {
			return sys.Remote.Run(ctx, RemoteRun{Temporal: o.Temporal, Getenv: sys.getenv, Playbook: pb, Source: src,
				Scripts: scripts, Params: values, MaxParallel: o.MaxParallel, HeartbeatTimeout: o.HeartbeatTimeout,
				FingerprintKey: fpKey, User: currentUser(sys), Host: hostname(), RetryOf: o.retryOf, Reuse: o.reuse,
				Skip: skip, Store: st, Observer: prog, Kill: kill, Log: sys.ErrOut})
		})
}

// openRunStore opens the database a run records itself in, and reads the key of its steps'
// fingerprints; on success the caller closes the store.
func openRunStore(ctx context.Context, sys *System, g *globalOptions) (*store.Store, []byte, error) {
	st, err := openStore(ctx, sys, g, true)
	if err != nil {
		return nil, nil, err
	}
	fpKey, err := st.FingerprintKey()
	if err != nil {
		st.Close()
		return nil, nil, storeError(err)
	}
	return st, fpKey, nil
}

// idWidth is the width of the longest step id, which the view's columns align to.
func idWidth(pb *playbook.Playbook) int {
	width := 0
	for _, s := range pb.Steps {
		width = max(width, len(s.ID))
	}
	return width
}

// maxScript is the largest script file a distributed run carries to its workers.
const maxScript = 1 << 20

// stepCount is the value of --max-parallel: a whole number of steps, at least 1, refused at parsing
// (exit 2) like the playbook's max_parallel. Leaving the flag out keeps 0, "not set".
type stepCount struct{ n *int }

func (c stepCount) String() string {
	if c.n == nil || *c.n == 0 {
		return ""
	}
	return strconv.Itoa(*c.n)
}

func (c stepCount) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return fmt.Errorf("want a whole number of steps from 1 up (leave the flag out for the playbook's max_parallel, else the default)")
	}
	*c.n = n
	return nil
}

func (c stepCount) Type() string { return "int" }

// collectLess makes the garbage collector run less often than Go's default, unless GOGC is set. The
// runner's live heap is small (output and event buffers are bounded), so with the default target the
// collector runs again after every few MiB allocated: several times while a large playbook loads (its
// YAML tree is several times the file) and over and over through a chain of short steps. A larger
// target means fewer collections, whose CPU goes to the run instead; the soft limit keeps a big
// playbook's heap from growing with it.
func collectLess(sys *System) {
	if sys.getenv("GOGC") == "" {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(256 << 20)
	}
}

// checkLogDir makes sure --log-dir can take the run's files before anything runs: finding out after
// the first step has run would leave a run without the complete output that was asked for.
func checkLogDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--log-dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".playbook-check-")
	if err != nil {
		return fmt.Errorf("--log-dir %s cannot be written: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// invalidPlaybook prints every load error as file:line:col: message and exits 2.
func invalidPlaybook(w io.Writer, err error) error {
	var list playbook.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		return &ExitError{Code: run.ExitUsage}
	}
	return &ExitError{Code: run.ExitUsage, Err: err}
}

// parseParamFlags turns -p name=value flags into a map; a later value for the same name wins.
func parseParamFlags(flags []string) (map[string]string, error) {
	values := map[string]string{}
	for i, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		// The text is not repeated: without a name, nothing says whether it is a secret's value.
		if !ok {
			return nil, usageErrorf("-p value %d has no \"=\" (not shown: it may be a secret given without its name); want name=value", i+1)
		}
		if k == "" {
			return nil, usageErrorf("-p value %d has no name before \"=\" (not shown: it may be a secret); want name=value", i+1)
		}
		values[k] = v
	}
	return values, nil
}

func currentUser(sys *System) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return sys.getenv("USER")
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// printSummary is the table after a text-mode run, with where the complete output is; color paints
// the statuses.
func printSummary(out io.Writer, sum *local.Summary, logDir string, color bool) {
	// Buffered: a thousand-step table is one write, not thousands.
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintln(w)
	// A distributed run's table says which worker ran each step.
	workers := false
	for _, s := range sum.Steps {
		workers = workers || s.Worker != ""
	}
	var t table
	if workers {
		t.add("STEP", "STATUS", "EXIT", "DURATION", "ATTEMPTS", "WORKER", "NOTE")
	} else {
		t.add("STEP", "STATUS", "EXIT", "DURATION", "ATTEMPTS", "NOTE")
	}
	for _, s := range sum.Steps {
		exit := exitText(s.ExitCode, s.Signal)
		dur := "-"
		if d := stepDuration(s); d > 0 || s.Attempts > 0 {
			dur = formatDuration(d)
		}
		note := ""
		switch {
		case s.Status == run.StatusSkipped:
			note = reasonText(s.Reason)
		case s.Reason == run.ReasonReused:
			note = "reused from " + idPrefix(s.ReusedFrom)
		case s.ContinueOnError:
			note = "continue_on_error"
		case s.RetryReason != "" && s.Status == run.StatusSucceeded:
			note = retryNote(s, sum.Run.RetryOf, sum.Steps)
		case s.Error != "" && s.Status != run.StatusSucceeded:
			note = firstLine(s.Error)
		case s.Error != "":
			note = "warning: " + firstLine(s.Error)
		case s.Stdout.Truncated || s.Stderr.Truncated:
			note = "output truncated in the database"
		}
		if workers {
			worker := s.Worker
			if worker == "" {
				worker = "-"
			}
			t.add(s.StepID, string(s.Status), exit, dur, strconv.Itoa(s.Attempts), worker, note)
		} else {
			t.add(s.StepID, string(s.Status), exit, dur, strconv.Itoa(s.Attempts), note)
		}
		t.paint(1, statusColor(s.Status))
	}
	t.write(w, color)
	r := sum.Run
	status := statusWord(r.Status)
	if color {
		status = statusColor(r.Status) + status + ansiReset
	}
	fmt.Fprintf(w, "\nRun %s %s in %s.", idPrefix(r.ID), status, formatDuration(r.FinishedAt.Sub(r.StartedAt)))
	if r.Status != run.StatusSucceeded && r.Error != "" {
		fmt.Fprintf(w, " %s.", firstLine(r.Error))
	}
	fmt.Fprintf(w, "\nOutput: playbook logs %s [STEP]", idPrefix(r.ID))
	if logDir != "" {
		fmt.Fprintf(w, "; complete streams in %s", filepath.Join(logDir, r.ID))
	}
	fmt.Fprintln(w)
	if sum.RecordErr != nil {
		fmt.Fprintf(w, "The run could not be fully recorded: %v\n", sum.RecordErr)
	}
}

// printPlan is --dry-run: the steps level by level, with what each if says. Each command is shown in
// full: on its step's line when it is one line, else as a YAML block under it ("build: |", then its
// lines, indented).
func printPlan(w io.Writer, pb *playbook.Playbook, params playbook.Params, skip map[string]string) error {
	plan, err := scheduler.Plan(pb, params, skip)
	if err != nil {
		return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("%s: %w", pb.File, err)}
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "Plan for %s (%s): %d steps in %d levels; nothing runs.\n", pb.Name, pb.File, len(pb.Steps), len(pb.Levels))
	level := -1
	for _, ps := range plan {
		if ps.Level != level {
			level = ps.Level
			if len(pb.Levels[level]) > 1 {
				fmt.Fprintf(bw, "\nlevel %d (these may run in parallel):\n", level+1)
			} else {
				fmt.Fprintf(bw, "\nlevel %d:\n", level+1)
			}
		}
		mark := "run "
		if !ps.Runs {
			mark = "skip"
		} else if !ps.Decided {
			mark = "run?"
		}
		needs := ""
		if len(ps.Step.Needs) > 0 {
			needs = " (needs " + strings.Join(ps.Step.Needs, ", ") + ")"
		}
		lines := strings.Split(strings.TrimRight(stepCommand(ps.Step), "\n"), "\n")
		if len(lines) == 1 {
			fmt.Fprintf(bw, "  %s %s%s: %s\n", mark, ps.Step.ID, needs, lines[0])
		} else {
			fmt.Fprintf(bw, "  %s %s%s: |\n", mark, ps.Step.ID, needs)
			for _, l := range lines {
				if l = strings.TrimRight(l, " \t"); l != "" {
					l = "         " + l
				}
				fmt.Fprintln(bw, l)
			}
		}
		if ps.Why != "" {
			fmt.Fprintf(bw, "       %s\n", ps.Why)
		}
	}
	return nil
}

// stepCommand is a step's command as written, for the plan.
func stepCommand(s *playbook.Step) string {
	switch {
	case s.Run != nil:
		return s.Run.Raw()
	case len(s.Exec) > 0:
		parts := make([]string, len(s.Exec))
		for i, t := range s.Exec {
			parts[i] = t.Raw()
		}
		return strings.Join(parts, " ")
	case s.Script != "":
		if s.Interpreter != "" {
			return s.Interpreter + " " + s.Script
		}
		return s.Script
	case s.AWS != nil:
		return "aws " + s.AWS.Service + " " + s.AWS.Operation
	}
	return ""
}

// signo is the number of a signal the runner was sent; 0 for one that has none.
func signo(sig os.Signal) syscall.Signal {
	n, _ := sig.(syscall.Signal)
	return n
}
