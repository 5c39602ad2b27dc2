// Command temporal-floor measures the floor of a distributed run: N empty activities run by one
// workflow through a Temporal server with nothing but the SDK, one after another or a few at a time.
// bench/temporal.sh sets playbook's distributed runs against it. It prints one line:
//
//	floor activities=200 parallel=1 total_ms=5123.4 ms_per_activity=25.62
//
// The time is from the workflow's start to its result, as the client sees them; the worker, in this
// process, is started and warmed up (one activity) beforehand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func main() {
	if err := realMain(); err != nil {
		fmt.Fprintln(os.Stderr, "temporal-floor:", err)
		os.Exit(1)
	}
}

func realMain() error {
	address := flag.String("temporal", os.Getenv("TEMPORAL_ADDRESS"), "Temporal frontend HOST:PORT (default $TEMPORAL_ADDRESS)")
	namespace := flag.String("namespace", "default", "Temporal namespace")
	n := flag.Int("n", 200, "activities")
	parallel := flag.Int("parallel", 1, "activities in flight at once (1: one after another)")
	separate := flag.Bool("separate-queue", false, "run the activities on a task queue of their own, as playbook's steps are (no eager execution)")
	flag.Parse()
	if *address == "" {
		return errors.New("no Temporal server: give -temporal HOST:PORT or set TEMPORAL_ADDRESS")
	}
	if *n < 1 || *parallel < 1 {
		return fmt.Errorf("-n %d -parallel %d: both must be at least 1", *n, *parallel)
	}
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := client.Dial(client.Options{HostPort: *address, Namespace: *namespace, Logger: quiet})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", *address, err)
	}
	defer c.Close()

	// A queue of this process's own: no other run's tasks, no leftovers of an earlier one.
	queue := fmt.Sprintf("floor-%d-%d", os.Getpid(), time.Now().UnixNano())
	activityQueue := queue
	if *separate {
		activityQueue = queue + "-activities"
	}
	w := worker.New(c, queue, worker.Options{MaxConcurrentActivityExecutionSize: *parallel})
	w.RegisterWorkflowWithOptions(floor, workflow.RegisterOptions{Name: "floor"})
	w.RegisterActivity(empty)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the worker: %w", err)
	}
	defer w.Stop()
	if *separate {
		aw := worker.New(c, activityQueue, worker.Options{MaxConcurrentActivityExecutionSize: *parallel})
		aw.RegisterActivity(empty)
		if err := aw.Start(); err != nil {
			return fmt.Errorf("start the activity worker: %w", err)
		}
		defer aw.Stop()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	runOnce := func(n, parallel int) (time.Duration, error) {
		start := time.Now()
		wr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%d", queue, start.UnixNano()), TaskQueue: queue},
			"floor", input{N: n, Parallel: parallel, Queue: activityQueue})
		if err != nil {
			return 0, fmt.Errorf("start the workflow: %w", err)
		}
		if err := wr.Get(ctx, nil); err != nil {
			return 0, fmt.Errorf("the workflow: %w", err)
		}
		return time.Since(start), nil
	}
	if _, err := runOnce(1, 1); err != nil { // warm-up: connections, the worker's pollers, the queues
		return err
	}
	took, err := runOnce(*n, *parallel)
	if err != nil {
		return err
	}
	ms := float64(took.Microseconds()) / 1000
	fmt.Printf("floor activities=%d parallel=%d total_ms=%.1f ms_per_activity=%.2f\n", *n, *parallel, ms, ms/float64(*n))
	return nil
}

type input struct {
	N, Parallel int
	Queue       string
}

// floor runs in.N empty activities, at most in.Parallel at a time.
func floor(ctx workflow.Context, in input) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: in.Queue, StartToCloseTimeout: time.Minute})
	sel := workflow.NewSelector(ctx)
	var failed error
	inflight, started := 0, 0
	for started < in.N || inflight > 0 {
		for inflight < in.Parallel && started < in.N {
			sel.AddFuture(workflow.ExecuteActivity(ctx, empty), func(f workflow.Future) {
				inflight--
				if err := f.Get(ctx, nil); err != nil && failed == nil {
					failed = err
				}
			})
			inflight++
			started++
		}
		sel.Select(ctx)
	}
	return failed
}

// empty is the activity: nothing, so that what is measured is Temporal's round trips.
func empty(context.Context) error { return nil }
