package cli

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

type engineServeOptions struct {
	MaxConcurrent  int
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	OutputLimit    string
}

func newEngineCmd(sys *System) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "Use the process engine from other programs",
		Long: `The process engine that runs every step (process groups, timeouts, stop signals, bounded output,
secret masking), for programs in any language: see playbook engine serve.`,
		Args: exactArgs(0, "a subcommand (serve)"),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newEngineServeCmd(sys))
	return cmd
}

func newEngineServeCmd(sys *System) *cobra.Command {
	o := &engineServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run processes for another program: JSON requests on stdin, events and results on stdout",
		Long: `Read one JSON request per line on stdin and run each as the engine runs a step, at once and
concurrently. Write one JSON message per line on stdout: {"type":"event","payload":EVENT} for each
event of an execution (started, stdout, stderr, completed, failed, timed_out, cancelled), then
{"type":"result","payload":RESULT} once it is over, and {"type":"error","payload":{"line":N,"id":ID,
"code":CODE,"message":TEXT}} for a request line that could not be decoded or run. Lines of different
executions interleave, never within a line. The README documents every field.

It ends once stdin is closed and every execution is over (exit status 0). SIGINT or SIGTERM stops
the running executions (their stop signal, then SIGKILL after the grace) and exits 130 or 143.
Nothing is recorded in the database.`,
		Example: `  echo '{"id":"hello","command":{"type":"exec","program":"echo","args":["hi"]}}' | playbook engine serve`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEngineServe(cmd.Context(), sys, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.MaxConcurrent, "max-concurrent", engine.DefaultMaxConcurrent, "executions running at once; more wait their turn")
	f.DurationVar(&o.DefaultTimeout, "default-timeout", engine.DefaultTimeout, "timeout of a request without timeout_ms (0: none)")
	f.DurationVar(&o.MaxTimeout, "max-timeout", engine.DefaultMaxTimeout, "largest timeout_ms accepted (0: no limit)")
	f.StringVar(&o.OutputLimit, "output-limit", "1MiB", "bytes of each stream kept in a result, head and tail")
	return cmd
}

func runEngineServe(ctx context.Context, sys *System, o *engineServeOptions) error {
	if o.MaxConcurrent < 1 {
		return usageErrorf("--max-concurrent must be at least 1")
	}
	if o.DefaultTimeout < 0 || o.MaxTimeout < 0 {
		return usageErrorf("--default-timeout and --max-timeout must not be negative (0 means none)")
	}
	limit, err := parseOutputLimit(o.OutputLimit)
	if err != nil {
		return err
	}
	cfg := engine.Config{
		MaxConcurrent:  o.MaxConcurrent,
		DefaultTimeout: o.DefaultTimeout,
		MaxTimeout:     o.MaxTimeout,
		OutputLimit:    limit,
		// The bridge writes each result as its execution ends; kept longer, results would only fill
		// the memory of a long-lived server.
		Retention: time.Nanosecond,
	}
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = engine.NoTimeout
	}
	if cfg.MaxTimeout == 0 {
		cfg.MaxTimeout = engine.NoTimeout
	}
	e, err := engine.New(cfg)
	if err != nil {
		return usageErrorf("%v", err)
	}
	defer e.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The signal that stopped the server, if one did: it becomes the exit status (128+N).
	stoppedBy := make(chan syscall.Signal, 1)
	if sys.Signals != nil {
		sigs, stop := sys.Signals()
		defer stop()
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case sig := <-sigs:
				stoppedBy <- signo(sig)
				cancel()
			case <-done:
			}
		}()
	}
	err = e.ServeJSON(ctx, sys.In, sys.Out)
	select {
	case sig := <-stoppedBy:
		return &ExitError{Code: run.SignalExit(sig)}
	default:
	}
	if err != nil {
		return fmt.Errorf("engine serve: %w", err)
	}
	return nil
}

// parseOutputLimit reads an --output-limit flag: a size from 1 byte to playbook.MaxOutputLimit.
func parseOutputLimit(flag string) (int64, error) {
	n, err := playbook.ParseSize(flag)
	if err != nil {
		return 0, usageErrorf("--output-limit: %v; want a size from 1 byte to 1GiB, such as 65536, 512KiB or 1MiB", err)
	}
	if n <= 0 || n > playbook.MaxOutputLimit {
		return 0, usageErrorf("--output-limit %q: want a size from 1 byte to 1GiB, such as 65536, 512KiB or 1MiB", flag)
	}
	return n, nil
}
