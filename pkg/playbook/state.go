package playbook

// State is what expressions read at run time. The scheduler owns it; Condition.Eval and
// Template.Render only read it. Anything missing reads as its zero value ("" or 0).
type State struct {
	Run    RunState
	Params Params               // from ResolveParams
	Env    map[string]string    // the playbook's env, rendered (env.<NAME>)
	Steps  map[string]StepState // steps.<id>; only steps that finished need to be present
}

// RunState is run.id, run.name and run.status.
type RunState struct {
	ID, Name string
	Status   string // succeeded while nothing has failed; else failed, timed_out or cancelled
}

// StepState is steps.<id>.
type StepState struct {
	Status   string            // succeeded, failed, timed_out, cancelled or skipped
	ExitCode int               // of the last attempt
	Outputs  map[string]string // what the step wrote to $PLAYBOOK_OUTPUT; a missing key reads as ""
	Attempts int               // attempts made
}

// StatusFuncs are the values of success(), failure() and cancelled() for the step being evaluated;
// always() is always true.
type StatusFuncs struct {
	Success   bool // every step in needs succeeded (continue_on_error counts as success)
	Failure   bool // a direct or transitive dependency failed or timed out
	Cancelled bool // the run is cancelled
}
