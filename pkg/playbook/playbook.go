package playbook

import (
	"fmt"
	"syscall"
	"time"
)

// Playbook is a loaded and validated playbook. Load and Parse return one only when the file has no
// errors; it is never modified afterwards, so it is safe to share between goroutines (Condition.Eval
// and Template.Render may be called concurrently).
type Playbook struct {
	File        string        // absolute path of the file
	Dir         string        // the playbook's folder: script and relative dir resolve against it
	SHA256      string        // hex digest of the file's bytes, as read
	Version     int           // format version; always 1
	Name        string        // letters, digits, - and _
	Description string        // "" when not given
	Params      []*Param      // declaration order
	Env         []EnvVar      // declaration order; values may hold ${{ }} over params only
	MaxParallel int           // steps running at once; 0 = not set (the runner's default, see local.DefaultMaxParallel)
	Timeout     time.Duration // limit of the whole run; 0 = none
	FailFast    bool          // default true: after a failure only steps whose if calls always() or failure() start
	OutputLimit int64         // bytes per stream per step kept in the database; 0 = not set (the store's default)
	Concurrency *Concurrency  // the concurrency group; nil = none
	Steps       []*Step
	// Warnings are problems that do not make the file invalid, positioned like errors: a secret or a
	// free-form string param, or a step's output, put into a shell command with ${{ }}. Empty when
	// there are none.
	Warnings ErrorList

	// Order is a topological order of Steps: every step comes after the steps it needs. Among steps
	// whose needs are met, file order decides, so a file already written in dependency order keeps its
	// order.
	Order []*Step
	// Levels groups the steps for display and dry runs: Levels[0] holds the steps without needs, and a
	// step is one level after its deepest need. Within a level, file order.
	Levels [][]*Step

	byID map[string]*Step
}

// Step returns the step with the given id, or nil.
func (p *Playbook) Step(id string) *Step { return p.byID[id] }

// EnvVar is one environment variable whose value may hold ${{ }}.
type EnvVar struct {
	Name  string
	Value *Template // never nil
}

// Step is one step of a playbook.
type Step struct {
	ID    string
	Name  string   // display name; ID when not given
	Needs []string // ids of the steps it needs, as written (no duplicates)
	// If decides whether the step runs. Never nil: success() when the file gives no if.
	If *Condition

	// Exactly one of Run, Exec, Script and AWS is set.
	Run    *Template   // a shell command, run as Shell -c COMMAND
	Shell  string      // for Run: "" = bash (from the step, else defaults.shell)
	Exec   []*Template // argv, run without a shell; at least one item
	Script string      // absolute path of a file that existed when the playbook was loaded
	// ScriptSHA256 is the hex SHA-256 of Script's content when the playbook was loaded; "" when it
	// could not be read then (the step fails when it starts).
	ScriptSHA256 string
	Interpreter  string // for Script: "" = run the file itself
	AWS          *AWS

	Env []EnvVar // the step's own env, declaration order; added to (and overriding) the playbook's env
	// Dir is the working folder. nil = the playbook's folder; a relative result of Render resolves
	// against Playbook.Dir.
	Dir             *Template
	Timeout         time.Duration  // per attempt; 0 = none (from the step, else defaults.timeout)
	Retry           Retry          // from the step, else defaults.retry, else one attempt
	ContinueOnError bool           // a failure counts as success for dependents and for the run
	StopSignal      syscall.Signal // 0 = not set (the engine's default, SIGTERM)
	StopGrace       time.Duration  // 0 = not set (the engine's default)
	// RunsOn is the task queue whose workers run the step in a distributed run, over params only:
	// the step's runs_on, else defaults.runs_on, else the top level's; nil = DefaultQueue. A local run
	// ignores it.
	RunsOn    *Template
	Line, Col int // where the step starts in the file
}

// DefaultQueue is the task queue of a step that names none (runs_on).
const DefaultQueue = "playbook"

// MaxQueueLen is the longest task queue name runs_on may give.
const MaxQueueLen = 200

// CheckQueue says what is wrong with a task queue name: it must be 1 to MaxQueueLen letters, digits,
// '-', '_' and '.'. A runs_on written without ${{ }} is checked when the playbook is loaded, one with
// them when the step is about to run.
func CheckQueue(name string) error {
	if name == "" || len(name) > MaxQueueLen {
		return fmt.Errorf("task queue %q must be 1 to %d characters", name, MaxQueueLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("task queue %q may hold only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// AWS is the aws: step form: aws SERVICE OPERATION ARGS... [--profile PROFILE] [--region REGION].
type AWS struct {
	Service, Operation string      // lower-case letters, digits and -
	Args               []*Template // may be empty
	Profile, Region    string      // "" = not given
}

// Retry is a step's retry policy. Attempts is at least 1 (1 = no retry).
type Retry struct {
	Attempts    int           // total tries, the first included; 1..100
	Delay       time.Duration // wait before the second try; 0 = none
	Backoff     float64       // multiplier of the delay per attempt; 0 or 1 = constant delay
	MaxDelay    time.Duration // upper bound of the delay; 0 = none
	OnExitCodes []int         // retry only on these exit codes; empty = any failure (not cancellation)
}
