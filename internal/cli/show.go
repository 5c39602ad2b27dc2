package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

// showOptions are the inputs of `playbook show`.
type showOptions struct {
	Run  string
	JSON bool
}

func newShowCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &showOptions{}
	cmd := &cobra.Command{
		Use:   "show RUN [--json]",
		Short: "Show one run and its steps",
		Long: `Show one run: its playbook, status, times, params and error, then every step with its status,
exit code (or the signal that killed it), attempts, duration and why it was skipped or failed; in a
retry run, why it was reused or ran again.

RUN is a run id, a unique prefix of one, or "last". --json prints one object: the run's fields (the
runs table's columns) and "steps", each with the steps table's columns (without the output; see
playbook logs), "retry_note" (the reuse sentence) and its "attempt_history".`,
		Example: `  playbook show last
  playbook show 3f2a9c --json`,
		Args: exactArgs(1, "one RUN (id, unique prefix, or last)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Run = args[0]
			return runShow(cmd, sys, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

// stepJSON is a step in `show --json`: the steps table's column names.
type stepJSON struct {
	StepID          string            `json:"step_id"`
	Name            string            `json:"name"`
	Status          string            `json:"status"`
	Reason          *string           `json:"reason"`
	Error           *string           `json:"error"`
	ExitCode        *int              `json:"exit_code"`
	Signal          *int              `json:"signal"`
	Attempts        int               `json:"attempts"`
	StartedAt       *string           `json:"started_at"`
	FinishedAt      *string           `json:"finished_at"`
	DurationMS      *int64            `json:"duration_ms"`
	Command         *string           `json:"command"`
	StdoutBytes     int64             `json:"stdout_bytes"`
	StderrBytes     int64             `json:"stderr_bytes"`
	StdoutTruncated bool              `json:"stdout_truncated"`
	StderrTruncated bool              `json:"stderr_truncated"`
	Outputs         map[string]string `json:"outputs"`
	ContinueOnError bool              `json:"continue_on_error"`
	ReusedFrom      *string           `json:"reused_from"`
	Fingerprint     *string           `json:"fingerprint"`
	RetryReason     *string           `json:"retry_reason"`
	RetryDetail     *string           `json:"retry_detail"`
	// RetryNote is RetryReason and RetryDetail as show's text says them ("ran again: inputs changed").
	RetryNote      *string       `json:"retry_note"`
	AttemptHistory []attemptJSON `json:"attempt_history"`
}

// attemptJSON is one attempt in `show --json`: the attempts table's column names.
type attemptJSON struct {
	Attempt         int     `json:"attempt"`
	Status          string  `json:"status"`
	ExitCode        *int    `json:"exit_code"`
	Signal          *int    `json:"signal"`
	StartedAt       *string `json:"started_at"`
	FinishedAt      *string `json:"finished_at"`
	DurationMS      *int64  `json:"duration_ms"`
	Error           *string `json:"error"`
	StdoutBytes     int64   `json:"stdout_bytes"`
	StderrBytes     int64   `json:"stderr_bytes"`
	StdoutTruncated bool    `json:"stdout_truncated"`
	StderrTruncated bool    `json:"stderr_truncated"`
}

func runShow(cmd *cobra.Command, sys *System, g *globalOptions, o *showOptions) error {
	ctx := cmd.Context()
	st, d, err := openRun(ctx, sys, g, o.Run, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.JSON {
		return printShowJSON(sys.Out, d)
	}
	return printShowText(sys, d)
}

func printShowJSON(w io.Writer, d *store.RunDetail) error {
	type showJSON struct {
		runJSON
		Steps []stepJSON `json:"steps"`
	}
	out := showJSON{runJSON: newRunJSON(d.Run), Steps: []stepJSON{}}
	for _, s := range d.Steps {
		sj := stepJSON{
			StepID: s.StepID, Name: s.Name, Status: string(s.Status), Reason: jsonString(s.Reason),
			Error: jsonString(s.Error), ExitCode: jsonInt(s.ExitCode, s.ExitCode >= 0),
			Signal: jsonInt(s.Signal, s.Signal > 0), Attempts: s.Attempts, StartedAt: jsonTime(s.StartedAt),
			FinishedAt: jsonTime(s.FinishedAt), DurationMS: jsonDuration(s.StartedAt, s.FinishedAt),
			Command: jsonString(s.Command), StdoutBytes: s.Stdout.Bytes, StderrBytes: s.Stderr.Bytes,
			StdoutTruncated: s.Stdout.Truncated, StderrTruncated: s.Stderr.Truncated, Outputs: s.Outputs,
			ContinueOnError: s.ContinueOnError, ReusedFrom: jsonString(s.ReusedFrom),
			Fingerprint: jsonString(s.Fingerprint), RetryReason: jsonString(s.RetryReason),
			RetryDetail: jsonString(s.RetryDetail), RetryNote: jsonString(retryNote(s, d.Run.RetryOf, d.Steps)),
			AttemptHistory: []attemptJSON{},
		}
		if sj.Outputs == nil {
			sj.Outputs = map[string]string{}
		}
		for _, a := range d.Attempts[s.StepID] {
			sj.AttemptHistory = append(sj.AttemptHistory, attemptJSON{
				Attempt: a.Attempt, Status: string(a.Status), ExitCode: jsonInt(a.ExitCode, a.ExitCode >= 0),
				Signal: jsonInt(a.Signal, a.Signal > 0), StartedAt: jsonTime(a.StartedAt),
				FinishedAt: jsonTime(a.FinishedAt), DurationMS: jsonDuration(a.StartedAt, a.FinishedAt),
				Error: jsonString(a.Error), StdoutBytes: a.Stdout.Bytes, StderrBytes: a.Stderr.Bytes,
				StdoutTruncated: a.Stdout.Truncated, StderrTruncated: a.Stderr.Truncated,
			})
		}
		out.Steps = append(out.Steps, sj)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func printShowText(sys *System, d *store.RunDetail) error {
	r := d.Run
	w := sys.Out
	color, loc := colorOn(sys), stampLocation(sys)
	status := string(r.Status)
	if r.ExitCode >= 0 {
		status += fmt.Sprintf(" (exit %d)", r.ExitCode)
	}
	dur := spanText(r.StartedAt, r.FinishedAt)
	if r.Status == run.StatusRunning {
		dur = "running for " + spanText(r.StartedAt, sys.now())
	}
	var head table
	head.add("Run:", r.ID)
	head.add("Playbook:", fmt.Sprintf("%s (%s)", r.Playbook, r.File))
	head.add("Status:", status)
	head.paint(1, statusColor(r.Status))
	head.add("Started:", fmt.Sprintf("%s by %s@%s", formatStamp(r.StartedAt, loc), r.User, r.Host))
	head.add("Duration:", dur)
	if r.Params != "" && r.Params != "{}" {
		head.add("Params:", string(printableText([]byte(r.Params))))
	}
	if r.RetryOf != "" {
		head.add("Retry of:", r.RetryOf)
	}
	if r.ConcurrencyGroup != "" {
		head.add("Concurrency:", r.ConcurrencyGroup)
	}
	if r.Error != "" {
		head.add("Error:", string(printableText([]byte(r.Error))))
	}
	if err := head.write(w, color); err != nil {
		return err
	}
	fmt.Fprintln(w)
	// The columns of run's summary, in its order.
	var steps table
	steps.add("STEP", "STATUS", "EXIT", "DURATION", "ATTEMPTS", "NOTE")
	for _, s := range d.Steps {
		steps.add(s.StepID, string(s.Status), exitText(s.ExitCode, s.Signal), spanText(s.StartedAt, s.FinishedAt),
			strconv.Itoa(s.Attempts), stepNote(s, r.RetryOf, d.Steps))
		steps.paint(1, statusColor(s.Status))
	}
	return steps.write(w, color)
}

// stepNote says in a few words why a step is in its state: the skip reason, continue_on_error, why a
// retry reused it (and from which run) or ran it again, the first line of its error, truncated output.
// retryOf and steps are the run's.
func stepNote(s *run.StepRecord, retryOf string, steps []*run.StepRecord) string {
	var parts []string
	if s.Reason != "" && s.RetryReason == "" {
		parts = append(parts, s.Reason)
	}
	if s.ContinueOnError && s.Status != run.StatusSucceeded {
		parts = append(parts, "continue_on_error")
	}
	if note := retryNote(s, retryOf, steps); note != "" {
		parts = append(parts, note)
	} else if s.ReusedFrom != "" {
		parts = append(parts, "reused from "+idPrefix(s.ReusedFrom))
	}
	if s.Error != "" {
		line, _, _ := strings.Cut(string(printableText([]byte(s.Error))), "\n")
		if r := []rune(line); len(r) > 80 {
			line = string(r[:79]) + "…"
		}
		parts = append(parts, line)
	}
	if s.Stdout.Truncated || s.Stderr.Truncated {
		parts = append(parts, "output truncated")
	}
	return strings.Join(parts, "; ")
}

// retryNote says why a step of a retry run was reused or ran again, from its retry_reason and
// retry_detail: "reused from 3fa9c2d1e0b4", "ran again: inputs changed", "ran again: needs build,
// which ran again", ... "" for a step that has neither (not a retry, or skipped). retryOf is the run
// retried; steps are the retry run's, to say what became of a need.
func retryNote(s *run.StepRecord, retryOf string, steps []*run.StepRecord) string {
	prev := "run " + idPrefix(retryOf)
	switch s.RetryReason {
	case "":
		return ""
	case run.RetryReused:
		from := s.ReusedFrom
		if from == "" {
			from = retryOf
		}
		return "reused from " + idPrefix(from)
	case run.RetryNotSucceeded:
		return fmt.Sprintf("ran again: %s in %s", statusWord(run.Status(s.RetryDetail)), prev)
	case run.RetryNewStep:
		return "ran again: not a step of " + prev
	case run.RetryNeedNotReused:
		what := "was not reused"
		for _, n := range steps {
			if n.StepID != s.RetryDetail {
				continue
			}
			switch {
			case n.Attempts > 0 && n.ReusedFrom == "":
				what = "ran again"
			case n.Status == run.StatusSkipped:
				what = "was skipped"
			}
		}
		return fmt.Sprintf("ran again: needs %s, which %s", s.RetryDetail, what)
	case run.RetryUndone:
		return fmt.Sprintf("ran again: its dependent %s ran in %s and may have undone it", s.RetryDetail, prev)
	case run.RetryOutputsMasked:
		return "ran again: its outputs were recorded with a secret masked, so later steps could not read them"
	case run.RetryNoFingerprint:
		return fmt.Sprintf("ran again: %s recorded no fingerprint (recorded by an older playbook)", prev)
	case run.RetryChanged:
		return "ran again: inputs changed"
	}
	return "ran again: " + s.RetryReason
}
