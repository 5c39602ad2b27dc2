package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

type retryOptions struct {
	Run   string
	Force bool
	run   runOptions
}

func newRetryCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &retryOptions{}
	cmd := &cobra.Command{
		Use:   "retry RUN [-p name=value]...",
		Short: "Run a recorded run again, reusing the steps that succeeded",
		Long: `Start a new run of the same playbook file with the same params. A step that succeeded in RUN
is not run again but recorded as reused, with its outputs, when what it would run is the same (its
fingerprint: command, script content, env, dir, params), every step it needs was reused too, and no
step after it whose if calls failure(), always() or cancelled() ran in RUN (a rollback or a lock
release may have undone it). Every other step runs. playbook show says why each step ran again or
was reused. The new run's retry_of names RUN.

Steps RUN skipped because its command line left them out (--only, --skip) are skipped again, unless
the retry is given --only or --skip of its own, which then decide alone.

RUN is a run id, a unique prefix of one, or "last". The file must be unchanged since RUN (same
sha256) unless --force. Params come from the same sources as for run (-p, --params-file,
PLAYBOOK_PARAM_<NAME>), the recorded values ranking below -p and the file and above the environment.
Secret params are never recorded: give them again (on a terminal, playbook asks); a secret with a
default takes its default.`,
		Example: `  playbook retry last
  PLAYBOOK_PARAM_TOKEN="$TOKEN" playbook retry 3fa9`,
		Args: exactArgs(1, "one run (an id, a unique prefix, or last)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Run = args[0]
			return runRetry(cmd.Context(), sys, g, o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.run.Only, "only", nil, "run only these steps (`ID,...`) and the steps they need (default: RUN's selection)")
	f.StringSliceVar(&o.run.Skip, "skip", nil, "skip these steps (`ID,...`) (default: RUN's selection)")
	f.BoolVar(&o.Force, "force", false, "retry even if the playbook file changed since the run")
	f.StringArrayVarP(&o.run.Params, "param", "p", nil, "set a param: `name=value` (repeatable; also $PLAYBOOK_PARAM_<NAME>)")
	paramsFileFlag(f, &o.run.ParamsFile)
	f.Var(stepCount{&o.run.MaxParallel}, "max-parallel", "steps running at once, at least 1 (default: the playbook's max_parallel, else 4 per CPU, at least 16)")
	f.StringVarP(&o.run.Output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.run.LogDir, "log-dir", "", "keep every step's complete stdout and stderr in files under `DIR`/<run id>/")
	f.BoolVar(&o.run.NoColor, "no-color", false, "no colour (also when NO_COLOR is set)")
	f.StringVar(&o.run.OutputLimit, "output-limit", "", "bytes of each step's stdout and stderr kept in the database, head and tail (default 1MiB)")
	o.run.Temporal.flags(f, "retry on the Temporal frontend at `HOST:PORT`, as the run was (a run on Temporal is retried only there)")
	f.DurationVar(&o.run.HeartbeatTimeout, "heartbeat-timeout", 0, "with --temporal: how long a worker may be silent before its step's attempt is lost (default 20s)")
	return cmd
}

func runRetry(ctx context.Context, sys *System, g *globalOptions, o *retryOptions) error {
	if err := requireDatabase(sys, g); err != nil {
		return err
	}
	st, detail, err := openRun(ctx, sys, g, o.Run, true)
	if err != nil {
		return err
	}
	st.Close() // the new run opens it again, for the run's whole length
	prev := detail.Run
	if prev.Status == run.StatusRunning || prev.Status == run.StatusDetached {
		return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("run %s is still running; retry it once it has finished", idPrefix(prev.ID))}
	}
	if prev.WorkflowID != "" && o.run.Temporal.Address == "" {
		// Run here, its steps would all run on this machine, whatever hosts their runs_on named.
		return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("run %s ran on Temporal (workflow %s): retry it there with --temporal HOST:PORT (and its --key-file), or it would run every step here",
			idPrefix(prev.ID), prev.WorkflowID)}
	}

	pb, err := playbook.Load(prev.File)
	if err != nil {
		return invalidPlaybook(sys.ErrOut, err)
	}
	if pb.SHA256 != prev.FileSHA256 && !o.Force {
		return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("%s has changed since run %s (sha256 %.12s…, now %.12s…); retry with --force to run the current file",
			prev.File, idPrefix(prev.ID), prev.FileSHA256, pb.SHA256)}
	}

	given, unrecorded, err := recordedParams(pb, prev.Params)
	if err != nil {
		return err
	}
	// Every step of RUN, whatever its status: the scheduling core decides which to reuse, and needs the others
	// to tell whether a step after a success ran and may have undone it.
	reuse := map[string]*run.StepRecord{}
	succeeded := 0
	for _, s := range detail.Steps {
		if pb.Step(s.StepID) != nil {
			reuse[s.StepID] = s
			if s.Status == run.StatusSucceeded {
				succeeded++
			}
		}
	}
	if succeeded == len(pb.Steps) {
		fmt.Fprintf(sys.ErrOut, "Every step of run %s succeeded; the retry reuses those whose inputs are unchanged.\n", idPrefix(prev.ID))
	}

	ro := o.run
	if len(ro.Only) == 0 && len(ro.Skip) == 0 {
		// The user left these out of RUN on purpose: the retry finishes what RUN was asked to do.
		for _, s := range detail.Steps {
			if s.Reason == run.ReasonSkippedByUser && pb.Step(s.StepID) != nil {
				if ro.skipped == nil {
					ro.skipped = map[string]string{}
				}
				ro.skipped[s.StepID] = "skipped by the user in run " + idPrefix(prev.ID)
			}
		}
	}
	ro.File = prev.File
	ro.retryOf = prev.ID
	ro.reuse = reuse
	ro.given = given
	ro.unrecorded = unrecorded
	return runRun(ctx, sys, g, &ro)
}

// recordedParams turns the params a run recorded (JSON, secrets as "***") back into values, and lists
// the secret params the run had, which were never recorded: they must come again from another source
// (gatherParams), or from their defaults.
func recordedParams(pb *playbook.Playbook, recorded string) (map[string]string, []string, error) {
	var values map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader([]byte(recorded)))
	dec.UseNumber()
	if recorded != "" {
		if err := dec.Decode(&values); err != nil {
			return nil, nil, fmt.Errorf("the recorded params are not a JSON object: %w", err)
		}
	}
	out := map[string]string{}
	var secrets []string
	for _, p := range pb.Params {
		raw, ok := values[p.Name]
		if !ok {
			continue
		}
		if p.Secret {
			secrets = append(secrets, p.Name)
			continue
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("recorded param %s: %w", p.Name, err)
		}
		out[p.Name] = fmt.Sprint(v)
	}
	sort.Strings(secrets)
	return out, secrets, nil
}

func paramFlagsHint(names []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "-p %s=...", n)
	}
	return b.String()
}
