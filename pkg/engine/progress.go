package engine

// Progress is what an execution has written so far: its captured streams in the bounded form of Result
// (the head and the tail joined by Marker once a stream outgrew Config.OutputLimit), masked, with the
// byte counts. It lets a caller keep a running execution's output somewhere safe before it ends.
type Progress struct {
	// Stdout and Stderr are copies of the captures (empty before the process started). Bytes that
	// masking holds back, in case they begin a secret, are not in them yet.
	Stdout, Stderr []byte
	// StdoutBytes and StderrBytes count every byte the process wrote to each stream so far (before
	// masking), as Result's do.
	StdoutBytes, StderrBytes int64
	// StdoutTruncated and StderrTruncated say whether the copy omits bytes.
	StdoutTruncated, StderrTruncated bool
}

// streams returns the execution's streams, nil before it started (they are set once, under mu).
func (ex *execution) streams() (out, errs *stream) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.stdout, ex.stderr
}

// OutputBytes returns how many bytes an execution has written so far to its stdout and its stderr:
// 0 and 0 before it started, the final counts once it ended. It copies nothing and never waits for the
// process's output, so a caller can poll it cheaply and call Progress only when a count moved. An
// unknown id (or one removed by Cleanup) gives CodeNotFound.
func (e *Engine) OutputBytes(id string) (stdout, stderr int64, err error) {
	ex, err := e.lookup(id)
	if err != nil {
		return 0, 0, err
	}
	out, errs := ex.streams()
	if out == nil {
		return 0, 0, nil
	}
	return out.written.Load(), errs.written.Load(), nil
}

// Progress returns a copy of what an execution has captured so far, safe to call from any goroutine
// while the process runs (the writer of the output is held up only for the copy, at most
// Config.OutputLimit per stream). Before the process started it returns an empty Progress; after it
// ended, the final capture (Result holds the same). An unknown id (or one removed by Cleanup) gives
// CodeNotFound.
func (e *Engine) Progress(id string) (*Progress, error) {
	ex, err := e.lookup(id)
	if err != nil {
		return nil, err
	}
	out, errs := ex.streams()
	p := &Progress{}
	if out == nil {
		return p, nil
	}
	p.Stdout, p.StdoutBytes, p.StdoutTruncated = out.snapshot()
	p.Stderr, p.StderrBytes, p.StderrTruncated = errs.snapshot()
	return p, nil
}

// snapshot copies the capture under the sink's lock. The byte count is read after the copy: Write
// publishes it before the bytes reach the capture, so it covers at least what the copy holds.
func (s *stream) snapshot() (data []byte, total int64, truncated bool) {
	k := &s.sink
	k.mu.Lock()
	data, truncated = k.capture.Bytes(), k.capture.omitted() > 0
	k.mu.Unlock()
	return data, s.written.Load(), truncated
}
