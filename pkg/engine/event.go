package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"
)

// EventType names an event; the values are stable snake_case strings.
type EventType string

const (
	// EventStarted: the process was started; carries PID and the masked Command.
	EventStarted EventType = "started"
	// EventStdout and EventStderr carry one output line (masked) in Line.
	EventStdout EventType = "stdout"
	EventStderr EventType = "stderr"
	// EventStatusChanged: every transition, with OldStatus and NewStatus.
	EventStatusChanged EventType = "status_changed"
	// The terminal events; exactly one per execution, last, carrying the full Result.
	EventCompleted EventType = "completed"
	EventFailed    EventType = "failed"
	EventTimedOut  EventType = "timed_out"
	EventCancelled EventType = "cancelled"
)

// Terminal reports whether t is one of the four terminal event types.
func (t EventType) Terminal() bool {
	switch t {
	case EventCompleted, EventFailed, EventTimedOut, EventCancelled:
		return true
	}
	return false
}

// Event is what subscribers receive.
//
// For one execution a subscription sees, in this order: status_changed pending→running, started, the
// stdout/stderr line events (each stream in order; the two streams interleaved as they were read),
// status_changed running→terminal, and exactly one terminal event (completed, failed, timed_out or
// cancelled) carrying the full Result. An execution that never starts sees status_changed pending→terminal
// and the terminal event. Lifecycle events are never dropped; line events may be (see Dropped).
//
// Line, Metadata.Tags and Result are shared between subscribers: handlers must not modify them.
type Event struct {
	Type        EventType `json:"event_type"`
	ExecutionID string    `json:"execution_id"`
	Time        time.Time `json:"timestamp"`
	// Command is the masked display form of what runs (started).
	Command string `json:"command,omitempty"`
	// PID is the process (and process group) id (started).
	PID int `json:"pid,omitempty"`
	// StartTicks is when PID started, in clock ticks since boot as field 22 of /proc/<pid>/stat gives it
	// (started; Linux; 0 when unknown). With PID it names the process even after its number is reused,
	// which is how crash recovery knows a recorded group is still the step's. It is taken while the
	// child cannot have been reaped, and the engine keeps no copy: a caller that needs it keeps this one.
	StartTicks uint64 `json:"start_ticks,omitempty"`
	// Line is one line of stdout or stderr without its line ending ("\n" or "\r\n"), masked, raw bytes.
	// A line longer than Config.MaxLineBytes arrives in chunks; every chunk but the last has Partial set.
	// At most Config.MaxLinePieces chunks of one line are delivered: the line's last event then has an
	// empty Line and Omitted set. A final line without a newline is delivered too. JSON encodes it as a
	// string with invalid UTF-8 replaced by U+FFFD.
	Line    []byte `json:"line,omitempty"`
	Partial bool   `json:"partial,omitempty"`
	// Omitted is the number of bytes at the end of an over-long line that were not delivered as events
	// (they are in the captured output and the log files, like the rest).
	Omitted int64 `json:"omitted,omitempty"`
	// Dropped counts the line events of this execution that this subscriber missed because it fell behind
	// (more than Config.EventBuffer line events, or Config.EventBufferBytes bytes of them, waiting), since
	// the previous event that reported drops.
	// It is set on the next line event delivered for the execution, or on its terminal event.
	Dropped   int64  `json:"dropped,omitempty"`
	OldStatus Status `json:"old_status,omitempty"`
	NewStatus Status `json:"new_status,omitempty"`
	// Result is set on terminal events.
	Result *Result `json:"result,omitempty"`
	// Error is set on failed, timed_out and cancelled events.
	Error string `json:"error,omitempty"`
	// TimeoutMS is the timeout that expired (timed_out).
	TimeoutMS int64    `json:"timeout_ms,omitempty"`
	Metadata  Metadata `json:"metadata,omitzero"`
}

// eventFields is Event without its methods, so that encoding it inside eventJSON does not recurse.
type eventFields Event

// eventJSON is Event as encoded. Its Line, a string, is shallower than the embedded []byte Line, so
// encoding/json uses it in its place: every other field is encoded as Event declares it.
type eventJSON struct {
	eventFields
	Line *string `json:"line,omitempty"`
}

// MarshalJSON encodes the event with its "event_type" tag; Line becomes a string with invalid UTF-8
// replaced, so the output is always valid JSON. An empty line of a line event is encoded as "".
func (e Event) MarshalJSON() ([]byte, error) {
	w := eventJSON{eventFields: eventFields(e)}
	if e.Line != nil || e.Type == EventStdout || e.Type == EventStderr {
		s := textOf(e.Line)
		w.Line = &s
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes what MarshalJSON produced.
func (e *Event) UnmarshalJSON(data []byte) error {
	var w eventJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return &Error{Code: CodeSerialization, Msg: "decode event", Err: err}
	}
	*e = Event(w.eventFields)
	if w.Line != nil {
		e.Line = []byte(*w.Line)
	}
	return nil
}

// Handler receives events, one at a time per subscription, on a goroutine of that subscription, never
// on a goroutine that drains a process's output. A slow handler delays only its own subscription; a
// handler that panics is recovered (see ErrorHandler) and keeps receiving events.
type Handler interface{ HandleEvent(Event) }

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(Event)

// HandleEvent calls f(e).
func (f HandlerFunc) HandleEvent(e Event) { f(e) }

// ErrorHandler is optionally implemented by a Handler to hear about its own failures: a panic in
// HandleEvent is recovered and passed to HandleError as a *HandlerPanicError.
// Handlers without it report to Config.OnHandlerError.
type ErrorHandler interface{ HandleError(error) }

// HandlerPanicError is a recovered panic of an event handler.
type HandlerPanicError struct {
	Event Event
	Value any
	Stack []byte
}

// Error names the event and the panic value.
func (p *HandlerPanicError) Error() string {
	return fmt.Sprintf("engine: event handler panicked on %s event of %s: %v", p.Event.Type, p.Event.ExecutionID, p.Value)
}

// Discard is a Handler that ignores every event.
var Discard Handler = HandlerFunc(func(Event) {})

// Multi returns a Handler that passes each event to every handler in order. A panic in one handler does not keep the event from the others: it is recovered and
// given to that handler's HandleError if it has one; otherwise, once every handler has had the event, the
// panics are reported as one error to the subscription's error reporting.
func Multi(handlers ...Handler) Handler { return multi(append([]Handler(nil), handlers...)) }

type multi []Handler

// HandleEvent passes e to every member, recovering their panics.
func (m multi) HandleEvent(e Event) {
	var unreported []error
	for _, h := range m {
		if err := deliver(h, e); err != nil {
			if eh, ok := h.(ErrorHandler); ok {
				eh.HandleError(err)
			} else {
				unreported = append(unreported, err)
			}
		}
	}
	if len(unreported) > 0 {
		panic(errors.Join(unreported...))
	}
}

// HandleError passes errors to every member that implements ErrorHandler.
func (m multi) HandleError(err error) {
	for _, h := range m {
		if eh, ok := h.(ErrorHandler); ok {
			eh.HandleError(err)
		}
	}
}

// deliver calls h and turns a panic into a *HandlerPanicError.
func deliver(h Handler, e Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &HandlerPanicError{Event: e, Value: v, Stack: debug.Stack()}
		}
	}()
	h.HandleEvent(e)
	return nil
}

// NewLogHandler returns a Handler that writes one human-readable line per event to w: started and terminal events always, status changes and output lines only when
// verbose. Writes are serialised, so one handler may serve several subscriptions. Write errors are
// ignored.
func NewLogHandler(w io.Writer, verbose bool) Handler { return &logHandler{w: w, verbose: verbose} }

type logHandler struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
}

// HandleEvent writes the line for e, if e is one the handler reports.
func (l *logHandler) HandleEvent(e Event) {
	var msg string
	switch {
	case e.Type == EventStarted:
		msg = fmt.Sprintf("started pid=%d: %s", e.PID, e.Command)
	case e.Type.Terminal() && e.Result != nil:
		r := e.Result
		msg = fmt.Sprintf("%s after %s", r.Status, r.Duration.Round(time.Millisecond))
		if r.Error != "" {
			msg += ": " + r.Error
		}
		if r.Warning != "" {
			msg += " (warning: " + r.Warning + ")"
		}
		if e.Dropped > 0 {
			msg += fmt.Sprintf(" (%d output lines not shown)", e.Dropped)
		}
	case !l.verbose:
		return
	case e.Type == EventStatusChanged:
		msg = fmt.Sprintf("status %s -> %s", e.OldStatus, e.NewStatus)
	case e.Type == EventStdout || e.Type == EventStderr:
		msg = fmt.Sprintf("%s: %s", e.Type, textOf(e.Line))
		if e.Partial {
			msg += " [continues]"
		}
		if e.Dropped > 0 {
			msg = fmt.Sprintf("[%d lines not shown] %s", e.Dropped, msg)
		}
	default:
		msg = string(e.Type)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s %s\n", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.ExecutionID, msg)
}
