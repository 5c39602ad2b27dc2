package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// MaxBridgeLine is the longest request line ServeJSON accepts.
const MaxBridgeLine = 16 << 20

// BridgeMessage is one line ServeJSON writes: Type "event" with an Event payload, "result" with a Result
// payload, or "error" with a BridgeError payload.
type BridgeMessage struct {
	Type    string `json:"type"`
	Payload any    `json:"payload"`
}

// BridgeError reports a request line ServeJSON could not run.
type BridgeError struct {
	Line    int    `json:"line"`
	ID      string `json:"id,omitempty"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// ServeJSON runs the JSON-lines bridge (Engine.ServeJSON) on a new Engine with the default Config, for a
// program that drives the engine over a pipe rather than as a Go library. The engine is closed before
// it returns.
func ServeJSON(ctx context.Context, in io.Reader, out io.Writer) error {
	e, err := New(Config{})
	if err != nil {
		return err
	}
	defer e.Close()
	return e.ServeJSON(ctx, in, out)
}

// ServeJSON reads one JSON Request per line from in (blank lines are skipped), executes each, and writes
// JSON lines to out: {"type":"event","payload":<Event>} for every event of those executions,
// {"type":"result","payload":<Result>} once each is terminal (right after its terminal event), and
// {"type":"error","payload":<BridgeError>} for a line that cannot be decoded or executed. Requests run
// concurrently, within the engine's limits; output lines are never interleaved.
//
// It returns nil once in is exhausted and every execution it started is terminal. When ctx is done it
// cancels those executions, waits for them (stop ladder) and returns ctx.Err(); a read error of in is
// returned likewise, after the executions end; a write error on out cancels them and is returned. If in
// blocks forever, the goroutine reading it outlives ServeJSON until in returns.
func (e *Engine) ServeJSON(ctx context.Context, in io.Reader, out io.Writer) error {
	b := &bridge{e: e, out: out, ids: make(map[string]bool), idle: make(chan struct{}, 1)}
	unsubscribe := e.Subscribe(HandlerFunc(b.handle))
	defer unsubscribe()

	quit := make(chan struct{})
	defer close(quit)
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		r := bufio.NewReader(in)
		for {
			line, err := readLine(r)
			if err == nil || len(line) > 0 {
				select {
				case lines <- line:
				case <-quit:
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					readErr <- err
				}
				return
			}
		}
	}()

	var result error
	n := 0
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				select {
				case result = <-readErr:
				default:
				}
				break loop
			}
			n++
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			b.submit(n, line)
			if err := b.writeErr(); err != nil {
				result = err
				b.cancelAll()
				break loop
			}
		case <-ctx.Done():
			result = ctx.Err()
			b.cancelAll()
			break loop
		}
	}
	for !b.finished() {
		select {
		case <-b.idle:
		case <-ctx.Done():
			if result == nil {
				result = ctx.Err()
			}
			b.cancelAll()
			<-b.idle
		}
	}
	if result == nil {
		result = b.writeErr()
	}
	return result
}

// readLine reads one line without its newline, refusing lines longer than MaxBridgeLine.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxBridgeLine {
			return nil, fmt.Errorf("engine: request line longer than %d bytes", MaxBridgeLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			return line, nil
		}
		return bytes.TrimSuffix(line, []byte("\n")), err
	}
}

type bridge struct {
	e   *Engine
	mu  sync.Mutex
	out io.Writer
	err error // first write error
	ids map[string]bool
	// idle gets a token each time the last outstanding execution finishes.
	idle chan struct{}
}

func (b *bridge) submit(line int, data []byte) {
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		if CodeOf(err) == CodeInternal { // a syntax error, found before Request.UnmarshalJSON ran
			err = &Error{Code: CodeSerialization, Msg: "decode request", Err: err}
		}
		b.writeError(line, "", err)
		return
	}
	if req.ID == "" {
		// Known before Execute, so the events it triggers at once are recognised as ours.
		req.ID = NewID()
	}
	b.mu.Lock()
	if b.ids[req.ID] {
		b.mu.Unlock()
		b.writeError(line, req.ID, invalid(InvalidID, "id", req.ID, "an execution with this id exists"))
		return
	}
	b.ids[req.ID] = true
	b.mu.Unlock()
	if _, err := b.e.Execute(req); err != nil {
		b.mu.Lock()
		delete(b.ids, req.ID)
		b.mu.Unlock()
		b.writeError(line, req.ID, err)
	}
}

func (b *bridge) handle(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ids[ev.ExecutionID] {
		return
	}
	b.writeLocked(BridgeMessage{Type: "event", Payload: ev})
	if ev.Type.Terminal() {
		b.writeLocked(BridgeMessage{Type: "result", Payload: ev.Result})
		delete(b.ids, ev.ExecutionID)
		if len(b.ids) == 0 {
			select {
			case b.idle <- struct{}{}:
			default:
			}
		}
	}
}

func (b *bridge) writeError(line int, id string, err error) {
	code := CodeOf(err)
	var e *Error
	msg := err.Error()
	if errors.As(err, &e) && e.Err != nil && e.Code == CodeValidation {
		msg = e.Err.Error()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writeLocked(BridgeMessage{Type: "error", Payload: BridgeError{Line: line, ID: id, Code: code, Message: msg}})
}

func (b *bridge) writeLocked(m BridgeMessage) {
	if b.err != nil {
		return
	}
	data, err := json.Marshal(m)
	if err != nil {
		b.err = &Error{Code: CodeSerialization, Msg: "encode " + m.Type, Err: err}
		return
	}
	if _, err := b.out.Write(append(data, '\n')); err != nil {
		b.err = &Error{Code: CodeIO, Msg: "write bridge output", Err: err}
	}
}

func (b *bridge) writeErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *bridge) finished() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.ids) == 0
}

func (b *bridge) cancelAll() {
	b.mu.Lock()
	ids := make([]string, 0, len(b.ids))
	for id := range b.ids {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	for _, id := range ids {
		_ = b.e.Cancel(id)
	}
}
