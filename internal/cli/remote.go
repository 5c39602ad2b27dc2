package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/playbook/local"
	"github.com/playbookhq/playbook/pkg/run"
)

// PluginName is the program that carries out the commands needing Temporal's SDK (`worker`,
// `run --temporal`, `attach`): this same command line given a Remote. `playbook` does not link the
// SDK, whose package initialisation alone would slow every local run's start-up; it hands those
// commands to this program, found next to its own executable, then in PATH, as git and kubectl run
// their plugins.
const PluginName = "playbook-temporal"

// Remote carries out the commands that need Temporal. In `playbook` it is nil, and those commands are
// handed to PluginName (System.Exec); PluginName sets it.
type Remote interface {
	// Worker serves the worker's queues until ctx ends, then drains: no new step, running ones
	// finish (or are stopped at a deadline).
	Worker(ctx context.Context, w RemoteWorker) error
	// Run submits the playbook as a workflow and follows it to its end, writing its records to
	// r.Store and showing them to r.Observer. The end of ctx cancels the workflow (the graceful
	// stop), r.Kill forces it.
	Run(ctx context.Context, r RemoteRun) (*local.Summary, error)
	// Attach follows a run another process submitted, from wherever it is to its end, as Run does.
	Attach(ctx context.Context, a RemoteAttach) (*local.Summary, error)
}

// TemporalOptions are the connection flags every command that reaches Temporal takes. A blank one is
// filled from its environment variable by the Remote (PLAYBOOK_TEMPORAL, PLAYBOOK_TEMPORAL_NAMESPACE,
// ...), but for `run`, where only --temporal makes a run distributed.
type TemporalOptions struct {
	Address, Namespace, KeyFile           string
	TLSCA, TLSCert, TLSKey, TLSServerName string
	APIKeyFile                            string
}

func (o *TemporalOptions) flags(f *pflag.FlagSet, addressHelp string) {
	f.StringVar(&o.Address, "temporal", "", addressHelp)
	f.StringVar(&o.Namespace, "namespace", "", "Temporal namespace (default $PLAYBOOK_TEMPORAL_NAMESPACE, else default)")
	f.StringVar(&o.KeyFile, "key-file", "", "`FILE` holding the key that encrypts params, commands and outputs before they reach Temporal (default $PLAYBOOK_TEMPORAL_KEY_FILE)")
	f.StringVar(&o.TLSCA, "tls-ca", "", "CA certificate (PEM) the server's certificate must chain to (default $PLAYBOOK_TEMPORAL_TLS_CA)")
	f.StringVar(&o.TLSCert, "tls-cert", "", "client certificate (PEM) for mutual TLS (default $PLAYBOOK_TEMPORAL_TLS_CERT)")
	f.StringVar(&o.TLSKey, "tls-key", "", "the client certificate's private key (default $PLAYBOOK_TEMPORAL_TLS_KEY)")
	f.StringVar(&o.TLSServerName, "tls-server-name", "", "name checked in the server's certificate (default $PLAYBOOK_TEMPORAL_TLS_SERVER_NAME)")
	f.StringVar(&o.APIKeyFile, "api-key-file", "", "`FILE` holding an API key, as Temporal Cloud needs (default $PLAYBOOK_TEMPORAL_API_KEY_FILE)")
}

// RemoteWorker is what `playbook worker` was given.
type RemoteWorker struct {
	Temporal    TemporalOptions
	Getenv      func(string) string
	Queues      []string
	MaxParallel int
	Dir         string // relative step dirs are in it; never ""
	Name        string // recorded with every attempt; never ""
	// Store is the worker's own database, where it records the attempts it runs; the folder beside
	// it holds the workers' instance lock files (workers/).
	Store *store.Store
	Log   io.Writer
}

// RemoteRun is a playbook to run on Temporal, loaded and checked as a local run's.
type RemoteRun struct {
	Temporal         TemporalOptions
	Getenv           func(string) string
	Playbook         *playbook.Playbook
	Source           []byte // the file's bytes, which the workflow parses again
	Scripts          playbook.Scripts
	Params           map[string]string // -p values as typed
	MaxParallel      int
	HeartbeatTimeout time.Duration
	FingerprintKey   []byte
	User, Host       string // who submits the run, from where: recorded with it
	// RetryOf and Reuse make the run a retry of another (playbook retry --temporal), as a local retry's.
	RetryOf  string
	Reuse    map[string]*run.StepRecord
	Skip     map[string]string // --only, --skip: playbook.Select
	Store    *store.Store
	Observer run.Observer
	Kill     <-chan struct{}
	Log      io.Writer // the SDK's warnings; stdout is the view's
}

// RemoteAttach is a run on Temporal to follow; the Store has adopted it.
type RemoteAttach struct {
	Temporal   TemporalOptions
	Getenv     func(string) string
	RunID      string
	WorkflowID string
	Store      *store.Store
	Observer   run.Observer
	Kill       <-chan struct{}
	Log        io.Writer // the SDK's warnings; stdout is the view's
}

// handoff replaces this process with PluginName, given the same arguments. It returns only on failure:
// exit 2, with how to install it, when it is not there.
func handoff(sys *System, args []string) error {
	if sys.Exec == nil {
		return notInstalled(errors.New("this build cannot run other programs"))
	}
	err := sys.Exec(PluginName, args)
	if errors.Is(err, errNoPlugin) {
		return notInstalled(err)
	}
	return fmt.Errorf("start %s: %w", PluginName, err)
}

func notInstalled(err error) error {
	return &ExitError{Code: run.ExitUsage, Err: fmt.Errorf("worker, run --temporal and attach are carried out by %s: %v. "+
		"Install it with playbook: `go install github.com/playbookhq/playbook/cmd/...@latest` "+
		"(in a checkout, `go install ./cmd/...`) puts both in the same folder", PluginName, err)}
}

// errNoPlugin is what execSibling returns when the program is neither next to this one nor in PATH.
var errNoPlugin = errors.New("not found next to this program nor in PATH")

// execSibling is System.Exec for the real process: name next to os.Executable(), else in PATH, run
// with syscall.Exec so that it takes this process's place (its pid, its terminal, its signals).
func execSibling(name string, args []string) error {
	path := ""
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), name); isExecutable(p) {
			path = p
		}
	}
	if path == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return fmt.Errorf("%s %w", name, errNoPlugin)
		}
		path = p
	}
	return syscall.Exec(path, append([]string{path}, args...), os.Environ())
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func newWorkerCmd(sys *System, g *globalOptions) *cobra.Command {
	var t TemporalOptions
	var queues, dir, name string
	maxPar := 8
	cmd := &cobra.Command{
		Use:   "worker --temporal HOST:PORT --queue NAME[,NAME...]",
		Short: "Run the steps that distributed runs send to this host's queues",
		Long: `Serve task queues on Temporal: run the steps that distributed runs (playbook run --temporal) send to
the queues named by --queue (a step's runs_on; "playbook" when it names none), with the same process
handling as a local run (process groups, stop_signal and stop_grace, bounded output, masking,
$PLAYBOOK_OUTPUT). Every worker also carries the runs' workflows, so a run goes on when the machine
that submitted it is gone.

A step's relative dir is relative to --dir; its environment is the worker's, then the playbook's env,
then the step's. Each attempt is recorded with the worker's --name.

SIGTERM or Ctrl-C drains: no new step starts, running steps finish (or are stopped after a minute),
then the worker exits.`,
		Example: `  playbook worker --temporal temporal.internal:7233 --queue db --dir /srv/app
  PLAYBOOK_TEMPORAL=localhost:7233 playbook worker --queue web,playbook --max-parallel 4`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sys.Remote == nil {
				return handoff(sys, g.args)
			}
			var qs []string
			for _, q := range strings.Split(queues, ",") {
				if err := playbook.CheckQueue(q); err != nil {
					return usageErrorf("--queue %q: %v", queues, err)
				}
				qs = append(qs, q)
			}
			if name == "" {
				name = hostname()
			}
			if dir == "" {
				wd, err := os.Getwd()
				if err != nil {
					return fmt.Errorf("the worker's folder: %w (give --dir)", err)
				}
				dir = wd
			} else if abs, err := filepath.Abs(dir); err == nil {
				dir = abs
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return usageErrorf("--dir %s: not a folder the worker can run steps in", dir)
			}
			st, err := openStore(cmd.Context(), sys, g, true)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx, stop := signalContext(cmd.Context(), sys)
			defer stop()
			return sys.Remote.Worker(ctx, RemoteWorker{Temporal: t, Getenv: sys.getenv, Queues: qs, MaxParallel: maxPar,
				Dir: dir, Name: name, Store: st, Log: sys.ErrOut})
		},
	}
	f := cmd.Flags()
	t.flags(f, "Temporal frontend `HOST:PORT` (default $PLAYBOOK_TEMPORAL)")
	f.StringVar(&queues, "queue", playbook.DefaultQueue, "task queues to serve, comma-separated")
	f.Var(stepCount{&maxPar}, "max-parallel", "steps running at once on this worker, at least 1")
	f.StringVar(&dir, "dir", "", "folder that steps' relative dirs are in (default: the current folder)")
	f.StringVar(&name, "name", "", "the name recorded with every attempt this worker runs (default: the host name)")
	return cmd
}

func newAttachCmd(sys *System, g *globalOptions) *cobra.Command {
	var t TemporalOptions
	var output string
	var noColor bool
	cmd := &cobra.Command{
		Use:   "attach RUN",
		Short: "Follow a distributed run to its end, from wherever it is",
		Long: `Follow a run on Temporal (playbook run --temporal) whose submitter died or was stopped: show the
same live view as run, from where the run is to its end, write the records the submitter did not take
to the database (on any machine with the same database file), and exit with the run's status. RUN is
a run id, a unique prefix of one, or "last".

Ctrl-C cancels the run, as it does for run; a second Ctrl-C forces it.`,
		Example: `  playbook attach 3f2a9c
  PLAYBOOK_TEMPORAL=localhost:7233 playbook attach last --output json`,
		Args: exactArgs(1, "one run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sys.Remote == nil {
				return handoff(sys, g.args)
			}
			if output != "text" && output != "json" {
				return usageErrorf("--output must be text or json, not %q", output)
			}
			return runAttach(cmd.Context(), sys, g, t, args[0], output, noColor)
		},
	}
	f := cmd.Flags()
	t.flags(f, "Temporal frontend `HOST:PORT` (default $PLAYBOOK_TEMPORAL)")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&noColor, "no-color", false, "no colour (also when NO_COLOR is set)")
	return cmd
}

// runAttach adopts the run in the database, shows what is recorded of it, then follows it.
func runAttach(ctx context.Context, sys *System, g *globalOptions, t TemporalOptions, ref, output string, noColor bool) error {
	st, err := openStore(ctx, sys, g, true)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := resolveRun(ctx, st, ref)
	if err != nil {
		return err
	}
	if err := st.Adopt(ctx, id); err != nil {
		return &ExitError{Code: run.ExitUsage, Err: err}
	}
	d, err := st.RunDetail(ctx, id)
	if err != nil {
		return storeError(err)
	}
	width := 0
	for _, s := range d.Run.StepIDs {
		width = max(width, len(s))
	}
	return follow(ctx, sys, output, noColor, len(d.Run.StepIDs), width, "", true, func(ctx context.Context, prog progress, kill <-chan struct{}) (*local.Summary, error) {
		replay(prog, d)
		return sys.Remote.Attach(ctx, RemoteAttach{Temporal: t, Getenv: sys.getenv, RunID: id, WorkflowID: d.Run.WorkflowID,
			Store: st, Observer: prog, Kill: kill, Log: sys.ErrOut})
	})
}

// replay shows what the database has of a run being attached to: its start, the steps that have
// finished, and those running. The records still to come follow.
func replay(obs run.Observer, d *store.RunDetail) {
	obs.Observe(run.Event{Type: run.EventRunStarted, Time: d.Run.StartedAt, Run: d.Run})
	for _, s := range d.Steps {
		switch s.Status {
		case run.StatusPending:
		case run.StatusRunning:
			e := run.Event{Type: run.EventStepStarted, Time: s.StartedAt, StepID: s.StepID, Attempt: max(s.Attempts, 1), Command: s.Command}
			obs.Observe(e)
		default:
			obs.Observe(run.Event{Type: run.EventStepFinished, Time: s.FinishedAt, StepID: s.StepID, Step: s})
		}
	}
}

// signalContext is ctx ended by the first of the signals that stop a command (sys.Signals).
func signalContext(ctx context.Context, sys *System) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	if sys.Signals == nil {
		return ctx, cancel
	}
	sigs, stop := sys.Signals()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); stop() }
}
