// Package run is the model of a playbook run that every other part of the product shares: the
// statuses of runs and steps and why a step was skipped, the records of a run, its steps and their
// attempts, the Recorder interface that receives them (internal/store implements it with SQLite),
// the progress events a runner reports to displays, and the one table from a run's outcome to the
// exit status of the process that ran it.
//
// It is a leaf: it knows nothing of processes, YAML, expressions or SQL, so that the scheduler, the
// store and the command line can all depend on it without depending on each other.
package run
