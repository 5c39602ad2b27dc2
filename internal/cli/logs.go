package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

// logsOptions are the inputs of `playbook logs`.
type logsOptions struct {
	Run     string
	Step    string // "" = every step
	Stdout  bool   // --stdout: only the standard output
	Stderr  bool   // --stderr: only the standard error; with Stdout, or neither, both
	Attempt int    // 0 = the step's last attempt
	Raw     bool
	Follow  bool // print the running step's output as it comes, until it ends
}

// streams are the streams to print, in order: both unless exactly one of --stdout and --stderr.
func (o *logsOptions) streams() []string {
	switch {
	case o.Stdout && !o.Stderr:
		return []string{"stdout"}
	case o.Stderr && !o.Stdout:
		return []string{"stderr"}
	}
	return []string{"stdout", "stderr"}
}

// logLabel is what starts each line of a stream in `logs`: the step when every step is printed, the
// stream when both are, so that a line found by grep says where it comes from ("[build stderr] ",
// "[build] ", "[stderr] "); "" when one stream of one step is printed, as it was written. A step with
// several attempts says which one the lines are from ("[test stdout, attempt 2] ").
func logLabel(step, stream string, attempt int) string {
	var parts []string
	if step != "" {
		parts = append(parts, step)
	}
	if stream != "" {
		parts = append(parts, stream)
	}
	if len(parts) == 0 {
		return ""
	}
	label := strings.Join(parts, " ")
	if attempt > 0 {
		label += fmt.Sprintf(", attempt %d", attempt)
	}
	return "[" + label + "] "
}

func newLogsCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs RUN [STEP] [--stdout|--stderr] [--attempt N] [--raw] [-f]",
		Short: "Print the stored output of a run's steps",
		Long: `Print the output the database kept of a step (its last attempt, or --attempt N), or of every
step of the run when STEP is omitted: its standard output, then its standard error. --stdout or
--stderr prints only that stream.

Each line says where it comes from: "[build stderr] " before a line of every step's two streams,
"[build] " with one stream, "[stderr] " with both streams of one STEP (a step that ran more than once
adds the attempt: "[test stdout, attempt 2] "). One stream of one STEP is printed as it was written,
without labels. So "playbook logs last | grep denied" shows which step and stream said it.

The database keeps a bounded copy of each stream (the head and the tail, with a marker saying how
many bytes were left out); a note on stderr says when a stream was truncated. The complete streams
exist only in the files of a run started with --log-dir.

A running step shows its output so far: the runner stores it about once a second. -f (--follow)
keeps printing what STEP writes until the step ends (waiting for it to start if it has not), then
exits 0 whatever the step's outcome (playbook show tells it). When the stored copy keeps only the
head and the tail, a line says how many bytes were not kept. -f needs a STEP.

Invalid UTF-8 is shown as U+FFFD; --raw writes the stored bytes unchanged (for binary output, with
one STEP and --stdout or --stderr). RUN is a run id, a unique prefix of one, or "last".`,
		Example: `  playbook logs last
  playbook logs 3f2a9c build --stderr
  playbook logs last test --attempt 1
  playbook logs last deploy -f
  playbook logs last | grep -i denied`,
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
	f.BoolVar(&o.Stdout, "stdout", false, "print only the standard output")
	f.BoolVar(&o.Stderr, "stderr", false, "print only the standard error")
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
	if o.Step != "" {
		step := d.Step(o.Step)
		if step == nil {
			return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("run %s has no step %q (steps: %s)", idPrefix(id), o.Step, strings.Join(d.Run.StepIDs, ", "))}
		}
		if o.Follow {
			return followStep(ctx, sys, st, d.Run.ID, step.StepID, o.streams(), o.Raw)
		}
		return printStepLog(ctx, sys, st, d, step, o, false)
	}
	for _, step := range d.Steps {
		if step.Attempts == 0 && step.StartedAt.IsZero() {
			continue // never ran: nothing to show
		}
		if err := printStepLog(ctx, sys, st, d, step, o, true); err != nil {
			return err
		}
	}
	return nil
}

// printStepLog prints the streams o asks for of one step, each line labelled (see logLabel); all says
// that every step of the run is printed.
func printStepLog(ctx context.Context, sys *System, st *store.Store, d *store.RunDetail, step *run.StepRecord, o *logsOptions, all bool) error {
	var (
		stdout, stderr run.Output
		attempt        = step.Attempts
	)
	if o.Attempt > 0 {
		a, err := st.AttemptOutput(ctx, d.Run.ID, step.StepID, o.Attempt)
		if errors.Is(err, store.ErrNotFound) {
			return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("step %s of run %s has no attempt %d (it has %d)", step.StepID, idPrefix(d.Run.ID), o.Attempt, len(d.Attempts[step.StepID]))}
		}
		if err != nil {
			return storeError(err)
		}
		stdout, stderr, attempt = a.Stdout, a.Stderr, o.Attempt
	} else {
		full, err := st.StepOutput(ctx, d.Run.ID, step.StepID)
		if err != nil {
			return storeError(err)
		}
		stdout, stderr = full.Stdout, full.Stderr
	}
	switch {
	case step.ReusedFrom != "" && o.Attempt == 0:
		fmt.Fprintf(sys.ErrOut, "playbook: step %s was reused from run %s: see playbook logs %s %s\n", step.StepID, step.ReusedFrom, step.ReusedFrom, step.StepID)
	case o.Attempt == 0 && step.Status == run.StatusRunning:
		fmt.Fprintf(sys.ErrOut, "playbook: step %s is still running: this is its output so far (stored about once a second); -f follows it\n", step.StepID)
	case stdout.Data == nil && stderr.Data == nil && o.Attempt == 0 && step.Attempts == 0:
		why := statusWord(step.Status)
		if step.Reason != "" {
			why += ": " + reasonText(step.Reason)
		}
		fmt.Fprintf(sys.ErrOut, "playbook: step %s did not run (%s)\n", step.StepID, why)
	}
	streams := o.streams()
	for _, stream := range streams {
		out := pickStream(stdout, stderr, stream)
		labelStep, labelStream, labelAttempt := "", "", 0
		if all {
			labelStep = step.StepID
			if step.Attempts > 1 {
				labelAttempt = attempt
			}
		}
		if len(streams) > 1 {
			labelStream = stream
		}
		lw := newLabelWriter(sys.Out, logLabel(labelStep, labelStream, labelAttempt))
		data := out.Data
		if !o.Raw {
			data = printableText(data)
		}
		if _, err := lw.Write(data); err != nil {
			return err
		}
		if err := lw.Close(); err != nil {
			return err
		}
		if out.Truncated {
			fmt.Fprintf(sys.ErrOut, "playbook: the %s of step %s was truncated: %d bytes produced, the head and the tail kept (the marker shows where); the complete stream is only in the files of a run started with --log-dir\n",
				stream, step.StepID, out.Bytes)
		}
	}
	return nil
}

func pickStream(stdout, stderr run.Output, stream string) run.Output {
	if stream == "stderr" {
		return stderr
	}
	return stdout
}

// labelWriter writes each line it is given with label in front, a line at a time, so that two of them
// writing in turn to one writer never mix their lines. It holds back a line until its end comes; Close
// writes one left without an end, ended. With no label, it passes bytes through as they come.
type labelWriter struct {
	w       io.Writer
	label   string
	partial []byte
}

func newLabelWriter(w io.Writer, label string) *labelWriter {
	return &labelWriter{w: w, label: label}
}

func (l *labelWriter) Write(b []byte) (int, error) {
	if l.label == "" {
		return l.w.Write(b)
	}
	n := len(b)
	var out []byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.partial = append(l.partial, b...)
			break
		}
		out = append(out, l.label...)
		out = append(out, l.partial...)
		out = append(out, b[:i+1]...)
		l.partial = l.partial[:0]
		b = b[i+1:]
	}
	if len(out) > 0 {
		if _, err := l.w.Write(out); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Close writes the line held back, if any, with a newline after it.
func (l *labelWriter) Close() error {
	if l.label == "" || len(l.partial) == 0 {
		return nil
	}
	line := append(append([]byte(l.label), l.partial...), '\n')
	l.partial = l.partial[:0]
	_, err := l.w.Write(line)
	return err
}
