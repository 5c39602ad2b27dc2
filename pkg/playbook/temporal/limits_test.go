package temporal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/playbookhq/playbook/pkg/playbook"
	"github.com/playbookhq/playbook/pkg/run"
)

// encodedSize is the size of v as Temporal receives it: JSON, then encrypted by the Codec.
func encodedSize(t *testing.T, v any) int {
	t.Helper()
	c, err := NewCodec(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.DataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return proto.Size(p)
}

// noise is n bytes that neither compress nor are valid UTF-8 throughout: the worst output.
func noise(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(1)).Read(b)
	return b
}

// TestCheckLimits: what cannot run on Temporal is refused when it is submitted, with the limit, the
// file and the step to blame in the message.
func TestCheckLimits(t *testing.T) {
	parse := func(src string, scripts playbook.Scripts) (*playbook.Playbook, *RunInput) {
		pb, err := playbook.ParseScripts("/srv/pb.yaml", []byte(src), scripts)
		if err != nil {
			t.Fatal(err)
		}
		return pb, &RunInput{File: "/srv/pb.yaml", Source: []byte(src), Scripts: scripts}
	}
	pb, in := parse("version: 1\nname: ok\noutput_limit: 256KiB\nsteps:\n  - {id: a, run: x}\n", nil)
	if err := CheckLimits(pb, in); err != nil {
		t.Errorf("256KiB refused: %v", err)
	}
	pb, in = parse("version: 1\nname: big\noutput_limit: 1MiB\nsteps:\n  - {id: a, run: x}\n", nil)
	err := CheckLimits(pb, in)
	if err == nil || !strings.Contains(err.Error(), "/srv/pb.yaml: output_limit is 1048576 bytes") || !strings.Contains(err.Error(), "at most 262144 bytes") {
		t.Errorf("output_limit 1MiB: %v", err)
	}
	big := playbook.Scripts{"/srv/big.sh": bytes.Repeat([]byte("echo x\n"), 80<<10)}
	pb, in = parse("version: 1\nname: s\nsteps:\n  - {id: a, run: x}\n  - {id: ship, script: /srv/big.sh}\n", big)
	err = CheckLimits(pb, in)
	if err == nil || !strings.Contains(err.Error(), `step "ship"'s /srv/big.sh (573440 bytes)`) || !strings.Contains(err.Error(), "at most 524288 bytes") {
		t.Errorf("a 560KiB script: %v", err)
	}
}

// TestBoundResultWorstCase: whatever an attempt printed and output, what its worker returns fits in
// a payload once encoded and encrypted; outputs that cannot fail the attempt, saying why.
func TestBoundResultWorstCase(t *testing.T) {
	result := func(outputs map[string]string) *StepResult {
		marker := []byte("\n[... 1071644672 bytes omitted ...]\n")
		data := append(append(noise(512<<10), marker...), noise(512<<10)...) // the engine's 1 MiB capture
		return &StepResult{Retryable: true, Outputs: outputs, Attempt: run.AttemptRecord{RunID: "r", StepID: "s", Attempt: 1,
			Status: run.StatusSucceeded, Stdout: run.Output{Data: data, Bytes: 1 << 30, Truncated: true},
			Stderr: run.Output{Data: append([]byte(nil), data...), Bytes: 1 << 30, Truncated: true}, Error: strings.Repeat("e", 1<<20)}}
	}
	// Outputs as large as fit with both streams full: the largest result there can be.
	res := BoundResult(result(map[string]string{"v": strings.Repeat("a", 760<<10)}), 0)
	a := res.Attempt
	if a.Status != run.StatusSucceeded || len(a.Stdout.Data) > MaxOutputLimit+64 || !a.Stdout.Truncated || a.Stdout.Bytes != 1<<30 {
		t.Fatalf("result %s, stdout %d bytes (of %d)", a.Status, len(a.Stdout.Data), a.Stdout.Bytes)
	}
	if !bytes.HasPrefix(a.Stdout.Data, noise(1024)) || !bytes.Contains(a.Stdout.Data, []byte("bytes omitted ...]\n")) {
		t.Errorf("stdout lost its head or its marker")
	}
	n := encodedSize(t, res)
	t.Logf("worst StepResult: %d bytes as JSON, %d encrypted (limit %d)", jsonSize(res), n, MaxPayloadSize)
	if n > MaxPayloadSize || jsonSize(res) > PayloadBudget {
		t.Errorf("a result of %d bytes encrypted", n)
	}
	// Outputs that JSON escapes six-fold, and outputs too large as they are: the attempt fails.
	for _, c := range []struct {
		v     string
		limit int64
	}{{strings.Repeat("\x01", 300<<10), 64 << 10}, {strings.Repeat("a", 1<<20), 0}} {
		res := BoundResult(result(map[string]string{"v": c.v}), c.limit)
		if res.Attempt.Status != run.StatusFailed || res.Outputs != nil || res.Retryable || !strings.HasPrefix(res.Attempt.Error, "the step's outputs") ||
			!strings.Contains(res.Attempt.Error, "at most 1572864 bytes") {
			t.Errorf("outputs of %d bytes: %s %.200q", len(c.v), res.Attempt.Status, res.Attempt.Error)
		}
		if n := encodedSize(t, res); n > MaxPayloadSize || len(res.Attempt.Stdout.Data) > int(max(c.limit, MaxOutputLimit))+64 {
			t.Errorf("a failed result of %d bytes encrypted, stdout %d", n, len(res.Attempt.Stdout.Data))
		}
	}
}

// bigSteps is a step activity whose attempts print as much as a worker returns (both streams of
// noise, cut by BoundResult) and output what their command says ("out N": N bytes).
type bigSteps struct {
	mu   sync.Mutex
	reqs []StepRequest
}

func (b *bigSteps) run(_ context.Context, req StepRequest) (*StepResult, error) {
	b.mu.Lock()
	b.reqs = append(b.reqs, req)
	b.mu.Unlock()
	res := &StepResult{Retryable: true, Attempt: run.AttemptRecord{RunID: req.RunID, StepID: req.StepID, Attempt: req.Attempt,
		Status: run.StatusSucceeded, Stdout: run.Output{Data: noise(1 << 20), Bytes: 1 << 30},
		Stderr: run.Output{Data: noise(1 << 20), Bytes: 1 << 30}}}
	var n int
	if _, err := fmt.Sscanf(req.Launch.Run, "out %d", &n); err == nil {
		res.Outputs = map[string]string{"v": strings.Repeat("a", n)}
	}
	return BoundResult(res, req.OutputLimit), nil
}

// batchLog is the record activity of TestRecordBatchesFit: it keeps each batch's encrypted size.
type batchLog struct {
	t       *testing.T
	mu      sync.Mutex
	sizes   []int
	records []string
}

func (l *batchLog) write(_ context.Context, batch []Record) error {
	n := encodedSize(l.t, batch)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, n)
	for _, r := range batch {
		switch {
		case r.AttemptFinished != nil:
			l.records = append(l.records, "attempt "+r.AttemptFinished.StepID)
		case r.StepFinished != nil:
			l.records = append(l.records, "step "+r.StepFinished.StepID+" "+string(r.StepFinished.Status))
		}
	}
	return nil
}

// TestRecordBatchesFit: steps that all print more than the output limit, finishing together, send
// their records in batches that each fit in a payload; a step whose command grew past what can be
// sent fails without being sent; the workflow's result fits too.
func TestRecordBatchesFit(t *testing.T) {
	var src strings.Builder
	src.WriteString("version: 1\nname: big\nsteps:\n  - {id: seed, run: out 700000}\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&src, "  - {id: s%d, needs: seed, run: x}\n", i)
	}
	src.WriteString("  - {id: huge, needs: seed, run: \"echo ${{ steps.seed.outputs.v }} ${{ steps.seed.outputs.v }} ${{ steps.seed.outputs.v }}\"}\n")
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	// The race detector makes encoding a MiB ten times slower than a worker does it.
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	steps := &bigSteps{}
	log := &batchLog{t: t}
	env.RegisterWorkflowWithOptions(Run, workflowOptions())
	env.RegisterActivityWithOptions(steps.run, activity.RegisterOptions{Name: StepActivityName})
	env.RegisterActivityWithOptions(log.write, activity.RegisterOptions{Name: RecordActivityName})
	env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "r1", File: "/srv/pb.yaml", Source: []byte(src.String())})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var out RunOutput
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	biggest := 0
	for _, n := range log.sizes {
		biggest = max(biggest, n)
		if n > MaxPayloadSize {
			t.Errorf("a batch of records of %d bytes encrypted (limit %d)", n, MaxPayloadSize)
		}
	}
	t.Logf("%d record batches, the largest %d bytes encrypted; the run's result %d", len(log.sizes), biggest, encodedSize(t, &out))
	got := strings.Join(log.records, "\n")
	for i := 0; i < 8; i++ {
		if !strings.Contains(got, fmt.Sprintf("attempt s%d\n", i)) || !strings.Contains(got, fmt.Sprintf("step s%d succeeded", i)) {
			t.Errorf("s%d not recorded: %s", i, got)
		}
	}
	if !strings.Contains(got, "step huge failed") {
		t.Errorf("huge not recorded as failed:\n%s", got)
	}
	for _, r := range steps.reqs {
		if r.StepID == "huge" {
			t.Errorf("huge was sent to a worker")
		}
		if r.OutputLimit != MaxOutputLimit {
			t.Errorf("%s sent with output limit %d", r.StepID, r.OutputLimit)
		}
	}
	for _, s := range out.Steps {
		if s.StepID == "huge" && (s.Status != run.StatusFailed || !strings.Contains(s.Error, "a payload of at most 1572864 bytes")) {
			t.Errorf("huge: %s %q", s.Status, s.Error)
		}
		if len(s.Stdout.Data) > 0 {
			t.Errorf("the run's result carries %s's output", s.StepID)
		}
	}
	if n := encodedSize(t, &out); n > MaxPayloadSize {
		t.Errorf("the run's result takes %d bytes", n)
	}
}

// TestRunOutputOfManySteps: the result of a run of thousands of steps fits in a payload.
func TestRunOutputOfManySteps(t *testing.T) {
	out := &RunOutput{Run: run.Record{ID: "r"}}
	for i := 0; i < 5000; i++ {
		out.Steps = append(out.Steps, &run.StepRecord{RunID: "r", StepID: fmt.Sprintf("step-%04d", i), Status: run.StatusSucceeded,
			Command: "true", Stdout: run.Output{Data: []byte("hello\n"), Bytes: 6}, Fingerprint: strings.Repeat("f", 64)})
	}
	if n := encodedSize(t, boundOutput(out)); n > MaxPayloadSize {
		t.Errorf("5,000 steps' result takes %d bytes", n)
	}
}

// TestRecordSize: the size the workflow counts for a record is the size of its JSON.
func TestRecordSize(t *testing.T) {
	odd := string(noise(3000)) + "<&>\u2028\"\\\n\t\x01é" + "€"
	recs := []Record{
		{AttemptStarted: &run.AttemptStart{RunID: "r", StepID: "a", Command: odd}},
		{AttemptFinished: &run.AttemptRecord{StepID: "a", Stdout: run.Output{Data: noise(1001)}, Stderr: run.Output{Data: []byte{}}, Error: odd}},
		{StepFinished: &run.StepRecord{StepID: "a", Stdout: run.Output{Data: noise(7)}, Outputs: map[string]string{"k": odd, odd: "v", "e": ""}}},
		{StepFinished: &run.StepRecord{StepID: "b", Outputs: map[string]string{}}},
	}
	for i, r := range recs {
		if got, want := recordSize(r), jsonSize(r); got != want {
			t.Errorf("record %d: counted %d bytes, JSON has %d", i, got, want)
		}
	}
	req := StepRequest{StepID: "a", Script: noise(5000), Secrets: []string{odd}}
	if got, want := requestSize(req), jsonSize(req); got != want {
		t.Errorf("request: counted %d bytes, JSON has %d", got, want)
	}
}
