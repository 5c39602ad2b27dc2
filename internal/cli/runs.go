package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/run"
)

// runsOptions are the flags of `playbook runs`.
type runsOptions struct {
	Limit    int
	Status   string
	Playbook string
	Since    string
	JSON     bool
}

// runStatuses are the statuses a run can have, for --status.
var runStatuses = []run.Status{run.StatusRunning, run.StatusSucceeded, run.StatusFailed,
	run.StatusTimedOut, run.StatusCancelled, run.StatusInterrupted, run.StatusDetached}

func newRunsCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &runsOptions{}
	cmd := &cobra.Command{
		Use:   "runs [--limit N] [--status S] [--playbook NAME] [--since DUR|TIME] [--json]",
		Short: "List recorded runs, newest first",
		Long: `List the runs recorded in the database, newest first: id (a prefix; any unique prefix works
as RUN in show, logs and retry), playbook, status, start time, duration and who ran it where. Times
are in local time on a terminal, else in UTC; each one names its zone.

--json prints one JSON array of run objects whose fields are the columns of the runs table.`,
		Example: `  playbook runs
  playbook runs --status failed --since 7d
  playbook runs --playbook deploy-web --limit 5 --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRuns(cmd, sys, g, o)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.Limit, "limit", "n", 20, "show at most `N` runs (0 = all)")
	f.StringVar(&o.Status, "status", "", "only runs with this status: running, succeeded, failed, timed_out, cancelled, interrupted")
	f.StringVar(&o.Playbook, "playbook", "", "only runs of the playbook with this `NAME`")
	f.StringVar(&o.Since, "since", "", "only runs started since `DUR` ago (90m, 36h, 7d) or since a time (2026-11-26, RFC 3339)")
	f.BoolVar(&o.JSON, "json", false, "print a JSON array")
	return cmd
}

func runRuns(cmd *cobra.Command, sys *System, g *globalOptions, o *runsOptions) error {
	ctx := cmd.Context()
	filter := store.RunFilter{Limit: o.Limit, Playbook: o.Playbook}
	if o.Limit < 0 {
		return usageErrorf("--limit must be 0 (all) or more, not %d", o.Limit)
	}
	if o.Status != "" {
		ok := false
		for _, s := range runStatuses {
			ok = ok || string(s) == o.Status
		}
		if !ok {
			return usageErrorf("--status %q is not a run status (running, succeeded, failed, timed_out, cancelled, interrupted)", o.Status)
		}
		filter.Status = run.Status(o.Status)
	}
	if o.Since != "" {
		t, err := parseSince(o.Since, sys.now())
		if err != nil {
			return &UsageError{Err: err}
		}
		filter.Since = t
	}
	st, err := openStore(ctx, sys, g, false)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.ListRuns(ctx, filter)
	if err != nil {
		return storeError(err)
	}
	if o.JSON {
		ids := make([]string, len(runs))
		for i, r := range runs {
			ids[i] = r.ID
		}
		owners, err := st.RunOwners(ctx, ids)
		if err != nil {
			return storeError(err)
		}
		out := make([]runsJSON, 0, len(runs))
		for _, r := range runs {
			out = append(out, newRunsJSON(r, owners[r.ID]))
		}
		enc := json.NewEncoder(sys.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(runs) == 0 {
		fmt.Fprintln(sys.ErrOut, "No runs recorded.")
		return nil
	}
	loc := stampLocation(sys)
	var t table
	t.add("ID", "PLAYBOOK", "STATUS", "STARTED", "DURATION", "USER@HOST")
	for _, r := range runs {
		dur := spanText(r.StartedAt, r.FinishedAt)
		if r.Status == run.StatusRunning {
			dur = "running " + spanText(r.StartedAt, sys.now())
		}
		t.add(idPrefix(r.ID), r.Playbook, string(r.Status), formatStamp(r.StartedAt, loc), dur, r.User+"@"+r.Host)
		t.paint(2, statusColor(r.Status))
	}
	return t.write(sys.Out, colorOn(sys))
}

// runsJSON is a run in `runs --json`: every column of the runs table, the owner's included.
type runsJSON struct {
	runJSON
	OwnerPID    *int    `json:"owner_pid"`
	OwnerStart  *int64  `json:"owner_start"`
	OwnerHost   *string `json:"owner_host"`
	OwnerBootID *string `json:"owner_boot_id"`
}

func newRunsJSON(r *run.Record, o store.RunOwner) runsJSON {
	out := runsJSON{runJSON: newRunJSON(r), OwnerHost: jsonString(o.Host), OwnerBootID: jsonString(o.BootID)}
	if o.PID > 0 {
		out.OwnerPID = &o.PID
	}
	if o.Start > 0 {
		start := int64(o.Start)
		out.OwnerStart = &start
	}
	return out
}
