package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/internal/store"
)

// pruneOptions are the flags of `playbook prune`.
type pruneOptions struct {
	OlderThan string
	Keep      int
	DryRun    bool // list what would go, delete nothing
}

func newPruneCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &pruneOptions{}
	cmd := &cobra.Command{
		Use:   "prune --older-than DUR | --keep N [--dry-run]",
		Short: "Delete old runs and their output",
		Long: `Delete old runs with their steps, attempts and stored output, then give the space back to the
file system. A running run is never deleted. Runs that retried a deleted run keep their record with
retry_of cleared.

--older-than DUR deletes the runs started more than DUR ago (90m, 36h, 7d, 2w); --keep N deletes
all but the N most recently started runs. Give exactly one.

--dry-run lists the runs that would go (id, playbook, status, start) and deletes nothing.

A database that does not exist is not created: prune says so and exits 3.`,
		Example: `  playbook prune --older-than 30d --dry-run
  playbook prune --older-than 30d
  playbook prune --keep 1000`,
		Args: exactArgs(0, "no arguments (use --older-than or --keep)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			byAge, byCount := cmd.Flags().Changed("older-than"), cmd.Flags().Changed("keep")
			if byAge == byCount {
				return usageErrorf("give exactly one of --older-than DUR and --keep N")
			}
			var opts store.PruneOptions
			if byAge {
				d, err := parseAge(o.OlderThan)
				if err != nil {
					return usageErrorf("--older-than: %v", err)
				}
				opts.Before = sys.now().Add(-d)
			} else {
				if o.Keep < 1 {
					return usageErrorf("--keep must be 1 or more (to delete every run use --older-than 0s)")
				}
				opts.Keep = o.Keep
			}
			if err := requireDatabase(sys, g); err != nil {
				return err
			}
			if o.DryRun {
				return pruneDryRun(cmd, sys, g, opts)
			}
			st, err := openStore(ctx, sys, g, true)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := st.Prune(ctx, opts)
			if err != nil {
				return storeError(err)
			}
			fmt.Fprintf(sys.Out, "Removed %d run(s), %d step(s), %d attempt(s); database %s -> %s\n",
				res.Runs, res.Steps, res.Attempts, formatBytes(res.SizeBefore), formatBytes(res.SizeAfter))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.OlderThan, "older-than", "", "delete runs started more than `DUR` ago (90m, 36h, 7d, 2w)")
	f.IntVar(&o.Keep, "keep", 0, "keep the `N` most recent runs, delete the others")
	f.BoolVar(&o.DryRun, "dry-run", false, "list the runs that would be deleted, and delete nothing")
	return cmd
}

// pruneDryRun lists the runs prune would delete, as `runs` lists runs, and deletes nothing. It opens
// the database as the read-only commands do.
func pruneDryRun(cmd *cobra.Command, sys *System, g *globalOptions, opts store.PruneOptions) error {
	st, err := openStore(cmd.Context(), sys, g, false)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.PruneCandidates(cmd.Context(), opts)
	if err != nil {
		return storeError(err)
	}
	if len(runs) == 0 {
		fmt.Fprintln(sys.Out, "No run would be removed (--dry-run).")
		return nil
	}
	color, loc := colorOn(sys), stampLocation(sys)
	var t table
	t.add("ID", "PLAYBOOK", "STATUS", "STARTED")
	for _, r := range runs {
		t.add(idPrefix(r.ID), r.Playbook, string(r.Status), formatStamp(r.StartedAt, loc))
		t.paint(2, statusColor(r.Status))
	}
	if err := t.write(sys.Out, color); err != nil {
		return err
	}
	_, err = fmt.Fprintf(sys.Out, "\nWould remove %d run(s) with their steps, attempts and output; nothing was deleted (--dry-run).\n", len(runs))
	return err
}

// formatBytes shows a size in B, KiB, MiB or GiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 2 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"KiB", "MiB", "GiB"}[i])
}
