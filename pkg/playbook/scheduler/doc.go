// Package scheduler holds every decision of a playbook run as one deterministic state machine: which
// step is ready, what its if says, fail_fast, continue_on_error, retries and their backoff, the stop
// of a cancelled or timed-out run, why a step was skipped, what a retry run reuses, and the run's
// final status and exit status.
//
// A Core is driven: its driver hands it Events (an attempt started or finished, a retry's delay
// elapsed, cancel, kill, the run's timeout, a record that could not be written) with the time they
// happened, and carries out the Commands it returns (start this attempt with this rendered program,
// wait this long and retry, stop these steps, record this step, the run is done). The Core itself
// never reads a clock, starts a goroutine, touches a file or lets map order decide anything, so that
// the same events give the same commands: the local runner (pkg/playbook/local) drives it with the
// process engine and the store, a dry run (Plan) drives it with imagined successes, and a workflow
// that is replayed from its history can drive it too.
package scheduler
