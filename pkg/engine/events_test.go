package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEventSequence(t *testing.T) {
	e := newEngine(t, Config{})
	rec := newRecorder(e)
	req := helperReq("lines", "3")
	req.Metadata = Metadata{Source: "test", Tags: map[string]string{"step": "build", "attempt": "1"}}
	r := mustRun(t, e, req)
	rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	evs := rec.of(r.ID)

	var kinds []string
	for _, ev := range evs {
		k := string(ev.Type)
		if ev.Type == EventStatusChanged {
			k += ":" + string(ev.OldStatus) + ">" + string(ev.NewStatus)
		}
		kinds = append(kinds, k)
		if ev.Metadata.Source != "test" || ev.Metadata.Tags["step"] != "build" || ev.Metadata.Tags["attempt"] != "1" {
			t.Errorf("%s event lacks metadata: %+v", ev.Type, ev.Metadata)
		}
		if ev.Time.IsZero() {
			t.Errorf("%s event without timestamp", ev.Type)
		}
	}
	if kinds[0] != "status_changed:pending>running" || kinds[1] != "started" {
		t.Fatalf("sequence starts %v", kinds[:2])
	}
	n := len(kinds)
	if kinds[n-2] != "status_changed:running>completed" || kinds[n-1] != "completed" {
		t.Fatalf("sequence ends %v", kinds[n-2:])
	}
	if got := rec.lines(r.ID, EventStdout); strings.Join(got, ",") != "out 0,out 1,out 2" {
		t.Errorf("stdout lines %q", got)
	}
	if got := rec.lines(r.ID, EventStderr); strings.Join(got, ",") != "err 0,err 1,err 2" {
		t.Errorf("stderr lines %q", got)
	}
	if evs[1].PID != r.PID || evs[1].Command != r.Command || r.PID == 0 {
		t.Errorf("started event %+v vs result pid %d", evs[1], r.PID)
	}
	if last := evs[n-1]; last.Result != r {
		t.Errorf("terminal event carries %p, want the published result %p", last.Result, r)
	}
}

func TestEventSequenceCancelledPending(t *testing.T) {
	e := newEngine(t, Config{MaxConcurrent: 1})
	rec := newRecorder(e)
	blocker := mustExecute(t, e, helperReq("sleep"))
	id := mustExecute(t, e, helperReq("echo", "x"))
	e.Cancel(id)
	ev := rec.waitFor(t, id, func(ev Event) bool { return ev.Type.Terminal() })
	evs := rec.of(id)
	if len(evs) != 2 || evs[0].OldStatus != StatusPending || evs[0].NewStatus != StatusCancelled ||
		ev.Type != EventCancelled || ev.Result.PID != 0 {
		t.Fatalf("events %+v", evs)
	}
	e.Kill(blocker)
}

// A subscriber that stops reading does not stall the process or the engine; it later gets every
// lifecycle event, and the lines it missed are counted.
func TestSlowSubscriberDoesNotStall(t *testing.T) {
	const lines = 20000
	e := newEngine(t, Config{EventBuffer: 100})
	release := stalledSubscriber(e)
	// The slow handler is stuck on the first event until the execution is over.
	r := mustRun(t, e, helperReq("lines", strconv.Itoa(lines)))
	assertStatus(t, r, StatusCompleted)
	if r.StdoutBytes == 0 || !contains(r.Stdout, "out 19999") {
		t.Fatal("output incomplete")
	}
	got := release()

	n := tallyEvents(got)
	if fmt.Sprint(n.lifecycle) != "[status_changed started status_changed completed]" {
		t.Errorf("lifecycle events %v", n.lifecycle)
	}
	if n.dropped == 0 || n.lines+n.dropped != 2*lines {
		t.Errorf("received %d lines + %d dropped, want %d in all with some dropped", n.lines, n.dropped, 2*lines)
	}
	if got[len(got)-1].Result == nil {
		t.Error("terminal event without result")
	}
}

// stalledSubscriber subscribes a handler that blocks on the first event it gets until release is
// called, and keeps every event. release returns them all once the terminal event has arrived.
func stalledSubscriber(e *Engine) (release func() []Event) {
	unblock := make(chan struct{})
	terminal := make(chan struct{})
	var got []Event // written by the handler only, read after terminal
	var once sync.Once
	e.Subscribe(HandlerFunc(func(ev Event) {
		once.Do(func() { <-unblock })
		got = append(got, ev)
		if ev.Type.Terminal() {
			close(terminal)
		}
	}))
	return func() []Event {
		close(unblock)
		<-terminal
		return got
	}
}

// eventTally is what a list of events holds: the lifecycle event types in order, the line events and
// their bytes, and the drops they report.
type eventTally struct {
	lifecycle                 []EventType
	lines, lineBytes, dropped int64
}

func tallyEvents(events []Event) eventTally {
	var n eventTally
	for _, ev := range events {
		switch ev.Type {
		case EventStdout, EventStderr:
			n.lines++
			n.lineBytes += int64(len(ev.Line))
		default:
			n.lifecycle = append(n.lifecycle, ev.Type)
		}
		n.dropped += ev.Dropped
	}
	return n
}

type panicky struct {
	mu   sync.Mutex
	errs []error
}

func (p *panicky) HandleEvent(ev Event) { panic("boom on " + string(ev.Type)) }
func (p *panicky) HandleError(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	var hookErrs atomic.Int64
	e := newEngine(t, Config{OnHandlerError: func(error) { hookErrs.Add(1) }})
	p := &panicky{}
	e.Subscribe(p)
	e.Subscribe(HandlerFunc(func(Event) { panic("plain") }))
	rec := newRecorder(e)
	for range 2 {
		r := mustRun(t, e, helperReq("echo", "hi"))
		assertStatus(t, r, StatusCompleted)
		rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	}
	e.Close() // drains the subscriptions
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) == 0 || hookErrs.Load() == 0 {
		t.Fatalf("panics reported: handler %d, hook %d", len(p.errs), hookErrs.Load())
	}
	var pe *HandlerPanicError
	if !errors.As(p.errs[0], &pe) || !strings.Contains(pe.Error(), "boom") || len(pe.Stack) == 0 {
		t.Fatalf("reported %v", p.errs[0])
	}
}

func TestMultiAndLogHandler(t *testing.T) {
	e := newEngine(t, Config{})
	var quiet, verbose bytes.Buffer
	var count atomic.Int64
	p := &panicky{}
	e.Subscribe(Multi(NewLogHandler(&quiet, false), p, NewLogHandler(&verbose, true),
		HandlerFunc(func(Event) { count.Add(1) })))
	r := mustRun(t, e, shReq("echo hello; exit 2"))
	e.Close()
	if count.Load() < 5 {
		t.Errorf("the handler after a panicking one got %d events", count.Load())
	}
	if len(p.errs) == 0 {
		t.Error("Multi did not report the member's panic to its HandleError")
	}
	q, v := quiet.String(), verbose.String()
	for _, want := range []string{r.ID + " started pid=", "completed after", "exit status 2"} {
		if !strings.Contains(q, want) || !strings.Contains(v, want) {
			t.Errorf("logs lack %q:\n%s\n%s", want, q, v)
		}
	}
	if strings.Contains(q, "stdout: hello") || !strings.Contains(v, "stdout: hello") {
		t.Errorf("verbose flag: quiet %q verbose %q", q, v)
	}
	if !strings.Contains(v, "status pending -> running") {
		t.Errorf("verbose log lacks status changes: %s", v)
	}
}

func TestUnsubscribe(t *testing.T) {
	e := newEngine(t, Config{})
	var n atomic.Int64
	unsub := e.Subscribe(HandlerFunc(func(Event) { n.Add(1) }))
	rec := newRecorder(e)
	r := mustRun(t, e, helperReq("echo", "a"))
	rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	unsub()
	unsub() // twice is fine
	before := n.Load()
	r = mustRun(t, e, helperReq("echo", "b"))
	rec.waitFor(t, r.ID, func(ev Event) bool { return ev.Type.Terminal() })
	if n.Load() != before {
		t.Fatalf("events after unsubscribe: %d -> %d", before, n.Load())
	}
	// Unsubscribing from inside the handler must not deadlock.
	var self func()
	done := make(chan struct{})
	self = e.Subscribe(HandlerFunc(func(Event) {
		self()
		select {
		case <-done:
		default:
			close(done)
		}
	}))
	mustRun(t, e, helperReq("echo", "c"))
	<-done
}

func TestLineSplitter(t *testing.T) {
	type line struct {
		s       string
		partial bool
	}
	cases := []struct {
		name   string
		max    int
		writes []string
		want   []line
	}{
		{"simple", 10, []string{"a\nb\n"}, []line{{"a", false}, {"b", false}}},
		{"split across writes", 10, []string{"ab", "c\nd", "e\n"}, []line{{"abc", false}, {"de", false}}},
		{"crlf", 10, []string{"a\r\n\r\n"}, []line{{"a", false}, {"", false}}},
		{"final line without newline", 10, []string{"a\nlast"}, []line{{"a", false}, {"last", false}}},
		{"long line in chunks", 3, []string{"abcdefg\n"}, []line{{"abc", true}, {"def", true}, {"g", false}}},
		{"exactly max", 3, []string{"abc\nabcdef"}, []line{{"abc", false}, {"abc", true}, {"def", false}}},
		{"empty lines", 3, []string{"\n\n"}, []line{{"", false}, {"", false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []line
			l := &lineSplitter{max: tc.max, emit: func(b []byte, p bool) { got = append(got, line{string(b), p}) }}
			for _, w := range tc.writes {
				l.write([]byte(w))
			}
			l.flush()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
