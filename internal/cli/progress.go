package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/run"
)

// progress shows a run as it happens. Observe is called from the runner's goroutine; Close stops
// any background redraw and leaves the terminal clean.
type progress interface {
	run.Observer
	Close()
}

// ---- --output json ----

// jsonProgress prints one JSON object per line and nothing else: the stream tools consume.
type jsonProgress struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newJSONProgress(w io.Writer) *jsonProgress {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &jsonProgress{w: bw, enc: enc}
}

// Flush writes what is buffered; the runner calls it before it waits.
func (p *jsonProgress) Flush() { _ = p.w.Flush() }

// jsonEvent is the wire form of a run event. Field names are stable snake_case.
type jsonEvent struct {
	Event      string            `json:"event"`
	Time       string            `json:"time"`
	RunID      string            `json:"run_id,omitempty"`
	Playbook   string            `json:"playbook,omitempty"`
	File       string            `json:"file,omitempty"`
	Step       string            `json:"step,omitempty"`
	Attempt    int               `json:"attempt,omitempty"`
	PID        int               `json:"pid,omitempty"`
	Command    string            `json:"command,omitempty"`
	Stream     string            `json:"stream,omitempty"`
	Line       *string           `json:"line,omitempty"`
	Partial    bool              `json:"partial,omitempty"`
	Omitted    int64             `json:"omitted,omitempty"`
	Dropped    int               `json:"dropped,omitempty"`
	Status     string            `json:"status,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	ExitCode   *int              `json:"exit_code,omitempty"`
	Signal     int               `json:"signal,omitempty"`
	Attempts   *int              `json:"attempts,omitempty"`
	DurationMS *int64            `json:"duration_ms,omitempty"`
	DelayMS    *int64            `json:"delay_ms,omitempty"`
	Outputs    map[string]string `json:"outputs,omitempty"`
	Error      string            `json:"error,omitempty"`
	Params     json.RawMessage   `json:"params,omitempty"`
	Worker     string            `json:"worker,omitempty"` // a distributed run's: who ran the attempt
}

func (p *jsonProgress) Observe(e run.Event) {
	j := jsonEvent{Event: string(e.Type), Time: formatTime(e.Time), Step: e.StepID, Attempt: e.Attempt}
	switch e.Type {
	case run.EventRunStarted, run.EventRunFinished:
		r := e.Run
		j.RunID, j.Playbook, j.File, j.Status = r.ID, r.Playbook, r.File, string(r.Status)
		if e.Type == run.EventRunStarted {
			j.Params = json.RawMessage(r.Params)
		} else {
			j.ExitCode = intPtr(r.ExitCode)
			j.DurationMS = int64Ptr(r.FinishedAt.Sub(r.StartedAt).Milliseconds())
			j.Error = r.Error
		}
	case run.EventStepStarted:
		j.PID, j.Command = e.PID, e.Command
	case run.EventStepOutput:
		line := string(e.Line) // invalid UTF-8 becomes U+FFFD in JSON: the stream stays valid
		j.Event = "output"
		j.Stream, j.Line, j.Partial, j.Omitted, j.Dropped = e.Stream, &line, e.Partial, e.Omitted, e.Dropped
	case run.EventStepRetrying:
		a := e.Failed
		j.Status, j.Signal, j.Error = string(a.Status), a.Signal, a.Error
		if a.ExitCode >= 0 {
			j.ExitCode = intPtr(a.ExitCode)
		}
		j.DelayMS = int64Ptr(e.Delay.Milliseconds())
		j.Dropped = e.Dropped
		j.Worker = a.Worker
	case run.EventStepFinished:
		s := e.Step
		j.Status, j.Reason, j.Signal, j.Error, j.Outputs = string(s.Status), s.Reason, s.Signal, s.Error, s.Outputs
		if s.ExitCode >= 0 {
			j.ExitCode = intPtr(s.ExitCode)
		}
		j.Attempts = intPtr(s.Attempts)
		j.Dropped = e.Dropped
		j.Worker = s.Worker
		j.DurationMS = int64Ptr(stepDuration(s).Milliseconds())
	case run.EventRunCancelling:
		j.Reason = e.Reason
	}
	// An encoding error means stdout is gone (closed pipe); the run goes on and is recorded.
	_ = p.enc.Encode(j)
}

func (p *jsonProgress) Close() { p.Flush() }

// waiting prints run_waiting: the run waits for the concurrency group that run h holds. It comes before
// run_started (the run has no record yet) and is printed at once.
func (p *jsonProgress) waiting(now time.Time, h *store.GroupHolder) {
	_ = p.enc.Encode(struct {
		Event  string `json:"event"`
		Time   string `json:"time"`
		Group  string `json:"group"`
		HeldBy string `json:"held_by"`
		Since  string `json:"since"`
	}{"run_waiting", now.UTC().Format(store.TimeFormat), h.Group, h.RunID, h.Since.UTC().Format(store.TimeFormat)})
	p.Flush()
}

func intPtr(v int) *int       { return &v }
func int64Ptr(v int64) *int64 { return &v }
func stepDuration(s *run.StepRecord) time.Duration {
	if s.StartedAt.IsZero() || s.FinishedAt.IsZero() {
		return 0
	}
	return s.FinishedAt.Sub(s.StartedAt)
}

// ---- text: plain lines, or a live view on a terminal ----

// textProgress prints plain lines prefixed with the step id. On a terminal it also keeps a live block
// at the bottom (one line per running step with its elapsed time, and the counts), redrawn ten times a
// second, and colours statuses unless NO_COLOR or --no-color.
type textProgress struct {
	mu     sync.Mutex
	w      *bufio.Writer // flushed by Flush (the runner, before it waits), the redraw and Close
	errOut io.Writer
	color  bool
	live   bool
	now    func() time.Time
	width  int

	total    int
	done     int
	failed   int
	running  map[string]time.Time // step id → attempt start
	attempts map[string]int
	idWidth  int
	block    int // lines of the live block on screen

	buf []byte // reused by writeLine

	logDir string // --log-dir, where the complete streams go; "" = the database's head and tail only
	runID  string

	stop chan struct{}
	wg   sync.WaitGroup
}

// newTextProgress makes the text display; logDir is --log-dir ("" when not given), for saying where the
// lines the display skipped can be read.
func newTextProgress(w, errOut io.Writer, total, idWidth int, live, color bool, now func() time.Time, logDir string) *textProgress {
	p := &textProgress{w: bufio.NewWriterSize(w, 64<<10), errOut: errOut, color: color, live: live, now: now, width: 100,
		total: total, running: map[string]time.Time{}, attempts: map[string]int{}, idWidth: idWidth, logDir: logDir}
	if live {
		p.stop = make(chan struct{})
		p.wg.Add(1)
		go p.tick()
	}
	return p
}

func (p *textProgress) tick() {
	defer p.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.clearBlock()
			p.drawBlock()
			p.w.Flush()
			p.mu.Unlock()
		}
	}
}

// Close stops the redraw and removes the live block.
func (p *textProgress) Close() {
	if p.live {
		close(p.stop)
		p.wg.Wait()
	}
	p.mu.Lock()
	p.clearBlock()
	p.w.Flush()
	p.mu.Unlock()
}

// Flush writes what is buffered; the runner calls it before it waits.
func (p *textProgress) Flush() {
	p.mu.Lock()
	p.w.Flush()
	p.mu.Unlock()
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func (p *textProgress) paint(code, s string) string {
	if !p.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

func statusColor(s run.Status) string {
	switch s {
	case run.StatusSucceeded:
		return ansiGreen
	case run.StatusFailed, run.StatusTimedOut:
		return ansiRed
	}
	return ansiYellow
}

func (p *textProgress) prefix(step string) string {
	return p.paint(ansiCyan, "["+step+"]") + " "
}

func (p *textProgress) Observe(e run.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBlock()
	switch e.Type {
	case run.EventRunStarted:
		r := e.Run
		p.runID = r.ID
		p.printf("%s %s (%s), %d steps\n", p.paint(ansiBold, "Run "+idPrefix(r.ID)), r.Playbook, r.File, len(r.StepIDs))
	case run.EventStepStarted:
		p.running[e.StepID] = e.Time
		p.attempts[e.StepID] = e.Attempt
		if e.Unstarted {
			// Nothing started: the failure that follows at once says why.
			return
		}
		what := "started"
		if e.Attempt > 1 {
			what = fmt.Sprintf("attempt %d started", e.Attempt)
		}
		cmd := e.Command
		if cmd != "" {
			cmd = ": " + firstLine(cmd)
		}
		p.printf("%s%s%s\n", p.prefix(e.StepID), what, p.paint(ansiDim, cmd))
	case run.EventStepOutput:
		p.dropped(e)
		p.writeLine(e)
	case run.EventStepRetrying:
		p.dropped(e)
		delete(p.running, e.StepID)
		a := e.Failed
		p.printf("%s%s\n", p.prefix(e.StepID), p.paint(ansiYellow, fmt.Sprintf("attempt %d %s%s (%s); retrying in %s",
			a.Attempt, statusWord(a.Status), onWorker(a.Worker), attemptWhy(a.Status, a.ExitCode, a.Signal, a.Error), formatDuration(e.Delay))))
	case run.EventStepFinished:
		p.dropped(e)
		delete(p.running, e.StepID)
		s := e.Step
		p.done++
		if (s.Status == run.StatusFailed || s.Status == run.StatusTimedOut) && !s.ContinueOnError {
			p.failed++
		}
		p.printf("%s%s\n", p.prefix(e.StepID), p.describeStep(s))
	case run.EventRunCancelling:
		p.w.Flush() // what happened before the stop shows before the stop's message
		fmt.Fprintf(p.errOut, "Stopping the run: %s.\n", e.Reason)
		switch {
		case strings.HasPrefix(e.Reason, "recording failed"):
			// Not a signal: nothing is stopped, the run only starts nothing new.
			fmt.Fprintln(p.errOut, "No other step starts but always() and cancelled() ones; running steps finish and are recorded if the database allows.")
		case !strings.HasPrefix(e.Reason, "killed"):
			fmt.Fprintln(p.errOut, "Running steps get their stop signal, then SIGKILL after their grace; always() and cancelled() steps still run. Press Ctrl-C again to kill every step now.")
		}
	case run.EventRunFinished:
	}
	p.drawBlock()
}

// writeLine prints one line of a step's output with one copy: a step that floods its output must not
// cost the runner more than the bytes themselves.
func (p *textProgress) writeLine(e run.Event) {
	if e.Omitted > 0 {
		p.printf("%s%s\n", p.prefix(e.StepID), p.paint(ansiDim,
			fmt.Sprintf("... and %d more bytes of this line, not shown (playbook logs has its end, --log-dir all of it)", e.Omitted)))
		return
	}
	b := append(p.buf[:0], p.prefix(e.StepID)...)
	stderr := e.Stream == "stderr" && p.color
	if stderr {
		b = append(b, ansiYellow...)
	}
	if utf8.Valid(e.Line) {
		b = append(b, e.Line...)
	} else {
		b = append(b, bytes.ToValidUTF8(e.Line, []byte("\uFFFD"))...)
	}
	if stderr {
		b = append(b, ansiReset...)
	}
	if e.Partial {
		b = append(b, p.paint(ansiDim, " ⏎")...)
	}
	b = append(b, '\n')
	p.w.Write(b)
	if cap(b) <= 128<<10 { // keep a buffer the size of a long line, not of a freak one
		p.buf = b
	}
}

// dropped says how many lines of a step the display skipped because they came faster than it took them,
// and where they can be read: the database keeps only the head and tail of a stream over the output
// limit, so only --log-dir is sure to have every one of them.
func (p *textProgress) dropped(e run.Event) {
	if e.Dropped == 0 {
		return
	}
	where := fmt.Sprintf("the database keeps the head and tail of each stream: playbook logs %s %s; only --log-dir keeps all of it",
		idPrefix(p.runID), e.StepID)
	if p.logDir != "" {
		base := e.StepID
		if a := p.attempts[e.StepID]; a > 1 {
			base += "." + strconv.Itoa(a)
		}
		where = "all of it is in " + filepath.Join(p.logDir, p.runID, base) + ".stdout and .stderr"
	}
	p.printf("%s%s\n", p.prefix(e.StepID), p.paint(ansiYellow,
		fmt.Sprintf("... %d lines not shown: output came faster than the terminal took it (%s)", e.Dropped, where)))
}

func (p *textProgress) describeStep(s *run.StepRecord) string {
	st := p.paint(statusColor(s.Status), statusWord(s.Status))
	switch s.Status {
	case run.StatusSkipped:
		return st + ": " + reasonText(s.Reason)
	case run.StatusSucceeded:
		if s.Reason == run.ReasonReused {
			return st + " (reused from run " + idPrefix(s.ReusedFrom) + ")"
		}
		msg := fmt.Sprintf("%s in %s%s%s", st, formatDuration(stepDuration(s)), attemptsText(s.Attempts), onWorker(s.Worker))
		if s.Error != "" { // a warning: output may be incomplete, a log file could not be written
			msg += p.paint(ansiYellow, " (warning: "+firstLine(s.Error)+")")
		}
		return msg
	}
	msg := fmt.Sprintf("%s in %s%s%s: %s", st, formatDuration(stepDuration(s)), attemptsText(s.Attempts), onWorker(s.Worker),
		attemptWhy(s.Status, s.ExitCode, s.Signal, s.Error))
	if s.ContinueOnError {
		msg += "; continue_on_error: counted as succeeded"
	}
	return msg
}

// onWorker names the worker that ran an attempt of a distributed run; "" for a local one.
func onWorker(w string) string {
	if w == "" {
		return ""
	}
	return " on " + w
}

func attemptsText(n int) string {
	if n > 1 {
		return fmt.Sprintf(" after %d attempts", n)
	}
	return ""
}

// attemptWhy says why an attempt did not succeed, as briefly as the record allows.
func attemptWhy(status run.Status, exitCode, signal int, errMsg string) string {
	if errMsg != "" {
		return firstLine(errMsg)
	}
	if signal != 0 {
		return fmt.Sprintf("killed by %s, signal %d", engine.SignalName(syscall.Signal(signal)), signal)
	}
	if exitCode >= 0 {
		return fmt.Sprintf("exit status %d", exitCode)
	}
	return statusWord(status)
}

func reasonText(reason string) string {
	switch reason {
	case run.ReasonConditionFalse:
		return "its if is false"
	case run.ReasonDependencyFailed:
		return "a step it needs did not succeed"
	case run.ReasonDependencySkipped:
		return "a step it needs was skipped"
	case run.ReasonFailFast:
		return "fail_fast: an earlier step failed"
	case run.ReasonRunCancelled:
		return "the run was cancelled"
	case run.ReasonRunTimedOut:
		return "the run timed out"
	case run.ReasonRecordError:
		return "the run could not be recorded"
	case run.ReasonSkippedByUser:
		return "left out by --only or --skip"
	}
	return reason
}

func (p *textProgress) printf(format string, args ...any) {
	fmt.Fprintf(p.w, format, args...)
}

// clearBlock erases the live block so that ordinary lines print where it was.
func (p *textProgress) clearBlock() {
	if p.block > 0 {
		fmt.Fprintf(p.w, "\x1b[%dF\x1b[J", p.block)
		p.block = 0
	}
}

func (p *textProgress) drawBlock() {
	if !p.live {
		return
	}
	now := p.now()
	ids := make([]string, 0, len(p.running))
	for id := range p.running {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return p.running[ids[i]].Before(p.running[ids[j]]) || p.running[ids[i]].Equal(p.running[ids[j]]) && ids[i] < ids[j]
	})
	const maxShown = 10
	var b strings.Builder
	lines := 0
	for i, id := range ids {
		if i == maxShown {
			fmt.Fprintf(&b, "  … and %d more running\n", len(ids)-maxShown)
			lines++
			break
		}
		elapsed := now.Sub(p.running[id]).Truncate(100 * time.Millisecond)
		att := ""
		if p.attempts[id] > 1 {
			att = fmt.Sprintf(" (attempt %d)", p.attempts[id])
		}
		line := fmt.Sprintf("  %s %-*s %8s%s", p.paint(ansiCyan, "●"), p.idWidth, id, formatDuration(elapsed), att)
		b.WriteString(truncateRunes(line, p.width+len(ansiCyan)+len(ansiReset)))
		b.WriteByte('\n')
		lines++
	}
	waiting := p.total - p.done - len(p.running)
	counts := fmt.Sprintf("%d/%d done · %d running · %d waiting · %s", p.done, p.total, len(p.running), waiting,
		p.paint(map[bool]string{true: ansiRed, false: ""}[p.failed > 0], fmt.Sprintf("%d failed", p.failed)))
	b.WriteString(counts)
	b.WriteByte('\n')
	lines++
	io.WriteString(p.w, b.String())
	p.block = lines
}

func truncateRunes(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max])
}

// firstLine is the first line of s, with " …" when more lines follow; a final newline (a one-line
// `run: |`) is not one more line.
func firstLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// exitText is how a step ended, for tables: its exit code, "signal N" when a signal killed it, "-"
// when it never ran to an end.
func exitText(code, signal int) string {
	switch {
	case signal > 0:
		return fmt.Sprintf("signal %d", signal)
	case code >= 0:
		return strconv.Itoa(code)
	}
	return "-"
}

// formatDuration rounds for people: 850ms, 1.2s, 2m03s, 1h02m.
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// formatTime is the timestamp form of the public contract: UTC, milliseconds, Z.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
