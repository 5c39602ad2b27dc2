package playbook

// CONTRACT FILE (foundation): the exported surface the scheduler (pkg/playbook/scheduler) and the CLI
// build on. The language implementer owns this file and may move these declarations where they belong,
// extend them and document them better, but must keep every name and meaning below.

import (
	"syscall"
	"time"
)

// Load reads, parses and validates the playbook at path. On any problem it returns an ErrorList holding
// every error found in the file (not only the first), each positioned as file:line:col.
func Load(path string) (*Playbook, error) { panic("contract") }

// Parse is Load for bytes already read; name is used in error positions and to resolve relative paths
// (its folder).
func Parse(name string, data []byte) (*Playbook, error) { panic("contract") }

// Error is one problem at a position. Error() is "file:line:col: message".
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

// ErrorList is every problem found in one file, in line order. Error() joins them with newlines.
type ErrorList []*Error

// Playbook is a loaded and validated playbook. It is immutable and safe to share.
type Playbook struct {
	File        string // absolute path
	Dir         string // the playbook's folder: script and dir resolve against it
	SHA256      string // hex digest of the file's bytes
	Version     int
	Name        string
	Description string
	Params      []*Param // declaration order
	Env         []EnvVar // declaration order; values may hold ${{ }} over params
	MaxParallel int      // 0 = not set
	Timeout     time.Duration
	FailFast    bool  // default true
	OutputLimit int64 // bytes per stream per step kept in the database; 0 = not set
	Steps       []*Step
	Warnings    ErrorList // not errors: e.g. a secret interpolated into run:

	// The graph.
	Order  []*Step   // a topological order; ties keep file order
	Levels [][]*Step // Levels[0] have no needs; a step is one level after its deepest need
}

// Step returns the step with the given id, or nil.
func (p *Playbook) Step(id string) *Step { panic("contract") }

// ResolveParams checks values given as -p name=value against the declared params and returns every
// param's typed value (defaults applied). A missing required, unknown, mistyped or out-of-enum value is
// an error naming the param.
func (p *Playbook) ResolveParams(values map[string]string) (Params, error) { panic("contract") }

// Params are resolved values: string, int64, float64 or bool per the declared type.
type Params map[string]any

// ParamEnvName is the environment variable a param is exported as: PLAYBOOK_PARAM_ + upper-cased name
// with every character that is not a letter or digit turned into _.
func ParamEnvName(name string) string { panic("contract") }

// ParamType is string, int, number or bool.
type ParamType string

// Param is a declared input.
type Param struct {
	Name        string
	Type        ParamType
	Default     any // typed; nil when there is none
	Required    bool
	Enum        []any
	Description string
	Secret      bool
}

// EnvVar is one environment variable whose value may hold ${{ }}.
type EnvVar struct {
	Name  string
	Value *Template
}

// Step is one step of a playbook.
type Step struct {
	ID    string
	Name  string // display name; ID when not given
	Needs []string
	If    *Condition // never nil; success() when not given

	// Exactly one of Run, Exec, Script, AWS is set.
	Run         *Template
	Shell       string // for Run: "" = bash
	Exec        []*Template
	Script      string // absolute path
	Interpreter string
	AWS         *AWS

	Env             []EnvVar
	Dir             *Template // nil = the playbook's folder; a relative result resolves against it
	Timeout         time.Duration
	Retry           Retry
	ContinueOnError bool
	StopSignal      syscall.Signal // 0 = not set
	StopGrace       time.Duration  // 0 = not set
	Line, Col       int            // where the step starts in the file
}

// AWS is the aws: step form.
type AWS struct {
	Service, Operation string
	Args               []*Template
	Profile, Region    string
}

// Retry is a step's retry policy. Attempts is at least 1 (1 = no retry).
type Retry struct {
	Attempts    int
	Delay       time.Duration
	Backoff     float64 // multiplier per attempt; 0 or 1 = constant delay
	MaxDelay    time.Duration
	OnExitCodes []int // retry only on these exit codes; empty = any failure (not cancellation)
}

// State is what expressions read at run time.
type State struct {
	Run    RunState
	Params Params
	Env    map[string]string // the playbook's env, rendered
	Steps  map[string]StepState
}

// RunState is run.id, run.name and run.status.
type RunState struct {
	ID, Name string
	Status   string // succeeded while nothing has failed; else failed, timed_out or cancelled
}

// StepState is steps.<id>.
type StepState struct {
	Status   string
	ExitCode int
	Outputs  map[string]string
	Attempts int
}

// StatusFuncs are the values of success(), failure() and cancelled() for the step being evaluated;
// always() is always true.
type StatusFuncs struct {
	Success   bool // every step in needs succeeded (continue_on_error counts as success)
	Failure   bool // a direct or transitive dependency failed or timed out
	Cancelled bool // the run is cancelled
}

// Condition is a compiled if.
type Condition struct{ _ int }

func (c *Condition) Source() string                             { panic("contract") } // the text, "success()" by default
func (c *Condition) Eval(s *State, f StatusFuncs) (bool, error) { panic("contract") }
func (c *Condition) Calls(function string) bool                 { panic("contract") } // uses always(), failure(), ...
func (c *Condition) Static() bool                               { panic("contract") } // reads only params and env: dry-run can evaluate it

// Template is a string that may hold ${{ expr }} parts, compiled at load time.
type Template struct{ _ int }

func (t *Template) Raw() string                     { panic("contract") }
func (t *Template) Render(s *State) (string, error) { panic("contract") }
