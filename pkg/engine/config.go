package engine

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// Config configures an Engine. The zero value of every field means the documented default, so Config{} is
// a working configuration. New rejects negative values other than NoTimeout and NoGrace where allowed,
// and a DefaultTimeout above MaxTimeout, with a CodeInvalidConfig error.
type Config struct {
	// MaxConcurrent is how many executions may run (have a live process) at once. 0 means 100. 1 runs
	// executions one at a time in submission order (serial mode). Executions beyond the limit wait, with
	// status pending, in a FIFO queue until a slot frees.
	MaxConcurrent int

	// MaxPending bounds the queue of executions waiting for a slot. 0 means unbounded. When the queue is
	// full, Execute fails with a CodeConcurrencyLimit error (retryable) and registers nothing.
	MaxPending int

	// DefaultTimeout applies to requests whose Timeout is 0. 0 means 2 minutes; NoTimeout means none.
	// At the timeout the stop ladder runs (see StopSignal) and the status becomes timed_out.
	DefaultTimeout time.Duration

	// MaxTimeout is the largest Request.Timeout accepted; a request above it is rejected by Execute with a
	// TimeoutTooLarge validation error. 0 means 10 minutes; NoTimeout means no maximum, and is required for
	// requests (or a DefaultTimeout) of NoTimeout.
	MaxTimeout time.Duration

	// OutputLimit is how many bytes of each stream (stdout, stderr) are kept in memory. 0 means 1 MiB. A
	// stream that fits is kept exactly. A longer one keeps its first OutputLimit/2 bytes and its last
	// OutputLimit-OutputLimit/2 bytes joined by the marker "\n[... N bytes omitted ...]\n"; what happens
	// besides depends on Oversized. The stream is always read to its end, so a child never blocks on a
	// full pipe, and the byte counts in Result are exact.
	OutputLimit int64

	// Oversized says what happens when a stream exceeds OutputLimit. The zero value is KeepHeadTail.
	Oversized OversizedStrategy

	// SpillDir is the folder for SpillToFile files. "" means os.TempDir(). It is created (mode 0700) if
	// missing. Spill files are the caller's: the engine never deletes them.
	SpillDir string

	// LogDir, when set, receives the complete (masked) streams of every execution in
	// <LogDir>/<id>.stdout and <LogDir>/<id>.stderr (mode 0600; the folder is created with mode 0700).
	// "" means no log files. A log file that cannot be created fails the execution before it starts
	// (CodeIO); a write error later stops that file and sets Result.Warning.
	LogDir string

	// Retention is how long a finished execution stays in memory (for Status, Result, Wait, List) before
	// Cleanup may remove it. 0 means 1 hour; NoTimeout means forever (only MaxKept applies).
	Retention time.Duration

	// MaxKept is how many finished executions are kept at most; Cleanup removes the oldest beyond it.
	// 0 means 1000. Pending and running executions are never removed and do not count.
	MaxKept int

	// AutoCleanup runs Cleanup every CleanupInterval in a background goroutine until Close. Without it,
	// finished executions are removed only when the caller calls Cleanup.
	AutoCleanup bool

	// CleanupInterval is the period of AutoCleanup. 0 means 1 minute.
	CleanupInterval time.Duration

	// StopSignal is sent to an execution's process group when it is cancelled, times out, or fails on
	// oversized output; after the grace the group gets SIGKILL. nil means SIGTERM. It must be a
	// syscall.Signal. Request.StopSignal overrides it.
	StopSignal os.Signal

	// StopGrace is how long the process group has between StopSignal and SIGKILL. 0 means 5 seconds;
	// NoGrace means SIGKILL at once. Request.StopGrace overrides it. Close waits at most this long
	// (plus WaitDelay) for each execution it stops.
	StopGrace time.Duration

	// WaitDelay bounds how long the engine keeps reading output after the process group is gone. Only a
	// descendant that escaped the group (setsid, daemonising) can hold the pipes open that long; when the
	// delay expires the pipes are closed, the status stays what the process earned, and Result.Warning says
	// output may be incomplete. 0 means 2 seconds.
	WaitDelay time.Duration

	// MaxLineBytes is the longest stdout/stderr line delivered as one event; a longer line arrives as
	// several events with Partial set. 0 means 64 KiB. It does not affect capture or log files.
	MaxLineBytes int

	// MaxLinePieces is how many MaxLineBytes chunks of one line are delivered as events; the rest of a
	// longer line is only counted (Event.Omitted). A terminal or a JSON reader gains nothing from a
	// gigabyte-long line, and copying it into events is what made such output slow. 0 means 4; a
	// negative value means no limit. It does not affect capture or log files.
	MaxLinePieces int

	// EventBuffer is how many stdout/stderr line events may wait for each subscriber. 0 means 8192. When a
	// subscriber falls further behind, line events are dropped and counted (Event.Dropped); lifecycle
	// events are never dropped.
	EventBuffer int

	// EventBufferBytes bounds the bytes of the line events waiting for each subscriber, like EventBuffer
	// bounds their number: whichever is reached first drops further lines (counted in Event.Dropped). 0
	// means 1 MiB. It keeps a subscriber's memory bounded when a process floods long lines.
	EventBufferBytes int

	// NoLineEvents turns off stdout/stderr line events, for callers that follow only the lifecycle:
	// lifecycle events still flow. Without subscribers no per-line work is done anyway.
	NoLineEvents bool

	// OnHandlerError receives panics of event handlers that do not implement ErrorHandler. nil means
	// they are written to the standard logger. It is called on the subscription's goroutine.
	OnHandlerError func(error)
}

// NoTimeout, given as a timeout, means no deadline. NoGrace, as a grace, means SIGKILL at once.
const (
	NoTimeout time.Duration = -1
	NoGrace   time.Duration = -1
)

// Defaults applied to zero Config fields.
const (
	DefaultMaxConcurrent    = 100
	DefaultTimeout          = 2 * time.Minute
	DefaultMaxTimeout       = 10 * time.Minute
	DefaultOutputLimit      = 1 << 20
	DefaultRetention        = time.Hour
	DefaultMaxKept          = 1000
	DefaultCleanupInterval  = time.Minute
	DefaultStopGrace        = 5 * time.Second
	DefaultWaitDelay        = 2 * time.Second
	DefaultMaxLineBytes     = 64 << 10
	DefaultMaxLinePieces    = 4
	DefaultEventBuffer      = 8192
	DefaultEventBufferBytes = 1 << 20
)

// OversizedStrategy says what happens when a stream exceeds Config.OutputLimit. In every case the stream
// is read to its end and Result keeps its head and tail with the omission marker, its exact byte count and
// a truncated flag.
type OversizedStrategy int

const (
	// KeepHeadTail keeps the head and the tail with a marker; the process goes on undisturbed.
	KeepHeadTail OversizedStrategy = iota
	// FailExecution stops the process group (stop ladder) as soon as a stream exceeds the limit; the
	// status becomes failed with CodeOutputSizeExceeded.
	FailExecution
	// SpillToFile also writes the complete stream to a file under Config.SpillDir, created when the stream
	// first exceeds the limit (Result.StdoutFile, Result.StderrFile); memory stays bounded.
	SpillToFile
)

// String returns the snake_case name of the strategy.
func (s OversizedStrategy) String() string {
	switch s {
	case KeepHeadTail:
		return "keep_head_tail"
	case FailExecution:
		return "fail_execution"
	case SpillToFile:
		return "spill_to_file"
	}
	return fmt.Sprintf("OversizedStrategy(%d)", int(s))
}

// settings is a Config with every default resolved.
type settings struct {
	Config
	stopSignal syscall.Signal
}

func (c Config) resolve() (settings, error) {
	s := settings{Config: c}
	bad := func(format string, args ...any) (settings, error) {
		return settings{}, &Error{Code: CodeInvalidConfig, Msg: fmt.Sprintf(format, args...)}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxConcurrent", int64(c.MaxConcurrent)},
		{"MaxPending", int64(c.MaxPending)},
		{"OutputLimit", c.OutputLimit},
		{"MaxKept", int64(c.MaxKept)},
		{"CleanupInterval", int64(c.CleanupInterval)},
		{"WaitDelay", int64(c.WaitDelay)},
		{"MaxLineBytes", int64(c.MaxLineBytes)},
		{"EventBuffer", int64(c.EventBuffer)},
		{"EventBufferBytes", int64(c.EventBufferBytes)},
	} {
		if f.v < 0 {
			return bad("%s is negative (%d)", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"DefaultTimeout", c.DefaultTimeout},
		{"MaxTimeout", c.MaxTimeout},
		{"Retention", c.Retention},
		{"StopGrace", c.StopGrace},
	} {
		if f.v < 0 && f.v != -1 {
			return bad("%s is negative (%s); use 0 for the default or -1 for none", f.name, f.v)
		}
	}
	def := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	defDur := func(v, d time.Duration) time.Duration {
		if v == 0 {
			return d
		}
		return v
	}
	s.MaxConcurrent = def(c.MaxConcurrent, DefaultMaxConcurrent)
	s.MaxKept = def(c.MaxKept, DefaultMaxKept)
	s.MaxLineBytes = def(c.MaxLineBytes, DefaultMaxLineBytes)
	s.MaxLinePieces = def(c.MaxLinePieces, DefaultMaxLinePieces)
	s.EventBuffer = def(c.EventBuffer, DefaultEventBuffer)
	s.EventBufferBytes = def(c.EventBufferBytes, DefaultEventBufferBytes)
	s.DefaultTimeout = defDur(c.DefaultTimeout, DefaultTimeout)
	s.MaxTimeout = defDur(c.MaxTimeout, DefaultMaxTimeout)
	s.Retention = defDur(c.Retention, DefaultRetention)
	s.CleanupInterval = defDur(c.CleanupInterval, DefaultCleanupInterval)
	s.StopGrace = defDur(c.StopGrace, DefaultStopGrace)
	s.WaitDelay = defDur(c.WaitDelay, DefaultWaitDelay)
	if c.OutputLimit == 0 {
		s.OutputLimit = DefaultOutputLimit
	}
	if c.SpillDir == "" {
		s.SpillDir = os.TempDir()
	}
	if s.MaxTimeout != NoTimeout && (s.DefaultTimeout == NoTimeout || s.DefaultTimeout > s.MaxTimeout) {
		return bad("DefaultTimeout (%s) exceeds MaxTimeout (%s)", durText(s.DefaultTimeout), s.MaxTimeout)
	}
	switch c.Oversized {
	case KeepHeadTail, FailExecution, SpillToFile:
	default:
		return bad("unknown Oversized strategy %d", int(c.Oversized))
	}
	sig, err := stopSignalOf(c.StopSignal, syscall.SIGTERM)
	if err != nil {
		return bad("StopSignal: %v", err)
	}
	s.stopSignal = sig
	return s, nil
}

func stopSignalOf(sig os.Signal, def syscall.Signal) (syscall.Signal, error) {
	if sig == nil {
		return def, nil
	}
	ss, ok := sig.(syscall.Signal)
	if !ok || ss <= 0 {
		return 0, fmt.Errorf("%v is not a syscall.Signal", sig)
	}
	return ss, nil
}

func durText(d time.Duration) string {
	if d == NoTimeout {
		return "none"
	}
	return d.String()
}
