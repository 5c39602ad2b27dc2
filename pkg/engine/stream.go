package engine

import (
	"bytes"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/playbookhq/playbook/internal/mask"
)

// readBufSize is the read size for the pipes: the default Linux pipe capacity, so one read usually empties
// the pipe.
const readBufSize = 64 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// stream receives one output stream of a process: on Linux the runner goroutine's poll loop writes what
// it reads from the pipe (proc_linux.go); elsewhere os/exec's copying goroutine hands it the pipe through
// ReadFrom (so it sees how reading ended). It never fails a write, so the pipe is always drained to its
// end. Everything a stream owns is touched only by that one goroutine until the process is reaped.
//
// Data flows: raw bytes are counted (and checked against the limit under FailExecution), then masked, then
// captured head+tail, spilled, written to log files and, only while someone subscribes, split into line
// events.
type stream struct {
	ex  *execution
	typ EventType

	total     int64        // raw bytes
	written   atomic.Int64 // total, published for Engine.OutputBytes and Engine.Progress
	exceeded  bool         // total passed the limit
	failLimit int64        // FailExecution: the limit; 0 = not failing on size
	cut       error        // reading stopped before EOF (WaitDelay closed the pipe)

	masker *mask.Writer // nil without secrets
	sink   sink
}

// sink is the part of a stream after masking. mu guards capture against Engine.Progress, which reads it
// from another goroutine while the process runs; only the capture's update is under it (not the file
// writes), so a reader waits at most for one copy into the capture.
type sink struct {
	s       *stream
	mu      sync.Mutex
	capture headTail
	limit   int64
	spill   bool // SpillToFile
	file    *os.File
	fileErr error
	logs    []*logFile
	lines   *lineSplitter // nil when line events are off
}

func newStream(ex *execution, typ EventType, logs []*logFile) *stream {
	cfg := &ex.e.cfg
	s := &stream{ex: ex, typ: typ}
	s.sink = sink{s: s, capture: newHeadTail(ex.sp.limit), limit: ex.sp.limit,
		spill: cfg.Oversized == SpillToFile, logs: logs}
	if cfg.Oversized == FailExecution {
		s.failLimit = ex.sp.limit
	}
	if !cfg.NoLineEvents {
		s.sink.lines = &lineSplitter{max: cfg.MaxLineBytes, maxPieces: max(cfg.MaxLinePieces, 0), emit: s.emitLine,
			omit: s.emitOmitted, room: ex.e.hub.lineRoom,
			drop: func(n int64) { ex.e.hub.dropLines(ex.id, n) }}
	}
	if ex.masker != nil {
		s.masker = ex.masker.Writer(&s.sink)
	}
	return s
}

// ReadFrom drains r to its end. It is what io.Copy in os/exec calls. It is kept small and without defer:
// its frame sits below every Read, on a goroutine that starts with a small stack.
func (s *stream) ReadFrom(r io.Reader) (int64, error) {
	bp := readBufs.Get().(*[]byte)
	buf := *bp
	var n int64
	var err error
	for err == nil {
		var k int
		k, err = r.Read(buf)
		if k > 0 {
			n += int64(k)
			s.Write(buf[:k])
		}
	}
	readBufs.Put(bp)
	if err == io.EOF {
		return n, nil
	}
	// os.ErrClosed: WaitDelay expired and os/exec closed our end while an escaped descendant still held
	// the other.
	s.cut = err
	return n, err
}

// Write never fails and always consumes p: a capture that refused bytes would block the child.
func (s *stream) Write(p []byte) (int, error) {
	s.total += int64(len(p))
	s.written.Store(s.total)
	if s.failLimit > 0 && !s.exceeded && s.total > s.failLimit {
		s.exceeded = true
		s.ex.outputExceeded(s.typ)
	}
	if s.masker != nil {
		_, _ = s.masker.Write(p) // the sink never fails
	} else {
		s.sink.Write(p)
	}
	return len(p), nil
}

// finish flushes what masking and line splitting held back; called once the copying goroutine is done.
func (s *stream) finish() {
	if s.masker != nil {
		_ = s.masker.Flush() // the sink never fails
	}
	if s.sink.lines != nil {
		s.sink.lines.flush()
	}
	if s.sink.file != nil {
		if err := s.sink.file.Close(); err != nil && s.sink.fileErr == nil {
			s.sink.fileErr = err
		}
	}
}

// Write takes masked bytes: spill, capture, log files, then line events if anyone listens.
func (k *sink) Write(p []byte) (int, error) {
	if k.spill && k.file == nil && k.fileErr == nil && k.capture.total+int64(len(p)) > k.limit {
		k.startSpill()
	}
	if k.file != nil && k.fileErr == nil {
		if _, err := k.file.Write(p); err != nil {
			k.fileErr = err
		}
	}
	k.mu.Lock()
	k.capture.Write(p)
	k.mu.Unlock()
	for _, l := range k.logs {
		l.write(p)
	}
	if k.lines != nil {
		if k.s.ex.e.hub.listening() {
			k.lines.write(p)
		} else {
			k.lines.reset() // nobody listens: no per-line work
		}
	}
	return len(p), nil
}

// startSpill creates the spill file when the stream first outgrows the limit. Until then the capture
// holds the whole stream, so the file starts complete.
func (k *sink) startSpill() {
	ex := k.s.ex
	dir := ex.e.cfg.SpillDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		k.fileErr = err
		return
	}
	f, err := os.CreateTemp(dir, "playbook-"+ex.id+"-"+string(k.s.typ)+"-*.log")
	if err != nil {
		k.fileErr = err
		return
	}
	k.file = f
	if _, err := f.Write(k.capture.Bytes()); err != nil {
		k.fileErr = err
	}
}

// emitOmitted ends an over-long line whose last n bytes were not delivered.
func (s *stream) emitOmitted(n int64) {
	s.ex.waitStarted()
	s.ex.e.hub.emitLine(Event{Type: s.typ, ExecutionID: s.ex.id, Time: time.Now(), Line: []byte{},
		Omitted: n, Metadata: s.ex.metadata})
}

func (s *stream) emitLine(line []byte, partial bool) {
	s.ex.waitStarted()
	s.ex.e.hub.emitLine(Event{Type: s.typ, ExecutionID: s.ex.id, Time: time.Now(), Line: line,
		Partial: partial, Metadata: s.ex.metadata})
}

// lineSplitter cuts a byte stream into lines of at most max bytes. Lines are copied into shared slabs, so
// many short lines cost few allocations. A line that no subscriber has room for (room) is not copied at
// all, only counted, and the count is handed to drop before the next line goes out and at the end of
// every chunk written, so that it reaches subscribers in order.
type lineSplitter struct {
	max       int
	maxPieces int // chunks of one line delivered; 0: no limit
	emit      func(line []byte, partial bool)
	omit      func(n int64) // ends a line whose last n bytes were not delivered
	pieces    int           // chunks of the current line delivered so far
	omitted   int64         // bytes of the current line not delivered
	room      func() bool   // nil: always room
	drop      func(n int64) // counts lines that were not emitted
	pending   int64         // lines not emitted and not yet handed to drop
	buf       []byte        // the current incomplete line
	slab      []byte
}

const slabSize = 32 << 10

func (l *lineSplitter) keep(p []byte) []byte {
	if len(p) > slabSize/4 {
		return bytes.Clone(p)
	}
	if len(l.slab)+len(p) > cap(l.slab) {
		l.slab = make([]byte, 0, slabSize)
	}
	start := len(l.slab)
	l.slab = append(l.slab, p...)
	return l.slab[start:len(l.slab):len(l.slab)]
}

// out emits one line or chunk, or counts it when nobody has room for it. Past maxPieces chunks of one
// line, the rest of the line is counted in bytes instead, and reported when the line ends.
func (l *lineSplitter) out(line []byte, partial bool) {
	if l.maxPieces > 0 && l.pieces >= l.maxPieces {
		l.omitted += int64(len(line))
		if !partial {
			l.endLine()
		}
		return
	}
	if partial {
		l.pieces++
	} else {
		l.pieces = 0
	}
	if l.room != nil && !l.room() {
		l.pending++
		return
	}
	l.flushDrops()
	l.emit(l.keep(line), partial)
}

// endLine finishes an over-long line: its omitted bytes are reported (or, when nobody has room for even
// that, counted as a dropped line).
func (l *lineSplitter) endLine() {
	n := l.omitted
	l.pieces, l.omitted = 0, 0
	if l.room != nil && !l.room() {
		l.pending++
		return
	}
	l.flushDrops()
	l.omit(n)
}

func (l *lineSplitter) flushDrops() {
	if l.pending > 0 {
		l.drop(l.pending)
		l.pending = 0
	}
}

func (l *lineSplitter) write(p []byte) {
	defer l.flushDrops()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.add(p)
			return
		}
		if len(l.buf) == 0 && i <= l.max {
			l.out(trimCR(p[:i]), false)
		} else {
			l.add(p[:i])
			l.out(trimCR(l.buf), false)
			l.buf = l.buf[:0]
		}
		p = p[i+1:]
	}
}

// add appends to the current line, emitting full chunks as partial lines when it outgrows max. Whole
// chunks of p go out without passing through buf.
func (l *lineSplitter) add(p []byte) {
	for len(p) > 0 {
		if len(l.buf) == l.max {
			l.out(l.buf, true)
			l.buf = l.buf[:0]
		}
		if len(l.buf) == 0 && len(p) > l.max {
			l.out(p[:l.max], true)
			p = p[l.max:]
			continue
		}
		n := min(l.max-len(l.buf), len(p))
		l.buf = append(l.buf, p[:n]...)
		p = p[n:]
	}
}

func (l *lineSplitter) flush() {
	if len(l.buf) > 0 || l.maxPieces > 0 && l.pieces >= l.maxPieces {
		l.out(l.buf, false)
		l.buf = l.buf[:0]
	}
	l.flushDrops()
}

func (l *lineSplitter) reset() { l.buf = l.buf[:0] }

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
