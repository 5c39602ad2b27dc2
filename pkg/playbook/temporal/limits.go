package temporal

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/playbookhq/playbook/pkg/engine"
	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// Limits of a run on Temporal. Temporal refuses a payload (a workflow's input or result, an
// activity's input or result) above 2 MiB by default, and ends a workflow run whose history passes
// 50 MB or 51,200 events. Everything this package sends is kept under PayloadBudget, and a run
// continues as new (continue.go) long before its history nears those limits.
const (
	// MaxPayloadSize is Temporal's default limit on one payload (limit.blobSize.error).
	MaxPayloadSize = 2 << 20

	// PayloadBudget bounds the JSON of every payload this package makes: the rest of MaxPayloadSize
	// is room for the codec (protobuf framing, nonce and tag: under 100 bytes) and Temporal's own
	// wrapping, with a wide margin.
	PayloadBudget = 1536 << 10

	// MaxOutputLimit is the largest output_limit of a run on Temporal, and the limit of one that sets
	// none: 256 KiB of each stream of each attempt. A step's result carries both streams, which JSON
	// turns into base64 (4/3 of their size), plus its outputs, and has to fit PayloadBudget.
	MaxOutputLimit = 256 << 10

	// MaxInputSize bounds the JSON of what a run is submitted with (playbook, scripts, params): the
	// rest of PayloadBudget is for the state a run carries when it continues as new.
	MaxInputSize = 512 << 10

	// MaxInFlight caps the attempts of a run in flight at once, whatever max_parallel says: Temporal
	// refuses more than 2,000 pending activities in one workflow by default.
	MaxInFlight = 1000

	// maxErrorSize bounds an attempt's error message in what a worker returns.
	maxErrorSize = 16 << 10
)

// CheckLimits refuses, when a run is submitted, what cannot run on Temporal: an output_limit above
// MaxOutputLimit, a playbook whose source, scripts and params together pass MaxInputSize. in needs
// File, Source, Scripts and Params. The error names the file, the step where one is to blame, and
// the limit.
func CheckLimits(pb *playbook.Playbook, in *RunInput) error {
	if pb.OutputLimit > MaxOutputLimit {
		return fmt.Errorf("%s: output_limit is %d bytes; a run on Temporal keeps at most %d bytes (256KiB) of each stream of each step, as every step's output travels in Temporal payloads of at most 2MiB: lower output_limit, or run it locally",
			in.File, pb.OutputLimit, MaxOutputLimit)
	}
	n := jsonSize(in)
	if n <= MaxInputSize {
		return nil
	}
	// Name the largest script, which is usually to blame.
	var names []string
	for name := range in.Scripts {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return len(in.Scripts[names[i]]) > len(in.Scripts[names[j]]) })
	msg := fmt.Sprintf("%s: the playbook, its scripts and its params take %d bytes once encoded; a run on Temporal is submitted in one payload of at most %d bytes (512KiB)",
		in.File, n, MaxInputSize)
	if len(names) > 0 {
		for _, s := range pb.Steps {
			if s.Script == names[0] {
				msg += fmt.Sprintf("; the largest script is step %q's %s (%d bytes)", s.ID, s.Script, len(in.Scripts[names[0]]))
				break
			}
		}
	}
	return fmt.Errorf("%s: make it smaller (ship large files to the workers some other way), or run it locally", msg)
}

// outputLimit is the bytes of each stream a run on Temporal keeps of each attempt.
func outputLimit(pb *playbook.Playbook) int64 {
	if pb.OutputLimit > 0 && pb.OutputLimit < MaxOutputLimit {
		return pb.OutputLimit
	}
	return MaxOutputLimit
}

// jsonSize is the size of v as Temporal's JSON converter encodes it.
func jsonSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0 // what cannot be encoded fails where it is sent, saying why
	}
	return len(b)
}

// recordSize is the size of r as JSON, counted without encoding its captured output and outputs:
// workflow code must answer fast (Temporal takes a workflow task that runs for a second as stuck), and
// encoding a step's output is slow.
func recordSize(r Record) int {
	var datas [][]byte
	var outputs map[string]string
	switch {
	case r.AttemptFinished != nil:
		a := *r.AttemptFinished
		datas = [][]byte{a.Stdout.Data, a.Stderr.Data}
		a.Stdout.Data, a.Stderr.Data = nil, nil
		r.AttemptFinished = &a
	case r.StepFinished != nil:
		s := *r.StepFinished
		datas, outputs = [][]byte{s.Stdout.Data, s.Stderr.Data}, s.Outputs
		s.Stdout.Data, s.Stderr.Data, s.Outputs = nil, nil, nil
		r.StepFinished = &s
	}
	n := jsonSize(r)
	for _, d := range datas {
		if d != nil { // base64 between quotes instead of null
			n += base64.StdEncoding.EncodedLen(len(d)) + 2 - len("null")
		}
	}
	if outputs != nil {
		n += mapSize(outputs) - len("null")
	}
	return n
}

// mapSize is the size of m as JSON.
func mapSize(m map[string]string) int {
	n := len("{}")
	for k, v := range m {
		n += stringSize(k) + len(":") + stringSize(v) + len(",")
	}
	if len(m) > 0 {
		n -= len(",")
	}
	return n
}

// stringSize is the size of s as encoding/json writes it: quoted, with its escapes (HTML characters
// escaped, invalid UTF-8 replaced by \ufffd).
func stringSize(s string) int {
	n := len(`""`)
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t' || b == '\b' || b == '\f':
				n += 2
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// trimOutput keeps at most limit bytes of a captured stream: its head and its tail joined by the
// engine's marker, as the engine keeps a stream longer than its own limit.
func trimOutput(o *run.Output, limit int64) {
	if int64(len(o.Data)) <= limit {
		return
	}
	head, tail := limit/2, limit-limit/2
	kept := o.Data
	omitted := o.Bytes - limit
	if omitted < 1 {
		omitted = int64(len(kept)) - limit
	}
	data := make([]byte, 0, limit+64)
	data = append(data, kept[:head]...)
	data = append(data, engine.Marker(omitted)...)
	data = append(data, kept[int64(len(kept))-tail:]...)
	o.Data, o.Truncated = data, true
}

// BoundResult makes what a worker returns of an attempt fit in a payload: each stream is cut to
// limit bytes (head and tail; 0 or above MaxOutputLimit is MaxOutputLimit), the error to 16 KiB, and
// outputs too large to travel fail the attempt (they cannot be cut: later steps would read a part).
func BoundResult(res *StepResult, limit int64) *StepResult {
	if limit <= 0 || limit > MaxOutputLimit {
		limit = MaxOutputLimit
	}
	a := &res.Attempt
	trimOutput(&a.Stdout, limit)
	trimOutput(&a.Stderr, limit)
	if len(a.Error) > maxErrorSize {
		a.Error = a.Error[:maxErrorSize] + " [... cut ...]"
	}
	if n := jsonSize(res); n > PayloadBudget {
		a.Status, a.Error = run.StatusFailed, fmt.Sprintf(
			"the step's outputs ($PLAYBOOK_OUTPUT) take %d bytes with its output once encoded; a step run on Temporal returns at most %d bytes (1.5MiB): pass bulk data in files, not outputs",
			n, PayloadBudget)
		if a.ExitCode == 0 {
			a.ExitCode = -1
		}
		res.Outputs, res.Retryable = nil, false
	}
	return res
}

// fitRecord makes one record fit in a batch of its own: a command grown with what earlier steps
// output, or a step's record with masked outputs longer than the real ones (a short secret masked as
// ***), can pass the budget. Its command and error are cut first, then its captured output, its
// outputs are dropped last (the record's error says so).
func fitRecord(r Record, size int) (Record, int) {
	var outs []*run.Output
	var outputs *map[string]string
	var errMsg, command *string
	switch {
	case r.AttemptStarted != nil:
		a := *r.AttemptStarted
		r.AttemptStarted = &a
		command = &a.Command
	case r.AttemptFinished != nil:
		a := *r.AttemptFinished
		r.AttemptFinished = &a
		outs, errMsg = []*run.Output{&a.Stdout, &a.Stderr}, &a.Error
	case r.StepFinished != nil:
		s := *r.StepFinished
		r.StepFinished = &s
		outs, outputs, errMsg, command = []*run.Output{&s.Stdout, &s.Stderr}, &s.Outputs, &s.Error, &s.Command
	default:
		return r, size
	}
	for _, t := range []*string{command, errMsg} {
		if t != nil && len(*t) > maxErrorSize {
			*t = (*t)[:maxErrorSize] + fmt.Sprintf(" [... %d bytes cut ...]", len(*t)-maxErrorSize)
		}
	}
	size = recordSize(r)
	for limit := int64(MaxOutputLimit / 2); size > PayloadBudget && limit >= 1024; limit /= 2 {
		for _, o := range outs {
			trimOutput(o, limit)
		}
		size = recordSize(r)
	}
	if size > PayloadBudget && outputs != nil && *outputs != nil {
		*outputs = nil
		*errMsg += " (its outputs were too large to record)"
		size = recordSize(r)
	}
	return r, size
}

// boundOutput is the workflow's result without what a payload cannot hold: the steps' captured
// output and outputs (the submitter's database has them), and with too many steps the steps.
func boundOutput(out *RunOutput) *RunOutput {
	steps := make([]*run.StepRecord, len(out.Steps))
	for i, s := range out.Steps {
		if s == nil {
			continue
		}
		c := *s
		c.Stdout.Data, c.Stderr.Data, c.Outputs = nil, nil, nil
		steps[i] = &c
	}
	out.Steps = steps
	// Counted, not encoded (as recordSize): every field's text, and room for the rest.
	n := 0
	for _, s := range steps {
		if s != nil {
			n += 1024 + len(s.StepID) + len(s.Name) + len(s.Command) + len(s.Error) + len(s.Reason) + len(s.Fingerprint) +
				len(s.RetryReason) + len(s.RetryDetail) + len(s.Worker) + len(s.ReusedFrom)
		}
	}
	if n > PayloadBudget/2 {
		out.Steps = nil
	}
	return out
}

// requestSize is the size of req as JSON, counted without encoding its script (as recordSize).
func requestSize(req StepRequest) int {
	script := req.Script
	req.Script = nil
	n := jsonSize(req)
	if script != nil {
		n += base64.StdEncoding.EncodedLen(len(script)) + 2 - len("null")
	}
	return n
}
