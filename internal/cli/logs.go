package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

// logsOptions are the inputs of `playbook logs`.
type logsOptions struct {
	Run     string
	Step    string // "" = every step
	Stderr  bool
	Attempt int // 0 = the step's last attempt
	Raw     bool
	Follow  bool // print the running step's output as it comes, until it ends
}

func newLogsCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs RUN [STEP] [--stderr] [--attempt N] [--raw] [-f]",
		Short: "Print the stored output of a run's steps",
		Long: `Print the output the database kept of a step (its last attempt, or --attempt N), or of every
step of the run under a "==> step (stdout) <==" header when STEP is omitted. --stderr prints the
standard error instead of the standard output.

The database keeps a bounded copy of each stream (the head and the tail, with a marker saying how
many bytes were left out); a note on stderr says when a stream was truncated. The complete streams
exist only in the files of a run started with --log-dir.

A running step shows its output so far: the runner stores it about once a second. -f (--follow)
keeps printing what STEP writes until the step ends (waiting for it to start if it has not), then
exits 0 whatever the step's outcome (playbook show tells it). When the stored copy keeps only the
head and the tail, a line says how many bytes were not kept. -f needs a STEP.

Invalid UTF-8 is shown as U+FFFD; --raw writes the stored bytes unchanged (for binary output).
RUN is a run id, a unique prefix of one, or "last".`,
		Example: `  playbook logs last
  playbook logs 3f2a9c build --stderr
  playbook logs last test --attempt 1
  playbook logs last deploy -f`,
		Args: rangeArgs(1, 2, "RUN and optionally STEP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Run = args[0]
			if len(args) == 2 {
				o.Step = args[1]
			}
			return runLogs(cmd.Context(), sys, g, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Stderr, "stderr", false, "print standard error instead of standard output")
	f.IntVar(&o.Attempt, "attempt", 0, "print attempt `N` (1 = the first) of STEP instead of its last")
	f.BoolVar(&o.Raw, "raw", false, "write the stored bytes unchanged (no U+FFFD for invalid UTF-8)")
	f.BoolVarP(&o.Follow, "follow", "f", false, "print STEP's output as it comes until the step ends")
	return cmd
}

func runLogs(ctx context.Context, sys *System, g *globalOptions, o *logsOptions) error {
	if o.Attempt < 0 || (o.Attempt > 0 && o.Step == "") {
		return usageErrorf("--attempt needs a STEP and a number from 1")
	}
	if o.Follow && (o.Step == "" || o.Attempt > 0) {
		return usageErrorf("--follow needs a STEP and follows its current attempt: playbook logs RUN STEP -f (without --attempt)")
	}
	st, d, err := openRun(ctx, sys, g, o.Run, false)
	if err != nil {
		return err
	}
	defer st.Close()
	id := d.Run.ID
	stream := "stdout"
	if o.Stderr {
		stream = "stderr"
	}
	if o.Step != "" {
		step := d.Step(o.Step)
		if step == nil {
			return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("run %s has no step %q (steps: %s)", idPrefix(id), o.Step, strings.Join(d.Run.StepIDs, ", "))}
		}
		if o.Follow {
			return followStep(ctx, sys, st, d.Run.ID, step.StepID, stream, o.Raw)
		}
		return printStepLog(ctx, sys, st, d, step, stream, o, false)
	}
	for _, step := range d.Steps {
		if step.Attempts == 0 && step.StartedAt.IsZero() {
			continue // never ran: nothing to show
		}
		if err := printStepLog(ctx, sys, st, d, step, stream, o, true); err != nil {
			return err
		}
	}
	return nil
}

// printStepLog prints one step's stored stream. With header, it is one section of the whole run's log.
func printStepLog(ctx context.Context, sys *System, st *store.Store, d *store.RunDetail, step *run.StepRecord, stream string, o *logsOptions, header bool) error {
	var (
		data    []byte
		total   int64
		trunc   bool
		attempt = step.Attempts
	)
	if o.Attempt > 0 {
		a, err := st.AttemptOutput(ctx, d.Run.ID, step.StepID, o.Attempt)
		if errors.Is(err, store.ErrNotFound) {
			return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("step %s of run %s has no attempt %d (it has %d)", step.StepID, idPrefix(d.Run.ID), o.Attempt, len(d.Attempts[step.StepID]))}
		}
		if err != nil {
			return storeError(err)
		}
		out := pickStream(a.Stdout, a.Stderr, stream)
		data, total, trunc, attempt = out.Data, out.Bytes, out.Truncated, o.Attempt
	} else {
		full, err := st.StepOutput(ctx, d.Run.ID, step.StepID)
		if err != nil {
			return storeError(err)
		}
		out := pickStream(full.Stdout, full.Stderr, stream)
		data, total, trunc = out.Data, out.Bytes, out.Truncated
	}
	if header {
		label := stream
		if o.Attempt > 0 || step.Attempts > 1 {
			label = fmt.Sprintf("%s, attempt %d", stream, attempt)
		}
		fmt.Fprintf(sys.Out, "==> %s (%s) <==\n", step.StepID, label)
	}
	switch {
	case step.ReusedFrom != "" && o.Attempt == 0:
		fmt.Fprintf(sys.ErrOut, "playbook: step %s was reused from run %s: see playbook logs %s %s\n", step.StepID, step.ReusedFrom, step.ReusedFrom, step.StepID)
	case o.Attempt == 0 && step.Status == run.StatusRunning:
		fmt.Fprintf(sys.ErrOut, "playbook: step %s is still running: this is its output so far (stored about once a second); -f follows it\n", step.StepID)
	case data == nil && o.Attempt == 0 && step.Attempts == 0:
		why := statusWord(step.Status)
		if step.Reason != "" {
			why += ": " + reasonText(step.Reason)
		}
		fmt.Fprintf(sys.ErrOut, "playbook: step %s did not run (%s)\n", step.StepID, why)
	}
	if !o.Raw {
		data = printableText(data)
	}
	if _, err := sys.Out.Write(data); err != nil {
		return err
	}
	if header && len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		fmt.Fprintln(sys.Out) // keep the next header on its own line
	}
	if trunc {
		fmt.Fprintf(sys.ErrOut, "playbook: the %s of step %s was truncated: %d bytes produced, the head and the tail kept (the marker shows where); the complete stream is only in the files of a run started with --log-dir\n",
			stream, step.StepID, total)
	}
	return nil
}

func pickStream(stdout, stderr run.Output, stream string) run.Output {
	if stream == "stderr" {
		return stderr
	}
	return stdout
}
