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
}

func newPruneCmd(sys *System, g *globalOptions) *cobra.Command {
	o := &pruneOptions{}
	cmd := &cobra.Command{
		Use:   "prune --older-than DUR | --keep N",
		Short: "Delete old runs and their output",
		Long: `Delete old runs with their steps, attempts and stored output, then give the space back to the
file system. A running run is never deleted. Runs that retried a deleted run keep their record with
retry_of cleared.

--older-than DUR deletes the runs started more than DUR ago (90m, 36h, 7d, 2w); --keep N deletes
all but the N most recently started runs. Give exactly one.`,
		Example: `  playbook prune --older-than 30d
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
	return cmd
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
