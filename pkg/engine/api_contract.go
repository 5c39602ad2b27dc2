package engine

// CONTRACT FILE (foundation): the exported surface the scheduler and the CLI build on. The engine
// implementer owns this file and may move these declarations into the files where they belong, extend
// them and improve their documentation, but must keep every name and meaning below.

import (
	"context"
	"os"
	"time"
)

// ---- configuration ----

// Config configures an Engine. The zero value of every field means the documented default.
type Config struct {
	MaxConcurrent  int           // processes running at once; 0 = 100; 1 = serial mode
	MaxPending     int           // executions waiting for a slot; 0 = unbounded; beyond it Execute fails with ErrConcurrencyLimit
	DefaultTimeout time.Duration // 0 = 2m; NoTimeout = none
	MaxTimeout     time.Duration // 0 = 10m; NoTimeout = no maximum
	OutputLimit    int64         // bytes kept in memory per stream (head+tail); 0 = 1 MiB
	Oversized      OversizedStrategy
	SpillDir       string        // SpillToFile: folder for the complete streams; "" = os.TempDir()
	LogDir         string        // "" = none; else complete (masked) streams in <LogDir>/<id>.stdout and <id>.stderr
	Retention      time.Duration // finished executions kept in memory this long; 0 = 1h
	MaxKept        int           // finished executions kept at most; 0 = 1000
	AutoCleanup    bool          // run the periodic cleanup
	StopSignal     os.Signal     // nil = SIGTERM
	StopGrace      time.Duration // 0 = 5s; NoGrace = SIGKILL at once
}

// NoTimeout, given as a timeout, means no deadline. NoGrace, as a grace, means SIGKILL at once.
const (
	NoTimeout time.Duration = -1
	NoGrace   time.Duration = -1
)

// OversizedStrategy says what happens when a stream exceeds the output limit.
type OversizedStrategy int

const (
	KeepHeadTail  OversizedStrategy = iota // keep the head and the tail with a marker; the process goes on
	FailExecution                          // stop the process group; status failed; error OUTPUT_SIZE_EXCEEDED
	SpillToFile                            // head and tail in memory, the complete stream in a file (Result.StdoutFile)
)

// ---- requests ----

// Command is one of Shell, Exec, Script or AWSCLI.
type Command interface{ isCommand() }

type Shell struct {
	Command string
	Shell   string // "" = "bash"; run as <Shell> -c <Command>
}
type Exec struct {
	Program string
	Args    []string
}
type Script struct {
	Path        string
	Interpreter string // "" = run the file itself when executable, else bash <Path>
}
type AWSCLI struct {
	Service, Operation string
	Args               []string
	Profile, Region    string
}

// Request describes one execution.
type Request struct {
	ID         string // "" = generated
	Command    Command
	Env        map[string]string // added to the parent environment
	CleanEnv   bool              // do not inherit the parent environment
	Dir        string            // "" = the current directory
	Timeout    time.Duration     // 0 = Config.DefaultTimeout; NoTimeout = none (needs MaxTimeout NoTimeout)
	LogPath    string            // also write both streams, as they arrive, to this file
	StdoutPath string            // also write the complete stdout to this file (masked)
	StderrPath string            // also write the complete stderr to this file (masked)
	StopSignal os.Signal         // nil = Config.StopSignal
	StopGrace  time.Duration     // 0 = Config.StopGrace; NoGrace = SIGKILL at once
	Secrets    []string          // values replaced by *** in output, events, logs and Result.Command
	Metadata   Metadata
}

// Metadata is tracking data carried through to events and summaries.
type Metadata struct {
	Source string            `json:"source,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// ---- results ----

// Status is the lifecycle state of an execution.
type Status string

const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed" // the process exited (any exit code) or was killed by a signal it did not get from us
	StatusFailed    Status = "failed"    // it could not start, an I/O error, or FailExecution
	StatusCancelled Status = "cancelled"
	StatusTimedOut  Status = "timed_out"
)

// Result is the outcome of an execution.
type Result struct {
	ID              string
	Status          Status
	Command         string // display form, secrets masked
	PID             int    // also the process group id; 0 if never started
	ExitCode        int    // -1 when the process did not exit normally (see Signal) or never started
	Signal          int    // the signal that ended it, 0 if it exited
	Stdout, Stderr  []byte // bounded: head and tail with a marker when truncated
	StdoutBytes     int64  // total produced
	StderrBytes     int64
	StdoutTruncated bool
	StderrTruncated bool
	StdoutFile      string // SpillToFile: the complete stream
	StderrFile      string
	StartedAt       time.Time
	FinishedAt      time.Time
	Duration        time.Duration
	Error           string // why it failed, timed out or was cancelled
	Warning         string // e.g. a background process kept the pipes open and output may be incomplete
}

// Success reports whether the process exited with status 0.
func (r *Result) Success() bool { return r.Status == StatusCompleted && r.ExitCode == 0 }

// ---- events ----

// EventType names an event; the values are stable snake_case strings.
type EventType string

const (
	EventStarted       EventType = "started"
	EventStdout        EventType = "stdout"
	EventStderr        EventType = "stderr"
	EventStatusChanged EventType = "status_changed"
	EventCompleted     EventType = "completed"
	EventFailed        EventType = "failed"
	EventTimedOut      EventType = "timed_out"
	EventCancelled     EventType = "cancelled"
)

// Event is what subscribers receive.
type Event struct {
	Type        EventType `json:"event_type"`
	ExecutionID string    `json:"execution_id"`
	Time        time.Time `json:"timestamp"`
	Command     string    `json:"command,omitempty"` // started
	PID         int       `json:"pid,omitempty"`     // started
	Line        []byte    `json:"line,omitempty"`    // stdout/stderr: one line without its newline (masked), or a chunk; JSON encodes it as a string (invalid UTF-8 replaced), via a MarshalJSON the implementer adds
	Partial     bool      `json:"partial,omitempty"` // the line was longer than the maximum and continues
	OldStatus   Status    `json:"old_status,omitempty"`
	NewStatus   Status    `json:"new_status,omitempty"`
	Result      *Result   `json:"result,omitempty"`
	Error       string    `json:"error,omitempty"`
	TimeoutMS   int64     `json:"timeout_ms,omitempty"`
	Metadata    Metadata  `json:"metadata,omitempty"`
}

// Handler receives events, one at a time per subscription, never on the goroutine that drains a process.
type Handler interface{ HandleEvent(Event) }

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(Event)

func (f HandlerFunc) HandleEvent(e Event) { f(e) }

// ---- the engine ----

// Engine runs executions. Its methods are safe for concurrent use.
type Engine struct{ _ int }

func New(cfg Config) (*Engine, error)                                   { panic("contract") }
func (e *Engine) Execute(req Request) (string, error)                   { panic("contract") }
func (e *Engine) Run(ctx context.Context, req Request) (*Result, error) { panic("contract") } // Execute+Wait; ctx done cancels the execution (stop signal, grace, SIGKILL)
func (e *Engine) Wait(ctx context.Context, id string) (*Result, error)  { panic("contract") }
func (e *Engine) Status(id string) (Status, error)                      { panic("contract") }
func (e *Engine) Result(id string) (*Result, error)                     { panic("contract") }
func (e *Engine) Cancel(id string) error                                { panic("contract") }
func (e *Engine) Kill(id string) error                                  { panic("contract") } // SIGKILL to the group now
func (e *Engine) KillAll()                                              { panic("contract") } // SIGKILL every running group now; pending never start
func (e *Engine) Subscribe(h Handler) (unsubscribe func())              { panic("contract") }
func (e *Engine) List() []Summary                                       { panic("contract") }
func (e *Engine) Running() int                                          { panic("contract") }
func (e *Engine) Cleanup() int                                          { panic("contract") }
func (e *Engine) Close() error                                          { panic("contract") }

// Summary is one line of List.
type Summary struct {
	ID        string
	Status    Status
	StartedAt time.Time
	Duration  time.Duration
	Metadata  Metadata
}
