// Package engine is playbook's process engine. It runs system commands as owned child processes: every
// child in its own process group, bounded in time, stoppable with a graceful ladder, its output drained
// and kept within bounds, its lifecycle published as events.
//
// Two kinds of callers use it. playbook's runner starts every attempt of every step through it, as
// Requests built from the playbook, and turns the Results and Events into the run's records and live
// output. Programs that are not written in Go use it through the JSON-lines bridge, ServeJSON: one
// Request per line in, events and results as lines out. The engine itself knows nothing of playbooks,
// YAML or the run database: it knows processes, their output and their events.
//
// # Lifecycle
//
// Execute validates a Request (command, script, program lookup, working directory, timeout) before
// anything is started and returns the execution's id at once. The execution is pending until one of
// Config.MaxConcurrent slots is free, then running, then exactly one of completed, failed, timed_out or
// cancelled. A terminal status never changes, and the Result is stored before the status becomes
// terminal, so Status, Result, Wait and the terminal event always agree. Wait blocks on a channel, never
// polls. Run is Execute plus Wait, and cancels the execution if its context ends first.
//
// # Processes
//
// Each child starts with Setpgid, so its pid is also its process group id and a signal to the group
// reaches every process it started that did not leave the group. Cancel, a timeout and FailExecution run
// the stop ladder: the stop signal (default SIGTERM) to the group, then SIGKILL to the group after the
// grace (default 5 s). Kill and KillAll send SIGKILL at once.
//
// When the group leader exits, the engine sends SIGKILL to its group before reaping it: background jobs
// the command left behind are ended (so a step cannot leave stray processes holding its pipes), and since
// the leader is still an unreaped zombie at that moment, the group id cannot have been reused. A process
// that escaped the group (setsid, daemonising) is out of the engine's reach; if it keeps stdout or stderr
// open, the engine stops reading Config.WaitDelay after the group is gone, keeps the status the command
// earned and says so in Result.Warning.
//
// On Linux children get Pdeathsig SIGKILL, so the group leader dies with the engine's process. The kernel
// sends it when the forking thread exits; Go ends a thread only when a goroutine locked to it
// (runtime.LockOSThread) exits, which the engine never does while a child lives, so in practice it fires
// when the process dies. A program that lets locked goroutines exit may see children killed early. It
// reaches the leader alone: callers that must survive their own crash record Result.PID (the group id)
// and kill leftover groups on recovery.
//
// # Output
//
// Each stream is read to its end whatever happens, so a child never blocks on a full pipe. The engine
// counts every byte, keeps the first and last Config.OutputLimit/2 bytes joined by
// "\n[... N bytes omitted ...]\n", and keeps raw bytes (invalid UTF-8 included; JSON encoding replaces it).
// Optionally it writes the complete streams to files (Request.StdoutPath, StderrPath, LogPath,
// Config.LogDir), each opened once, mode 0600. Request.Secrets are masked ("***") in all of it, in events
// and in the displayed command, even when the child splits a secret across writes.
//
// # Events
//
// Subscribe registers a Handler. Each subscription has its own goroutine and queue, so a slow handler
// delays nobody else: lifecycle events are queued without bound and never dropped; line events are
// bounded per subscriber (Config.EventBuffer lines and Config.EventBufferBytes bytes) and, beyond that,
// dropped and counted in Event.Dropped (a line no subscriber has room for is not even copied). With no
// subscriber the engine does no per-line work at all.
//
// # Errors
//
// Every error is an *Error with a stable Code (VALIDATION, NOT_FOUND, TIMEOUT, ...); errors.Is works with
// the Err* sentinels and IsRetryable says whether retrying may help. Validation errors carry a
// *ValidationError whose Kind names the problem.
package engine
