// Command playbook-temporal runs playbooks on Temporal: `playbook-temporal worker` serves task queues,
// `playbook-temporal run` submits a playbook as a workflow and follows it. It is a binary of its own so
// that `playbook`, which does not link Temporal's SDK, keeps its start-up time.
//
// In progress (issue 15): `playbook` does not hand its commands to this binary yet, and there is no
// attach.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/playbook/local"
	pbtemporal "github.com/playbookhq/playbook/pkg/playbook/temporal"
	"github.com/playbookhq/playbook/pkg/run"
)

// workflowQueue is the task queue of the run workflows themselves, which every worker serves: a run
// goes on when the machine that submitted it is gone.
const workflowQueue = "playbook-workflows"

// sweepEvery is how often a worker looks for processes that a dead worker on its machine left.
const sweepEvery = 5 * time.Second

// maxScript is the largest script file a run carries to its workers.
const maxScript = 1 << 20

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, out, errOut io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(errOut, "usage: playbook-temporal worker|run|attach [flags]")
		return run.ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	code := run.ExitSucceeded
	switch args[0] {
	case "worker":
		err = serve(ctx, args[1:], errOut)
	case "run":
		code, err = submit(ctx, args[1:], out)
	case "attach":
		code, err = attach(ctx, args[1:], out)
	default:
		err = fmt.Errorf("unknown command %q: want worker, run or attach", args[0])
		code = run.ExitUsage
	}
	if err != nil {
		fmt.Fprintln(errOut, "playbook-temporal:", err)
		if code == run.ExitSucceeded {
			code = run.ExitFailed
		}
	}
	return code
}

// connFlags adds the flags of a Temporal connection to fs; the returned function gives the
// connection once fs is parsed, blanks filled from the environment.
func connFlags(fs *flag.FlagSet) func() pbtemporal.Connection {
	var c pbtemporal.Connection
	fs.StringVar(&c.Address, "temporal", "", "Temporal frontend HOST:PORT (else $PLAYBOOK_TEMPORAL)")
	fs.StringVar(&c.Namespace, "namespace", "", "Temporal namespace (else $PLAYBOOK_TEMPORAL_NAMESPACE, else default)")
	fs.StringVar(&c.KeyFile, "key-file", "", "encryption key of payloads (else $PLAYBOOK_TEMPORAL_KEY_FILE)")
	fs.StringVar(&c.TLSCAFile, "tls-ca", "", "CA certificate (PEM) that the server's certificate must chain to (else $PLAYBOOK_TEMPORAL_TLS_CA)")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "client certificate (PEM) for mTLS (else $PLAYBOOK_TEMPORAL_TLS_CERT)")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "the client certificate's private key (else $PLAYBOOK_TEMPORAL_TLS_KEY)")
	fs.StringVar(&c.TLSServerName, "tls-server-name", "", "name to check in the server's certificate (else $PLAYBOOK_TEMPORAL_TLS_SERVER_NAME)")
	fs.StringVar(&c.APIKeyFile, "api-key-file", "", "file holding an API key, as Temporal Cloud needs (else $PLAYBOOK_TEMPORAL_API_KEY_FILE)")
	return func() pbtemporal.Connection {
		c.FillFromEnv(os.Getenv)
		return c
	}
}

// serve is `worker`: it runs the steps sent to its queues until SIGINT or SIGTERM, then drains.
func serve(ctx context.Context, args []string, errOut io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	conn := connFlags(fs)
	queues := fs.String("queue", playbook.DefaultQueue, "task queues to serve, comma-separated")
	maxPar := fs.Int("max-parallel", 8, "steps run at once")
	dir := fs.String("dir", "", "folder that relative step dirs are in (default: the current folder)")
	name := fs.String("name", "", "the name recorded with every attempt this worker runs (default: the host name)")
	dbPath := fs.String("db", "", "this worker's database, where it records the attempts it runs (default: as playbook's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}
	if *dir == "" {
		*dir, _ = os.Getwd()
	}
	cn := conn()
	c, err := cn.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	eng, err := engine.New(engine.Config{MaxConcurrent: *maxPar, DefaultTimeout: engine.NoTimeout, MaxTimeout: engine.NoTimeout})
	if err != nil {
		return err
	}
	defer eng.Close()
	tmp, err := os.MkdirTemp("", "playbook-worker-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *dbPath == "" {
		if *dbPath, err = store.DefaultPath(os.Getenv); err != nil {
			return err
		}
	}
	st, err := store.Open(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	// Processes a dead worker on this machine left are killed now and every few seconds; this
	// worker's own are found by its instance id should it die in turn.
	instances := filepath.Join(filepath.Dir(*dbPath), "workers")
	inst, err := pbtemporal.NewInstance(instances)
	if err != nil {
		return err
	}
	defer inst.Close()
	go func() {
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		for {
			if n, _ := pbtemporal.Sweep(instances); n > 0 {
				fmt.Fprintf(errOut, "playbook-temporal: killed %d process group(s) left by a worker that died\n", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	steps := &pbtemporal.Steps{Engine: eng, Dir: *dir, TempDir: tmp, Name: *name, Recorder: st, Instance: inst.ID,
		Log: func(format string, args ...any) { fmt.Fprintf(errOut, format+"\n", args...) }}

	var workers []worker.Worker
	wf := worker.New(c, workflowQueue, worker.Options{})
	wf.RegisterWorkflowWithOptions(pbtemporal.Run, workflow.RegisterOptions{Name: pbtemporal.WorkflowName})
	workers = append(workers, wf)
	for _, q := range strings.Split(*queues, ",") {
		if err := playbook.CheckQueue(q); err != nil {
			return err
		}
		w := worker.New(c, q, worker.Options{MaxConcurrentActivityExecutionSize: *maxPar, WorkerStopTimeout: time.Minute})
		w.RegisterActivityWithOptions(steps.Run, activity.RegisterOptions{Name: pbtemporal.StepActivityName})
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			return fmt.Errorf("start the worker: %w", err)
		}
	}
	fmt.Fprintf(errOut, "playbook-temporal: serving %s on %s\n", *queues, cn.Address)
	<-ctx.Done()
	for _, w := range workers {
		w.Stop() // drains: running steps finish, or are stopped at WorkerStopTimeout
	}
	return nil
}

type params map[string]string

func (p params) String() string { return "" }
func (p params) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("-p %s: want name=value", v)
	}
	p[k] = val
	return nil
}

// submit is `run`: it starts the playbook as a workflow and waits for its end. Ctrl-C cancels the
// workflow (the graceful stop).
func submit(ctx context.Context, args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	conn := connFlags(fs)
	dbPath := fs.String("db", "", "the run database (default: as playbook's)")
	heartbeat := fs.Duration("heartbeat-timeout", 0, "how long a worker may be silent before its step's attempt is lost (default 20s)")
	ps := params{}
	fs.Var(ps, "p", "param name=value (repeatable)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return run.ExitUsage, errors.Join(err, errors.New("usage: playbook-temporal run [--temporal HOST:PORT] [-p name=value]... FILE"))
	}
	file, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return run.ExitUsage, err
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return run.ExitUsage, err
	}
	pb, err := playbook.Parse(file, src)
	if err != nil {
		return run.ExitUsage, err
	}
	if _, err := pb.ResolveParams(ps); err != nil {
		return run.ExitUsage, err
	}
	scripts, err := pb.ReadScripts(maxScript)
	if err != nil {
		return run.ExitUsage, err
	}
	if err := pbtemporal.CheckLimits(pb, &pbtemporal.RunInput{File: file, Source: src, Scripts: scripts, Params: ps}); err != nil {
		return run.ExitUsage, err
	}
	cn := conn()
	if cn.KeyFile == "" {
		for _, p := range pb.Params {
			if p.Secret {
				return run.ExitUsage, fmt.Errorf("%s: param %q is secret, and a distributed run sends it to the workers: give --key-file (or set PLAYBOOK_TEMPORAL_KEY_FILE) so that it is encrypted before it reaches Temporal", file, p.Name)
			}
		}
	}
	if *dbPath == "" {
		if *dbPath, err = store.DefaultPath(os.Getenv); err != nil {
			return run.ExitStore, err
		}
	}
	st, err := store.Open(ctx, *dbPath)
	if err != nil {
		return run.ExitStore, err
	}
	defer st.Close()
	c, err := cn.Dial()
	if err != nil {
		return run.ExitFailed, err
	}
	defer c.Close()
	id := local.NewRunID()
	// The run's records come back on a queue of its own, served here: should this process die, they
	// wait in Temporal for an attach.
	stopRecords, err := serveRecords(c, id, st)
	if err != nil {
		return run.ExitFailed, err
	}
	defer stopRecords()
	wr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "playbook-" + id, TaskQueue: workflowQueue},
		pbtemporal.WorkflowName, pbtemporal.RunInput{RunID: id, File: file, Source: src, Scripts: scripts, Params: ps, HeartbeatTimeout: *heartbeat})
	if err != nil {
		return run.ExitFailed, fmt.Errorf("start the run: %w", err)
	}
	fmt.Fprintf(out, "Run %s (workflow %s, run %s)\n", id, wr.GetID(), wr.GetRunID())
	return follow(ctx, c, id, wr, out)
}

// follow waits for the end of run id's workflow, cancelling it on Ctrl-C, and prints its steps.
func follow(ctx context.Context, c client.Client, id string, wr client.WorkflowRun, out io.Writer) (int, error) {
	done := make(chan error, 1)
	var res pbtemporal.RunOutput
	go func() { done <- wr.Get(context.Background(), &res) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		if cerr := c.CancelWorkflow(context.Background(), wr.GetID(), wr.GetRunID()); cerr != nil {
			return run.ExitFailed, fmt.Errorf("cancel the run: %w", cerr)
		}
		err = <-done
	}
	if err != nil {
		return run.ExitFailed, fmt.Errorf("run %s: %w", id, err)
	}
	for _, s := range res.Steps {
		fmt.Fprintf(out, "%-20s %-10s %s\n", s.StepID, s.Status, s.Reason)
	}
	fmt.Fprintf(out, "Run %s %s.\n", id, res.Run.Status)
	return res.Run.ExitCode, nil
}

// serveRecords serves run id's record queue with the database st until the returned stop is called.
func serveRecords(c client.Client, id string, st *store.Store) (stop func(), err error) {
	rw := worker.New(c, pbtemporal.RecordQueue(id), worker.Options{MaxConcurrentActivityExecutionSize: 1})
	state := func(ctx context.Context, runID string) (run.Status, error) {
		r, err := st.Run(ctx, runID)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return r.Status, nil
	}
	rw.RegisterActivityWithOptions((&pbtemporal.Records{Recorder: st, State: state}).Write, activity.RegisterOptions{Name: pbtemporal.RecordActivityName})
	if err := rw.Start(); err != nil {
		return nil, fmt.Errorf("serve the run's records: %w", err)
	}
	return rw.Stop, nil
}

// attach follows a run that another process submitted (and may have died), from wherever it is to its
// end, writing the records it had not taken to this machine's database.
func attach(ctx context.Context, args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("attach", flag.ContinueOnError)
	conn := connFlags(fs)
	dbPath := fs.String("db", "", "the run database (default: as playbook's)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return run.ExitUsage, errors.Join(err, errors.New("usage: playbook-temporal attach [--temporal HOST:PORT] RUN"))
	}
	id := fs.Arg(0)
	var err error
	if *dbPath == "" {
		if *dbPath, err = store.DefaultPath(os.Getenv); err != nil {
			return run.ExitStore, err
		}
	}
	st, err := store.Open(ctx, *dbPath)
	if err != nil {
		return run.ExitStore, err
	}
	defer st.Close()
	// This process now owns the run's record: crash recovery (in this Open, for a submitter that died
	// here) has marked it detached, and should this process die too, it will again.
	if err := st.Adopt(ctx, id); err != nil {
		return run.ExitUsage, err
	}
	c, err := conn().Dial()
	if err != nil {
		return run.ExitFailed, err
	}
	defer c.Close()
	stop, err := serveRecords(c, id, st)
	if err != nil {
		return run.ExitFailed, err
	}
	defer stop()
	return follow(ctx, c, id, c.GetWorkflow(ctx, "playbook-"+id, ""), out)
}
