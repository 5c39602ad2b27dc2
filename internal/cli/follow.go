package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/playbookhq/playbook/internal/store"
	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/run"
)

// followPoll is how often `logs -f` reads the step's row. The runner stores a running step's output
// about once a second; reading more often only shortens the wait for the step's final record.
var followPoll = 200 * time.Millisecond

// followRecoverEvery is how often `logs -f` runs crash recovery, so that following a step whose runner
// died ends (the step becomes interrupted) instead of waiting for ever.
const followRecoverEvery = 2 * time.Second

// followStep prints the streams of a step as the database gets them, until the step is no longer
// pending or running; with both streams, each line is labelled with its stream (see logLabel). It
// exits with nil whatever the step's outcome.
func followStep(ctx context.Context, sys *System, st *store.Store, runID, stepID string, streams []string, raw bool) error {
	type followed struct {
		stream string
		lw     *labelWriter
		f      *follower
	}
	var fs []followed
	for _, stream := range streams {
		label := ""
		if len(streams) > 1 {
			label = logLabel("", stream, 0)
		}
		lw := newLabelWriter(sys.Out, label)
		fs = append(fs, followed{stream: stream, lw: lw, f: &follower{w: lw, raw: raw}})
	}
	// flush writes what each stream holds back: an incomplete character, a line without its end.
	flush := func() error {
		for _, x := range fs {
			if err := x.f.write(nil, true); err != nil {
				return err
			}
			if err := x.lw.Close(); err != nil {
				return err
			}
		}
		return nil
	}
	attempt := 0
	recovered := time.Now()
	for {
		rec, err := st.StepOutput(ctx, runID, stepID)
		if err != nil {
			return storeError(err)
		}
		ended := rec.Status != run.StatusRunning && rec.Status != run.StatusPending
		if rec.Attempts > 0 {
			if rec.Attempts != attempt && attempt != 0 {
				if err := flush(); err != nil {
					return err
				}
				fmt.Fprintf(sys.ErrOut, "playbook: attempt %d of step %s started\n", rec.Attempts, stepID)
			}
			attempt = rec.Attempts
			for _, x := range fs {
				if err := x.f.show(rec.Attempts, pickStream(rec.Stdout, rec.Stderr, x.stream), ended); err != nil {
					return err
				}
			}
		}
		if ended {
			if err := flush(); err != nil {
				return err
			}
			for _, x := range fs {
				if out := pickStream(rec.Stdout, rec.Stderr, x.stream); out.Truncated {
					fmt.Fprintf(sys.ErrOut, "playbook: the %s of step %s was truncated: %d bytes produced, the head and the tail kept; the complete stream is only in the files of a run started with --log-dir\n",
						x.stream, stepID, out.Bytes)
				}
			}
			fmt.Fprintf(sys.ErrOut, "playbook: step %s ended: %s\n", stepID, stepOutcome(rec))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
		if time.Since(recovered) >= followRecoverEvery {
			// A runner that died leaves the step running until someone recovers the run. Failing
			// to (a read-only database) only means waiting for another command to do it.
			_, _ = st.Recover(ctx)
			recovered = time.Now()
		}
	}
}

func stepOutcome(rec *run.StepRecord) string {
	s := statusWord(rec.Status)
	switch {
	case rec.Reason != "":
		s += " (" + reasonText(rec.Reason) + ")"
	case rec.Signal != 0:
		s += fmt.Sprintf(" (signal %d)", rec.Signal)
	case rec.ExitCode >= 0 && rec.Status != run.StatusSkipped && rec.Status != run.StatusInterrupted:
		s += fmt.Sprintf(" (exit %d)", rec.ExitCode)
	}
	return s
}

// follower prints the new part of successive stored copies of one stream of one attempt.
type follower struct {
	w       io.Writer
	raw     bool
	attempt int
	printed int    // bytes of the (untruncated) stored copy already printed
	total   int64  // bytes the step had written when the copy last printed was stored
	pending []byte // an incomplete UTF-8 sequence at the end of what was printed, held back
}

// show prints what out holds beyond what was printed. While the copy is whole, that is exactly the
// bytes after the last ones printed. Once the middle is dropped, the copy is head, marker and tail,
// and the new part is the end of the tail: how long is known from the byte counts (they count bytes
// before masking, so a masked secret in the new part can make it a few bytes off); when more came
// than the tail keeps, a marker says how many bytes were not kept.
func (f *follower) show(attempt int, out run.Output, final bool) error {
	if attempt != f.attempt {
		f.attempt, f.printed, f.total = attempt, 0, 0
	}
	data := out.Data
	var err error
	switch {
	case !out.Truncated && len(data) >= f.printed:
		err = f.write(data[f.printed:], final)
	case !out.Truncated: // a shorter copy than before: never written by a runner; show it whole
		err = f.write(data, final)
	default:
		tail := storedTail(data)
		n := out.Bytes - f.total
		if n > int64(len(tail)) {
			err = f.write(append([]byte(engine.Marker(n-int64(len(tail)))), tail...), final)
		} else if n > 0 {
			err = f.write(tail[len(tail)-int(n):], final)
		}
	}
	if final && err == nil {
		err = f.write(nil, true) // what was held back
	}
	f.printed, f.total = len(data), out.Bytes
	return err
}

var markerRE = regexp.MustCompile(`\n\[\.\.\. [0-9]+ bytes omitted \.\.\.\]\n`)

// storedTail returns the tail of a truncated copy: what follows the marker. The head and the tail each
// hold half the limit (the tail one byte more when it is odd), less up to 3 bytes each of a UTF-8
// character the cut would split, which tells the engine's marker from the same text in the output;
// failing that, the last marker counts.
func storedTail(data []byte) []byte {
	last := -1
	// Matches may overlap (a marker-like line right before the marker shares its newline).
	for from := 0; from < len(data); {
		m := markerRE.FindIndex(data[from:])
		if m == nil {
			break
		}
		start, end := from+m[0], from+m[1]
		if d := len(data) - end - start; d >= 1-utf8.UTFMax && d <= utf8.UTFMax {
			return data[end:]
		}
		last, from = end, start+1
	}
	if last < 0 {
		return data
	}
	return data[last:]
}

// write prints b, made valid UTF-8 unless raw. Unless final, an incomplete character at its end is
// held back until the next write completes it.
func (f *follower) write(b []byte, final bool) error {
	if f.raw {
		_, err := f.w.Write(b)
		return err
	}
	if len(f.pending) > 0 {
		b = append(f.pending, b...)
		f.pending = nil
	}
	if !final {
		cut := incompleteEnd(b)
		f.pending = bytes.Clone(b[cut:])
		b = b[:cut]
	}
	if len(b) == 0 {
		return nil
	}
	_, err := f.w.Write(printableText(b))
	return err
}

// incompleteEnd returns where a UTF-8 sequence cut short at the end of b begins, or len(b).
func incompleteEnd(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
